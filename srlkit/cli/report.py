"""`srlkit report RUN_DIR`: PNG plots and a Markdown report of a training run."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from srlkit.cli import app


@app.command("report")
def cmd(
    run_dir: Path = typer.Argument(..., help="An `srlkit train` run folder (holds metrics.jsonl)."),
    eval_path: Optional[Path] = typer.Option(
        None, "--eval", help="An `srlkit eval` results JSON (default: eval/results.json beside the run)."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default RUN_DIR/report)."),
) -> None:
    """Plot rewards, dynamic-sampling filter rate, KL/clip/length, time split and eval bars."""
    from srlkit.cli._common import out as stdout
    from srlkit.extras import require

    require("train", "srlkit report")  # matplotlib
    from srlkit.report.build import build_report

    report = build_report(run_dir, out, eval_path=eval_path)
    stdout.print(f"report: {report}", soft_wrap=True)
