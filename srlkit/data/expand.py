"""Stage 4, vectorised: expand text trajectories into SRL instances with polars.

Per trajectory, Python keeps only what needs Python (segmentation, the sha256 target
hashes); the per-instance work, which dominated decompose (N rows per trajectory, each
repeating the problem and the growing context twice), runs in Rust: `int_ranges` +
`explode` gives one row per target step, `list.slice` + `list.join` the context, and
`concat_str` renders the templates. The values are exactly those of `instances.add_srl`
(tests compare the two), so outputs do not depend on which path built them.
"""

from __future__ import annotations

from string import Formatter

import polars as pl

from srlkit.data.templates import NO_CONTEXT, Templates
from srlkit.schema import step_hash

FIELDS = ("problem", "context", "step_number", "title")


class TrajBuffer:
    """Column-wise buffer of segmented text trajectories (one entry per trajectory)."""

    def __init__(self, title_hint: bool):
        self.title_hint = title_hint
        self.cols: dict[str, list] = {c: [] for c in (
            "_seq", "trajectory_id", "source_row", "problem", "answer", "strategy",
            "shown", "targets", "hints", "titles", "hashes")}

    def __len__(self) -> int:
        return len(self.cols["_seq"])

    def add(self, *, seq: int, tid: str, source_row: int, problem: str, steps: list[str],
            titles: list[str | None], answer: str | None, strategy: str) -> None:
        shown = [f"**{t}** {b}" if t else b for b, t in zip(steps, titles)]
        # the target drops the title when the prompt already shows it (`--title-hint`)
        hints = [t or None for t in titles] if self.title_hint else [None] * len(steps)
        targets = [b if h else s for b, s, h in zip(steps, shown, hints)]
        c = self.cols
        c["_seq"].append(seq)
        c["trajectory_id"].append(tid)
        c["source_row"].append(source_row)
        c["problem"].append(problem)
        c["answer"].append(answer)
        c["strategy"].append(strategy)
        c["shown"].append(shown)
        c["targets"].append(targets)
        c["hints"].append(hints)
        c["titles"].append(titles)
        c["hashes"].append([step_hash(t) for t in targets])


def template_expr(template: str, values: dict[str, pl.Expr]) -> pl.Expr | None:
    """`template.format(**values)` as a polars expression (None: needs Python formatting)."""
    parts: list[pl.Expr] = []
    try:
        parsed = list(Formatter().parse(template))
    except ValueError:
        return None
    for literal, name, spec, conv in parsed:
        if literal:
            parts.append(pl.lit(literal, dtype=pl.String))
        if name is None:
            continue
        if name not in FIELDS or spec or conv:
            return None
        parts.append(values[name])
    return pl.concat_str(parts) if parts else pl.lit("", dtype=pl.String)


def can_expand(templates: Templates) -> bool:
    dummy = {f: pl.lit("") for f in FIELDS}
    return all(template_expr(t, dummy) is not None for t in (templates.srl_user, templates.srl_user_hint))


def _lists(values: list[list], dtype: pl.DataType) -> pl.Series:
    """list[list[str]] built from one flat column and offsets (row-wise nested conversion is slow)."""
    import pyarrow as pa

    offsets = [0]
    for v in values:
        offsets.append(offsets[-1] + len(v))
    # polars converts a flat list of str far faster than pyarrow does; arrow then wraps it in offsets
    flat = pl.Series([x for v in values for x in v], dtype=dtype).to_arrow()
    arr = pa.LargeListArray.from_arrays(pl.Series(offsets, dtype=pl.Int64).to_arrow(), flat)
    return pl.Series(pl.from_arrow(arr)).cast(pl.List(dtype))


