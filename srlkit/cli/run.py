"""`srlkit run` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("run", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit run` is not implemented yet")
