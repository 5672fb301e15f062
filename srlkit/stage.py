"""The stage contract: every folder srlkit writes carries a `manifest.json` that says what it is.

A manifest names the stage that wrote the folder (`stage`), its settings (`config`) and the
files that are its own (`files`: relative path -> bytes and sha256). All stages follow the
same four rules, so no stage needs special cases:

- **claim**: a stage writes only into a missing or empty folder, or into an earlier output of
  the same stage; anything else is refused with one line. A folder is never both a stage's
  input and its output (one inside the other).
- **begin**: before writing, the stage marks the folder with an unfinished manifest
  (`"complete": false`); a finished stage replaces it with the full one.
- **clear**: a stage deletes only what it owns: the files its finished manifest lists, or,
  while unfinished, what appeared in the folder after it claimed it (never the entries in
  `kept`, which were there before, nor nested folders with a manifest of their own). Clearing
  is all or nothing: files are moved aside first and put back if any move fails.
- **require/verify**: a stage that reads a folder checks its manifest's stage and the sha256 of
  the files it reads, so a changed, truncated or missing file is an error, never silently used.

Light on purpose (no heavy imports): the CLI and `srlkit run` call it before any model loads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from srlkit.errors import DataError, StageError
from srlkit.fileio import read_json, sha256_file, write_json

MANIFEST = "manifest.json"
COMMANDS = {"decompose": "srlkit decompose", "train": "srlkit train", "eval": "srlkit eval",
            "report": "srlkit report", "export": "srlkit push --model"}


def file_info(path: Path) -> dict[str, Any]:
    return {"bytes": path.stat().st_size, "sha256": sha256_file(path)}


def read(folder: Path | str) -> dict[str, Any] | None:
    """The folder's manifest; None when it has none; a one-line DataError when it is damaged."""
    p = Path(folder) / MANIFEST
    if not p.is_file():
        return None
    return read_json(p, fix=f"srlkit reads it as the record of what wrote {folder}: restore it, or use another folder")


def stage_of(folder: Path | str) -> str | None:
    """Which stage wrote `folder`, also for folders written before manifests named their stage."""
    folder = Path(folder)
    m = read(folder)
    if m is not None and isinstance(m.get("stage"), str):
        return m["stage"]
    if m is not None and ("run_key" in m or "counts" in m):
        return "decompose"
    if (folder / "_work" / "state.json").is_file():
        return "decompose"  # unfinished, before manifests
    if (folder / "checkpoints").is_dir() or (folder / "state.json").is_file() or (
            (folder / "config.toml").is_file() and (folder / "metrics.jsonl").is_file()):
        return "train"
    if (folder / "report.md").is_file() and not m:
        return "report"
    if (folder / "srlkit_config.toml").is_file():
        return "export"
    return None


def complete(m: dict[str, Any]) -> bool:
    return bool(m.get("complete", True))


def _entries(d: Any) -> dict[str, dict[str, Any]]:
    """A manifest's file table; a damaged one lists nothing it cannot say."""
    return {k: v for k, v in d.items() if isinstance(k, str) and isinstance(v, dict)} if isinstance(d, dict) else {}