def expand(buf: TrajBuffer, targets: str, templates: Templates) -> pl.DataFrame:
    """One row per target step, SRL columns plus `_seq` (the trajectory's order in the unit)."""
    c = buf.cols
    lengths = pl.Series([len(v) for v in c["shown"]], dtype=pl.Int64)
    t = pl.DataFrame({
        "_seq": pl.Series(c["_seq"], dtype=pl.Int64),
        "trajectory_id": pl.Series(c["trajectory_id"], dtype=pl.String),
        "source_row": pl.Series(c["source_row"], dtype=pl.Int64),
        "problem": pl.Series(c["problem"], dtype=pl.String),
        "answer": pl.Series(c["answer"], dtype=pl.String),
        "strategy": pl.Series(c["strategy"], dtype=pl.String),
        "shown": _lists(c["shown"], pl.String),
        "_off": lengths.cum_sum() - lengths,  # where the trajectory's steps start in the flat columns
    })
    # per-step values stay flat and are gathered per instance; only the lists that are sliced
    # (shown, numbered) are exploded with the instances
    flat = {k: pl.Series([x for v in c[k] for x in v], dtype=pl.String) for k in ("targets", "hints", "titles", "hashes")}
    number = (pl.int_range(pl.len()) + 1).cast(pl.String)  # "1. step" context lines, once per trajectory
    t = t.with_columns(numbered=pl.col("shown").list.eval(pl.concat_str(number, pl.lit(". "), pl.element())))
    n = pl.col("shown").list.len()
    lo = pl.lit(1) if targets == "skip-first" else pl.lit(0)
    hi = n - 1 if targets == "skip-last" else n
    k = pl.col("k")
    inst = (t.with_columns(num_steps=n.cast(pl.Int32), k=pl.int_ranges(lo, pl.max_horizontal(lo, hi), dtype=pl.Int64))
            .explode("k").filter(k.is_not_null()))
    at = inst.get_column("_off") + inst.get_column("k")
    inst = inst.with_columns(**{f"_{name}": col.gather(at) for name, col in flat.items()})
    hint = pl.col("_hints")
    context = pl.col("numbered").list.slice(0, k).list.join("\n")
    values = {"problem": pl.col("problem"), "step_number": (k + 1).cast(pl.String),
              "context": pl.when(k == 0).then(pl.lit(NO_CONTEXT)).otherwise(context),
              "title": hint.fill_null("")}
    user = (pl.when(hint.is_not_null()).then(template_expr(templates.srl_user_hint, values))
            .otherwise(template_expr(templates.srl_user, values)))
    inst = inst.select(
        pl.concat_str(pl.col("trajectory_id"), pl.lit("/"), k.cast(pl.String)).alias("id"),
        "trajectory_id", "source_row", k.cast(pl.Int32).alias("step_index"), "num_steps", "problem",
        pl.col("shown").list.slice(0, k).alias("context_steps"),
        pl.col("_targets").alias("target"), pl.col("_titles").alias("target_title"),
        pl.col("_hashes").alias("target_hash"), "answer", "strategy", user.alias("_user"), "_seq",
    )
    return inst.with_columns(prompt=_messages(templates.srl_system, inst.get_column("_user"))).select(
        *[c for c in inst.columns if c not in ("_user", "_seq")], "prompt", "_seq")


def _messages(system: str, user: pl.Series) -> pl.Series:
    """[{system}, {user}] per row. Why not `concat_list` of structs: a flat frame of messages
    regrouped with `group_by` is several times cheaper in polars."""
    flat = pl.DataFrame({"u": user}).select(
        _i=pl.int_range(pl.len(), dtype=pl.Int64),
        content=pl.concat_list(pl.lit(system, dtype=pl.String), pl.col("u")),
    ).explode("content")
    roles = pl.Series("role", ["system", "user"] * user.len(), dtype=pl.String)
    grouped = flat.with_columns(roles).group_by("_i", maintain_order=True).agg(pl.struct("role", "content"))
    return grouped.get_column("role").alias("prompt").cast(pl.List(pl.Struct({"role": pl.String, "content": pl.String})))
