"""`decompose`: the orchestration of the data stages, streaming in work units.

Source rows are processed in units of `shard_rows` rows. Each unit writes its own part
files and then a completion marker (`_work/unit-NNNNN.json`); a rerun skips units whose
marker exists. Finalisation renames parts to Hub-style shard names, gathers rejects,
checks accepted + rejected == input, and writes manifest.json and README.md. Every
write is atomic, and nothing depends on time, so a run killed at any point and started
again ends byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from srlkit import __version__, stage
from srlkit.config import DecomposeConfig
from srlkit.data import shards
from srlkit.data.presets import _is_messages, detect_preset, get_preset, resolve
from srlkit.data.sources import Source, describe, open_source
from srlkit.data.templates import Templates
from srlkit.data.unit import UnitProcessor, count_mode, split_hash, unit_parts
from srlkit.errors import ConfigError, DataError
from srlkit.fileio import write_json
from srlkit.schema import RLVR_TABLE, SPLITS, SRL_TABLE, shard_name

OUTPUT_NAMES = (SRL_TABLE, RLVR_TABLE, "rejects.parquet", "manifest.json", "README.md")
HISTOGRAM = "steps_hist.png"  # the card's figure (`srlkit.data.card.HISTOGRAM`)


def default_out(source: str | None) -> Path:
    """`data/<source name>` (the bundled default: `data/champ`)."""
    if not source:
        return Path("data") / "champ"
    name = Path(source.rstrip("/")).name.split("*")[0].split(".")[0] or "dataset"
    return Path("data") / name


def run_key(cfg: DecomposeConfig, source: Source, fingerprint: str) -> str:
    """What the outputs depend on: options (not the output folder), source bytes, version, template."""
    opts = cfg.model_dump(mode="json", exclude={"out"})
    tmpl = Path(cfg.template).read_text(encoding="utf-8") if cfg.template else ""
    blob = json.dumps([opts, fingerprint, __version__, tmpl, source.kind], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def _prepare(out: Path, key: str, old: dict | None) -> bool:
    """True when `out` already holds this run, finished and intact (every sha256 matches). Else,
    unless an interrupted run of the same options resumes, clear what the earlier output owns
    (`stage.clear`: only its own files) and mark the folder as this run's, unfinished."""
    if (old is not None and stage.complete(old) and old.get("run_key") == key and not (out / "_work").exists()
            and not stage.problems(out, old.get("files", {}))):
        return True
    state = out / "_work" / "state.json"
    try:
        same = old is not None and state.is_file() and json.loads(state.read_text(encoding="utf-8")).get("run_key") == key
    except (ValueError, UnicodeDecodeError):  # a damaged marker: start over
        same = False
    if not same:
        stage.clear(out, old)
        stage.begin(out, "decompose")
        write_json(state, {"run_key": key})
    return False


def _reads(spec: str | None, source: Source) -> list[Path]:
    """What decompose reads from disk (the source files, and the folder they were found in)."""
    if source.kind != "local":
        return []
    return list(source.files) + ([Path(spec)] if spec and Path(spec).is_dir() else [])


