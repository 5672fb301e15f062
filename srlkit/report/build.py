"""`build_report(run_dir)`: PNG plots + `report.md` from a run folder (and eval results).

Reads only files: `metrics.jsonl`, `eval.jsonl`, `summary.json` and `config.toml` of the run
(see `srlkit.schema`), plus an eval results JSON when given or found next to the run
(`RUN/eval/results.json`, or `RUN/../eval/results.json` in a pipeline folder).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from srlkit.errors import DataError
from srlkit.fileio import write_text
from srlkit.report import plots


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a jsonl file; a torn last line (a run killed mid-write) is skipped."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def find_eval(run_dir: Path) -> Path | None:
    for p in (run_dir / "eval" / "results.json", run_dir.parent / "eval" / "results.json"):
        if p.is_file():
            return p
    return None


def idle_warnings(summary: dict[str, Any]) -> list[str]:
    """One line per phase that made fewer optimizer updates than asked (or gave up)."""
    out = []
    for name, s in summary.get("phases", summary).items():
        if not isinstance(s, dict) or "updates" not in s:
            continue
        if s["updates"] < s.get("steps", 0) or s.get("gave_up"):
            why = f": {s['gave_up']}" if s.get("gave_up") else ""
            out.append(f"**{name} made {s['updates']} of {s.get('steps')} optimizer updates**{why}")
    return out


def _summary_table(summary: dict[str, Any]) -> str:
    phases = summary.get("phases", summary)
    lines = ["| phase | updates / steps asked | filter rate | prompts consumed | best val | wall time (s) |",
             "|---|---|---|---|---|---|"]
    for name, s in phases.items():
        if not isinstance(s, dict):
            continue
        best = s.get("best_val", s.get("best", s.get("final_val")))
        if isinstance(best, dict):  # {"step": ..., "value": ...} style records
            best = best.get("score", best.get("value"))
        best_s = f"{best:.4f}" if isinstance(best, (int, float)) else "–"
        wall = s.get("wall_time", s.get("wall_s"))
        wall_s = f"{wall:.0f}" if isinstance(wall, (int, float)) else "–"
        upd = f"{s['updates']} / {s.get('steps', '–')}" if "updates" in s else f"– / {s.get('steps', '–')}"
        fr = s.get("filter_rate")
        fr_s = f"{fr:.2f}" if isinstance(fr, (int, float)) else "–"
        lines.append(f"| {name} | {upd} | {fr_s} | {s.get('prompts_consumed', '–')} | {best_s} | {wall_s} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def _chain_section(run_dir: Path, val_rows: list[dict[str, Any]], eval_path: Path | None) -> list[str]:
    """Each phase at its start and end on the same validation problems, and on held-out problems
    the last phase against the end of the one before it (when the eval scored that phase)."""
    import tomllib

    from srlkit.report.chain import gain_line, phase_gain, phase_label, validation_table

    table = validation_table(val_rows)
    cfg = run_dir / "config.toml"
    cur = tomllib.loads(cfg.read_text(encoding="utf-8")).get("curriculum", []) if cfg.is_file() else []
    gains: list[str] = []
    if eval_path and len(cur) >= 2 and cur[-2] != cur[-1]:
        gains = [gain_line(g, cur[-2], cur[-1]) for g in phase_gain(eval_path, phase_label(cur[-2]), "trained")]
    if not table and not gains:
        return []
    md = ["## What each phase added", ""]
    if table:
        md += ["Whole-solution greedy accuracy (`val/solve_accuracy`) on the same validation problems at each "
               "phase's first and last validation.", "", table, ""]
    md += [f"- {g}" for g in gains] + ([""] if gains else [])
    return md


def build_report(run_dir: Path, out: Path | None = None, *, eval_path: Path | None = None) -> Path:
    """Write plots and `report.md` to `out` (default `RUN/report/`); returns the report path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise DataError(f"run folder '{run_dir}' not found")
    metrics = read_jsonl(run_dir / "metrics.jsonl")
    if not metrics and not eval_path:
        raise DataError(f"{run_dir} has no metrics.jsonl; is it an `srlkit train` run folder?")
    out = Path(out) if out else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    val_rows = read_jsonl(run_dir / "eval.jsonl")
    eval_path = Path(eval_path) if eval_path else find_eval(run_dir)
    if eval_path and not eval_path.is_file():
        raise DataError(f"eval results '{eval_path}' not found")

    figs: list[tuple[str, str, Path | None]] = [
        ("Reward per phase", "Mean reward per optimizer step with each reward component; red points are "
         "validation.", plots.plot_rewards(metrics, out / "rewards.png", val_rows)),
        ("Validation during training", "Whole-solution greedy accuracy on validation problems "
         "(`val/solve_accuracy`, every phase) and, in SRL phases, the share of validation steps written exactly "
         "as the expert wrote them (`val/exact_step`).",
         plots.plot_lines(val_rows, ["val/solve_accuracy", "val/exact_step"], out / "val_accuracy.png",
                          "validation during training")),
        ("Dynamic sampling", "Share of prompt groups dropped because their rewards had (near) zero spread.",
         plots.plot_lines(metrics, ["sampling/filter_rate", "sampling/attempts"], out / "filter_rate.png",
                          "dynamic sampling")),
        ("Policy drift and length", "KL to the reference, fraction of clipped tokens, mean completion length.",
         plots.plot_lines(metrics, ["kl", "clip_frac", "completion/len_mean"], out / "kl_clip_len.png",
                          "KL / clip fraction / completion length")),
        ("Time split", "Where each phase's time went: generation, reward scoring, the update.",
         plots.plot_time_split(metrics, out / "time_split.png")),
    ]
    eval_md = ""
    if eval_path:
        from srlkit.eval.table import markdown_table

        summary = json.loads(eval_path.read_text(encoding="utf-8"))
        figs.append(("Evaluation", f"From `{eval_path}`; whiskers are 95% bootstrap CIs over problems.",
                     plots.plot_eval(summary, out / "eval.png")))
        eval_md = markdown_table(summary)

    md = [f"# Training report: `{run_dir.name}`", ""]
    run_summary = run_dir / "summary.json"
    if run_summary.is_file():
        run_s = json.loads(run_summary.read_text(encoding="utf-8"))
        warn = idle_warnings(run_s)
        if warn:
            md += ["## Warning: phases that did not train as asked", ""] + [f"- {w}" for w in warn] + [""]
        table = _summary_table(run_s)
        if table:
            md += ["## Phases", "", table, ""]
    md += _chain_section(run_dir, val_rows, eval_path)
    if metrics:
        n = len(metrics)
        phases = ", ".join(plots.by_phase(metrics))
        md += [f"{n} logged optimizer steps over phases: {phases}.", ""]
    for title, caption, path in figs:
        if path is None:
            continue
        md += [f"## {title}", "", caption, "", f"![{title}]({os.path.relpath(path, out)})", ""]
    if eval_md:
        md += ["## Eval table", "", eval_md, ""]
    report = out / "report.md"
    write_text(report, "\n".join(md))
    return report
