"""Stage 5: deterministic, atomic parquet and JSON writes.

Every file is written to `name.tmp` and renamed into place, so a killed run never
leaves a half file under a final name. Parquet bytes depend only on the rows: fixed
zstd level, fixed row-group size, no timestamps.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from srlkit.data.instances import Table
from srlkit.fileio import atomic_path, sha256_file  # noqa: F401 - sha256_file: re-exported
from srlkit.schema import COLUMN_TYPES

MESSAGES = pl.List(pl.Struct({"role": pl.String, "content": pl.String}))
_DTYPES: dict[str, pl.DataType] = {"str": pl.String, "int64": pl.Int64, "int32": pl.Int32,
                                   "list[str]": pl.List(pl.String), "messages": MESSAGES}
# polars schemas of the tables, from the one declaration in `srlkit.schema`
SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    table: {col: _DTYPES[kind] for col, kind in cols.items()} for table, cols in COLUMN_TYPES.items()
}
ROW_GROUP = 4096


def _regroup(n: int, idx: list[int], flat: pl.DataFrame, name: str, item: pl.Expr) -> pl.Series:
    """Rebuild n list values from flat items tagged with their row index (empty rows stay [])."""
    flat = flat.with_columns(pl.Series("_i", idx, dtype=pl.Int64))
    grouped = flat.group_by("_i", maintain_order=True).agg(item.alias(name))
    rows = pl.DataFrame({"_i": pl.int_range(0, n, eager=True, dtype=pl.Int64)})
    out = rows.join(grouped, on="_i", how="left", maintain_order="left").get_column(name)
    return out.fill_null(pl.lit([], dtype=out.dtype)) if out.null_count() else out


def _messages(values: list[list[dict]]) -> pl.Series:
    """Chat-message lists as a polars column, built from flat role/content columns.

    Converting a Python list of lists of dicts row by row is polars' slowest path (it
    dominated decompose's profile); flat string columns regrouped in Rust are fast.
    """
    idx: list[int] = []
    roles: list[str] = []
    contents: list[str] = []
    for i, v in enumerate(values):
        for m in v:
            idx.append(i)
            roles.append(m["role"])
            contents.append(m["content"])
    flat = pl.DataFrame({"role": pl.Series(roles, dtype=pl.String), "content": pl.Series(contents, dtype=pl.String)})
    return _regroup(len(values), idx, flat, "prompt", pl.struct("role", "content")).cast(MESSAGES)


def _str_lists(values: list[list[str]]) -> pl.Series:
    """list[list[str]] from one flat string column instead of a Series per row."""
    idx = [i for i, v in enumerate(values) for _ in v]
    flat = pl.DataFrame({"v": pl.Series([x for v in values for x in v], dtype=pl.String)})
    return _regroup(len(values), idx, flat, "v", pl.col("v")).cast(pl.List(pl.String))


def frame(table: Table, name: str, mask: list[bool] | None = None) -> pl.DataFrame:
    """A typed DataFrame from a buffer (optionally only the rows where mask is True)."""
    cols = table.cols
    if mask is not None:
        cols = {c: [v for v, keep in zip(vals, mask) if keep] for c, vals in cols.items()}
    schema = SCHEMAS[name]
    fast = {c: _messages(v) for c, v in cols.items() if schema[c] == MESSAGES}
    fast.update({c: _str_lists(v) for c, v in cols.items() if schema[c] == pl.List(pl.String)})
    series = [fast[c] if c in fast else pl.Series(c, v, dtype=schema[c]) for c, v in cols.items()]
    return pl.DataFrame([s.alias(c) for s, c in zip(series, cols)])


def row_group_chunks(df: pl.DataFrame) -> pl.DataFrame:
    """The frame as fresh, compact chunks of ROW_GROUP rows.

    Why: polars writes a row group of nested columns (prompt, context_steps) from a slice
    of one big chunk several times slower than from a chunk of its own, and this layout
    makes the bytes depend only on the rows, never on how the frame was assembled.
    """
    if df.height <= ROW_GROUP:
        return df.rechunk()
    idx = pl.int_range(0, df.height, eager=True, dtype=pl.Int64)
    return pl.concat([df.gather(idx.slice(o, ROW_GROUP)) for o in range(0, df.height, ROW_GROUP)], rechunk=False)


def write_parquet(df: pl.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        row_group_chunks(df).write_parquet(tmp, compression="zstd", compression_level=3, statistics=True,
                                           row_group_size=ROW_GROUP)


def concat_parquet(parts: list[Path], out: Path, name: str) -> int:
    """Concatenate small part files (rejects) into one file; returns the row count."""
    frames = [pl.read_parquet(p) for p in parts]
    df = pl.concat(frames) if frames else pl.DataFrame(schema=SCHEMAS[name])
    write_parquet(df, out)
    return df.height
