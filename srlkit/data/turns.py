"""The `turns` strategy: agent trajectories in chat format.

A step is one assistant turn. Its *action* is only the tool call (OpenAI `tool_calls`
or `function_call`), else the last fenced code block, else the whole turn (a final
message). The prose around it is the monologue, which is never a target. The messages
after a turn up to the next assistant turn (tool / user / observation) are its
observation. The context of step k is the issue (first user message) plus the last
`history` action/observation pairs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.S)
_FUNC = re.compile(r"<function=.*?</function>", re.S)  # SWE-agent / OpenHands text tool calls
OBS_MAX = 2000  # observations can be whole files; keep their head in the context


@dataclass
class Turn:
    action: str
    monologue: str
    observation: str


def _text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return str(content)


def _call(c: dict) -> str:
    fn = c.get("function", c) if isinstance(c, dict) else {}
    name = fn.get("name", "tool")
    args = fn.get("arguments", "")
    if not isinstance(args, str):
        args = json.dumps(args, sort_keys=True, ensure_ascii=False)
    return f"{name}({args})"


def split_turn(msg: dict) -> tuple[str, str]:
    """(action, monologue) of one assistant message.

    >>> split_turn({"role": "assistant", "content": "Look first.\\n```bash\\nls\\n```"})
    ('ls', 'Look first.')
    """
    content = _text(msg.get("content"))
    calls = msg.get("tool_calls") or ([msg["function_call"]] if msg.get("function_call") else [])
    if calls:
        return "\n".join(_call(c) for c in calls), content.strip()
    funcs = _FUNC.findall(content)
    if funcs:
        return funcs[-1].strip(), _FUNC.sub("", content).strip()
    fences = list(_FENCE.finditer(content))
    if fences:
        last = fences[-1]
        return last.group(1).strip(), (content[: last.start()] + content[last.end() :]).strip()
    return content.strip(), ""


def turns(messages: list[dict]) -> list[Turn]:
    """The assistant turns of a chat trajectory, each with the observation that followed it."""
    out: list[Turn] = []
    for msg in messages:
        role = msg.get("role")
        if role == "assistant":
            action, mono = split_turn(msg)
            out.append(Turn(action, mono, ""))
        elif out and role in ("tool", "user", "ipython", "observation", "function"):
            obs = _text(msg.get("content")).strip()
            out[-1].observation = f"{out[-1].observation}\n{obs}".strip()
    return [t for t in out if t.action]


def has_tool_calls(messages: list[dict]) -> bool:
    return any(m.get("role") == "assistant" and (m.get("tool_calls") or m.get("function_call"))
               for m in messages if isinstance(m, dict))


def last_assistant_text(messages: list[dict]) -> str:
    texts = [_text(m.get("content")) for m in messages if m.get("role") == "assistant"]
    return texts[-1] if texts else ""


def context_entries(ts: list[Turn], k: int, history: int) -> list[str]:
    """The last `history` action/observation pairs before turn k."""
    lo = max(0, k - history)
    return [f"Action: {t.action}\nObservation: {t.observation[:OBS_MAX] or '(none)'}" for t in ts[lo:k]]
