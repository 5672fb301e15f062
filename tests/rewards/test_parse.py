"""The SRL completion parser: every format case and its distinct failure reason."""

from __future__ import annotations

import pytest

from srlkit.rewards import parse as P
from srlkit.rewards.parse import parse_completion


@pytest.mark.parametrize(
    "text, action, monologue",
    [
        ("<think>x must be 2</think>x = 2", "x = 2", "x must be 2"),
        ("  \n<think>\nlong\nthoughts\n</think>\n\n3. **Solve** x = 2\n", "3. **Solve** x = 2", "long\nthoughts"),
        ("<think>a</think><solution> y = 4 </solution>", "y = 4", "a"),
        ("<think>a</think>\n<solution>\nmulti\nline step\n</solution>\n", "multi\nline step", "a"),
        ("<think></think>x = 2", "x = 2", ""),  # an empty monologue is allowed; an empty action is not
        ("<think>a</think>Compute 3.5 * 2 = 7.\nThen 7: done", "Compute 3.5 * 2 = 7.\nThen 7: done", "a"),
        ("<think>a</think>2. **Factor** (x-1)(x+1)", "2. **Factor** (x-1)(x+1)", "a"),
    ],
)
def test_accepts_well_formed(text, action, monologue):
    p = parse_completion(text)
    assert p.ok and p.failure is None
    assert p.action == action
    assert p.monologue == monologue


@pytest.mark.parametrize(
    "text, reason",
    [
        ("x = 2", P.MISSING_THINK),
        ("", P.MISSING_THINK),
        ("<think>x = 2", P.UNCLOSED_THINK),
        ("thinking...</think>x = 2", P.UNCLOSED_THINK),
        ("Sure! <think>a</think>x = 2", P.TEXT_BEFORE_THINK),
        ("<think>a</think>", P.EMPTY_ACTION),
        ("<think>a</think>  \n\t ", P.EMPTY_ACTION),
        ("<think>a</think><solution>  </solution>", P.EMPTY_ACTION),
        ("<think>a</think><solution>x = 2", P.UNCLOSED_SOLUTION),
        ("<think>a</think>x = 2</solution>", P.UNCLOSED_SOLUTION),
        ("<think>a</think><solution>x</solution><solution>y</solution>", P.MULTIPLE_SOLUTIONS),
        ("<think>a</think>So: <solution>x = 2</solution>", P.TEXT_OUTSIDE_SOLUTION),
        ("<think>a</think>1. Let x = 2.\n2. Then y = 4.", P.MULTIPLE_STEPS),
        ("<think>a</think>Step 3: expand.\nStep 4: simplify.", P.MULTIPLE_STEPS),
        ("<think>a</think><tool_call>{}</tool_call><tool_call>{}</tool_call>", P.MULTIPLE_STEPS),
        ("<think>a<think>b</think>x", P.EXTRA_THINK),
        ("<think>a</think>x = 2 <think>more</think> y", P.EXTRA_THINK),
    ],
)
def test_rejects_with_reason(text, reason):
    p = parse_completion(text)
    assert p.failure == reason
    assert p.action is None and not p.ok


def test_reasons_are_distinct_strings():
    assert len(set(P.FAILURES)) == len(P.FAILURES)


def test_prefilled_think_template():
    # Chat templates that end the prompt with "<think>" make the completion start mid-monologue.
    p = parse_completion("the step is easy</think>x = 2", prefilled_think=True)
    assert (p.monologue, p.action) == ("the step is easy", "x = 2")
    assert parse_completion("the step is easy</think>x = 2").failure == P.UNCLOSED_THINK
    # a completion that opens the block itself still parses
    assert parse_completion("<think>t</think>x", prefilled_think=True).action == "x"


def test_one_numbered_line_repeated_number_is_one_step():
    # The same step number twice (e.g. a title line and a continuation) is still one step.
    assert parse_completion("<think>a</think>2. **Isolate**\n2. continued").ok
