"""Agent-action reward: compare the normalised tool call (name + canonical JSON arguments).

Actions come in several spellings (see `srlkit.data.turns`): `name({"k": 1})`, a JSON object
`{"name": ..., "arguments": ...}` (optionally inside `<tool_call>`), an OpenAI-style
`{"function": {"name", "arguments": "<json string>"}}`, SWE-agent's
`<function=name><parameter=k>v</parameter></function>`, or a plain shell command.
All become `name` + JSON with sorted keys and no spaces, so key order and whitespace
never cost reward. Plain commands are compared with whitespace collapsed.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from srlkit.rewards.base import Reward, RewardParams, register
from srlkit.rewards.parse import parse_completion
from srlkit.rewards.similarity import ratio

_CALL = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*\((.*)\)\s*$", re.S)
_FUNC = re.compile(r"<function=([^>\s]+)>(.*?)</function>", re.S)
_PARAM = re.compile(r"<parameter=([^>\s]+)>(.*?)</parameter>", re.S)
_TOOL_TAG = re.compile(r"</?tool_call>")


def _canon(args: Any) -> str:
    if isinstance(args, str):
        try:
            args = json.loads(args) if args.strip() else {}
        except json.JSONDecodeError:
            return " ".join(args.split())
    return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _from_json(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    fn = obj.get("function") if isinstance(obj.get("function"), dict) else obj
    name = fn.get("name")
    if not isinstance(name, str):
        return None
    args = next((fn[k] for k in ("arguments", "args", "parameters", "input") if k in fn), {})
    return f"{name} {_canon(args)}"


def normalize_action(text: str) -> str:
    """One canonical string per tool call (one per line), or the command with whitespace collapsed.

    >>> normalize_action('search({"q": "x",  "n": 2})')
    'search {"n":2,"q":"x"}'
    >>> normalize_action('<tool_call>{"name": "search", "arguments": "{\\\\"n\\\\": 2, \\\\"q\\\\": \\\\"x\\\\"}"}</tool_call>')
    'search {"n":2,"q":"x"}'
    >>> normalize_action("<function=bash><parameter=command>ls  -la</parameter></function>")
    'bash {"command":"ls  -la"}'
    >>> normalize_action("  grep -rn   foo src/ ")
    'grep -rn foo src/'
    """
    body = _TOOL_TAG.sub("", text).strip()
    funcs = _FUNC.findall(body)
    if funcs:
        return "\n".join(f"{n} {_canon({k: v.strip() for k, v in _PARAM.findall(b)})}" for n, b in funcs)
    try:
        as_json = _from_json(json.loads(body))
        if as_json:
            return as_json
    except json.JSONDecodeError:
        pass
    calls = []
    for line in body.splitlines() or [body]:
        m = _CALL.match(line)
        if not m:
            calls = []
            break
        calls.append(f"{m.group(1)} {_canon(m.group(2))}")
    return "\n".join(calls) if calls else " ".join(body.split())


class AgentAction(Reward):
    def __init__(self, penalty: float, partial: bool, prefilled_think: bool) -> None:
        super().__init__()
        self.penalty, self.partial, self.prefilled_think = float(penalty), bool(partial), prefilled_think

    def score(self, action: str, target: str) -> float:
        a, b = normalize_action(action), normalize_action(target)
        if a == b:
            return 1.0
        if not self.partial:
            return 0.0
        name_a, _, args_a = a.partition(" ")
        name_b, _, args_b = b.partition(" ")
        if args_a.startswith("{") and args_b.startswith("{") and name_a != name_b:
            return 0.0  # calling another tool earns nothing, however similar the arguments
        return ratio(a, b)

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float]:
        values = [self.penalty] * len(completions)
        reasons: Counter[str] = Counter()
        for i, (text, row) in enumerate(zip(completions, rows, strict=True)):
            parsed = parse_completion(text, prefilled_think=self.prefilled_think)
            if parsed.failure:
                reasons[parsed.failure] += 1
                continue
            values[i] = self.score(parsed.action, str(row["target"]))
        self.last_stats = {"format_failures": float(sum(reasons.values()))}
        self.last_stats.update({f"format/{k}": float(n) for k, n in sorted(reasons.items())})
        return values


class AgentActionParams(RewardParams):
    penalty: float = -1.0
    partial: bool = True
    prefilled_think: bool = False


@register("agent_action", params=AgentActionParams)
def agent_action(penalty: float = -1.0, partial: bool = True, prefilled_think: bool = False) -> AgentAction:
    """1.0 for the same tool call (name + canonical JSON args); partial credit by difflib ratio otherwise.

    `partial=False` makes it exact-match 1/0. A different tool name always scores 0.

    >>> fn = agent_action()
    >>> rows = [{"target": 'open({"path": "a.py", "line": 3})'}] * 3
    >>> fn(['<think>open it</think>open({"line": 3, "path": "a.py"})',
    ...     '<think>no</think>close({"line": 3, "path": "a.py"})', "open()"], rows)
    [1.0, 0.0, -1.0]
    """
    return AgentAction(penalty, partial, prefilled_think)
