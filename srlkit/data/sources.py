"""Stage 1: stream source rows.

A source yields `(source_row, record)` pairs where `record` is either a dict (one row)
or a `Reject` (the row could not be read: invalid UTF-8, broken JSON, too large).
Unreadable rows are rejects, not crashes, so accepted + rejected == input holds.

Supported: a Hub dataset id (streamed with `datasets`), local .jsonl/.ndjson/.json/
.parquet/.csv files, globs and folders, and the bundled CHAMP problems (no SOURCE).
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from srlkit.errors import DataError

SUFFIXES = (".jsonl", ".ndjson", ".json", ".parquet", ".csv")
BUNDLED = "champ"


@dataclass(frozen=True)
class Reject:
    reason: str
    detail: str = ""


@dataclass
class Source:
    """Where rows come from, plus what the card needs to say about it."""

    name: str
    kind: str  # "local", "hub", "bundled" or "gym" (generated, see srlkit.data.gym)
    files: list[Path] = field(default_factory=list)
    license: str = "unknown"
    hub: dict = field(default_factory=dict)
    max_row_bytes: int = 1_000_000

    def fingerprint(self) -> str:
        """Content hash of the local files (name + bytes), or the Hub coordinates."""
        h = hashlib.sha256()
        if self.kind in ("hub", "gym"):
            h.update(json.dumps(self.hub, sort_keys=True).encode())
        for f in self.files:
            h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 22), b""):
                    h.update(chunk)
        return h.hexdigest()

    def columns(self, limit: int | None = None) -> list[str] | None:
        """Column names over the whole source (its first `limit` rows with --limit), in order of
        first appearance; None for Hub, gym and bundled sources, whose rows share one schema."""
        if self.kind != "local":
            return None
        seen: dict[str, None] = {}
        if limit is not None:  # the rows decompose will read: scan exactly those
            for _, (_, rec) in zip(range(limit), self.rows()):
                if isinstance(rec, dict):
                    seen.update(dict.fromkeys(rec))
            return list(seen)
        for f in self.files:
            try:
                seen.update(dict.fromkeys(_file_columns(f, self.max_row_bytes)))
            except OSError as e:
                raise DataError(f"cannot read '{f}': {e.strerror or e}") from None
        return list(seen)

    def rows(self) -> Iterator[tuple[int, dict | Reject]]:
        if self.kind == "gym":
            from srlkit.data import gym

            yield from enumerate(gym.source_rows(gym.parse_spec(self.hub["gym"])))
            return
        if self.kind == "hub":
            yield from enumerate(_hub_rows(**self.hub))
            return
        i = 0
        for f in self.files:
            for rec in _file_rows(f, self.max_row_bytes):
                yield i, rec
                i += 1


def open_source(spec: str | None, *, config_name=None, split="train", revision=None,
                max_row_bytes: int = 1_000_000) -> Source:
    """Resolve SOURCE (None: the bundled CHAMP problems) into a `Source`."""
    if spec is not None and spec.startswith("gym:"):
        from srlkit.data import gym

        g = gym.parse_spec(spec)
        return Source(g.name, "gym", [], license="Apache-2.0 (reasoning-gym, generated)",
                      hub={"gym": spec, "resolved": repr(g)}, max_row_bytes=max_row_bytes)
    if spec and _has_surrogate(spec):  # the card and the manifest record the source's name: it must be text
        raise DataError(f"source '{spec.encode('utf-8', 'backslashreplace').decode()}': the path is not valid "
                        "UTF-8; rename it")
    if spec is None or spec == BUNDLED:
        from srlkit.assets import champ_path

        return Source("champ", "bundled", [champ_path()], license="MIT (champ-dataset)",
                      max_row_bytes=max_row_bytes)
    p = Path(spec)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in SUFFIXES)
        bad = [f for f in files if _has_surrogate(str(f))]
        if bad:
            raise DataError(f"folder '{spec}' holds a file whose name is not valid UTF-8 "
                            f"({str(bad[0]).encode('utf-8', 'backslashreplace').decode()}); rename it")
        if not files:
            raise DataError(f"folder '{spec}' has no {'/'.join(SUFFIXES)} files")
        return Source(p.name, "local", files, max_row_bytes=max_row_bytes)
    if p.is_file():
        if p.suffix not in SUFFIXES:
            raise DataError(f"'{spec}' is not a {'/'.join(SUFFIXES)} file")
        return Source(p.stem, "local", [p], max_row_bytes=max_row_bytes)
    if any(c in spec for c in "*?["):
        files = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).suffix in SUFFIXES)
        if not files:
            raise DataError(f"no {'/'.join(SUFFIXES)} files match '{spec}'")
        return Source(Path(spec).parent.name or "data", "local", files, max_row_bytes=max_row_bytes)
    looks_local = spec.startswith((".", "/", "~")) or p.suffix in SUFFIXES or spec.count("/") > 1
    if looks_local:
        raise DataError(f"source '{spec}' not found (give a file, folder, glob or Hub dataset id)")
    hub = {"path": spec, "name": config_name, "split": split, "revision": revision}
    return Source(spec.split("/")[-1], "hub", [], license="see the source dataset card", hub=hub,
                  max_row_bytes=max_row_bytes)


def _hub_rows(path: str, name, split: str, revision) -> Iterator[dict]:
    import datasets

    try:
        ds = datasets.load_dataset(path, name, split=split, revision=revision, streaming=True)
        yield from ds
    except Exception as e:  # network, missing dataset, bad config: one line for the user
        text = str(e)
        msg = text.splitlines()[0] if text else type(e).__name__
        if "Config name is missing" in text:  # the dataset has several configs and no default
            names = re.search(r"available configs: (\[[^\]]*\])", text)
            msg += f" Pass --subset NAME{f' (one of {names.group(1)})' if names else ''}."
        elif revision and "evision" in text:
            msg += f" (revision {revision} was used; pass --revision to pick another)"
        raise DataError(f"could not stream Hub dataset '{path}' (split {split}): {msg}") from None


def _file_columns(f: Path, max_bytes: int) -> list[str]:
    """One file's columns: parquet and CSV from their schema/header, JSON lines from every row
    (polars' scan when the file parses as a table, else row by row, bad rows left out)."""
    if f.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(f).names)
        except Exception as e:  # noqa: BLE001 - any reader failure: a bad file for the user
            raise DataError(f"'{f}' is not a readable parquet file: {e}") from None
    if f.suffix == ".csv":
        with open(f, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:  # -sig: a BOM is not data
            return list(csv.DictReader(fh).fieldnames or [])
    if f.suffix in (".jsonl", ".ndjson"):
        import polars as pl

        try:
            return pl.scan_ndjson(f, infer_schema_length=None).collect_schema().names()
        except Exception:  # noqa: BLE001 - broken or mixed rows: read them one by one below
            pass
    seen: dict[str, None] = {}
    for rec in _file_rows(f, max_bytes):
        if isinstance(rec, dict):
            seen.update(dict.fromkeys(rec))
    return list(seen)


def _may_have_surrogates(text: str) -> bool:
    """Only a `\\uD800`-`\\uDFFF` escape in JSON text can make a lone surrogate (a cheap pre-check)."""
    return "\\ud" in text or "\\uD" in text


def _bad_unicode(obj: dict) -> bool:
    """A lone surrogate code point in a parsed row, which no UTF-8 writer (polars, parquet) can store."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


_BOM = b"\xef\xbb\xbf"  # the UTF-8 byte order mark


def _decode_line(raw: bytes, max_bytes: int) -> dict | Reject:
    if len(raw) > max_bytes:
        return Reject("row_too_large", f"{len(raw)} bytes > {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return Reject("invalid_utf8", str(e)[:200])
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        return Reject("broken_json", str(e)[:200])
    if not isinstance(obj, dict):
        return Reject("not_an_object", f"a JSON {type(obj).__name__}, expected an object")
    if _may_have_surrogates(text) and _bad_unicode(obj):
        return Reject("invalid_unicode", "a lone surrogate code point (e.g. \\ud800) in a field")
    return obj


def _file_rows(f: Path, max_bytes: int) -> Iterator[dict | Reject]:
    try:
        if f.suffix in (".jsonl", ".ndjson"):
            yield from _jsonl_rows(f, max_bytes)
        elif f.suffix == ".json":
            yield from _json_rows(f, max_bytes)
        elif f.suffix == ".parquet":
            yield from _parquet_rows(f)
        else:
            yield from _csv_rows(f)
    except OSError as e:
        raise DataError(f"cannot read '{f}': {e.strerror or e}") from None


def _jsonl_rows(f: Path, max_bytes: int) -> Iterator[dict | Reject]:
    with open(f, "rb") as fh:
        for i, raw in enumerate(fh):
            raw = raw.strip()
            if i == 0 and raw.startswith(_BOM):  # editors on Windows write one; it is not part of row 0
                raw = raw[len(_BOM):].strip()
            if raw:  # blank lines are not rows
                yield _decode_line(raw, max_bytes)


def _json_rows(f: Path, max_bytes: int) -> Iterator[dict | Reject]:
    raw = f.read_bytes().removeprefix(_BOM)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"'{f}' is not valid UTF-8; use .jsonl to reject bad rows one by one") from None
    except json.JSONDecodeError as e:
        if "Extra data" in str(e):  # actually JSON lines
            yield from _jsonl_rows(f, max_bytes)
            return
        raise DataError(f"'{f}' is not valid JSON ({e}); use .jsonl to reject bad rows one by one") from None
    if isinstance(data, dict):
        # {"problems": {...}} (CHAMP) or {"data": [...]}: the first list/dict value holds the rows
        inner = data.get("problems")
        if inner is None:
            inner = next((v for v in data.values() if isinstance(v, list)), None)
        data = list(inner.values()) if isinstance(inner, dict) else inner
    if not isinstance(data, list):
        raise DataError(f"'{f}' holds no list of rows")
    check = _may_have_surrogates(raw.decode("utf-8"))
    for obj in data:
        if isinstance(obj, dict) and check and _bad_unicode(obj):
            yield Reject("invalid_unicode", "a lone surrogate code point (e.g. \\ud800) in a field")
        elif isinstance(obj, dict):
            yield obj
        else:
            yield Reject("not_an_object", f"a JSON {type(obj).__name__}, expected an object")


def _parquet_rows(f: Path) -> Iterator[dict]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(f)
    except Exception as e:
        raise DataError(f"'{f}' is not a readable parquet file: {e}") from None
    for batch in pf.iter_batches(batch_size=2048):
        yield from batch.to_pylist()


def _csv_rows(f: Path) -> Iterator[dict | Reject]:
    csv.field_size_limit(sys.maxsize)
    # surrogateescape keeps undecodable bytes as lone surrogates, so one bad row is a reject
    with open(f, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:  # -sig: a BOM is not data
        for row in csv.DictReader(fh):
            if any(isinstance(v, str) and _has_surrogate(v) for v in row.values()):
                yield Reject("invalid_utf8", "undecodable bytes in a CSV field")
            else:
                yield row


def _has_surrogate(s: str) -> bool:
    try:
        s.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def describe(source: Source) -> str:
    """A short human description for logs and the card."""
    if source.kind == "hub":
        h = source.hub
        extra = "".join(f", {k}={h[k]}" for k in ("name", "revision") if h.get(k))
        return f"Hub dataset `{h['path']}` (split {h['split']}{extra})"
    if source.kind == "bundled":
        return "CHAMP (bundled in the `champ-dataset` package, 270 problems with human step-by-step solutions)"
    names = ", ".join(os.path.basename(str(f)) for f in source.files[:5])
    more = f" (+{len(source.files) - 5} more)" if len(source.files) > 5 else ""
    return f"local files: {names}{more}"
