"""Console output for the library and the CLI: one stderr console, stdout tables, progress bars.

Library stages (decompose, embed, eval) draw their bars through here, so none of them
imports the CLI. Bars stay quiet when stderr is not a terminal (CI and SLURM logs).
"""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def warn(msg: str) -> None:
    """One warning line on stderr (plain text: paths may hold brackets)."""
    console.print(f"warning: {msg}", markup=False, soft_wrap=True)


def progress(disable: bool | None = None):
    """A rich progress bar that stays quiet when stderr is not a terminal (CI logs)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    if disable is None:
        disable = not sys.stderr.isatty()
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        disable=disable,
        transient=False,
    )

