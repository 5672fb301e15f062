"""`srlkit train` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("train", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit train` is not implemented yet")
