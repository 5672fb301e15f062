"""Trainer checkpoints for exact resume, and HF-format model folders.

A checkpoint (`RUN/checkpoints/<phase>-<step:06d>/`) holds everything that decides the rest
of the run: the trainable weights (the adapter with LoRA), optimizer and scheduler state,
the RNG states, the data cursor, the phase/step and the resolved config. It is written to
a temp folder and renamed, so a kill never leaves a half checkpoint behind.

With several processes the main one writes (weights, scheduler, state, every rank's RNG
state in `rng.pt`); with a sharded optimizer (FSDP) each rank adds its own
`optimizer-<rank>.pt`. Every rank calls `save_checkpoint`; barriers order the writes.

`checksums.json` holds the sha256 of every other file, written last. Resume takes the newest
checkpoint that verifies (`newest_valid`) and says which newer ones it skipped and why.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlkit.errors import CheckpointError, SrlkitError
from srlkit.fileio import sha256_file, write_json
from srlkit.progress import warn
from srlkit.train import dist

STATE = "trainer_state.json"
CHECKSUMS = "checksums.json"


def ckpt_root(run: Path) -> Path:
    return Path(run) / "checkpoints"


def rng_state() -> dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def set_rng_state(st: dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    """Named trainable tensors (tied weights appear once: named_parameters de-duplicates)."""
    return {n: p.detach().to("cpu").contiguous().clone() for n, p in model.named_parameters() if p.requires_grad}


def load_trainable(model: Any, tensors: dict[str, torch.Tensor]) -> None:
    params = dict(model.named_parameters())
    missing = [n for n, p in params.items() if p.requires_grad and n not in tensors]
    if missing:
        raise SrlkitError(f"checkpoint does not match the model ({len(missing)} missing tensors, e.g. {missing[0]}); "
                          "resume with the same --model and LoRA settings")
    with torch.no_grad():
        for n, t in tensors.items():
            p = params[n]
            t = t.to(p.device, p.dtype)
            if hasattr(p, "device_mesh") and hasattr(p, "placements"):  # an FSDP2 shard (DTensor)
                from torch.distributed.tensor import distribute_tensor

                t = distribute_tensor(t, p.device_mesh, p.placements)
            p.copy_(t)


def save_checkpoint(run: Path, name: str, *, model: Any, optimizer: Any, scheduler: Any,
                    state: dict[str, Any], config_toml: str, keep: int, acc: Any = None,
                    weights: dict[str, torch.Tensor] | None = None, sharded_optimizer: bool = False,
                    reference: dict[str, torch.Tensor] | None = None) -> Path:
    """Write a checkpoint atomically and prune all but the newest `keep`.

    `acc`: the accelerator of a multi-process run (every rank calls this); `weights`: the
    trainable tensors when the module's own are shards (FSDP: gathered by the caller);
    `reference`: the phase-start KL reference (`reference.py`), which resume must restore.
    """
    from safetensors.torch import save_file

    world = dist.world_size(acc) if acc is not None else 1
    main = acc is None or dist.is_main(acc)
    rngs = dist.gather(acc, rng_state()) if world > 1 else [rng_state()]
    root = ckpt_root(run)
    final = root / name
    tmp = root / f".tmp-{name}"  # one name every rank knows
    if main:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    if world > 1:
        dist.barrier(acc)
    if sharded_optimizer and optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / f"optimizer-{dist.rank(acc) if acc is not None else 0}.pt")
    if main:
        save_file(weights if weights is not None else trainable_state(model), str(tmp / "trainable.safetensors"))
        if reference is not None:
            save_file({n: t.detach().to("cpu").contiguous() for n, t in reference.items()},
                      str(tmp / REFERENCE))
        if optimizer is not None and not sharded_optimizer:
            torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(rngs[0] if world == 1 else {"world_size": world, "ranks": rngs}, tmp / "rng.pt")
        (tmp / "config.toml").write_text(config_toml, encoding="utf-8")
        (tmp / STATE).write_text(json.dumps({**state, "world_size": world}, indent=2), encoding="utf-8")
    if world > 1:
        dist.barrier(acc)
    if main:
        sums = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        write_json(tmp / CHECKSUMS, {"files": sums})
        if final.exists():
            _remove(final)
        os.replace(tmp, final)
        _prune(root, keep)
    if world > 1:
        dist.barrier(acc)
    return final


def _seq(d: Path) -> int | None:
    """The checkpoint's `seq` counter; None when its state cannot be read."""
    try:
        seq = json.loads((d / STATE).read_text(encoding="utf-8")).get("seq")
    except (OSError, ValueError, AttributeError):
        return None
    return seq if isinstance(seq, int) else None


