"""One work unit of `decompose`: validate, segment and render a block of source rows.

The unit owns its buffers and writes its part files, then its completion marker
(counts, stats, accepted ids and the rows in each part). Nothing is shared with other
units except `seen` (trajectory ids accepted so far, for the duplicate check).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

from srlkit.data import instances as inst
from srlkit.data import shards
from srlkit.data import stats
from srlkit.data.answers import extract_answer, strip_thinking
from srlkit.data.expand import TrajBuffer, can_expand, expand
from srlkit.data.presets import Columns, extract
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

    def _reject(self, i: int, tid: str | None, reason: str, detail: str = "") -> None:
        inst.add_reject(self.rejects, i, tid, reason, detail)
        self.counts["rejected"] += 1
        self.stats["rejects"][reason] += 1

    def row(self, i: int, rec: dict | Reject) -> None:
        self.counts["input"] += 1
        cfg = self.cfg
        if isinstance(rec, Reject):
            return self._reject(i, None, rec.reason, rec.detail)
        size = _row_chars(rec)
        if size > cfg.max_row_bytes:
            return self._reject(i, None, "row_too_large", f"{size} chars > {cfg.max_row_bytes}")
        f = extract(rec, self.cols)
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
            seg = Reject("too_few_steps" if len(ts) < cfg.min_steps else "too_many_steps", f"{len(ts)} turns")
        if isinstance(seg, Reject):
            return self._reject(i, f.tid, seg.reason, seg.detail)
        tid = f.tid
        if tid is None:
            raw = sol if isinstance(sol, str) else json.dumps(f.solution, sort_keys=True, ensure_ascii=False)
            tid = hashlib.sha256(f"{f.problem}\0{raw}".encode()).hexdigest()[:16]
        if tid in self.seen:
            return self._reject(i, tid, "duplicate_id", f"id {tid} already seen")
        self.seen.add(tid)
        self.ids.append(tid)
        self.counts["accepted"] += 1
        stats.add_trajectory(self.stats, seg.steps, seg.strategy, seg.preamble)
        # count mode: everything is train for now; finish() sets aside this unit's candidates
        if cfg.split_col:  # the source names each row's split (e.g. gym: disjoint seed ranges)
            split = "validation" if rec.get(cfg.split_col) == "validation" else "train"
        else:
            split = "train" if count_mode(cfg.val_size) or split_hash(tid, cfg.seed) >= cfg.val_size else "validation"
        srl = self.tables[(SRL_TABLE, split)]
        seq = len(self.ids) - 1
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
        if answer:
            inst.add_rlvr(self.tables[(RLVR_TABLE, split)], tid=tid, source_row=i, problem=f.problem,
                          answer=answer, templates=self.templates)
        else:  # SRL only: the reason (the preset's gold rule, else no answer at all) goes to rejects
            reason = "no_trusted_answer" if f.no_answer else "no_answer"
            inst.add_reject(self.rejects, i, tid, reason, f.no_answer or "no answer column, \\boxed{} or ####", "rlvr")
            self.counts["rlvr_rejected"] += 1
            self.stats["rlvr_rejects"][reason] += 1

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
        paths = unit_parts(self.work, self.index)
        rows: dict[str, int] = {}
        for (t, s), table in self.tables.items():
            full = self._srl_frame(s, table) if t == SRL_TABLE else shards.frame(table, t)
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
