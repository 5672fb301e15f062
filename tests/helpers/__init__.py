"""Test helpers that are not tests: the train fixtures' builders (`training`), a loopback Hub
(`hub_stub`), and the subprocess entry points of the multi-process and memory tests."""

from pathlib import Path

HELPERS = Path(__file__).resolve().parent
ASSETS = HELPERS.parent / "assets"
REPO = HELPERS.parents[1]