def list_checkpoints(run: Path) -> list[Path]:
    """Checkpoints with a readable state, oldest first (ordered by the `seq` counter in their state)."""
    found = [(seq, d) for d in all_checkpoint_dirs(run) if (seq := _seq(d)) is not None]
    return [d for _, d in sorted(found)]


def all_checkpoint_dirs(run: Path) -> list[Path]:
    """Every checkpoint folder, readable or not (for the messages about damaged ones)."""
    root = ckpt_root(run)
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")) if root.is_dir() else []


# Files a checkpoint folder may hold (`optimizer-<rank>.pt` with a sharded optimizer).
REFERENCE = "reference.safetensors"  # a KL phase's phase-start weights (`reference.py`)
_FILES = ("trainable.safetensors", REFERENCE, "optimizer.pt", "scheduler.pt", "rng.pt", "config.toml", STATE,
          CHECKSUMS)


def _ours(p: Path) -> bool:
    return p.is_file() and (p.name in _FILES or (p.name.startswith("optimizer-") and p.suffix == ".pt"))


def _foreign(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if not _ours(p))


def _remove(d: Path) -> None:
    """Delete a checkpoint srlkit wrote: its own files and the folder. A folder that also holds
    anything else is left whole (nothing is deleted) and refused."""
    if other := _foreign(d):
        raise CheckpointError(f"checkpoint folder {d} holds {other[0]!r}, which srlkit did not write; move it away")
    for p in d.iterdir():
        p.unlink()
    d.rmdir()


def _prune(root: Path, keep: int) -> None:
    """Drop the oldest checkpoints beyond `keep`. One that holds a file srlkit did not write is
    kept whole, with a warning: training goes on, and nothing of the user's is deleted."""
    for d in root.glob(".tmp-*"):  # leftovers of a killed save (hidden temp folders only srlkit makes)
        shutil.rmtree(d, ignore_errors=True)
    ckpts = list_checkpoints(root.parent)
    for d in ckpts[: max(0, len(ckpts) - max(1, keep))]:
        if other := _foreign(d):
            warn(f"checkpoint {d.name} kept: it holds {other[0]!r}, which srlkit did not write (move it away "
                 "to let keep_checkpoints prune it)")
            continue
        _remove(d)


def latest_checkpoint(run: Path) -> Path | None:
    ckpts = list_checkpoints(run)
    return ckpts[-1] if ckpts else None


def verify(d: Path) -> str | None:
    """Why checkpoint `d` cannot be resumed from (None: it verifies)."""
    if _seq(d) is None:
        return f"{STATE} is missing or damaged"
    sums_path = d / CHECKSUMS
    if sums_path.is_file():
        try:
            sums = json.loads(sums_path.read_text(encoding="utf-8"))["files"]
        except (OSError, ValueError, KeyError, TypeError):
            return f"{CHECKSUMS} is damaged"
        for name, want in sorted(sums.items()):
            if not (d / name).is_file():
                return f"{name} is missing"
            if sha256_file(d / name) != want:
                return f"{name} is damaged (sha256 differs from the one written at save)"
        return None
    from safetensors import safe_open

    def weights() -> None:
        with safe_open(str(d / "trainable.safetensors"), framework="pt") as f:
            list(f.keys())

    # written before checksums: each file must at least load
    for name, load in [("trainable.safetensors", weights)] + [
            (p.name, lambda p=p: torch.load(p, map_location="cpu", weights_only=False)) for p in sorted(d.glob("*.pt"))]:
        try:
            load()
        except Exception as e:  # noqa: BLE001 - any failure to load is a damaged checkpoint
            return f"{name} does not load ({type(e).__name__}: {' '.join(str(e).split())[:100]})"
    return None


