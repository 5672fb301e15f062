"""`srlkit push` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("push", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit push` is not implemented yet")
