"""Per-unit statistics that merge across work units (all plain JSON, order-free)."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

CHAR_BUCKETS = (32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def new_stats() -> dict:
    return {"steps": Counter(), "chars": Counter(), "char_sum": 0, "char_max": 0,
            "strategies": Counter(), "rejects": Counter(), "rlvr_rejects": Counter(), "preamble": Counter()}


_NAMES = [f"<={b}" for b in CHAR_BUCKETS] + [f">{CHAR_BUCKETS[-1]}"]


def bucket(n: int) -> str:
    """The histogram bucket of a step length: the smallest bound >= n.

    >>> bucket(1), bucket(32), bucket(33), bucket(10**6)
    ('<=32', '<=32', '<=64', '>8192')
    """
    return _NAMES[bisect_left(CHAR_BUCKETS, n)]


def add_trajectory(stats: dict, steps: list[str], strategy: str, preamble: str | None = None) -> None:
    stats["steps"][str(len(steps))] += 1
    if preamble:  # numbered text with prose before "1.": kept as a "step" or "merged" into step 1
        stats["preamble"][preamble] += 1
    stats["strategies"][strategy] += 1
    lengths = [len(s) for s in steps]
    stats["chars"].update(map(bucket, lengths))  # Counter.update runs the counting loop in C
    stats["char_sum"] += sum(lengths)
    stats["char_max"] = max(stats["char_max"], *lengths) if lengths else stats["char_max"]


def to_json(stats: dict) -> dict:
    return {k: (dict(sorted(v.items())) if isinstance(v, Counter) else v) for k, v in stats.items()}


def merge(many: list[dict]) -> dict:
    total = new_stats()
    for s in many:
        for k, v in s.items():
            if isinstance(total[k], Counter):
                total[k].update(v)
            elif k == "char_max":
                total[k] = max(total[k], v)
            else:
                total[k] += v
    return total


def summary(stats: dict) -> dict:
    """What the manifest and the card show: distributions plus a few numbers."""
    steps = {int(k): v for k, v in stats["steps"].items()}
    trajs = sum(steps.values())
    n_steps = sum(k * v for k, v in steps.items())
    order = {f"<={b}": i for i, b in enumerate(CHAR_BUCKETS)}
    chars = dict(sorted(stats["chars"].items(), key=lambda kv: order.get(kv[0], len(order))))
    return {
        "trajectories": trajs,
        "steps_total": n_steps,
        "steps_per_trajectory": {
            "min": min(steps) if steps else 0, "max": max(steps) if steps else 0,
            "mean": round(n_steps / trajs, 3) if trajs else 0.0,
            "histogram": {str(k): steps[k] for k in sorted(steps)},
        },
        "chars_per_step": {"mean": round(stats["char_sum"] / n_steps, 1) if n_steps else 0.0,
                           "max": stats["char_max"], "histogram": chars},
        "strategies": dict(sorted(stats["strategies"].items())),
        "reject_reasons": dict(sorted(stats["rejects"].items())),
        "rlvr_reject_reasons": dict(sorted(stats["rlvr_rejects"].items())),
        "preamble": dict(sorted(stats["preamble"].items())),
    }


def add_block(stats: dict, seq, lengths, strategy: str, preamble: int = 0) -> None:
    """`add_trajectory` for a whole block at once: `seq` (polars Series) names each step's trajectory,
    `lengths` is each step's length in characters; `preamble` counts the trajectories whose preamble
    was kept as a step."""
    import polars as pl

    per = pl.DataFrame({"seq": seq}).group_by("seq").len().get_column("len")
    stats["steps"].update({str(k): v for k, v in zip(*per.value_counts().to_dict(as_series=False).values())})
    if preamble:
        stats["preamble"]["step"] += preamble
    stats["strategies"][strategy] += per.len()
    idx = pl.Series(CHAR_BUCKETS).search_sorted(lengths.cast(pl.Int64), side="left")
    stats["chars"].update({_NAMES[k]: v for k, v in zip(*idx.value_counts().to_dict(as_series=False).values())})
    stats["char_sum"] += int(lengths.sum() or 0)
    if lengths.len():
        stats["char_max"] = max(stats["char_max"], int(lengths.max()))
