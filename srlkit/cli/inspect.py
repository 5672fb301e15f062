"""`srlkit inspect` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("inspect", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit inspect` is not implemented yet")
