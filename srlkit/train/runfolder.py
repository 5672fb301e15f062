"""The run folder under the stage contract (`srlkit.stage`): claim it, resume only the same run.

`open_run` reads and checks; it writes nothing, so a refused start or resume leaves every file
(config.toml included) as it was. Every rank calls it.
- `--out` is missing or empty, or, with `--resume` only, an `srlkit train` run; never inside
  `--data` (nor `--data` inside it).
- `--data` is a finished `srlkit decompose` output whose files match their sha256.
- `--resume` needs that run. It continues from the newest checkpoint that verifies (the
  skipped ones are named), and only when the resolved config equals the one that checkpoint
  was written with, up to the changes in `RESUMABLE` (more steps, logging); the data must be
  the same files. Anything else is refused with the differences.

`begin_run` (main process) then writes config.toml and the unfinished manifest;
`finish_run` the finished manifest with every file's sha256 (checkpoints reuse theirs).
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

from srlkit import stage
from srlkit.errors import CheckpointError, ResumeError, StageError
from srlkit.fileio import read_json, read_text
from srlkit.progress import warn
from srlkit.train import checkpoint

# What may change on --resume: how often it logs and keeps checkpoints, and more steps for a phase.
RESUMABLE = ("log_every", "sample_every", "report_to", "keep_checkpoints", "phases.*.steps (more, not fewer)")
_LOGGING = ("log_every", "sample_every", "report_to", "keep_checkpoints")
_MISSING = "(unset)"


def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _same_path(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and Path(a).exists() and Path(a).resolve() == Path(b).resolve()


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The differences `--resume` refuses, as `key: old -> new` (data and paths excepted).

    >>> config_diff({"seed": 1, "phases": {"srl": {"steps": 2, "lr": 0.1}}, "curriculum": ["srl"]},
    ...             {"seed": 1, "phases": {"srl": {"steps": 5, "lr": 0.2}}, "curriculum": ["srl"], "log_every": 3})
    ['phases.srl.lr: 0.1 -> 0.2']
    """
    phases = set(old.get("curriculum") or []) | set(new.get("curriculum") or [])
    a, b = _flat(old), _flat(new)
    out = []
    for key in sorted(set(a) | set(b)):
        parts = key.split(".")
        if parts[0] in ("resume", "out", "data") or key in _LOGGING:
            continue
        if parts[0] == "phases" and len(parts) > 1 and parts[1] not in phases:
            continue  # a phase table the curriculum does not run
        va, vb = a.get(key, _MISSING), b.get(key, _MISSING)
        if va == vb or (key == "model.name_or_path" and _same_path(va, vb)):
            continue
        if parts[0] == "phases" and parts[-1] == "steps" and isinstance(va, int) and isinstance(vb, int) and vb > va:
            continue
        out.append(f"{key}: {va!r} -> {vb!r}")
    return out