def listed(m: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every file a manifest lists: its own, plus those of outputs recorded inside it (embeddings)."""
    files = _entries(m.get("files"))
    recs = m.get("embeddings")
    for rec in recs.values() if isinstance(recs, dict) else []:
        if isinstance(rec, dict):
            files.update(_entries(rec.get("files")))
    return files


def walk(folder: Path, skip: Iterable[str] = ()) -> list[str]:
    """Files under `folder` (relative, sorted), leaving out the top-level entries in `skip`,
    nested folders that carry their own manifest (another output) and temporary files."""
    skip = set(skip)
    out = []
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        rel = here.relative_to(folder)
        if rel.parts and (here / MANIFEST).is_file():
            dirs[:] = []
            continue
        if not rel.parts:
            dirs[:] = [d for d in dirs if d not in skip]
            files = [f for f in files if f not in skip]
        dirs[:] = [d for d in dirs if not d.startswith(".srlkit-old-")]
        out += [(rel / f).as_posix() for f in files if not f.endswith(".tmp")]
    return sorted(out)


def overlap(a: Path, b: Path) -> bool:
    a, b = a.resolve(), b.resolve()
    return a == b or a in b.parents or b in a.parents


def _few(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def check_path(out: Path, flag: str, folder: bool = True) -> None:
    """`out` can become a folder (or file): it is not a file (a folder), no parent is a file, and
    its name is text (polars and the Hub cannot write a name with undecodable bytes)."""
    try:
        str(out).encode("utf-8")
    except UnicodeEncodeError:
        shown = str(out).encode("utf-8", "backslashreplace").decode()
        raise StageError(f"{flag} {shown}: the path is not valid UTF-8; give a path with a text name") from None
    if out.exists() and out.is_dir() != folder:
        raise StageError(f"{flag} {out} is a {'file' if folder else 'folder'}; give a "
                         f"{'folder' if folder else 'file'} path")
    for parent in out.parents:
        if parent.exists():
            if not parent.is_dir():
                raise StageError(f"{flag} {out}: {parent} is a file, not a folder; give another path")
            break


def claim(out: Path | str, stage: str, *, reads: Iterable[Path | str] = (), force_flag: str | None = None,
          force: bool = False, names: Iterable[str] = (), flag: str = "--out") -> dict[str, Any] | None:
    """Check that `stage` may write `out`; returns the earlier manifest of the same stage, or None
    when `out` is missing or empty. Writes nothing.

    `reads`: the stage's inputs, which must not overlap `out`. `force` (the stage's `force_flag`)
    allows a folder of other files: `names` (what the stage writes) must then not exist there.
    """
    out = Path(out)
    check_path(out, flag)
    for src in reads:
        if src is not None and Path(src).exists() and overlap(out, Path(src)):
            raise StageError(f"{flag} {out} and the input {src} overlap (one is inside the other), so srlkit "
                             "would read its own output; write to a folder outside the input")
    if not out.is_dir():
        return None
    entries = sorted(os.listdir(out))
    if not entries:
        return None
    have = stage_of(out)
    if have == stage:
        m = read(out) or {"stage": stage, "complete": False, "files": {}}  # written before manifests
        _no_clash(out, set(names) & set(not_owned(out, m)), force_flag)
        return m
    if have is not None:
        raise StageError(f"{flag} {out} holds an `{COMMANDS.get(have, have)}` output; `{COMMANDS[stage]}` "
                         f"writes only into an empty folder or its own earlier output: give another {flag}")
    if not force:
        hint = f", or {force_flag} to write beside them (none is replaced)" if force_flag else ""
        raise StageError(f"{flag} {out} is not empty ({_few(entries)}) and is not an `{COMMANDS[stage]}` output; "
                         f"give an empty or new folder{hint}")
    _no_clash(out, set(names) & set(entries), force_flag)
    return {"stage": stage, "complete": False, "files": {}, "kept": entries}


def _no_clash(out: Path, clash: set[str], force_flag: str | None) -> None:
    """Refuse when the stage would write over an entry it did not write."""
    if clash:
        never = f"{force_flag} never replaces such files" if force_flag else "srlkit never replaces such files"
        raise StageError(f"{out / sorted(clash)[0]} exists and srlkit did not write it; {never}: move it away or "
                         "give another folder")


def owned(out: Path, m: dict[str, Any]) -> list[str]:
    """What the stage of manifest `m` owns in `out` (see the module docstring)."""
    if complete(m):  # its files, the card regenerated from it (datasets before `card`: the dataset card)
        card = m.get("card", ["README.md", "steps_hist.png"] if "run_key" in m else [])
        return sorted({*listed(m), *card, MANIFEST})
    return walk(out, skip=m.get("kept", []))


def clear(out: Path | str, m: dict[str, Any] | None) -> None:
    """Delete what `m`'s stage owns in `out`, all or nothing; other files stay."""
    out = Path(out)
    if m is not None and out.is_dir():
        remove(out, owned(out, m))


