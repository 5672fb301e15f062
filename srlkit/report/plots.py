"""PNG plots of a training run and of eval results (matplotlib, Agg: no display needed).

Each function takes plain data (metric rows as written to `metrics.jsonl`, a results dict
as written by `srlkit eval`) and a path, writes one PNG and returns the path, or None when
the data has nothing to draw (a run without the metric, an eval without samples).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from srlkit.plotting import pyplot, save_png

Row = dict[str, Any]
TIME_KEYS = ("time/generate", "time/reward", "time/update")


def by_phase(rows: list[Row]) -> dict[str, list[Row]]:
    """Metric rows grouped by phase, in the order the phases ran."""
    out: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        out[str(r.get("phase", "?"))].append(r)
    return dict(out)


def _x(r: Row) -> float:
    return float(r.get("global_step", r.get("step", 0)))


def _series(rows: list[Row], key: str) -> tuple[list[float], list[float]]:
    pts = [(_x(r), float(r[key])) for r in rows if isinstance(r.get(key), (int, float))]
    return [p[0] for p in pts], [p[1] for p in pts]


def reward_components(rows: list[Row]) -> list[str]:
    """`reward/<name>` keys other than the summary statistics, sorted."""
    keys = {k for r in rows for k in r if k.startswith("reward/")}
    return sorted(keys - {"reward/mean", "reward/std", "reward/group_std"})


def plot_rewards(rows: list[Row], path: Path, val_rows: list[Row] | None = None) -> Path | None:
    """One panel per phase: mean reward (with ±std band), each component, validation points."""
    phases = by_phase(rows)
    if not phases:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(phases), figsize=(5 * len(phases), 3.6), squeeze=False)
    for ax, (phase, prs) in zip(axes[0], phases.items()):
        x, y = _series(prs, "reward/mean")
        if x:
            ax.plot(x, y, label="reward/mean", color="black", lw=2)
            _, sd = _series(prs, "reward/std")
            if len(sd) == len(y):
                ax.fill_between(x, [a - b for a, b in zip(y, sd)], [a + b for a, b in zip(y, sd)],
                                color="grey", alpha=0.2, label="±std")
        for key in reward_components(prs):
            cx, cy = _series(prs, key)
            if cx:
                ax.plot(cx, cy, label=key, lw=1)
        vals = [v for v in (val_rows or []) if str(v.get("phase")) == phase]
        vx, vy = _series(vals, "val/reward_mean")
        if vx:
            ax.plot(vx, vy, "o--", label="validation", color="tab:red")
        ax.set_title(f"{phase}: reward")
        ax.set_xlabel("global step")
        ax.legend(fontsize=7)
    return save_png(fig, path)


def plot_lines(rows: list[Row], keys: list[str], path: Path, title: str) -> Path | None:
    """One panel per key, one line per phase."""
    keys = [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in rows)]
    if not keys:
        return None
    plt = pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.3), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for phase, prs in by_phase(rows).items():
            x, y = _series(prs, key)
            if x:
                ax.plot(x, y, "o-", ms=3, label=phase)
        ax.set_title(key)
        ax.set_xlabel("global step")
        ax.legend(fontsize=7)
    fig.suptitle(title)
    return save_png(fig, path)


def time_split(rows: list[Row]) -> dict[str, dict[str, float]]:
    """Seconds spent in generate / reward / update, summed per phase."""
    out: dict[str, dict[str, float]] = {}
    for phase, prs in by_phase(rows).items():
        out[phase] = {k.split("/")[1]: sum(float(r.get(k) or 0.0) for r in prs) for k in TIME_KEYS}
    return out


def plot_time_split(rows: list[Row], path: Path) -> Path | None:
    """Stacked horizontal bars: where each phase's wall time went."""
    split = time_split(rows)
    if not split or not any(sum(v.values()) for v in split.values()):
        return None
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 0.8 + 0.6 * len(split)))
    phases = list(split)
    left = [0.0] * len(phases)
    for part in ("generate", "reward", "update"):
        vals = [split[p][part] for p in phases]
        ax.barh(phases, vals, left=left, label=part)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("seconds")
    ax.set_title("time split per phase")
    ax.legend(fontsize=7, loc="lower right")
    return save_png(fig, path)


def plot_eval(summary: dict[str, Any], path: Path) -> Path | None:
    """Grouped bars per bench: each model's greedy accuracy and avg@k with 95% CI whiskers."""
    results = summary.get("results") or {}
    if not results:
        return None
    k = summary.get("config", {}).get("k", 0)
    models = list(results)
    benches = sorted({b for r in results.values() for b in r})
    metrics = [("greedy_acc", "greedy_ci", "greedy")] + ([(f"avg@{k}", "avg_ci", f"avg@{k}")] if k else [])
    plt = pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(max(5, 1.4 * len(models) * len(benches)) * len(metrics) / 1.3, 3.8),
                             squeeze=False)
    width = 0.8 / len(models)
    for ax, (key, ci_key, title) in zip(axes[0], metrics):
        for j, m in enumerate(models):
            xs, ys, lo, hi = [], [], [], []
            for i, b in enumerate(benches):
                r = results[m].get(b)
                if r is None or key not in r:
                    continue
                v = 100 * r[key]
                ci = r.get(ci_key) or [r[key], r[key]]
                xs.append(i + (j - (len(models) - 1) / 2) * width)
                ys.append(v)
                lo.append(max(0.0, v - 100 * ci[0]))
                hi.append(max(0.0, 100 * ci[1] - v))
            ax.bar(xs, ys, width=width, yerr=[lo, hi], capsize=3, label=m)
        ax.set_xticks(range(len(benches)), benches)
        ax.set_ylabel("% correct")
        ax.set_ylim(0, 100)  # accuracies: a fixed scale keeps all-zero results readable
        ax.set_title(f"{title} (95% bootstrap CI)")
        ax.legend(fontsize=7)
    return save_png(fig, path)
