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
    subset: Optional[str] = typer.Option(None, "--subset", help="Hub dataset config (the Hub calls it a subset)."),
    split: Optional[str] = typer.Option(None, "--split", help="Source split."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Hub dataset revision."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Known schema: s1k, openr1, numina, gsm8k, champ, messages."),
    problem_col: Optional[str] = typer.Option(None, "--problem-col", help="Problem column (default: the preset's, else problem)."),
    solution_col: Optional[str] = typer.Option(None, "--solution-col", help="Solution column (default: the preset's, else solution)."),
    answer_col: Optional[str] = typer.Option(None, "--answer-col", help="Answer column (default: the preset's, else answer when present)."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column (default: id when present, else a content hash)."),
    steps: Optional[str] = typer.Option(None, "--steps", help=f"Segmentation: {_STEPS}. auto picks per row and records it."),
    history: Optional[int] = typer.Option(None, "--history", help="turns: action/observation pairs of context."),
    targets: Optional[str] = typer.Option(None, "--targets", help="Which steps are targets: all (N per trajectory, step 1 from the problem alone), "
                                                       "skip-first (the paper's N-1: step 1 is context, step 2 the first target), skip-last."),
    title_hint: Optional[bool] = typer.Option(None, "--title-hint", help="Show the next step's title in the prompt (target = its body)."),
    template: Optional[Path] = typer.Option(None, "--template", help="TOML file overriding prompt templates."),
    val_size: Optional[float] = typer.Option(None, "--val-size", help="Validation size: a fraction of trajectories (< 1) or a count of trajectories (>= 1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the train/validation hash."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Read at most this many source rows."),
    min_step_chars: Optional[int] = typer.Option(None, "--min-step-chars", help="Merge shorter steps into the next."),
    max_step_chars: Optional[int] = typer.Option(None, "--max-step-chars", help="Split longer steps (reject when impossible)."),
    min_trajectory_steps: Optional[int] = typer.Option(None, "--min-trajectory-steps", help="Reject trajectories with fewer steps."),
    max_trajectory_steps: Optional[int] = typer.Option(None, "--max-trajectory-steps", help="Reject trajectories with more steps."),
    max_row_bytes: Optional[int] = typer.Option(None, "--max-row-bytes", help="Reject larger rows."),
    shard_rows: Optional[int] = typer.Option(None, "--shard-rows", help="Source rows per work unit and shard (bounds memory)."),
    rewrite: Optional[bool] = typer.Option(None, "--rewrite", help="First rewrite each solution into 'SOLUTION: N. **Title** action' with an LLM."),
    rewrite_endpoint: Optional[str] = typer.Option(None, "--rewrite-endpoint", help="OpenAI-compatible base URL (e.g. http://localhost:8000/v1); else a local model."),
    rewrite_model: Optional[str] = typer.Option(None, "--rewrite-model", help="Model name for the endpoint, or a local path (default: the bundled SmolLM2)."),
    rewrite_engine: Optional[str] = typer.Option(None, "--rewrite-engine", help="Without an endpoint: rewrite in-process with transformers or vllm."),
    force: bool = typer.Option(False, "--force", help="Write into a folder that holds other files; they are kept, and srlkit never replaces one it did not write."),
) -> None:
    """Split expert solutions into steps; write SRL + RLVR parquet shards, rejects, manifest and card.

    Options left out take the defaults of `DecomposeConfig` (a recipe's decompose table).
    """
    from srlkit.cli._common import out as stdout
    from srlkit.config import DecomposeConfig, build
    from srlkit.data.decompose import decompose, default_out

    fields = dict(
        source=source, out=str(out) if out else None, subset=subset, split=split, revision=revision,
        preset=preset, problem_col=problem_col, solution_col=solution_col, answer_col=answer_col,
        id_col=id_col, steps=steps, history=history, targets=targets, title_hint=title_hint,
        template=str(template) if template else None, val_size=val_size, seed=seed, limit=limit,
        min_step_chars=min_step_chars, max_step_chars=max_step_chars, min_trajectory_steps=min_trajectory_steps,
        max_trajectory_steps=max_trajectory_steps, max_row_bytes=max_row_bytes, shard_rows=shard_rows, rewrite=rewrite,
        rewrite_endpoint=rewrite_endpoint, rewrite_model=rewrite_model, rewrite_engine=rewrite_engine,
    )
    fields = {k: v for k, v in fields.items() if v is not None}  # unset: the config's default
    cfg = build(DecomposeConfig, fields, where="options")
    hub_only = [f"--{k}" for k, v in (("subset", subset), ("split", split), ("revision", revision)) if v is not None]
    if hub_only:
        from srlkit.data.sources import open_source
        from srlkit.errors import ConfigError

        kind = open_source(cfg.source).kind
        if kind != "hub":
            raise ConfigError(f"{', '.join(hub_only)} pick{'s' if len(hub_only) == 1 else ''} a Hub dataset's rows, "
                              f"but the source is {_KINDS.get(kind, kind)}; drop "
                              f"{'it' if len(hub_only) == 1 else 'them'}")
    target = Path(cfg.out) if cfg.out else default_out(cfg.source)
    command = "srlkit " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if _from_console() else None
    m = decompose(cfg, target, command=command or _rebuild(fields, target), force=force)
    c = m["counts"]
    tables = ", ".join(f"{t}/{s} {sum(m['files'][f]['rows'] for f in names)}"
                       for t, splits in m["splits"].items() for s, names in splits.items())
    stdout.print(f"{target}: {c['accepted']} trajectories accepted, {c['rejected']} rejected "
                 f"(of {c['input']} rows); {tables}", soft_wrap=True, markup=False)
    stdout.print(f"card: {target / 'README.md'}; inspect with `srlkit inspect {target}`",
                 soft_wrap=True, markup=False)


_KINDS = {"local": "a local file", "bundled": "the bundled CHAMP problems", "gym": "a generated gym task"}


def _from_console() -> bool:
    return bool(sys.argv) and Path(sys.argv[0]).name in ("srlkit", "__main__.py") and "decompose" in sys.argv


def _rebuild(fields: dict, out: Path) -> str:
    """The equivalent command line when called in-process (tests, `srlkit run`)."""
    from srlkit.config import DecomposeConfig

    defaults = DecomposeConfig().model_dump()
    args = ["srlkit", "decompose"] + ([shlex.quote(fields["source"])] if fields.get("source") else [])
    args += ["--out", shlex.quote(str(out))]
    for k, v in fields.items():
        if k in ("source", "out") or v is None or defaults.get(k) == v:
            continue
        flag = "--" + k.replace("_", "-")
        args.append(flag if v is True else f"{flag} {shlex.quote(str(v))}")
    return " ".join(args)
