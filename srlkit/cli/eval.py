"""`srlkit eval` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("eval", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit eval` is not implemented yet")
