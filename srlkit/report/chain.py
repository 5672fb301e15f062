"""What each phase of a curriculum added, said plainly: the demo's last line and the report's table.

Two sources, both on problems the run never trained on:
- held-out eval (`eval/results.json` and its `.samples.jsonl`), when the eval scored the end of
  each phase (`srlkit run` evaluates `base`, each earlier phase's `final/` and the run's final):
  the change from one phase's end to the next phase's end, with a paired bootstrap 95% CI
  over the same problems;
- validation during training (`eval.jsonl`): whole-solution accuracy on the same validation
  problems at each phase's start and end (`val/solve_accuracy`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srlkit.eval.metrics import paired_bootstrap_ci


def phase_label(name: str) -> str:
    """An eval label for a phase's `final/` (labels start with a letter; base/trained are taken)."""
    return name if name[:1].isalpha() and name not in ("base", "trained") else f"phase-{name}"


def _greedy(samples: Path) -> dict[tuple[str, str], dict[str, float]]:
    """(model, bench) -> {problem id: 1.0 if greedy correct else 0.0}."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    if not samples.is_file():
        return out
    for line in samples.read_text(encoding="utf-8").splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(r, dict) and {"model", "bench", "id", "greedy_correct"} <= r.keys():
            out.setdefault((r["model"], r["bench"]), {})[str(r["id"])] = float(bool(r["greedy_correct"]))
    return out


def phase_gain(results: Path, before: str, after: str, *, n_boot: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """Per bench: greedy accuracy of `before` and `after` and the paired CI of the change."""
    per = _greedy(results.with_name(results.stem + ".samples.jsonl"))
    out = []
    for (model, bench), a in per.items():
        if model != before or (after, bench) not in per:
            continue
        b = per[(after, bench)]
        ids = sorted(set(a) & set(b))
        if not ids:
            continue
        xa, xb = [a[i] for i in ids], [b[i] for i in ids]
        lo, hi = paired_bootstrap_ci(xa, xb, n_boot=n_boot, seed=seed)
        out.append({"bench": bench, "n": len(ids), "before": sum(xa) / len(ids), "after": sum(xb) / len(ids),
                    "delta": (sum(xb) - sum(xa)) / len(ids), "ci": (lo, hi)})
    return out


def gain_line(g: dict[str, Any], before: str, after: str) -> str:
    """One sentence: added (CI above 0), lost (CI below 0), or no change shown (CI spans 0).

    >>> gain_line({"bench": "b", "n": 300, "before": .18, "after": .24, "delta": .06, "ci": (.02, .1)}, "srl", "rlvr")
    'RLVR added 6.0 points over the end of SRL [2.0, 10.0] (b, n=300, paired 95% CI: 18.0% -> 24.0%)'
    >>> gain_line({"bench": "b", "n": 300, "before": .18, "after": .17, "delta": -.01, "ci": (-.05, .03)}, "srl", "rlvr")[:64]
    'RLVR did NOT add over the end of SRL: -1.0 points [-5.0, 3.0], t'
    """
    lo, hi = (100 * x for x in g["ci"])
    d = 100 * g["delta"]
    tail = f"({g['bench']}, n={g['n']}, paired 95% CI: {100 * g['before']:.1f}% -> {100 * g['after']:.1f}%)"
    a, b = after.upper(), before.upper()
    if lo > 0:
        return f"{a} added {d:.1f} points over the end of {b} [{lo:.1f}, {hi:.1f}] {tail}"
    if hi < 0:
        return f"{a} LOST {-d:.1f} points against the end of {b} [{lo:.1f}, {hi:.1f}] {tail}"
    return (f"{a} did NOT add over the end of {b}: {d:+.1f} points [{lo:.1f}, {hi:.1f}], the CI includes 0 {tail}")


def validation_table(val_rows: list[dict[str, Any]], key: str = "val/solve_accuracy") -> str:
    """Markdown: per phase, `key` at its first and last validation (the same problems throughout)."""
    phases: dict[str, list[dict[str, Any]]] = {}
    for r in val_rows:
        if key in r and "phase" in r:
            phases.setdefault(str(r["phase"]), []).append(r)
    if not phases:
        return ""
    lines = ["| phase | steps | at its start | at its end | change |", "|---|---|---|---|---|"]
    for name, rows in phases.items():
        rows = sorted(rows, key=lambda r: r.get("step", 0))
        first, last = rows[0], rows[-1]
        lines.append(f"| {name} | {first.get('step', 0)}..{last.get('step', 0)} | {100 * first[key]:.1f}% | "
                     f"{100 * last[key]:.1f}% | {100 * (last[key] - first[key]):+.1f} points |")
    return "\n".join(lines)
