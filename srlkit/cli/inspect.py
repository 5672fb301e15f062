"""`srlkit inspect DIR`: summary and a few rendered instances of a decomposed dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from srlkit.cli import app


@app.command("inspect")
def cmd(
    folder: Path = typer.Argument(..., help="A folder made by `srlkit decompose`."),
    n: int = typer.Option(3, "--n", "-n", help="How many rendered instances to show (0: none)."),
    table: str = typer.Option("srl", "--table", help="srl or rlvr."),
    split: str = typer.Option("train", "--split", help="train or validation."),
    system: bool = typer.Option(False, "--system", help="Also print the system message of each prompt."),
) -> None:
    """Print the counts, strategies and reject reasons, then N rendered prompts with their targets."""
    from srlkit.cli._common import out
    from srlkit.data.overview import load_manifest, render_instance, sample_instances, summary_lines
    from srlkit.errors import ConfigError

    if table not in ("srl", "rlvr"):
        raise ConfigError(f"--table {table}: use srl or rlvr")
    m = load_manifest(folder)
    try:
        lines = summary_lines(m)
    except (KeyError, TypeError, AttributeError) as e:  # a manifest without the counts decompose writes
        from srlkit.errors import DataError

        raise DataError(f"{folder}/manifest.json lacks what inspect shows ({type(e).__name__}: {e}); run "
                        f"`srlkit decompose --out {folder}` again") from None
    for line in lines:
        out.print(line, markup=False, soft_wrap=True)
    if n <= 0:
        return
    for row in sample_instances(folder, m, n, table, split):
        if not system:
            row = {**row, "prompt": [p for p in row["prompt"] if p["role"] != "system"]}
        out.print("")
        out.print(render_instance(row), markup=False, soft_wrap=True)
