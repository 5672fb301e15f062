"""Split an SRL completion into its monologue and its action, or say why it cannot be.

The expected shape (SRL_METHOD.md, "Prompt") is::

    <think> any inner monologue </think> the single next step

optionally with the step wrapped as ``<solution> ... </solution>``. Only the action is
scored; the monologue never is. Every way of breaking the format has its own reason
string, so the trainer can log *why* rollouts fail, not just how often.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
SOL_OPEN, SOL_CLOSE = "<solution>", "</solution>"

# Failure reasons (stable strings: they end up as metric names).
MISSING_THINK = "missing_think"
UNCLOSED_THINK = "unclosed_think"
TEXT_BEFORE_THINK = "text_before_think"
EXTRA_THINK = "extra_think"
EMPTY_ACTION = "empty_action"
UNCLOSED_SOLUTION = "unclosed_solution"
MULTIPLE_SOLUTIONS = "multiple_solutions"
TEXT_OUTSIDE_SOLUTION = "text_outside_solution"
MULTIPLE_STEPS = "multiple_steps"
FAILURES = (
    MISSING_THINK, UNCLOSED_THINK, TEXT_BEFORE_THINK, EXTRA_THINK, EMPTY_ACTION,
    UNCLOSED_SOLUTION, MULTIPLE_SOLUTIONS, TEXT_OUTSIDE_SOLUTION, MULTIPLE_STEPS,
)

# A line that opens a numbered step: "2. ...", "2) ...", "Step 2: ...", "**Step 2.** ...".
_STEP_LINE = re.compile(r"^[ \t>*#]*(?:step[ \t]+)?(\d{1,3})[ \t]*[.):][ \t*]", re.IGNORECASE | re.MULTILINE)
_TOOL_CALL = re.compile(r"<tool_call>", re.IGNORECASE)


@dataclass(frozen=True)
class Parsed:
    """`action` is set iff `failure` is None."""

    monologue: str | None
    action: str | None
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


def _fail(reason: str, monologue: str | None = None) -> Parsed:
    return Parsed(monologue=monologue, action=None, failure=reason)


def count_step_openers(action: str) -> int:
    """How many distinct numbered-step openers (or tool calls) the action holds.

    Two different step numbers on their own lines mean the model wrote several steps.
    A single numbered line (the step's own "3. **Title** ...") is fine.

    >>> count_step_openers("3. **Isolate x** x = 2")
    1
    >>> count_step_openers("1. Let x = 2.\\n2. Then y = 4.")
    2
    """
    numbers = {m.group(1) for m in _STEP_LINE.finditer(action)}
    return max(len(numbers), len(_TOOL_CALL.findall(action)))


def _unwrap_solution(body: str) -> tuple[str | None, str | None]:
    """(action, failure) for the text after </think>, handling the <solution> wrapper."""
    opens, closes = body.count(SOL_OPEN), body.count(SOL_CLOSE)
    if opens == 0 and closes == 0:
        return body.strip(), None
    if opens > 1 or closes > 1:
        return None, MULTIPLE_SOLUTIONS
    start, end = body.find(SOL_OPEN), body.find(SOL_CLOSE)
    if opens != closes or end < start:
        return None, UNCLOSED_SOLUTION
    if body[:start].strip() or body[end + len(SOL_CLOSE):].strip():
        return None, TEXT_OUTSIDE_SOLUTION
    return body[start + len(SOL_OPEN):end].strip(), None


def parse_completion(text: str, *, prefilled_think: bool = False) -> Parsed:
    """Parse `<think>monologue</think> action` (action optionally in `<solution>`).

    `prefilled_think=True` is for chat templates that already end the prompt with
    `<think>`: the completion then starts inside the monologue.

    >>> parse_completion("<think>x must be 2</think> 2. **Solve** x = 2")
    Parsed(monologue='x must be 2', action='2. **Solve** x = 2', failure=None)
    >>> parse_completion("<think>hm</think><solution>y = 4</solution>").action
    'y = 4'
    >>> parse_completion("x = 2").failure, parse_completion("<think>x = 2").failure
    ('missing_think', 'unclosed_think')
    >>> parse_completion("<think>ok</think>  ").failure
    'empty_action'
    >>> parse_completion("<think>ok</think>1. a = 1\\n2. b = 2").failure
    'multiple_steps'
    """
    if prefilled_think and not text.lstrip().startswith(THINK_OPEN):
        text = THINK_OPEN + text
    start = text.find(THINK_OPEN)
    if start < 0:
        return _fail(UNCLOSED_THINK if THINK_CLOSE in text else MISSING_THINK)
    if text[:start].strip():
        return _fail(TEXT_BEFORE_THINK)
    end = text.find(THINK_CLOSE, start)
    if end < 0:
        return _fail(UNCLOSED_THINK)
    monologue = text[start + len(THINK_OPEN):end].strip()
    if THINK_OPEN in monologue:
        return _fail(EXTRA_THINK, monologue)
    body = text[end + len(THINK_CLOSE):]
    if THINK_OPEN in body or THINK_CLOSE in body:
        return _fail(EXTRA_THINK, monologue)
    action, failure = _unwrap_solution(body)
    if failure:
        return _fail(failure, monologue)
    if not action:
        return _fail(EMPTY_ACTION, monologue)
    if count_step_openers(action) > 1:
        return _fail(MULTIPLE_STEPS, monologue)
    return Parsed(monologue=monologue, action=action)
