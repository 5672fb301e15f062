"""Small helpers shared by the CLI commands (no heavy imports)."""

from __future__ import annotations

import sys
from contextlib import contextmanager

from rich.console import Console

console = Console(stderr=True, highlight=False)
out = Console(highlight=False)

OverridesOpt = None  # typer Option for `--set` is defined per command for clear help text


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


@contextmanager
def status(msg: str):
    with console.status(msg):
        yield
