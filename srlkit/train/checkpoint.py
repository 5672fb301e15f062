"""Trainer checkpoints for exact resume, and HF-format model folders.

A checkpoint (`RUN/checkpoints/<phase>-<step:06d>/`) holds everything that decides the rest
of the run: the trainable weights (the adapter with LoRA), optimizer and scheduler state,
the RNG states, the data cursor, the phase/step and the resolved config. It is written to
a temp folder and renamed, so a kill never leaves a half checkpoint behind.
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

from srlkit.errors import SrlkitError

STATE = "trainer_state.json"


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
            params[n].copy_(t.to(params[n].device, params[n].dtype))


def save_checkpoint(run: Path, name: str, *, model: Any, optimizer: Any, scheduler: Any,
                    state: dict[str, Any], config_toml: str, keep: int) -> Path:
    """Write a checkpoint atomically and prune all but the newest `keep`."""
    from safetensors.torch import save_file

    root = ckpt_root(run)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
    save_file(trainable_state(model), str(tmp / "trainable.safetensors"))
    if optimizer is not None:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if scheduler is not None:
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    torch.save(rng_state(), tmp / "rng.pt")
    (tmp / "config.toml").write_text(config_toml, encoding="utf-8")
    (tmp / STATE).write_text(json.dumps(state, indent=2), encoding="utf-8")
    final = root / name
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _prune(root, keep)
    return final


def list_checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints, oldest first (ordered by the `seq` counter in their state)."""
    root = ckpt_root(run)
    if not root.is_dir():
        return []
    found = []
    for d in root.iterdir():
        f = d / STATE
        if d.name.startswith(".") or not f.is_file():
            continue
        found.append((json.loads(f.read_text())["seq"], d))
    return [d for _, d in sorted(found)]


def _prune(root: Path, keep: int) -> None:
    for d in root.glob(".tmp-*"):  # leftovers of a killed save
        shutil.rmtree(d, ignore_errors=True)
    ckpts = list_checkpoints(root.parent)
    for d in ckpts[: max(0, len(ckpts) - max(1, keep))]:
        shutil.rmtree(d, ignore_errors=True)


def latest_checkpoint(run: Path) -> Path | None:
    ckpts = list_checkpoints(run)
    return ckpts[-1] if ckpts else None


def load_checkpoint(path: Path, *, model: Any) -> dict[str, Any]:
    """Load weights into `model`; return the state (optimizer/scheduler/RNG are loaded by the caller)."""
    from safetensors.torch import load_file

    load_trainable(model, load_file(str(path / "trainable.safetensors")))
    return json.loads((path / STATE).read_text())


def load_optim(path: Path, optimizer: Any, scheduler: Any) -> None:
    if (path / "optimizer.pt").is_file():
        optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=False))
    if (path / "scheduler.pt").is_file():
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=False))


def load_rng(path: Path) -> None:
    set_rng_state(torch.load(path / "rng.pt", weights_only=False))


def save_hf(model: Any, tokenizer: Any, out: Path) -> Path:
    """`save_pretrained` (an adapter folder for a peft model) plus the tokenizer, atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    old = out.parent / f".{out.name}-old"
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)
    return out
