"""`srlkit decompose`: SFT data to step-wise SRL and RLVR parquet shards."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer

from srlkit.cli import app

_STEPS = "auto, numbered, paragraph, sentence, turns"


@app.command("decompose")
def cmd(
    source: Optional[str] = typer.Argument(
        None, help="Hub dataset id, local .jsonl/.json/.parquet/.csv file, glob or folder. "
                   "Omitted: the bundled CHAMP problems (offline)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: data/<source name>; data/champ for the bundled set)."),
    config: Optional[str] = typer.Option(None, "--config", help="Hub dataset config name."),
    split: str = typer.Option("train", "--split", help="Source split."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub dataset revision."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Known schema: s1k, openr1, numina, gsm8k, champ, messages."),
    problem_col: Optional[str] = typer.Option(None, "--problem-col", help="Problem column (default: the preset's, else problem)."),
    solution_col: Optional[str] = typer.Option(None, "--solution-col", help="Solution column (default: the preset's, else solution)."),
    answer_col: Optional[str] = typer.Option(None, "--answer-col", help="Answer column (default: the preset's, else answer when present)."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: id when present, else a content hash)."),
    steps: str = typer.Option("auto", "--steps", help=f"Segmentation: {_STEPS}. auto picks per row and records it."),
    history: int = typer.Option(2, "--history", help="turns: action/observation pairs of context."),
    targets: str = typer.Option("all", "--targets", help="Which steps are targets: all (N per trajectory, step 1 from the problem alone), "
                                                       "skip-first (the paper's N-1: step 1 is context, step 2 the first target), skip-last."),
    title_hint: bool = typer.Option(False, "--title-hint", help="Show the next step's title in the prompt (target = its body)."),
    template: Optional[Path] = typer.Option(None, "--template", help="TOML file overriding prompt templates."),
    val_size: float = typer.Option(0.1, "--val-size", help="Validation size: a fraction of trajectories (< 1) or a count of trajectories (>= 1)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the train/validation hash."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Read at most this many source rows."),
    min_step_chars: int = typer.Option(8, "--min-step-chars", help="Merge shorter steps into the next."),
    max_step_chars: int = typer.Option(4000, "--max-step-chars", help="Split longer steps (reject when impossible)."),
    min_steps: int = typer.Option(2, "--min-steps", help="Reject trajectories with fewer steps."),
    max_steps: int = typer.Option(64, "--max-steps", help="Reject trajectories with more steps."),
    max_row_bytes: int = typer.Option(1_000_000, "--max-row-bytes", help="Reject larger rows."),
    shard_rows: int = typer.Option(20_000, "--shard-rows", help="Source rows per work unit and shard (bounds memory)."),
    rewrite: bool = typer.Option(False, "--rewrite", help="First rewrite each solution into 'SOLUTION: N. **Title** action' with an LLM."),
    rewrite_endpoint: Optional[str] = typer.Option(None, "--rewrite-endpoint", help="OpenAI-compatible base URL (e.g. http://localhost:8000/v1); else a local model."),
    rewrite_model: Optional[str] = typer.Option(None, "--rewrite-model", help="Model name for the endpoint, or a local path (default: the bundled SmolLM2)."),
    rewrite_engine: str = typer.Option("transformers", "--rewrite-engine", help="Without an endpoint: rewrite in-process with transformers or vllm."),
) -> None:
    """Split expert solutions into steps; write SRL + RLVR parquet shards, rejects, manifest and card."""
    from srlkit.cli._common import out as stdout
    from srlkit.config import DecomposeConfig, build
    from srlkit.data.decompose import decompose, default_out

    fields = dict(
        source=source, out=str(out) if out else None, config_name=config, split=split, revision=revision,
        preset=preset, problem_col=problem_col, solution_col=solution_col, answer_col=answer_col,
        id_col=id_col, steps=steps, history=history, targets=targets, title_hint=title_hint,
        template=str(template) if template else None, val_size=val_size, seed=seed, limit=limit,
        min_step_chars=min_step_chars, max_step_chars=max_step_chars, min_steps=min_steps,
        max_steps=max_steps, max_row_bytes=max_row_bytes, shard_rows=shard_rows, rewrite=rewrite,
        rewrite_endpoint=rewrite_endpoint, rewrite_model=rewrite_model, rewrite_engine=rewrite_engine,
    )
    cfg = build(DecomposeConfig, fields, where="options")
    target = Path(cfg.out) if cfg.out else default_out(cfg.source)
    command = "srlkit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if _from_console() else None
    m = decompose(cfg, target, command=command or _rebuild(fields, target))
    c = m["counts"]
    tables = ", ".join(f"{t}/{s} {sum(m['files'][f]['rows'] for f in names)}"
                       for t, splits in m["splits"].items() for s, names in splits.items())
    stdout.print(f"{target}: {c['accepted']} trajectories accepted, {c['rejected']} rejected "
                 f"(of {c['input']} rows); {tables}", soft_wrap=True, markup=False)
    stdout.print(f"card: {target / 'README.md'}; inspect with `srlkit inspect {target}`",
                 soft_wrap=True, markup=False)


def _from_console() -> bool:
    return bool(sys.argv) and Path(sys.argv[0]).name in ("srlkit", "__main__.py") and "decompose" in sys.argv


def _rebuild(fields: dict, out: Path) -> str:
    """The equivalent command line when called in-process (tests, `srlkit run`)."""
    defaults = {"split": "train", "steps": "auto", "history": 2, "targets": "all", "title_hint": False,
                "val_size": 0.1, "seed": 0, "min_step_chars": 8, "max_step_chars": 4000, "min_steps": 2,
                "max_steps": 64, "max_row_bytes": 1_000_000, "shard_rows": 20_000, "rewrite": False,
                "rewrite_engine": "transformers"}
    flags = {"config_name": "config"}
    args = ["srlkit", "decompose"] + ([shlex.quote(fields["source"])] if fields["source"] else [])
    args += ["--out", shlex.quote(str(out))]
    for k, v in fields.items():
        if k in ("source", "out") or v is None or defaults.get(k, None) == v:
            continue
        flag = "--" + flags.get(k, k).replace("_", "-")
        args.append(flag if v is True else f"{flag} {shlex.quote(str(v))}")
    return " ".join(args)