def decompose(cfg: DecomposeConfig, out: Path | str | None = None, command: str | None = None,
              *, show_progress: bool | None = None, force: bool = False) -> dict:
    """Decompose `cfg.source` into SRL/RLVR shards under `out`; returns the manifest.

    `out` must be missing, empty or an earlier decompose output (`srlkit.stage.claim`); `force`
    also allows a folder of other files, which are left as they are.
    """
    out = Path(out or cfg.out or default_out(cfg.source))
    stage.check_path(out, "--out")
    if cfg.val_size < 0 or (cfg.val_size >= 1 and cfg.val_size != int(cfg.val_size)):
        raise ConfigError(f"--val-size {cfg.val_size}: give a fraction in [0, 1) or a whole count")
    if cfg.shard_rows < 1:
        raise ConfigError("--shard-rows must be at least 1")
    named = get_preset(cfg.preset) if cfg.preset else None  # a preset pins its Hub config and revision
    source = open_source(cfg.source, config_name=cfg.subset or (named and named.config), split=cfg.split,
                         revision=cfg.revision or (named and named.revision), max_row_bytes=cfg.max_row_bytes)
    if source.kind == "gym" and cfg.split_col is None:  # its rows carry disjoint-seed splits
        cfg = cfg.model_copy(update={"split_col": "split", "val_size": 0.0})
    templates = Templates.load(cfg.template)
    preset = cfg.preset or ("champ" if source.kind == "bundled" else None)
    old = stage.claim(out, "decompose", reads=_reads(cfg.source, source), force_flag="--force", force=force,
                      names=(*OUTPUT_NAMES, HISTOGRAM, "_work"))
    fingerprint = source.fingerprint()
    key = run_key(cfg, source, fingerprint)

    names = source.columns(cfg.limit)  # the whole source's columns, not its first row's
    rows = source.rows()
    head: list = []
    for item in rows:  # peek until the first readable row: it names the columns
        head.append(item)
        if isinstance(item[1], dict) or (cfg.limit is not None and len(head) >= cfg.limit):
            break
    first = next((r for _, r in head if isinstance(r, dict)), None)
    if names is None and first is not None:
        names = list(first)
    if preset is None and first is not None and not (cfg.problem_col or cfg.solution_col):
        preset = detect_preset(names, cfg.steps)  # chat / agent rows: the messages layout
        chats = [c for c, v in first.items() if _is_messages(v)]
        if preset is None and "problem" not in names and chats:  # chat rows under another name
            raise DataError(f"column '{chats[0]}' holds chat messages; pass --preset messages "
                            f"--problem-col {chats[0]} --solution-col {chats[0]}")
    if cfg.steps == "turns" and first is not None and not any(_is_messages(v) for v in first.values()):
        raise DataError(f"--steps turns needs chat messages (role/content turns) and no column of "
                        f"'{cfg.source}' holds them ({', '.join(first) or 'no columns'}); "
                        f"use --steps auto for text solutions")
    transform = get_preset(preset).transform
    columns = (list(transform(first)) if transform else names) if first is not None else []
    if not head:
        raise DataError(f"source '{cfg.source}' has no rows")
    if not columns and preset is None:
        raise DataError(f"source '{cfg.source}': none of the first {len(head)} rows is readable "
                        f"(first reason: {head[0][1].reason})")
    cols = resolve(preset, columns, problem_col=cfg.problem_col, solution_col=cfg.solution_col,
                   answer_col=cfg.answer_col, id_col=cfg.id_col) if columns else None
    if cols is None:
        raise DataError(f"source '{cfg.source}' has no readable rows")
    # only now, with the options known to be usable, may an earlier run's outputs be touched
    if _prepare(out, key, old):
        return _nothing_accepted(json.loads((out / "manifest.json").read_text(encoding="utf-8")), out)
    rewriter = None
    if cfg.rewrite:
        from srlkit.data.rewrite import make_rewriter

        rewriter = make_rewriter(cfg.rewrite_endpoint, cfg.rewrite_model, engine=cfg.rewrite_engine)

    work = out / "_work"
    seen: set[str] = set()
    n_units, n_rows = _run_units(cfg, rows, head, cols, templates, rewriter, work, seen, show_progress)
    if n_rows == 0:
        raise DataError(f"source '{cfg.source}' has no rows")
    manifest = _finalize(cfg, out, work, n_units, source, fingerprint, key, cols, preset, command)
    return _nothing_accepted(manifest, out)


def _nothing_accepted(manifest: dict, out: Path) -> dict:
    """The manifest, or a one-line error when every row was rejected (the outputs are written first:
    datasets cannot load an empty split, so the card then declares only a `rejects` config)."""
    c = manifest["counts"]
    if c["accepted"]:
        return manifest
    reasons = sorted(manifest["stats"]["reject_reasons"].items(), key=lambda kv: -kv[1])
    top = ", ".join(f"{k} {v}" for k, v in reasons[:3])
    raise DataError(f"nothing was accepted: all {c['input']} rows were rejected ({top}); the reasons are in "
                    f"{out / 'rejects.parquet'} and {out / 'README.md'}")


def _run_units(cfg, rows, head, cols, templates, rewriter, work, seen, show_progress):
    from itertools import chain

    from srlkit.progress import progress

    proc: UnitProcessor | None = None
    unit, n_rows = -1, 0
    bar = progress(disable=None if show_progress is None else not show_progress)
    with bar:
        task = bar.add_task("decompose", total=cfg.limit, info="")
        for i, rec in chain(head, rows):
            if cfg.limit is not None and i >= cfg.limit:
                break
            u = i // cfg.shard_rows
            if u != unit:
                if proc is not None:
                    proc.finish()
                unit, proc = u, None
                marker = work / f"unit-{u:05d}.json"
                if marker.is_file():  # finished by an earlier run: only its ids matter now
                    seen.update(json.loads(marker.read_text(encoding="utf-8"))["ids"])
                else:
                    proc = UnitProcessor(u, cfg, cols, templates, rewriter, work, seen)
            if proc is not None:
                proc.row(i, rec)
            n_rows = i + 1
            if n_rows % 1000 == 0:
                bar.update(task, completed=n_rows)
        if proc is not None:
            proc.finish()
        bar.update(task, completed=n_rows)
    return unit + 1, n_rows


