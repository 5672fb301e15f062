"""matplotlib on the Agg backend (no display) and byte-stable PNG saving, for every plot srlkit draws."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    # No "Software" metadata: the same data gives the same PNG bytes (dataset cards are deterministic).
    fig.savefig(path, dpi=110, metadata={"Software": None})
    pyplot().close(fig)
    return path
