"""Atomic file writes: every file srlkit writes appears whole or not at all.

Each writer fills `<name>.tmp` beside the target and renames it over the target
(`os.replace` is atomic on one filesystem), so a run killed mid-write leaves the old file
or none, never half of one. Light on purpose: no heavy imports.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path`, on error it is removed.
    A writer that wrote nothing to the temporary path leaves `path` as it was.

    >>> import tempfile
    >>> d = Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "a.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "a.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hi', ['a.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + suffix)
    try:
        yield tmp
        if tmp.exists():
            os.replace(tmp, path)
    except BaseException:
        if tmp.is_file():
            tmp.unlink()
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | Path, obj: Any, *, indent: int | None = 2, sort_keys: bool = True,
               ensure_ascii: bool = False) -> None:
    """JSON with a trailing newline (sorted keys by default, so equal data gives equal bytes)."""
    write_text(path, json.dumps(obj, indent=indent, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n")


def sha256_file(path: str | Path) -> str:
    """The file's sha256 (hex), read in 4 MiB chunks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def read_text(path: str | Path, fix: str = "restore or regenerate it") -> str:
    """A UTF-8 text file, or a one-line DataError naming it (binary, missing, unreadable)."""
    from srlkit.errors import DataError

    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"'{p}' not found; {fix}") from None
    except IsADirectoryError:
        raise DataError(f"'{p}' is a folder, not a file; {fix}") from None
    except UnicodeDecodeError as e:
        raise DataError(f"'{p}' is not UTF-8 text (byte {e.start}); {fix}") from None
    except OSError as e:
        raise DataError(f"cannot read '{p}': {e.strerror or e}; {fix}") from None


def read_json(path: str | Path, fix: str = "restore or regenerate it", kind: type = dict) -> Any:
    """A JSON file holding a `kind` (dict by default), or a one-line DataError naming it."""
    from srlkit.errors import DataError

    p = Path(path)
    text = read_text(p, fix)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"'{p}' is not valid JSON ({e.msg}, line {e.lineno}); {fix}") from None
    if not isinstance(obj, kind):
        raise DataError(f"'{p}' holds a JSON {type(obj).__name__}, not a JSON {kind.__name__}; {fix}")
    return obj