def _plan_parts(cfg, work: Path, markers: list[dict]) -> dict[tuple[str, str], list[tuple[Path, int]]]:
    """Part files (and row counts) in shard order for every (table, split).

    Count mode (`val_size >= 1`): each unit set aside its k smallest-hash trajectories as
    candidates; here the k smallest overall become validation and the other candidates
    one extra train part. Those two parts are written once (marker `extra.json`).
    """
    plan: dict[tuple[str, str], list[tuple[Path, int]]] = {}
    for table in (SRL_TABLE, RLVR_TABLE):
        for split in SPLITS:
            plan[(table, split)] = [(unit_parts(work, u)[f"{table}.{split}"], m["parts"][f"{table}.{split}"])
                                    for u, m in enumerate(markers) if m["parts"].get(f"{table}.{split}", 0) > 0]
    if not count_mode(cfg.val_size):
        return plan
    import polars as pl

    extra = work / "extra.json"
    if not extra.is_file():
        ids = [i for m in markers for i in m["ids"]]
        chosen = set(sorted(ids, key=lambda i: split_hash(i, cfg.seed))[: int(cfg.val_size)])
        rows = {}
        for table, key in ((SRL_TABLE, "trajectory_id"), (RLVR_TABLE, "id")):
            cands = [unit_parts(work, u)[f"{table}.candidates"] for u, m in enumerate(markers)
                     if m["parts"].get(f"{table}.candidates", 0) > 0]
            df = pl.concat([pl.read_parquet(c) for c in cands]) if cands else pl.DataFrame(schema=shards.SCHEMAS[table])
            inside = df[key].is_in(list(chosen))
            for split, part in (("validation", df.filter(inside)), ("train", df.filter(~inside))):
                if part.height:
                    shards.write_parquet(part, work / f"extra.{table}.{split}.parquet")
                rows[f"{table}.{split}"] = part.height
        write_json(extra, rows)
    rows = json.loads(extra.read_text(encoding="utf-8"))
    for (table, split), parts in plan.items():
        if rows.get(f"{table}.{split}", 0) > 0:
            parts.append((work / f"extra.{table}.{split}.parquet", rows[f"{table}.{split}"]))
    return plan


def _finalize(cfg, out, work, n_units, source, fingerprint, key, cols, preset, command) -> dict:
    from srlkit.data import stats
    from srlkit.data.card import write_card

    markers = [json.loads((work / f"unit-{u:05d}.json").read_text(encoding="utf-8")) for u in range(n_units)]
    plan = _plan_parts(cfg, work, markers)
    files: dict[str, dict] = {}
    splits: dict[str, dict[str, list[str]]] = {}
    for (table, split), parts in plan.items():
        names = []
        for j, (src, rows) in enumerate(parts):
            dst = out / table / shard_name(split, j, len(parts))
            if src.is_file():  # a rerun after a partial finalise finds some already moved
                dst.parent.mkdir(parents=True, exist_ok=True)
                src.replace(dst)
            rel = f"{table}/{dst.name}"
            names.append(rel)
            files[rel] = {"rows": rows}
        if names:
            splits.setdefault(table, {})[split] = names
    rej_parts = [unit_parts(work, u)["rejects"] for u, m in enumerate(markers) if m["parts"].get("rejects", 0)]
    files["rejects.parquet"] = {"rows": shards.concat_parquet(rej_parts, out / "rejects.parquet", "rejects")}
    for rel, info in files.items():
        p = out / rel
        info["bytes"] = p.stat().st_size
        info["sha256"] = shards.sha256_file(p)

    counts = {k: sum(m["counts"][k] for m in markers) for k in markers[0]["counts"]} if markers else {}
    if counts["input"] != counts["accepted"] + counts["rejected"]:
        raise RuntimeError(f"internal error: accepted {counts['accepted']} + rejected "
                           f"{counts['rejected']} != input {counts['input']}")
    merged = stats.merge([m["stats"] for m in markers])
    manifest = {
        "stage": "decompose",
        "card": ["README.md", HISTOGRAM],  # regenerated from this manifest (by embed too): no sha256
        "srlkit_version": __version__,
        "run_key": key,
        "command": command,
        "config": cfg.model_dump(mode="json", exclude={"out"}),
        "source": {"spec": cfg.source, "name": source.name, "kind": source.kind,
                   "description": describe(source), "license": source.license,
                   "fingerprint": fingerprint},
        "preset": preset,
        "columns": cols.as_dict(),
        "counts": counts,
        "stats": stats.summary(merged),
        "splits": splits,
        "files": files,
    }
    write_json(out / "manifest.json", manifest)
    write_card(out)
    shutil.rmtree(work, ignore_errors=True)
    return manifest

