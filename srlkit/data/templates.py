"""Prompt templates: the SRL next-step prompt and the RLVR/eval final-answer prompt.

The wording follows the paper's description (our own text): the model sees the problem
and the expert steps so far, thinks inside <think>...</think> as long as it likes, then
writes only the single next step. A template file (TOML with any of the keys of
`Templates`) overrides the defaults: `srlkit decompose --template my.toml`.
Placeholders: {problem}, {context}, {step_number}, {title}.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path

from srlkit.errors import ConfigError

SRL_SYSTEM = (
    "You are a helpful assistant for solving math problems. You are given a problem and, "
    "possibly, the first steps of a solution. Continue the solution with only the single next "
    "step; do not solve the rest of the problem.\n"
    "First think it through as an inner monologue inside <think> ... </think>. The monologue "
    "can be as casual and as long as you want. After </think>, write the next step itself, "
    "and nothing else."
)

SRL_USER = (
    "Problem:\n{problem}\n\n"
    "Solution so far:\n{context}\n\n"
    "Write step {step_number}."
)

SRL_USER_HINT = (
    "Problem:\n{problem}\n\n"
    "Solution so far:\n{context}\n\n"
    "Write step {step_number}: **{title}**"
)

AGENT_SYSTEM = (
    "You are a software engineering agent working on the issue below. You are shown the issue "
    "and your most recent actions with their observations. Think inside <think> ... </think> as "
    "long as you want, then write only your next action: one tool call or command."
)

RLVR_SYSTEM = (
    "You are a helpful assistant for solving math problems. Think step by step; you may think "
    "inside <think> ... </think>. Put the final answer in \\boxed{{}}."
)

RLVR_USER = "{problem}"

NO_CONTEXT = "(no steps yet)"


@dataclass(frozen=True)
class Templates:
    srl_system: str = SRL_SYSTEM
    srl_user: str = SRL_USER
    srl_user_hint: str = SRL_USER_HINT
    agent_system: str = AGENT_SYSTEM
    rlvr_system: str = RLVR_SYSTEM
    rlvr_user: str = RLVR_USER

    @classmethod
    def load(cls, path: str | Path | None) -> Templates:
        if not path:
            return cls()
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"template file '{path}' not found")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"template file '{path}' is not UTF-8 text; give a TOML template file") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"template file '{path}' is not valid TOML: {e}") from None
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"template file '{path}' has unknown keys {unknown}; known: {sorted(known)}")
        for key, text in data.items():
            _check_fields(path, key, str(text))
        return replace(cls(), **{k: str(v) for k, v in data.items()})


# The placeholders each template is formatted with (any other `{name}` would fail at render time).
_FIELDS = {"rlvr_system": ("problem",), "rlvr_user": ("problem",)}
_SRL_FIELDS = ("problem", "context", "step_number", "title")


def _check_fields(path: str | Path, key: str, text: str) -> None:
    """A one-line ConfigError for a placeholder the template is not given, or a stray `{` / `}`."""
    import string

    allowed = _FIELDS.get(key, _SRL_FIELDS)
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as e:
        raise ConfigError(f"template file '{path}': {key} is not a valid template ({e}); write a literal brace "
                          "as {{ or }}") from None
    for name in names:
        if name not in allowed:
            raise ConfigError(f"template file '{path}': {key} uses {{{name}}}, which it is not given; "
                              f"placeholders: {', '.join('{' + a + '}' for a in allowed)} (a literal brace is {{{{ or }}}})")


def format_context(steps: list[str], start: int = 1) -> str:
    """Number the expert steps shown as context.

    >>> format_context(["Let x = 2.", "Then y = 4."])
    '1. Let x = 2.\\n2. Then y = 4.'
    """
    if not steps:
        return NO_CONTEXT
    return "\n".join(f"{i}. {s}" for i, s in enumerate(steps, start))


def srl_prompt(
    problem: str,
    context: list[str],
    step_number: int,
    title: str | None = None,
    *,
    templates: Templates = Templates(),
    agent: bool = False,
) -> list[dict[str, str]]:
    """The chat messages for one SRL instance (system + user)."""
    return srl_messages(problem, format_context(context), step_number, title, templates=templates, agent=agent)


def srl_messages(
    problem: str,
    context_text: str,
    step_number: int,
    title: str | None = None,
    *,
    templates: Templates = Templates(),
    agent: bool = False,
) -> list[dict[str, str]]:
    """`srl_prompt` with the context already formatted (decompose builds it incrementally)."""
    user_t = templates.srl_user_hint if title else templates.srl_user
    user = user_t.format(problem=problem, context=context_text or NO_CONTEXT, step_number=step_number,
                         title=title or "")
    system = templates.agent_system if agent else templates.srl_system
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def rlvr_prompt(problem: str, *, templates: Templates = Templates()) -> list[dict[str, str]]:
    """The chat messages asking for a full solution with the answer in \\boxed{}."""
    return [
        {"role": "system", "content": templates.rlvr_system.format(problem=problem)},
        {"role": "user", "content": templates.rlvr_user.format(problem=problem)},
    ]
