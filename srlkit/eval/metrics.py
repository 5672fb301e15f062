"""Evaluation metrics as small pure functions (no torch).

- `pass_at_k(n, c, k)`: the unbiased estimator 1 - C(n-c, k) / C(n, k) (Chen et al. 2021),
  computed as a product so it never builds huge binomials.
- `avg_at_k`, `greedy_accuracy`: plain means over problems.
- `bootstrap_ci`: a seeded percentile bootstrap over *problems* (samples of one problem are
  correlated, so problems are the unit that is resampled).
- `think_stats`: how many `<think>` blocks a completion has and where they sit. The paper
  reports that SRL-trained models interleave planning blocks with the solution instead of one
  leading monologue; this is the number that shows it.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn from n (c correct) is correct.

    >>> pass_at_k(4, 0, 1), pass_at_k(4, 4, 2), pass_at_k(4, 1, 1), round(pass_at_k(4, 1, 2), 4)
    (0.0, 1.0, 0.25, 0.5)
    """
    if n < 1 or k < 1 or k > n:
        raise ValueError(f"pass@k needs 1 <= k <= n, got n={n}, k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n, got c={c}, n={n}")
    if n - c < k:  # every k-subset contains a correct sample
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    miss = 1.0
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss


def mean(xs: Sequence[float]) -> float:
    return float(sum(xs) / len(xs)) if xs else 0.0


def avg_at_k(correct: Sequence[Sequence[bool]]) -> float:
    """Mean over problems of the fraction of that problem's samples that are correct."""
    return mean([mean([float(x) for x in row]) for row in correct])


def pass_at_k_mean(correct: Sequence[Sequence[bool]], k: int) -> float:
    """pass@k averaged over problems (each problem has n >= k samples)."""
    return mean([pass_at_k(len(row), sum(bool(x) for x in row), k) for row in correct])


def greedy_accuracy(correct: Sequence[bool]) -> float:
    return mean([float(x) for x in correct])


def bootstrap_ci(
    scores: Sequence[float], *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of per-problem scores; same seed, same interval.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    if not scores:
        return (0.0, 0.0)
    if n_boot < 1:
        m = mean(scores)
        return (m, m)
    rng = random.Random(seed)
    n = len(scores)
    vals = list(scores)
    means = sorted(sum(vals[rng.randrange(n)] for _ in range(n)) / n for _ in range(n_boot))
    lo_i = int((alpha / 2) * (n_boot - 1) + 0.5)
    hi_i = int((1 - alpha / 2) * (n_boot - 1) + 0.5)
    return (float(means[lo_i]), float(means[hi_i]))


def paired_bootstrap_ci(
    a: Sequence[float], b: Sequence[float], *, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap CI of mean(b - a) over the same problems, resampled in pairs (two
    models on one bench: far tighter than comparing their separate intervals).

    >>> paired_bootstrap_ci([0, 0, 1, 1], [1, 1, 1, 1])
    (0.0, 1.0)
    >>> paired_bootstrap_ci([0, 1], [0, 1])
    (0.0, 0.0)
    """
    if len(a) != len(b):
        raise ValueError(f"paired scores differ in length: {len(a)} and {len(b)}")
    return bootstrap_ci([float(y) - float(x) for x, y in zip(a, b)], n_boot=n_boot, alpha=alpha, seed=seed)


# --------------------------------------------------------------------------- think blocks

_BLOCK = re.compile(re.escape(THINK_OPEN) + r"(.*?)(?:" + re.escape(THINK_CLOSE) + r"|\Z)", re.S)


def think_blocks(text: str) -> list[str]:
    """Place of each `<think>` block: 'leading', 'interleaved' or 'trailing'.

    A block is leading when only whitespace precedes it, trailing when only whitespace
    follows it (and something precedes it), interleaved otherwise. An unclosed block runs
    to the end of the text.

    >>> think_blocks("<think>a</think> x = 1 <think>check</think> so 2")
    ['leading', 'interleaved']
    >>> think_blocks("answer 2 <think>sure?</think>"), think_blocks("no blocks")
    (['trailing'], [])
    """
    places = []
    for m in _BLOCK.finditer(text):
        before = text[: m.start()].strip()
        after = text[m.end():].strip()
        if not before:
            places.append("leading")
        elif not after:
            places.append("trailing")
        else:
            places.append("interleaved")
    return places


def think_stats(texts: Sequence[str]) -> dict[str, float]:
    """Block counts and placement over many completions.

    `blocks_mean`: blocks per completion; `with_think`: share of completions with any block;
    `multi_think`: share with two or more; `leading/interleaved/trailing`: share of blocks.
    """
    per = [think_blocks(t) for t in texts]
    blocks = [p for ps in per for p in ps]
    nb = len(blocks)
    out = {
        "blocks_mean": mean([len(ps) for ps in per]),
        "with_think": mean([float(bool(ps)) for ps in per]),
        "multi_think": mean([float(len(ps) > 1) for ps in per]),
    }
    for place in ("leading", "interleaved", "trailing"):
        out[place] = (sum(p == place for p in blocks) / nb) if nb else 0.0
    return out
