"""The RLVR reward: extract the final answer and verify it against the gold answer with math-verify.

Values are 1.0 (correct), 0.0 (wrong) or `penalty` (no answer could be extracted; the
parameter was called `format_penalty` before, a name that is now an error saying so).
A check that reaches no verdict (a timeout, an unparsable gold answer, an exception in
math-verify) gets `error_value`, is counted in `last_stats["scoring_errors"]` and logged.
It is never silently turned into a plain 0. The checks run in `VerifyPool` worker processes,
so this works from any thread and every item has a hard time limit.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from srlkit.rewards.extract import extract_answer
from pydantic import Field

from srlkit.rewards.base import Reward, RewardParams, register
from srlkit.rewards.verify_pool import Outcome, VerifyPool

log = logging.getLogger(__name__)
CACHE_SIZE = 50_000


_E_NOTATION = re.compile(r"^\$?\s*([+-]?(?:\d+\.?\d*|\.\d+))\s*[eE]\s*([+-]?\d+)\s*\$?$")


def as_latex(answer: str) -> str:
    r"""Wrap a bare answer in `$...$` so math-verify's LaTeX extractor reads it.

    An escaped dollar (`\\$5`, a currency sign) is dropped, and e-notation becomes a power of
    ten: LaTeX reads the `e` of `7.7e-8` as Euler's number.

    >>> as_latex("\\frac{1}{2}"), as_latex("$3$"), as_latex("7.7e-8"), as_latex("\\$5")
    ('$\\frac{1}{2}$', '$3$', '$7.7\\times 10^{-8}$', '$5$')
    """
    a = answer.strip()
    if "\\$" in a:
        a = a.replace("\\$", "").strip()
    m = _E_NOTATION.match(a)
    if m:
        exp = int(m.group(2))
        return f"${m.group(1)}\\times 10^{{{exp}}}$"
    return a if "$" in a or "\\boxed" in a else f"${a}$"


class MathReward(Reward):
    def __init__(
        self, penalty: float, error_value: float, timeout: float, workers: int,
        max_answer_chars: int, answer_key: str,
    ) -> None:
        super().__init__()
        self.penalty, self.error_value = float(penalty), float(error_value)
        self.max_answer_chars, self.answer_key = int(max_answer_chars), answer_key
        self.pool = VerifyPool(workers=workers, timeout=timeout)
        # (gold, pred) -> Outcome. G rollouts often repeat an answer, and epochs repeat problems.
        self._cache: OrderedDict[tuple[str, str], Outcome] = OrderedDict()

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float]:
        values = [self.penalty] * len(completions)
        stats: Counter[str] = Counter()
        todo: dict[tuple[str, str], list[int]] = {}
        for i, (text, row) in enumerate(zip(completions, rows, strict=True)):
            gold = row.get(self.answer_key)
            if gold is None or not str(gold).strip():
                stats["scoring_errors"] += 1
                stats["errors/no_gold"] += 1
                values[i] = self.error_value
                continue
            pred = extract_answer(text)
            if pred is None:
                stats["format_failures"] += 1
                stats["format/no_answer"] += 1
                continue
            if len(pred) > self.max_answer_chars:
                stats["format_failures"] += 1
                stats["format/answer_too_long"] += 1
                continue
            todo.setdefault((as_latex(str(gold)), as_latex(pred)), []).append(i)
        cached = {k: self._cache[k] for k in todo if k in self._cache}
        fresh_keys = [k for k in todo if k not in cached]
        fresh = dict(zip(fresh_keys, self.pool.check(fresh_keys), strict=True))
        for key, out in fresh.items():
            if out.error != "timeout":  # a timeout may be machine load: let a later batch retry
                self._remember(key, out)
        for key, idx in todo.items():
            out = cached.get(key) or fresh[key]
            for i in idx:
                values[i] = self._value(out, stats, key)
        stats["correct"] = float(sum(v == 1.0 for v in values))
        self.last_stats = {"format_failures": 0.0, "scoring_errors": 0.0, **{k: float(v) for k, v in stats.items()}}
        return values

    def _value(self, out: Outcome, stats: Counter[str], key: tuple[str, str]) -> float:
        if out.correct is None:
            stats["scoring_errors"] += 1
            reason = out.error if out.error in ("timeout", "gold_unparsable", "worker_died") else "exception"
            stats[f"errors/{reason}"] += 1
            log.warning("math reward: no verdict (%s) for gold %.80r vs answer %.80r", out.error, key[0], key[1])
            return self.error_value
        return 1.0 if out.correct else 0.0

    def _remember(self, key: tuple[str, str], out: Outcome) -> None:
        self._cache[key] = out
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)

    def close(self) -> None:
        self.pool.close()


class MathParams(RewardParams):
    renamed: ClassVar[dict[str, str]] = {"format_penalty": "penalty"}

    penalty: float = 0.0  # no answer could be extracted
    error_value: float = 0.0  # no verdict (timeout, unparsable gold)
    timeout: float = Field(5.0, gt=0)
    workers: int = Field(1, ge=1)
    max_answer_chars: int = Field(2_000, ge=1)
    answer_key: str = "answer"


@register("math", params=MathParams)
def math_reward(
    penalty: float = 0.0,
    error_value: float = 0.0,
    timeout: float = 5.0,
    workers: int = 1,
    max_answer_chars: int = 2_000,
    answer_key: str = "answer",
) -> MathReward:
    """Verified final answer: 1 if math-verify says it equals `row["answer"]`, else 0.

    `timeout` is a hard per-answer limit in seconds (worker processes; safe from any thread).

    >>> fn = math_reward()
    >>> fn(["so \\\\boxed{\\\\frac{1}{2}}", "#### 3", "no idea"], [{"answer": "0.5"}, {"answer": "4"}, {"answer": "1"}])
    [1.0, 0.0, 0.0]
    >>> fn.last_stats["format_failures"], fn.last_stats["scoring_errors"]
    (1.0, 0.0)
    >>> fn.close()
    """
    return MathReward(penalty, error_value, timeout, workers, max_answer_chars, answer_key)