def newest_valid(run: Path) -> tuple[Path | None, list[tuple[str, str]]]:
    """The newest checkpoint that verifies, and (name, why) of every other one that does not."""
    skipped = [(d.name, f"{STATE} is missing or damaged") for d in all_checkpoint_dirs(run) if _seq(d) is None]
    for d in reversed(list_checkpoints(run)):
        why = verify(d)
        if why is None:
            return d, skipped
        skipped.append((d.name, why))
    return None, skipped


def _load(path: Path, what: str, fn: Any) -> Any:
    """`fn()`, turning a damaged file into a one-line CheckpointError naming it."""
    try:
        return fn()
    except Exception as e:  # noqa: BLE001 - pickle, zip, safetensors and OS errors alike
        raise CheckpointError(f"checkpoint {path.parent.name}: {what} does not load ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:160]}); restore it, or delete this checkpoint folder to "
                              "resume from the one before") from None


def load_checkpoint(path: Path, *, model: Any) -> dict[str, Any]:
    """Load weights into `model`; return the state (optimizer/scheduler/RNG are loaded by the caller)."""
    from safetensors.torch import load_file

    tensors = _load(path / "trainable.safetensors", "trainable.safetensors",
                    lambda: load_file(str(path / "trainable.safetensors")))
    load_trainable(model, tensors)
    return _load(path / STATE, STATE, lambda: json.loads((path / STATE).read_text(encoding="utf-8")))


def load_reference(path: Path) -> dict[str, torch.Tensor] | None:
    """The phase-start KL reference a mid-phase checkpoint saved, or None."""
    from safetensors.torch import load_file

    f = path / REFERENCE
    return load_file(str(f)) if f.is_file() else None


def check_world_size(path: Path, state: dict[str, Any], world: int) -> None:
    """Resume only on the world size that wrote the checkpoint (data shards, RNG streams and
    optimizer shards are per rank)."""
    was = int(state.get("world_size", 1))
    if was != world:
        raise SrlkitError(f"checkpoint {path.name} was written by {was} process(es) but this run has {world}; "
                          f"resume with `accelerate launch --num_processes {was} ...`")


def load_optim(path: Path, optimizer: Any, scheduler: Any, rank: int = 0) -> None:
    """Optimizer (this rank's shard when the checkpoint has one) and scheduler state, on the CPU
    first: `load_state_dict` moves the state to the parameters' devices."""
    shard = path / f"optimizer-{rank}.pt"
    opt = shard if shard.is_file() else path / "optimizer.pt"
    if opt.is_file():
        state = _load(opt, opt.name, lambda: torch.load(opt, map_location="cpu", weights_only=False))
        _load(opt, opt.name, lambda: optimizer.load_state_dict(state))
    sched = path / "scheduler.pt"
    if sched.is_file():
        state = _load(sched, sched.name, lambda: torch.load(sched, map_location="cpu", weights_only=False))
        _load(sched, sched.name, lambda: scheduler.load_state_dict(state))


def load_rng(path: Path, rank: int = 0) -> None:
    p = path / "rng.pt"
    st = _load(p, p.name, lambda: torch.load(p, map_location="cpu", weights_only=False))
    _load(p, p.name, lambda: set_rng_state(st["ranks"][rank] if "ranks" in st else st))


def save_hf(model: Any, tokenizer: Any, out: Path, state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """`save_pretrained` (an adapter folder for a peft model) plus the tokenizer, atomically.
    `state_dict`: the full weights when the module holds shards (FSDP)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    kw = {"state_dict": state_dict} if state_dict is not None else {}
    model.save_pretrained(tmp, safe_serialization=True, **kw)
    tokenizer.save_pretrained(tmp)
    old = out.parent / f".{out.name}-old"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out
