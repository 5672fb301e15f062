"""One work unit of `decompose`: validate, segment and render a block of source rows.

The unit owns its buffers and writes its part files, then its completion marker
(counts, stats, accepted ids and the rows in each part). Nothing is shared with other
units except `seen` (trajectory ids accepted so far, for the duplicate check).

Batch mode (text solutions, `--steps auto|numbered`, no rewriter, templates polars can
render): rows are held until `finish`, where `vector.numbered_limits` segments every
simple numbered text of the unit at once and their RLVR rows are rendered in polars.
Every other row takes the row-wise `_row`, in source order, so ids, duplicates,
rejects and output order are exactly those of the row-wise path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from srlkit.data import instances as inst
from srlkit.data import shards, stats, vector
from srlkit.data.answers import extract_answer, strip_thinking
from srlkit.data.expand import TrajBuffer, can_expand, can_render_rlvr, expand, rlvr_frame
from srlkit.data.presets import Columns, Fields, extract
from srlkit.data.segment import Segmented, apply_limits, segment_text
from srlkit.data.sources import Reject
from srlkit.data.turns import has_tool_calls, last_assistant_text, turns
from srlkit.fileio import write_json
from srlkit.schema import RLVR_TABLE, SPLITS, SRL_TABLE


def unit_parts(work: Path, u: int) -> dict[str, Path]:
    parts = {f"{t}.{s}": work / f"unit-{u:05d}.{t}.{s}.parquet"
             for t in (SRL_TABLE, RLVR_TABLE) for s in (*SPLITS, "candidates")}
    parts["rejects"] = work / f"unit-{u:05d}.rejects.parquet"
    return parts


def split_hash(tid: str, seed: int) -> float:
    """A seeded hash of the trajectory id in [0, 1): every step of a problem lands in the same split."""
    h = hashlib.blake2b(f"{seed}:{tid}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2**64


def count_mode(val_size: float) -> bool:
    """val_size >= 1 is a count: the `val_size` trajectories with the smallest hash."""
    return val_size >= 1


# batch mode holds at most this many characters of source rows before it drains (a unit of 20k
# ~1 MB agent trajectories would otherwise hold 20 GB); draining more often changes no output byte
PENDING_CHARS = 64_000_000


def _row_chars(rec: dict) -> int:
    n = 0
    for v in rec.values():
        if isinstance(v, str):
            n += len(v)
        elif isinstance(v, (list, dict)):
            n += len(json.dumps(v, ensure_ascii=False))
    return n


class UnitProcessor:
    def __init__(self, index, cfg, cols: Columns, templates, rewriter, work: Path, seen: set[str]):
        self.index, self.cfg, self.cols, self.templates = index, cfg, cols, templates
        self.rewriter, self.work, self.seen = rewriter, work, seen
        self.tables = {(t, s): inst.Table(shards_cols(t)) for t in (SRL_TABLE, RLVR_TABLE) for s in SPLITS}
        self.rejects = inst.Table(shards_cols("rejects"))
        self.stats = stats.new_stats()
        self.counts = {"input": 0, "accepted": 0, "rejected": 0, "rlvr_rejected": 0}
        self.ids: list[str] = []
        # text trajectories go to a per-split buffer expanded in polars at finish(); agent
        # instances stay row-wise, tagged with their trajectory's order to interleave them back
        self.fast = can_expand(templates)
        self.bufs = {s: TrajBuffer(cfg.title_hint) for s in SPLITS}
        self.agent_seq: dict[str, list[int]] = {s: [] for s in SPLITS}
        # batch mode: rows wait for finish(), where the unit's numbered texts are segmented at once
        # in polars (`vector.py`); the rows that need Python still go through `_row`, in source order
        self.batch = self.fast and rewriter is None and cfg.steps in ("auto", "numbered")
        self.rlvr_fast = self.batch and can_render_rlvr(templates)  # decided rows' RLVR rows in polars
        self.pending: list[tuple[int, dict | Reject, int]] = []  # (source row, record, its size in chars)
        self.pending_chars = 0
        self.rlvr_seq: dict[str, list[int]] = {s: [] for s in SPLITS}  # batch: row-wise RLVR rows' order
        self.rlvr_blocks: dict[str, list[pl.DataFrame]] = {s: [] for s in SPLITS}  # batch: rendered in polars

    def _reject(self, i: int, tid: str | None, reason: str, detail: str = "") -> None:
        inst.add_reject(self.rejects, i, tid, reason, detail)
        self.counts["rejected"] += 1
        self.stats["rejects"][reason] += 1

    def row(self, i: int, rec: dict | Reject) -> None:
        if not self.batch:
            return self._row(i, rec)
        size = 0 if isinstance(rec, Reject) else _row_chars(rec)
        self.pending.append((i, rec, size))
        self.pending_chars += size
        if self.pending_chars > PENDING_CHARS:  # big rows: drain early (rows stay in order, outputs identical)
            self._drain()

    def _fields(self, rec: dict | Reject, size: int | None = None) -> Fields | Reject:
        if isinstance(rec, Reject):
            return rec
        size = _row_chars(rec) if size is None else size
        if size > self.cfg.max_row_bytes:
            return Reject("row_too_large", f"{size} chars > {self.cfg.max_row_bytes}")
        return extract(rec, self.cols)

    def _row(self, i: int, rec: dict | Reject, f: Fields | Reject | None = None) -> None:
        """One row, the row-wise way (`f`: its fields when the batch pass already read them)."""
        self.counts["input"] += 1
        cfg = self.cfg
        f = self._fields(rec) if f is None else f
        if isinstance(f, Reject):
            return self._reject(i, None, f.reason, f.detail)
        sol, answer, ts, seg = f.solution, f.answer, None, None
        if isinstance(sol, list) and sol and isinstance(sol[0], dict):  # chat messages
            if cfg.steps == "turns" or (cfg.steps == "auto" and has_tool_calls(sol)):
                ts = turns(sol)
            else:
                sol = strip_thinking(last_assistant_text(sol))
                answer = answer or extract_answer(sol)
                if not sol:
                    return self._reject(i, f.tid, "no_steps", "no assistant text")
        elif cfg.steps == "turns":
            return self._reject(i, f.tid, "no_steps", "--steps turns needs chat messages with assistant turns")
        if ts is not None:
            seg = Segmented("turns", [t.action for t in ts], [None] * len(ts))
        elif isinstance(sol, list):
            seg = Segmented("given", sol, [None] * len(sol))
        else:
            if self.rewriter is not None:
                new = self.rewriter(f.problem, sol)
                if isinstance(new, Reject):
                    return self._reject(i, f.tid, new.reason, new.detail)
                sol = new
            seg = segment_text(sol, "numbered" if self.rewriter is not None else cfg.steps)
        if ts is None:
            seg = apply_limits(seg, min_chars=cfg.min_step_chars, max_chars=cfg.max_step_chars,
                               min_steps=cfg.min_trajectory_steps, max_steps=cfg.max_trajectory_steps)
        elif not ts:
            seg = Reject("no_steps", "no assistant turns with an action")
        elif not cfg.min_trajectory_steps <= len(ts) <= cfg.max_trajectory_steps:
            seg = Reject("too_few_steps" if len(ts) < cfg.min_trajectory_steps else "too_many_steps", f"{len(ts)} turns")
        if isinstance(seg, Reject):
            return self._reject(i, f.tid, seg.reason, seg.detail)
        accepted = self._accept(i, rec, f, sol)
        if accepted is None:
            return
        tid, split, seq = accepted
        stats.add_trajectory(self.stats, seg.steps, seg.strategy, seg.preamble)
        srl = self.tables[(SRL_TABLE, split)]
        if ts is not None:
            n = inst.add_agent(srl, tid=tid, source_row=i, problem=f.problem, ts=ts, history=cfg.history,
                               targets=cfg.targets, templates=self.templates)
            self.agent_seq[split] += [seq] * n
        elif self.fast:
            self.bufs[split].add(seq=seq, tid=tid, source_row=i, problem=f.problem, steps=seg.steps,
                                 titles=seg.titles, answer=answer, strategy=seg.strategy)
        else:
            inst.add_srl(srl, tid=tid, source_row=i, problem=f.problem, steps=seg.steps, titles=seg.titles,
                         answer=answer, strategy=seg.strategy, targets=cfg.targets,
                         title_hint=cfg.title_hint, templates=self.templates)
        self._rlvr(i, tid, split, seq, f.problem, answer, f.no_answer)

    def _accept(self, i: int, rec: dict, f: Fields, sol) -> tuple[str, str, int] | None:
        """The trajectory's id, split and order in the unit; None when its id was already seen."""
        cfg = self.cfg
        tid = f.tid
        if tid is None:
            raw = sol if isinstance(sol, str) else json.dumps(f.solution, sort_keys=True, ensure_ascii=False)
            tid = hashlib.sha256(f"{f.problem}\0{raw}".encode()).hexdigest()[:16]
        if tid in self.seen:
            self._reject(i, tid, "duplicate_id", f"id {tid} already seen")
            return None
        self.seen.add(tid)
        self.ids.append(tid)
        self.counts["accepted"] += 1
        # count mode: everything is train for now; finish() sets aside this unit's candidates
        if cfg.split_col:  # the source names each row's split (e.g. gym: disjoint seed ranges)
            split = "validation" if rec.get(cfg.split_col) == "validation" else "train"
        else:
            split = "train" if count_mode(cfg.val_size) or split_hash(tid, cfg.seed) >= cfg.val_size else "validation"
        return tid, split, len(self.ids) - 1

    def _rlvr(self, i: int, tid: str, split: str, seq: int, problem: str, answer: str | None, no_answer: str,
              later: bool = False) -> None:
        """The RLVR row (or its reject); `later`: the row is rendered in bulk by `_drain`."""
        if answer and later:
            return
        if answer:
            self.rlvr_seq[split].append(seq)
            inst.add_rlvr(self.tables[(RLVR_TABLE, split)], tid=tid, source_row=i, problem=problem,
                          answer=answer, templates=self.templates)
        else:  # SRL only: the reason (the preset's gold rule, else no answer at all) goes to rejects
            reason = "no_trusted_answer" if no_answer else "no_answer"
            inst.add_reject(self.rejects, i, tid, reason, no_answer or "no answer column, \\boxed{} or ####", "rlvr")
            self.counts["rlvr_rejected"] += 1
            self.stats["rlvr_rejects"][reason] += 1

    def _drain(self) -> None:
        """The batch: read every row's fields, segment the numbered texts in polars, then take the
        rows in source order: decided ones are accepted here, the rest go through `_row`."""
        pending, self.pending, self.pending_chars = self.pending, [], 0
        if not pending:
            return
        cfg = self.cfg
        fields = [self._fields(rec, size) for _, rec, size in pending]
        texts = [j for j, f in enumerate(fields) if isinstance(f, Fields) and isinstance(f.solution, str)]
        decided = vector.numbered_limits(
            pl.Series([fields[j].solution for j in texts], dtype=pl.String), min_chars=cfg.min_step_chars,
            max_chars=cfg.max_step_chars, min_steps=cfg.min_trajectory_steps, max_steps=cfg.max_trajectory_steps)
        which = dict(zip(texts, range(len(texts))))
        ok = decided.ok.to_list()
        took: dict[str, list] = {"_r": [], "_seq": [], "trajectory_id": [], "source_row": [], "problem": [],
                                 "answer": [], "split": []}
        for j, (i, rec, _) in enumerate(pending):
            r = which.get(j)
            if r is None or not ok[r]:
                self._row(i, rec, fields[j])
                continue
            f = fields[j]
            self.counts["input"] += 1
            accepted = self._accept(i, rec, f, f.solution)
            if accepted is None:
                continue
            tid, split, seq = accepted
            for c, v in zip(took, (r, seq, tid, i, f.problem, f.answer, split)):
                took[c].append(v)
            self._rlvr(i, tid, split, seq, f.problem, f.answer, f.no_answer, later=self.rlvr_fast)
        if not took["_r"]:
            return
        traj = pl.DataFrame(took, schema_overrides={"_r": pl.UInt32}).with_columns(strategy=pl.lit("numbered"))
        with_answer = traj.filter(pl.col("answer").is_not_null() & (pl.col("answer") != ""))
        rlvr = rlvr_frame(with_answer, self.templates) if self.rlvr_fast else None
        steps = decided.steps.join(traj.select("_r", "_seq", "split"), on="_r", how="inner", maintain_order="left")
        stats.add_block(self.stats, steps.get_column("_seq"), steps.get_column("body").str.len_chars(), "numbered",
                        preamble=int(decided.preamble.gather(traj.get_column("_r")).sum()))
        for split in SPLITS:
            part = traj.filter(pl.col("split") == split)
            if part.height:
                self.bufs[split].add_frames(part, steps.filter(pl.col("split") == split))
            if rlvr is not None:
                self.rlvr_blocks[split].append(rlvr.filter(pl.col("_seq").is_in(part.get_column("_seq").implode())))

    def _rlvr_frame(self, split: str, table: inst.Table) -> pl.DataFrame:
        """The split's RLVR rows in trajectory order: row-wise ones plus those rendered in bulk."""
        rows = shards.frame(table, RLVR_TABLE)
        blocks = [b for b in self.rlvr_blocks[split] if b.height]
        if not blocks:
            return rows
        rows = rows.with_columns(_seq=pl.Series(self.rlvr_seq[split], dtype=pl.Int64))
        return pl.concat([rows, *blocks], how="vertical").sort("_seq", maintain_order=True).drop("_seq")

    def _srl_frame(self, split: str, table: inst.Table) -> pl.DataFrame:
        """The split's SRL rows in trajectory order: polars-expanded text plus row-wise agent rows."""
        rows = shards.frame(table, SRL_TABLE)
        buf = self.bufs[split]
        if not len(buf):
            return rows
        fast = expand(buf, self.cfg.targets, self.templates)
        if not rows.height:
            return fast.drop("_seq")
        rows = rows.with_columns(_seq=pl.Series(self.agent_seq[split], dtype=pl.Int64))
        return pl.concat([fast, rows], how="vertical").sort("_seq", "step_index", maintain_order=True).drop("_seq")

    def finish(self) -> None:
        """Write the unit's parts, then its marker (the marker is what makes it count as done)."""
        self._drain()
        paths = unit_parts(self.work, self.index)
        rows: dict[str, int] = {}
        for (t, s), table in self.tables.items():
            full = self._srl_frame(s, table) if t == SRL_TABLE else self._rlvr_frame(s, table)
            parts = {s: full}
            if count_mode(self.cfg.val_size) and s == "train":
                # only this unit's k smallest hashes can be among the k smallest overall
                k = int(self.cfg.val_size)
                cand = sorted(self.ids, key=lambda i: split_hash(i, self.cfg.seed))[:k]
                inside = pl.col("trajectory_id" if t == SRL_TABLE else "id").is_in(pl.Series(cand, dtype=pl.String))
                parts = {"train": full.filter(~inside), "candidates": full.filter(inside)}
            for name, df in parts.items():
                if df.height:
                    shards.write_parquet(df, paths[f"{t}.{name}"])
                rows[f"{t}.{name}"] = df.height
        if len(self.rejects):
            shards.write_parquet(shards.frame(self.rejects, "rejects"), paths["rejects"])
        rows["rejects"] = len(self.rejects)
        marker = {"counts": self.counts, "stats": stats.to_json(self.stats), "ids": self.ids, "parts": rows}
        write_json(self.work / f"unit-{self.index:05d}.json", marker)


def shards_cols(name: str) -> dict:
    return shards.SCHEMAS[name]
