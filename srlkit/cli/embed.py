"""`srlkit embed` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("embed", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit embed` is not implemented yet")
