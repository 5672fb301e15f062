"""Small helpers shared by the CLI commands (no heavy imports)."""

from __future__ import annotations

from pathlib import Path

from srlkit.progress import console, out, progress

__all__ = ["DEFAULT_RECIPE", "console", "out", "progress"]

# The embedded default recipe (`make demo`), used by `srlkit run` and `srlkit train` when no
# recipe is given; a source checkout ships it.
DEFAULT_RECIPE = Path(__file__).resolve().parents[2] / "pipelines" / "tiny-cpu.toml"