def remove(out: Path, rels: Iterable[str]) -> None:
    """Delete these files under `out`, all or nothing, then the folders that left empty."""
    rels = [r for r in rels if (out / r).is_file() or (out / r).is_symlink()]
    trash = out / f".srlkit-old-{os.getpid()}"
    moved: list[str] = []
    try:
        for rel in rels:
            (trash / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(out / rel, trash / rel)
            moved.append(rel)
    except OSError as e:
        for rel in reversed(moved):  # put everything back: the folder is as it was
            os.replace(trash / rel, out / rel)
        shutil.rmtree(trash, ignore_errors=True)
        raise StageError(f"cannot replace the earlier output in {out}: {e.filename}: {e.strerror}; nothing was "
                         "changed: make it writable, or give another folder") from None
    shutil.rmtree(trash, ignore_errors=True)
    for d in sorted({p for r in rels for p in (out / r).parents if out in p.parents}, key=lambda p: -len(p.parts)):
        try:
            d.rmdir()  # only folders left empty
        except OSError:
            pass


def begin(out: Path | str, stage: str, *, kept: Iterable[str] | None = None, **fields: Any) -> None:
    """Create `out` and mark it as an unfinished output of `stage`. `kept`: the entries that are
    not the stage's; by default whatever is in `out` now (called right after `claim`/`clear`)."""
    from srlkit import __version__

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StageError(f"cannot create {out}: {e.strerror}; give a writable folder") from None
    kept = [n for n in os.listdir(out) if n != MANIFEST] if kept is None else kept
    write_json(out / MANIFEST, {"stage": stage, "srlkit_version": __version__, "complete": False,
                                "kept": sorted(kept), "files": {}, **fields})


def not_owned(out: Path, m: dict[str, Any]) -> list[str]:
    """The top-level entries of `out` that the stage of `m` does not own (to keep when it goes on)."""
    if not complete(m):
        return list(m.get("kept", []))
    mine = {r.split("/")[0] for r in owned(out, m)}
    return sorted(n for n in os.listdir(out) if n not in mine)


def finish(out: Path | str, stage: str, rels: Iterable[str], *, known: dict[str, str] | None = None,
           **fields: Any) -> dict[str, Any]:
    """Write the finished manifest of `out`, listing `rels` with sizes and sha256 (`known`: sha256
    values computed already, e.g. by a checkpoint); returns it."""
    from srlkit import __version__

    out, known = Path(out), known or {}
    files = {}
    for r in sorted(set(rels) - {MANIFEST}):
        p = out / r
        files[r] = {"bytes": p.stat().st_size, "sha256": known.get(r) or sha256_file(p)}
    m = {"stage": stage, "srlkit_version": __version__, **fields, "files": files}
    write_json(out / MANIFEST, m)
    return m


def problems(folder: Path, files: dict[str, dict[str, Any]], select: Callable[[str], bool] | None = None) -> list[str]:
    """What no longer matches a manifest's `files`: missing files and changed sha256."""
    out = []
    for rel, info in sorted(_entries(files).items()):
        if select is not None and not select(rel):
            continue
        p = Path(folder) / rel
        if not p.is_file():
            out.append(f"{rel} is missing")
        elif info.get("sha256") and sha256_file(p) != info["sha256"]:
            out.append(f"{rel} changed (sha256 differs)")
    return out


def require(folder: Path | str, stage: str, *, flag: str, select: Callable[[str], bool] | None = None,
            verify: bool = True) -> dict[str, Any]:
    """The finished manifest of `folder`, written by `stage`, with the files `select` picks verified."""
    folder = Path(folder)
    fix = f"run `{COMMANDS[stage]} --out {folder}` again" if stage != "export" else "export again"
    if not folder.is_dir():
        raise DataError(f"{flag} {folder}: {'not a folder' if folder.exists() else 'not found'}; "
                        f"give a `{COMMANDS[stage]}` output folder")
    have = stage_of(folder)
    m = read(folder)
    if have != stage or m is None:
        what = f"an `{COMMANDS[have]}` output" if have in COMMANDS else "not an srlkit output"
        raise DataError(f"{flag} {folder} is {what} (no {stage} manifest.json); give a `{COMMANDS[stage]}` "
                        "output folder")
    if not complete(m):
        raise DataError(f"{flag} {folder} is an unfinished `{COMMANDS[stage]}` output; {fix}")
    for key in ("files", *(("splits",) if stage == "decompose" else ())):
        if not isinstance(m.get(key), dict):
            raise DataError(f"{flag} {folder}: its manifest.json has no '{key}' table, so what it holds is unknown; {fix}")
    bad = problems(folder, listed(m), select) if verify else []
    if bad:
        raise DataError(f"{flag} {folder}: {bad[0]} since `{COMMANDS[stage]}` wrote it"
                        f"{f' (+{len(bad) - 1} more)' if len(bad) > 1 else ''}; {fix}")
    return m


def identity(m: dict[str, Any]) -> str:
    """A short content id of an output: the sha256 of its files' names and sha256."""
    h = hashlib.sha256()
    for rel, info in sorted(_entries(m.get("files")).items()):  # its own files (not later embeddings)
        h.update(f"{rel}\0{info.get('sha256')}\n".encode())
    return h.hexdigest()[:16]