def _read_toml(p: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ResumeError(f"--resume: {p} does not load ({type(e).__name__}), so this run's settings are unknown; "
                          "restore it, or start a new --out") from None


_STARTED = ("config.toml", "manifest.json")  # what `begin_run` writes before the first step


def never_trained(run_dir: Path, old: dict[str, Any]) -> bool:
    """An unfinished run whose folder holds nothing but what `begin_run` wrote (and files it kept):
    it failed at start-up (a wrong --model, say), so a new start there loses nothing."""
    return not old.get("complete") and set(os.listdir(run_dir)) - set(old.get("kept", [])) <= set(_STARTED)


def precheck(cfg: Any, run_dir: Path, reads: list[Path] = ()) -> dict[str, Any] | None:
    """May `cfg` start (or resume) in `run_dir`? Reads only; the CLI asks before it builds any data.
    Returns the run's earlier manifest, or None for a new run."""
    old = stage.claim(run_dir, "train", reads=reads, flag="--out")
    if old is not None and not cfg.resume and never_trained(run_dir, old):
        warn(f"--out {run_dir} holds only the start of a run that stopped before it trained anything "
             f"({', '.join(_STARTED)}); starting over there")
        return None
    if old is not None and not cfg.resume:
        raise StageError(f"--out {run_dir} already holds an srlkit train run; pass --resume to continue it, "
                         "or give a new --out")
    if old is None and cfg.resume:
        state = "does not exist" if not run_dir.exists() else "is empty"
        raise ResumeError(f"--resume: {run_dir} {state}, so there is no run to continue; drop --resume to "
                          "start a new run there")
    return old


def open_run(cfg: Any, run_dir: Path, world: int, main: bool = True) -> Path | None:
    """Check that `cfg` may start (or resume) in `run_dir`; returns the checkpoint to resume from."""
    from srlkit.config import to_toml

    data = Path(cfg.data) if cfg.data else None
    old = precheck(cfg, run_dir, reads=[data] if data else [])
    data_id = stage.identity(stage.require(data, "decompose", flag="--data")) if data and data.is_dir() else None
    if not cfg.resume:
        return None
    for name in ("summary.json", "state.json", "metrics.jsonl", "eval.jsonl"):  # what resume reads back
        if (run_dir / name).is_file():
            fix = "restore it, or start a new --out"
            read_json(run_dir / name, fix=fix) if name.endswith(".json") else read_text(run_dir / name, fix=fix)
    ckpt, skipped = checkpoint.newest_valid(run_dir)
    for name, why in skipped if main else []:
        warn(f"checkpoint {name} skipped: {why}" + (f"; resuming from {ckpt.name}" if ckpt else ""))
    if ckpt is None and skipped:
        raise CheckpointError(f"--resume: no checkpoint of {run_dir} verifies ({skipped[0][0]}: {skipped[0][1]}); "
                              "restore it, or start a new --out")
    was = ckpt / "config.toml" if ckpt else run_dir / "config.toml"
    if not was.is_file():
        raise ResumeError(f"--resume: {was} is missing, so the settings of the run in {run_dir} are unknown; "
                          "restore it, or start a new --out")
    diff = config_diff(_read_toml(was), tomllib.loads(to_toml(cfg)))
    was_data = (old.get("inputs") or {}).get("data") or {}
    if was_data.get("id") and data_id and was_data["id"] != data_id:
        diff.insert(0, f"data: {was_data.get('path')} (content {was_data['id']}) -> {data} (content {data_id})")
    elif not was_data and data and not _same_path(_read_toml(was).get("data"), str(data)):
        diff.insert(0, f"data: {_read_toml(was).get('data')!r} -> {str(data)!r}")
    if diff:
        more = f" (+{len(diff) - 4} more)" if len(diff) > 4 else ""
        raise ResumeError(f"--resume refused, this is not the same run: {'; '.join(diff[:4])}{more}. Only "
                          f"{', '.join(RESUMABLE)} may change on resume: restore the rest, or start a new --out")
    if ckpt is not None:
        checkpoint.check_world_size(ckpt, json.loads((ckpt / checkpoint.STATE).read_text()), world)
    return ckpt


def begin_run(run_dir: Path, cfg: Any, config_toml: str) -> None:
    """Write config.toml and mark the run unfinished (main process; after `open_run` accepted)."""
    from srlkit.fileio import write_text

    old = stage.read(run_dir) if run_dir.is_dir() else None
    kept = stage.not_owned(run_dir, old) if old else []  # no manifest: a new run, or one from before manifests
    data = Path(cfg.data) if cfg.data else None
    inputs = {"data": {"path": str(data), "id": stage.identity(stage.read(data) or {})}} if data else {}
    if old and (old.get("inputs") or {}).get("data"):
        inputs = old["inputs"]  # a resumed run keeps the record of what it started on
    stage.begin(run_dir, "train", kept=kept, config=cfg.model_dump(mode="json"), inputs=inputs)
    write_text(run_dir / "config.toml", config_toml)


def finish_run(run_dir: Path) -> None:
    """The finished manifest: every file the run wrote, with sha256 (main process)."""
    m = stage.read(run_dir) or {}
    rels = stage.walk(run_dir, skip=m.get("kept", []))
    known: dict[str, str] = {}
    for d in checkpoint.list_checkpoints(run_dir):
        sums = d / checkpoint.CHECKSUMS
        if sums.is_file():
            for name, sha in json.loads(sums.read_text(encoding="utf-8"))["files"].items():
                known[(d / name).relative_to(run_dir).as_posix()] = sha
    stage.finish(run_dir, "train", rels, known=known, config=m.get("config"), inputs=m.get("inputs", {}))
