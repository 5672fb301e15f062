"""Checks shared by the hostile-user tests: one-line refusals and files left byte for byte."""

from __future__ import annotations

import json
from pathlib import Path


def snapshot(*roots: Path) -> dict[Path, bytes]:
    """Every file under `roots` (or the file itself) with its bytes."""
    files: dict[Path, bytes] = {}
    for root in roots:
        for p in [root] if root.is_file() else sorted(root.rglob("*")):
            if p.is_file():
                files[p] = p.read_bytes()
    return files


def assert_intact(snap: dict[Path, bytes], after: str = "") -> None:
    for p, data in snap.items():
        assert p.is_file(), f"{p} was deleted {after}"
        assert p.read_bytes() == data, f"{p} was changed {after}"


def refused(res, *needles: str, code: int = 2) -> None:
    """Exit `code`, stderr exactly one `error: ...` line holding every needle, no traceback."""
    assert "Traceback" not in res.out + res.err, res.err
    assert res.code == code, (res.code, res.err)
    lines = res.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err
    for n in needles:
        assert n in res.err, (n, res.err)


def rows_file(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def plain_row(i: int) -> dict:
    """A numbered solution without \\boxed{}: its gold answer can only come from the answer column."""
    return {"id": f"p{i}", "problem": f"What is {i} + {i}?",
            "solution": f"1. Take {i} and {i}.\n2. Their sum is {2 * i}.", "answer": str(2 * i)}
