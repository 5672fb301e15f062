"""`srlkit run RECIPE`: the whole pipeline from one recipe file, skipping finished stages."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from srlkit.cli import app

from srlkit.cli._common import DEFAULT_RECIPE


@app.command("run")
def cmd(
    recipe: Optional[Path] = typer.Argument(
        None, help="A recipe TOML (see pipelines/). Default: pipelines/tiny-cpu.toml."
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Pipeline root (default: the recipe's out, "
                                       "else runs/<recipe name>)."),
    force: Optional[list[str]] = typer.Option(None, "--force", help="Redo this stage (and everything after it): "
                                              "decompose, embed, train, eval or report. Repeatable."),
    overrides: Optional[list[str]] = typer.Option(None, "--set", help="Override a recipe field: KEY=VALUE, "
                                                  "e.g. train.phases.srl.steps=2. Repeatable."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved recipe and the stage plan; run nothing."),
) -> None:
    """Run decompose -> embed -> train -> eval -> report; prints where the report is."""
    from srlkit.cli._common import console
    from srlkit.cli._common import out as stdout
    from srlkit.config import load_recipe, to_toml
    from srlkit.errors import ConfigError
    from srlkit.pipeline import Paths, pipeline_root, plan, run_pipeline

    if recipe is None:
        if not DEFAULT_RECIPE.is_file():
            raise ConfigError(f"no recipe given and {DEFAULT_RECIPE} not found; pass a recipe path")
        recipe = DEFAULT_RECIPE
    r = load_recipe(recipe, list(overrides or []))
    if dry_run:
        paths = Paths(pipeline_root(r, out))
        typer.echo(to_toml(r))
        typer.echo(f"# pipeline root: {paths.root}")
        for step in plan(r, paths, force or []):
            typer.echo(f"# {step.name:<10} {step.action:<7} {step.reason}  [{step.fingerprint}]")
        return
    report = run_pipeline(r, out, force or [], log=lambda m: console.print(m, soft_wrap=True, markup=False))
    stdout.print(f"report: {report}", soft_wrap=True)
