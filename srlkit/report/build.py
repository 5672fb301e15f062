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

from srlkit import stage
from srlkit.errors import DataError
from srlkit.fileio import write_text
from srlkit.report import plots


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a jsonl file. A torn last line (a run killed mid-write) is skipped; other lines that
    are not JSON objects are skipped with a warning; a file that is not text is an error."""
    from srlkit.fileio import read_text
    from srlkit.progress import warn

    if not path.is_file():
        return []
    rows, bad = [], 0
    lines = read_text(path, fix="it is not the run's log; restore it or remove it").splitlines()
    for i, line in enumerate(lines):
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
            if i == len(lines) - 1:
                continue  # a torn last line
        if not isinstance(row, dict):
            bad += 1
            continue
        rows.append(row)
    if bad:
        warn(f"{path}: {bad} lines skipped (not JSON objects)")
    return rows


def read_eval(path: Path, found: bool = False) -> dict[str, Any] | None:
    """An `srlkit eval` results JSON; an explicit one that is not is an error, a found one is skipped."""
    from srlkit.fileio import read_json
    from srlkit.progress import warn

    summary = read_json(path, fix="give the results JSON `srlkit eval --out` wrote")
    res = summary.get("results")
    if isinstance(res, dict) and all(isinstance(b, dict) and all(isinstance(r, dict) for r in b.values())
                                     for b in res.values()):
        return summary
    if found:
        warn(f"{path} is not an `srlkit eval` results file; the report leaves eval out")
        return None
    raise DataError(f"--eval {path} is not an `srlkit eval` results file (no results per model and bench); "
                    "give the JSON `srlkit eval --out` wrote")


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
        state = "an empty metrics.jsonl" if (run_dir / "metrics.jsonl").is_file() else "no metrics.jsonl"
        raise DataError(f"{run_dir} has {state}; is it an `srlkit train` run folder that trained a step?")
    out = Path(out) if out else run_dir / "report"
    found = eval_path is None
    eval_path = Path(eval_path) if eval_path else find_eval(run_dir)
    if eval_path and not eval_path.is_file():
        raise DataError(f"eval results '{eval_path}' not found")
    summary = read_eval(eval_path, found=found) if eval_path else None
    eval_path = eval_path if summary is not None else None
    reads = [run_dir / n for n in ("metrics.jsonl", "eval.jsonl", "summary.json", "config.toml")]
    old = stage.claim(out, "report", reads=[p for p in reads + [eval_path] if p is not None and p.exists()])
    stage.clear(out, old)  # the files of an earlier report (another run may have made fewer plots)
    stage.begin(out, "report")
    val_rows = read_jsonl(run_dir / "eval.jsonl")

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
    if summary is not None:
        from srlkit.eval.table import markdown_table

        figs.append(("Evaluation", f"From `{eval_path}`; whiskers are 95% bootstrap CIs over problems.",
                     plots.plot_eval(summary, out / "eval.png")))
        eval_md = markdown_table(summary)

    md = [f"# Training report: `{run_dir.name}`", ""]
    run_summary = run_dir / "summary.json"
    if run_summary.is_file():
        from srlkit.fileio import read_json

        run_s = read_json(run_summary, fix="restore it, or remove it to report without the phase table")
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
    stage.finish(out, "report", [p.name for _, _, p in figs if p is not None] + [report.name],
                 config={"run": str(run_dir), "eval": str(eval_path) if eval_path else None})
    return report
