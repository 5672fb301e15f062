"""`srlkit embed DIR`: precompute expert-step vectors for the `embedding` reward."""

from __future__ import annotations

from pathlib import Path

import typer

from srlkit.cli import app


@app.command("embed")
def cmd(
    data_dir: Path = typer.Argument(..., metavar="DIR", help="A `srlkit decompose` output folder."),
    model: str = typer.Option(
        None, "--model", "-m", metavar="NAME_OR_PATH",
        help="sentence-transformers id or folder. Default: the packaged all-MiniLM-L6-v2 (offline).",
    ),
    dtype: str = typer.Option("float32", "--dtype", help="Stored vector precision: float16 or float32."),
    batch_size: int = typer.Option(64, "--batch-size", min=1, help="Steps per encoder batch."),
    device: str = typer.Option(None, "--device", help="cpu, cuda, ... Default: the encoder's choice."),
    shard_size: int = typer.Option(20_000, "--shard-size", min=1, help="Steps per output shard (the unit of resume)."),
) -> None:
    """Encode every distinct expert step of DIR; resumable, one folder per model."""
    from srlkit.cli._common import out
    from srlkit.config import EmbedConfig, build
    from srlkit.errors import DataError
    from srlkit.extras import require

    require("embed", "srlkit embed")

    if not data_dir.is_dir():
        raise DataError(f"{data_dir} is not a folder; run `srlkit decompose --out {data_dir}` first")
    cfg = build(EmbedConfig, {"model": model, "dtype": dtype, "batch_size": batch_size, "device": device},
                where="embed options")
    from srlkit.embed.run import embed_with_stats

    folder, st = embed_with_stats(data_dir, cfg, shard_size=shard_size)
    reused = f", {st.shards_done_before} of {st.shards} shards reused" if st.shards_done_before else ""
    out.print(
        f"{folder}: {st.distinct} vectors of dim {st.dim} ({cfg.dtype}) for {st.steps} SRL rows{reused}"
    )
