"""`srlkit decompose` (placeholder until its issue lands)."""

from srlkit.cli import app
from srlkit.errors import SrlkitError


@app.command("decompose", hidden=True)
def cmd() -> None:
    raise SrlkitError("`srlkit decompose` is not implemented yet")
