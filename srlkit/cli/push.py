"""`srlkit push`: publish a decomposed dataset (or, with --model, a trained model) to the Hub."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from srlkit.cli import app


@app.command("push")
def cmd(
    folder: Optional[Path] = typer.Argument(None, help="A folder made by `srlkit decompose`."),
    repo: str = typer.Option(..., "--repo", help="Target repo, USER/NAME."),
    model: Optional[Path] = typer.Option(None, "--model", help="Push a training run's final model (RUN folder) as a model repo instead."),
    private: bool = typer.Option(False, "--private", help="Create the repo as private."),
    revision: Optional[str] = typer.Option(None, "--revision", help="Branch to commit to (created if missing)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only list what would be uploaded."),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Commit message."),
) -> None:
    """Create the repo and upload shards + card in one commit. The token comes from HF_TOKEN / `hf auth login`."""
    from srlkit.cli._common import out
    from srlkit.errors import ConfigError
    from srlkit.hub import push_folder

    if (folder is None) == (model is None):
        raise ConfigError("give either a dataset FOLDER or --model RUN_DIR")
    if model is not None:
        from srlkit.report.model_card import export_model

        src, kind = export_model(model), "model"
    else:
        src, kind = folder, "dataset"
    files = push_folder(src, repo, repo_type=kind, private=private, revision=revision,
                        dry_run=dry_run, commit_message=message)
    verb = "would upload" if dry_run else "uploaded"
    out.print(f"{verb} {len(files)} files to {kind} repo {repo}" + (f"@{revision}" if revision else ""),
              markup=False, soft_wrap=True)
    for f in files:
        out.print(f"  {f}", markup=False, soft_wrap=True)
