"""Stage 3, vectorised: numbered segmentation and the length limits for a whole work unit in polars.

`segment.numbered` + `segment.apply_limits` walk one text at a time in Python. Most real
solutions are simple: their marker lines count 1, 2, 3... at one indentation, and no step
needs merging or splitting. For those the result is fully determined by per-line regex
matches, so polars computes it for every row of a unit at once. A row is *decided* here only
when the answer is provably the Python one; every other row (out-of-sequence or nested
markers, `**Step N**`/`### Step N` markers, a merge, a split, a reject, characters on which
Python's and Rust's regex/whitespace rules differ) is left to the row-wise path.
`tests/data/test_vector.py` checks the two paths agree on fuzzed texts.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

# segment._MARK_LINE in Rust syntax. Rust's regex has no lookahead: Python's `(?=[ \t*]|$)` after
# `N.` becomes the consumed group `la`, whose length is taken off the match end.
MARK = (r"(?i)^(?P<m>(?P<ind>[ \t]*)(?P<head>#{1,6}[ \t]*)?(?P<bold>\*\*)?"
        r"(?:step[ \t]*(?P<sn>\d{1,3})[ \t]*[:.)\-]?|(?P<n>\d{1,3})[.)](?P<la>[ \t*]|$)))")
# segment._is_header(line) or segment._HEADING.match(line): the preamble lines that are dropped
HEADER = r"(?i)^\s*(?:\*\*)?SOLUTION:?(?:\*\*)?\s*$"
GENERIC = r"(?i)^(?:\*\*)?(?:solutions?|answers?|final answers?|proof|analysis)(?:[ \t]*\d+)?[ \t]*[.:]?(?:\*\*)?$"
HEADING = r"^[ \t]*#{1,6}[ \t]+\S"
# Python counts \x1c-\x1f as whitespace (str.strip, \s) and Rust does not; re.IGNORECASE and
# Rust's (?i) may fold these letters differently. A text holding any of them takes the Python path.
UNSAFE = "[\x1c-\x1f\u017f\u212a\u0130\u0131]"


@dataclass
class Decided:
    ok: pl.Series  # Boolean, one per input text: True when `steps` holds its segmentation
    steps: pl.DataFrame  # `_r` (the text's index), `body`, `title`: the decided texts' steps, in order
    preamble: pl.Series  # Boolean per text: the text before "1." was kept as its own first step


def numbered_limits(texts: pl.Series, *, min_chars: int, max_chars: int, min_steps: int,
                    max_steps: int) -> Decided:
    """What `apply_limits(numbered(text), ...)` gives, for the texts whose result is simple."""
    n, texts = texts.len(), texts.cast(pl.String)
    lines = (pl.DataFrame({"text": texts}).with_row_index("_r")
             .select("_r", line=pl.col("text").str.split("\n")).explode("line"))
    g = lines.get_column("line").str.extract_groups(MARK)
    mark = g.struct.field("m").is_not_null()
    num = pl.coalesce(g.struct.field("sn"), g.struct.field("n")).cast(pl.Int64, strict=False)
    end = g.struct.field("m").str.len_chars() - g.struct.field("la").str.len_chars().fill_null(0)
    lines = lines.with_columns(
        mark=mark, num=num, ind=g.struct.field("ind").str.len_chars(),
        plain=g.struct.field("head").is_null() & g.struct.field("bold").is_null(),
        content=pl.when(mark).then(pl.col("line").str.slice(end)).otherwise(pl.col("line")),
    ).with_columns(s=pl.col("mark").cum_sum().over("_r"))
    line = pl.col("line")
    header = (line.str.contains(HEADER) | line.str.strip_chars().str.contains(GENERIC) | line.str.contains(HEADING))
    # a marker line is simple when it is the s-th marker, numbered s, plain, at the first marker's indentation
    rows = lines.group_by("_r", maintain_order=True).agg(
        marks=pl.col("mark").sum(),
        bad=(pl.col("mark") & ~((pl.col("num") == pl.col("s")).fill_null(False) & pl.col("plain"))).any(),
        inds=pl.col("ind").filter(pl.col("mark")).n_unique(),
    )
    unsafe = texts.str.contains(UNSAFE).fill_null(True)
    simple = (rows.get_column("marks") >= 2) & ~rows.get_column("bad") & (rows.get_column("inds") == 1) & ~unsafe

    keep = lines.filter(pl.col("_r").is_in(rows.get_column("_r").filter(simple).implode())
                        & ((pl.col("s") > 0) | ~header))
    raw = _join_steps(keep).with_columns(raw=pl.col("raw").str.strip_chars())
    # segment._TITLE without the regex (its lazy `{1,200}?` is slow in Rust): `**`, then 1-200
    # characters other than `*` and newline, then `**`, spaces or tabs, one optional separator
    parts = pl.col("raw").str.splitn("**", 3)
    inner, rest = parts.struct.field("field_1"), parts.struct.field("field_2")
    titled = ((pl.col("s") > 0) & pl.col("raw").str.starts_with("**") & rest.is_not_null()
              & inner.str.len_chars().is_between(1, 200) & ~inner.str.contains("[*\n]"))
    after = rest.str.strip_chars_start(" \t").str.replace("^[:.\\-–—]", "")
    st = raw.with_columns(title=pl.when(titled).then(inner.str.strip_chars(" :.")),
                          body=pl.when(titled).then(after.str.strip_chars()).otherwise(pl.col("raw")))
    # a title with no body: the title is the step (untitled)
    empty = pl.col("body") == ""
    st = st.with_columns(body=pl.when(empty).then(pl.col("title").fill_null("")).otherwise(pl.col("body")),
                         title=pl.when(empty).then(None).otherwise(pl.col("title")))
    # the preamble (s == 0) is a step only when something is left of it
    st = st.filter((pl.col("s") > 0) | (pl.col("raw") != ""))
    length = pl.col("body").str.len_chars()
    has_title = pl.col("title").is_not_null() & (pl.col("title") != "")
    per_row = st.group_by("_r", maintain_order=True).agg(
        count=pl.len(), pre=(pl.col("s") == 0).any(),
        fits=((length >= min_chars) | has_title).all() & (length <= max_chars).all(),
    ).filter(pl.col("fits") & pl.col("count").is_between(min_steps, max_steps))
    index = pl.DataFrame({"_r": pl.int_range(0, n, eager=True, dtype=pl.UInt32)})
    decided = index.join(per_row.select("_r", "pre", ok=pl.lit(True)), on="_r", how="left", maintain_order="left")
    ok = decided.get_column("ok").fill_null(False)
    steps = st.filter(pl.col("_r").is_in(per_row.get_column("_r").implode())).select("_r", "body", "title")
    return Decided(ok, steps, decided.get_column("pre").fill_null(False))


def _join_steps(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per (`_r`, `s`) run of consecutive lines, their `content` joined with newlines.

    The lines are in order, so each group is a contiguous run: a list column built from the run
    offsets (no hashing, no copy) and `list.join` do what `group_by(...).agg(str.join)` would.
    """
    import pyarrow as pa

    new = (pl.col("_r") != pl.col("_r").shift(1)) | (pl.col("s") != pl.col("s").shift(1))
    starts = lines.with_row_index("_i").filter(new.fill_null(True))
    offsets = pl.concat([starts.get_column("_i").cast(pl.Int64), pl.Series([lines.height], dtype=pl.Int64)])
    runs = pa.LargeListArray.from_arrays(offsets.to_arrow(), lines.get_column("content").cast(pl.String).to_arrow())
    joined = pl.Series(pl.from_arrow(runs)).cast(pl.List(pl.String)).list.join("\n")
    return starts.select("_r", "s").with_columns(raw=joined)
