"""`srlkit eval MODEL [MODEL ...] --bench NAME_OR_PATH`: greedy + avg@k / pass@k, side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from srlkit.cli import app


@app.command("eval")
def cmd(
    models: list[str] = typer.Argument(
        ..., help="Models: a folder, a Hub id, a LoRA adapter folder, an srlkit run folder, or 'base'. "
        "Prefix LABEL= to name a column, e.g. srl=runs/a."
    ),
    bench: Optional[list[str]] = typer.Option(
        None, "--bench", "-b", help="A .jsonl/.parquet file, amc23, aime24, aime25, math500, minerva, "
        "champ-heldout, or validation[:DIR]. Repeatable. Default: validation (of the run's data)."
    ),
    k: Optional[int] = typer.Option(None, "--k", help="Samples per problem for avg@k / pass@k (0: greedy only)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", help="Sampling temperature for the k samples."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens", help="Completion length cap."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Score only the first N problems of each bench."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write results JSON here (+ .samples.jsonl)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="Rollout engine: hf or vllm."),
    problem_col: Optional[str] = typer.Option(None, "--problem-col", help="Problem column of a local bench."),
    answer_col: Optional[str] = typer.Option(None, "--answer-col", help="Answer column of a local bench."),
    phase: Optional[str] = typer.Option(None, "--phase", help="For run folders: the phase's checkpoint (srl, rlvr, sft)."),
    pick: str = typer.Option("final", "--pick", help="For run folders with --phase: best or final."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Sampling and bootstrap seed."),
    bootstrap: Optional[int] = typer.Option(None, "--bootstrap", help="Bootstrap resamples for the CIs."),
) -> None:
    """Score models on math benches: greedy accuracy, avg@k, pass@k, CIs, length, <think> use."""
    from srlkit.config import EvalConfig, build
    from srlkit.errors import ConfigError
    from srlkit.extras import require

    require("train", "srlkit eval")
    from srlkit.eval.run import evaluate

    if pick not in ("best", "final"):
        raise ConfigError(f"--pick must be best or final, not '{pick}'")
    given = {"bench": bench or None, "k": k, "temperature": temperature, "max_new_tokens": max_new_tokens,
             "limit": limit, "engine": engine, "seed": seed, "bootstrap": bootstrap}
    cfg = build(EvalConfig, {key: v for key, v in given.items() if v is not None}, where="eval options")
    from srlkit.cli._common import console
    from srlkit.cli._common import out as stdout
    from srlkit.eval.table import results_table

    summary = evaluate(list(models), cfg, out, problem_col=problem_col, answer_col=answer_col, phase=phase,
                       pick=pick)
    stdout.print(results_table(summary))
    if out is not None:
        console.print(f"results: {out}", soft_wrap=True)
