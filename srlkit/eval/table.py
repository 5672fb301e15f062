"""The results table: benches x metrics down, models across (rich, and Markdown for reports)."""

from __future__ import annotations

from typing import Any


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _with_ci(value: float, ci: list[float] | None) -> str:
    if not ci:
        return _pct(value)
    return f"{_pct(value)} [{_pct(ci[0])}, {_pct(ci[1])}]"


def table_rows(summary: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per bench x metric, one column per model."""
    models = list(summary["results"])
    k = summary["config"].get("k", 0)
    header = ["bench", "metric", *models]
    rows: list[list[str]] = []
    benches = list(summary.get("benches") or next(iter(summary["results"].values()), {}))
    for b in benches:
        cells: dict[str, list[str]] = {}
        for m in models:
            r = summary["results"][m].get(b)
            if r is None:
                continue
            cells.setdefault("greedy acc % [95% CI]", []).append(_with_ci(r["greedy_acc"], r.get("greedy_ci")))
            if k and f"avg@{k}" in r:
                cells.setdefault(f"avg@{k} % [95% CI]", []).append(_with_ci(r[f"avg@{k}"], r.get("avg_ci")))
                cells.setdefault(f"pass@{k} %", []).append(_pct(r["pass@"][str(k)]))
                cells.setdefault("mean length (tokens)", []).append(f"{r['mean_len']:.0f}")
            else:
                cells.setdefault("mean length (tokens)", []).append(f"{r['greedy_len']:.0f}")
            t = r["think"]
            cells.setdefault("<think> blocks / completion", []).append(f"{t['blocks_mean']:.2f}")
            cells.setdefault("interleaved blocks %", []).append(_pct(t["interleaved"]))
        n = summary.get("benches", {}).get(b, {}).get("n", "")
        for metric, vals in cells.items():
            rows.append([f"{b} (n={n})" if n != "" else b, metric, *vals])
    return header, rows


def results_table(summary: dict[str, Any]):
    from rich.table import Table

    header, rows = table_rows(summary)
    t = Table(title="srlkit eval", show_lines=False)
    for i, h in enumerate(header):
        t.add_column(h, justify="left" if i < 2 else "right")
    for r in rows:
        t.add_row(*r)
    return t


def markdown_table(summary: dict[str, Any]) -> str:
    header, rows = table_rows(summary)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
