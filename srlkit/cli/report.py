"""`srlkit report` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("report", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit report` is not implemented yet")
