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
from typing import ClassVar

import polars as pl

from srlkit.data.templates import NO_CONTEXT, Templates
from srlkit.schema import step_hash

FIELDS = ("problem", "context", "step_number", "title")


class TrajBuffer:
    """Segmented text trajectories: one entry per trajectory plus their steps, flat.

    `add` takes one trajectory from the row-wise path; `add_frames` takes a whole block that
    `vector.numbered_limits` decided (a trajectory frame and its steps frame).
    """

    TRAJ: ClassVar[dict[str, pl.DataType]] = {
        "_seq": pl.Int64, "trajectory_id": pl.String, "source_row": pl.Int64, "problem": pl.String,
        "answer": pl.String, "strategy": pl.String}
    STEPS: ClassVar[dict[str, pl.DataType]] = {"_seq": pl.Int64, "body": pl.String, "title": pl.String}

    def __init__(self, title_hint: bool):
        self.title_hint = title_hint
        self.cols: dict[str, list] = {c: [] for c in self.TRAJ}
        self.steps: dict[str, list] = {c: [] for c in self.STEPS}
        self.blocks: list[tuple[pl.DataFrame, pl.DataFrame]] = []

    def __len__(self) -> int:
        return len(self.cols["_seq"]) + sum(t.height for t, _ in self.blocks)

    def add(self, *, seq: int, tid: str, source_row: int, problem: str, steps: list[str],
            titles: list[str | None], answer: str | None, strategy: str) -> None:
        for c, v in zip(self.TRAJ, (seq, tid, source_row, problem, answer, strategy)):
            self.cols[c].append(v)
        self.steps["_seq"] += [seq] * len(steps)
        self.steps["body"] += steps
        self.steps["title"] += titles

    def add_frames(self, traj: pl.DataFrame, steps: pl.DataFrame) -> None:
        """A block of trajectories (the TRAJ columns) and their steps in order (the STEPS columns)."""
        self.blocks.append((traj.select(list(self.TRAJ)).cast(self.TRAJ), steps.select(list(self.STEPS)).cast(self.STEPS)))

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame]:
        """All trajectories and all their steps, in trajectory (`_seq`) order."""
        traj = pl.concat([pl.DataFrame(self.cols, schema=self.TRAJ), *(t for t, _ in self.blocks)])
        steps = pl.concat([pl.DataFrame(self.steps, schema=self.STEPS), *(s for _, s in self.blocks)])
        if self.blocks:  # each part is in order: a stable sort interleaves them
            traj, steps = traj.sort("_seq", maintain_order=True), steps.sort("_seq", maintain_order=True)
        return traj, steps


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
        if name not in values or spec or conv:
            return None
        parts.append(values[name])
    return pl.concat_str(parts) if parts else pl.lit("", dtype=pl.String)


def can_expand(templates: Templates) -> bool:
    dummy = {f: pl.lit("") for f in FIELDS}
    return all(template_expr(t, dummy) is not None for t in (templates.srl_user, templates.srl_user_hint))


def expand(buf: TrajBuffer, targets: str, templates: Templates) -> pl.DataFrame:
    """One row per target step, SRL columns plus `_seq` (the trajectory's order in the unit)."""
    import pyarrow as pa

    traj, steps = buf.frames()
    title, body = pl.col("title"), pl.col("body")
    titled = title.is_not_null() & (title != "")
    shown = pl.when(titled).then(pl.concat_str(pl.lit("**"), title, pl.lit("** "), body)).otherwise(body)
    # the target drops the title when the prompt already shows it (`--title-hint`)
    hint = pl.when(titled).then(title) if buf.title_hint else pl.lit(None, dtype=pl.String)
    steps = steps.with_columns(shown=shown, _hints=hint).with_columns(
        _targets=pl.when(pl.col("_hints").is_not_null()).then(body).otherwise(pl.col("shown")))
    hashes = [step_hash(x) for x in steps.get_column("_targets").to_list()]  # sha256: no polars kernel
    steps = steps.with_columns(pl.Series("_hashes", hashes, dtype=pl.String), _titles=title)
    counts = steps.group_by("_seq", maintain_order=True).len()
    lengths = traj.select("_seq").join(counts, on="_seq", how="left", maintain_order="left").get_column("len")
    lengths = lengths.fill_null(0).cast(pl.Int64)
    offsets = pl.concat([pl.Series([0], dtype=pl.Int64), lengths.cum_sum()])
    shown_lists = pa.LargeListArray.from_arrays(offsets.to_arrow(), steps.get_column("shown").to_arrow())
    t = traj.with_columns(shown=pl.Series(pl.from_arrow(shown_lists)).cast(pl.List(pl.String)),
                          _off=offsets.slice(0, traj.height))  # where the trajectory's steps start
    # per-step values stay flat and are gathered per instance; only the lists that are sliced
    # (shown, numbered) are exploded with the instances
    flat = {k: steps.get_column(f"_{k}") for k in ("targets", "hints", "titles", "hashes")}
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


def _rlvr_exprs(templates: Templates) -> tuple[pl.Expr | None, pl.Expr | None]:
    values = {"problem": pl.col("problem")}
    return template_expr(templates.rlvr_system, values), template_expr(templates.rlvr_user, values)


def can_render_rlvr(templates: Templates) -> bool:
    return all(e is not None for e in _rlvr_exprs(templates))


def rlvr_frame(rows: pl.DataFrame, templates: Templates) -> pl.DataFrame | None:
    """The RLVR table (plus `_seq`) for rows with `_seq`, `trajectory_id`, `source_row`, `problem` and
    `answer`: `instances.add_rlvr` in polars; None when a template needs Python formatting."""
    system, user = _rlvr_exprs(templates)
    if system is None or user is None:
        return None
    out = rows.select(pl.col("trajectory_id").alias("id"), "source_row", "problem", "answer",
                      system.alias("_system"), user.alias("_user"), "_seq")
    prompt = _messages(out.get_column("_system"), out.get_column("_user"))
    return out.with_columns(prompt=prompt).select("id", "source_row", "problem", "answer", "prompt", "_seq")


def _messages(system: str | pl.Series, user: pl.Series) -> pl.Series:
    """[{system}, {user}] per row. Why not `concat_list` of structs: a flat frame of messages
    regrouped with `group_by` is several times cheaper in polars."""
    first = pl.lit(system, dtype=pl.String) if isinstance(system, str) else pl.col("s")
    frame = pl.DataFrame({"u": user} if isinstance(system, str) else {"u": user, "s": system})
    flat = frame.select(
        _i=pl.int_range(pl.len(), dtype=pl.Int64),
        content=pl.concat_list(first, pl.col("u")),
    ).explode("content")
    roles = pl.Series("role", ["system", "user"] * user.len(), dtype=pl.String)
    grouped = flat.with_columns(roles).group_by("_i", maintain_order=True).agg(pl.struct("role", "content"))
    return grouped.get_column("role").alias("prompt").cast(pl.List(pl.Struct({"role": pl.String, "content": pl.String})))
