"""A small decomposed dataset built the way users build one: `decompose` on bundled CHAMP."""

from __future__ import annotations

from pathlib import Path


def make_dataset(out: Path, limit: int = 6) -> Path:
    """`srlkit decompose` of the first `limit` CHAMP problems into `out`; returns `out`."""
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    decompose(DecomposeConfig(limit=limit), out, show_progress=False)
    return out
