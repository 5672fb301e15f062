"""The paper's SRL reward: `difflib.SequenceMatcher` ratio between the action and the expert step.

R = 2M/T, where T is the total length of both strings and M the summed length of the
matching blocks. Two choices the paper leaves open are made explicit here:

- **order** (`"action_target"`, default): the action is `a`, the expert step is `b`.
  SequenceMatcher is not symmetric, since its longest-match search indexes `b`. With the expert
  as `b`, the index is built once per prompt group and reused for all G rollouts.
  `"target_action"` swaps them.
- **autojunk** (`False`, default): with autojunk on, difflib treats every character that
  fills more than 1% of a `b` of 200+ characters as junk. On text this means spaces and
  common letters, so the score drops abruptly once the expert step passes 200 characters.
  On CHAMP steps against an expert step of more than 250 characters, partial credit for a
  related but different step falls by more than 30%
  (`tests/rewards/test_similarity.py::test_autojunk_off_by_default_and_why`).
  Pass `autojunk=True` to get the behaviour of a bare `SequenceMatcher(None, a, b)`.

Fast paths, both bit-identical to difflib (`tests/rewards/test_similarity.py` checks that with
property tests against `difflib` itself):
- autojunk off (the default): `difflib_fast.ratio`, a Rust reimplementation of the
  Ratcliff-Obershelp matching blocks (longest common substring by suffix automaton, with
  difflib's tie-break), ~40x difflib on 450-character steps;
- autojunk on, or without `difflib-fast` installed: cdifflib's C longest-match search, with
  the `b` index reused for rollouts of the same step (~2.5-3x).
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field

from srlkit.errors import ConfigError
from srlkit.rewards.base import Reward, RewardParams, register
from srlkit.rewards.parse import MISSING_THINK, parse_completion

Order = Literal["action_target", "target_action"]

try:  # an optional C extension; the reward stays exact without it, only slower
    import _cdifflib
    from cdifflib import CSequenceMatcher as _FastMatcher
except ImportError:  # pragma: no cover - cdifflib is a declared dependency
    _FastMatcher = None

try:  # exact Ratcliff-Obershelp in Rust, for autojunk=False only (it never applies autojunk)
    from difflib_fast import ratio as _rust_ratio
except ImportError:  # pragma: no cover - optional; cdifflib is the exact fallback
    _rust_ratio = None


def ratio(a: str, b: str, *, autojunk: bool = False) -> float:
    """Plain difflib: the reference every fast path must match bit for bit.

    >>> ratio("x = 2", "x = 3")
    0.8
    """
    return difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio()


def batch_ratios(pairs: Sequence[tuple[str, str]], *, autojunk: bool = False, fast: bool = True) -> list[float]:
    """`ratio(a, b)` for every pair; the fast path reuses the `b` index across equal `b`s.

    >>> batch_ratios([("x = 2", "x = 3"), ("abc", "abc")])
    [0.8, 1.0]
    """
    if fast and not autojunk and _rust_ratio is not None:
        return [_rust_ratio(a, b) for a, b in pairs]
    if not fast or _FastMatcher is None:
        return [ratio(a, b, autojunk=autojunk) for a, b in pairs]
    out: list[float] = []
    matcher = None
    last_b: str | None = None
    for a, b in pairs:
        if not autojunk and a == b:
            # Without autojunk, equal strings match in full: 2n/2n is exactly 1.0 in difflib too.
            # (With autojunk this shortcut is left to difflib's own search, to stay exact.)
            out.append(1.0)
            continue
        if matcher is None or b != last_b:
            matcher = _FastMatcher(None, "", b, autojunk=autojunk)
            last_b = b
        # What `set_seq1` + `ratio()` do, minus per-call Python overhead: the C
        # matching-block search reads `matcher.a` as a list; M and T are combined
        # exactly as difflib's `_calculate_ratio` does.
        matcher.a = list(a)
        matches = sum(block[2] for block in _cdifflib.matching_blocks(matcher))
        total = len(a) + len(b)
        out.append(2.0 * matches / total if total else 1.0)
    return out


def _ratios_chunk(args: tuple[list[tuple[str, str]], bool]) -> list[float]:
    pairs, autojunk = args
    return batch_ratios(pairs, autojunk=autojunk, fast=True)


class RatioPool:
    """`batch_ratios` over worker processes, for big batches of long steps.

    Pairs are cut into contiguous chunks, so rollouts of one step stay together and
    keep the index reuse. The values are the same floats: each worker runs `batch_ratios`.
    """

    def __init__(self, workers: int) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        try:
            ctx = mp.get_context("forkserver")  # no fork of a process that holds torch threads
        except ValueError:  # pragma: no cover
            ctx = mp.get_context("spawn")
        self.ex = ProcessPoolExecutor(workers, mp_context=ctx)

    def __call__(self, pairs: Sequence[tuple[str, str]], autojunk: bool) -> list[float]:
        size = max(64, -(-len(pairs) // (self.workers * 4)))
        chunks = [(list(pairs[i:i + size]), autojunk) for i in range(0, len(pairs), size)]
        return [v for part in self.ex.map(_ratios_chunk, chunks) for v in part]

    def close(self) -> None:
        self.ex.shutdown(cancel_futures=True)


class StepSimilarity(Reward):
    """Reward = difflib ratio of the parsed action vs `row["target"]`; `penalty` on format failure."""

    def __init__(self, penalty: float, order: Order, autojunk: bool, fast: bool, prefilled_think: bool,
                 workers: int = 0, lenient: bool = False) -> None:
        super().__init__()
        self.pool = RatioPool(workers) if workers > 1 and fast else None
        if order not in ("action_target", "target_action"):
            raise ConfigError(f"step_similarity: order must be 'action_target' or 'target_action', not {order!r}")
        self.penalty, self.order, self.autojunk = float(penalty), order, bool(autojunk)
        self.fast, self.prefilled_think = bool(fast), bool(prefilled_think)
        self.lenient = bool(lenient)

    def _pairs(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> tuple[list[tuple[str, str]], list[int]]:
        """(action, target) pairs of the well-formed completions and their indices; counts failures."""
        pairs: list[tuple[str, str]] = []
        where: list[int] = []
        reasons: Counter[str] = Counter()
        for i, (text, row) in enumerate(zip(completions, rows, strict=True)):
            parsed = parse_completion(text, prefilled_think=self.prefilled_think)
            action = parsed.action
            if parsed.failure:
                reasons[parsed.failure] += 1
                if not (self.lenient and parsed.failure == MISSING_THINK and text.strip()):
                    continue
                action = text.strip()  # lenient: no think block at all -> the whole text is the action
            pairs.append((action, str(row["target"])))
            where.append(i)
        self.last_stats = {"format_failures": float(sum(reasons.values()))}
        self.last_stats.update({f"format/{k}": float(n) for k, n in sorted(reasons.items())})
        return pairs, where

    def _values(self, pairs: list[tuple[str, str]]) -> list[float]:
        if self.order == "target_action":  # the index lives on the action, so reuse rarely applies
            pairs = [(t, a) for a, t in pairs]
        # the Rust path outruns the pool's pickling on its own; the pool helps only cdifflib
        if self.pool is not None and len(pairs) >= 256 and (self.autojunk or _rust_ratio is None):
            return self.pool(pairs, self.autojunk)
        return batch_ratios(pairs, autojunk=self.autojunk, fast=self.fast)

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float]:
        values: list[float] = [self.penalty] * len(completions)
        pairs, where = self._pairs(completions, rows)
        for i, v in zip(where, self._values(pairs), strict=True):
            values[i] = v
        return values

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
            self.pool = None


class StepSimilarityParams(RewardParams):
    penalty: float = -1.0  # the value of a format failure
    order: Order = "action_target"
    autojunk: bool = False
    fast: bool = True
    prefilled_think: bool = False
    workers: int = Field(0, ge=0)
    lenient: bool = False


@register("step_similarity", params=StepSimilarityParams)
def step_similarity(
    penalty: float = -1.0,
    order: Order = "action_target",
    autojunk: bool = False,
    fast: bool = True,
    prefilled_think: bool = False,
    workers: int = 0,
    lenient: bool = False,
) -> StepSimilarity:
    """The SRL step reward: difflib 2M/T of the action vs the expert step, `penalty` on bad format.

    `workers > 1` spreads batches of 256+ pairs over that many processes (same values).
    `lenient=True` scores a completion with *no* think block as if its whole text were the
    action, instead of the penalty. It is a shaping aid for small models that have not yet
    learnt the format (the embedded CPU demo uses it); the paper's reward is the strict default.
    Format failures are still counted in `last_stats` either way.

    >>> fn = step_similarity()
    >>> fn(["<think>easy</think> x = 2", "x = 2"], [{"target": "x = 3"}] * 2)
    [0.8, -1.0]
    >>> fn.last_stats["format/missing_think"]
    1.0
    >>> step_similarity(lenient=True)(["x = 2", "<think>x = 2"], [{"target": "x = 3"}] * 2)
    [0.8, -1.0]
    """
    return StepSimilarity(penalty, order, autojunk, fast, prefilled_think, int(workers), bool(lenient))


class StepExact(StepSimilarity):
    """1 when the parsed action equals the expert step (whitespace at the ends aside), else 0."""

    def _values(self, pairs: list[tuple[str, str]]) -> list[float]:
        return [float(a.strip() == t.strip()) for a, t in pairs]


class StepExactParams(RewardParams):
    penalty: float = 0.0  # the value of a format failure
    prefilled_think: bool = False
    lenient: bool = False


@register("step_exact", params=StepExactParams)
def step_exact(penalty: float = 0.0, prefilled_think: bool = False, lenient: bool = False) -> StepExact:
    """Exact-step match: 1 when the action is the expert's next step, else 0 (`penalty` on bad format).

    A sparse companion to `step_similarity`: difflib pays a near miss (`197 + 42 = 233` for
    `239`) or an echo of the whole expression almost as well as the right step, so a mixture
    such as `[{name = "step_similarity", weight = 0.5}, {name = "step_exact", weight = 0.5}]`
    makes a correct step clearly worth more than a close one. Same parsing as `step_similarity`.

    >>> step_exact(lenient=True)(["3 + 4 = 7", "3 + 4 = 8", "<think>x"], [{"target": "3 + 4 = 7 "}] * 3)
    [1.0, 0.0, 0.0]
    """
    return StepExact(penalty, "action_target", False, True, prefilled_think, 0, bool(lenient))
