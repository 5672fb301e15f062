"""The KL reference of a phase, chosen per phase (`kl_beta`, `kl_reference`).

- "base": the model the run loaded. With LoRA it is the adapter-free model (the adapter is
  disabled for the reference pass, no copy); with full fine-tuning a frozen copy made at load
  (`model.load_policy(..., base_copy=True)`).
- "phase_start": the weights the phase began with. A snapshot of the *trainable* tensors is
  taken at the phase's start (the adapter with LoRA, every weight with full fine-tuning, in
  their own dtype), and the reference pass swaps it in for the live tensors and back. The
  swap moves no data (it exchanges `.data` pointers), so the policy's weights come back
  bit-identical. In `srl,rlvr` this makes RLVR's KL pull towards the SRL result, exactly as a
  separate `rlvr` run started from the SRL weights would (there "phase_start" is its start).

On resume mid-phase the snapshot is not the resumed weights, so checkpoints store it
(`reference.safetensors`) and `Learner.load_reference` puts it back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch


def snapshot(module: Any) -> dict[str, torch.Tensor]:
    """Detached copies of the module's trainable tensors, by name."""
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


@contextmanager
def swapped(module: Any, snap: dict[str, torch.Tensor]) -> Iterator[Any]:
    """The module computing with `snap` in place of its trainable tensors, for the duration.

    >>> lin = torch.nn.Linear(1, 1, bias=False); _ = torch.nn.init.ones_(lin.weight)
    >>> snap = {"weight": torch.full((1, 1), 3.0)}
    >>> with torch.no_grad(), swapped(lin, snap) as m: float(m(torch.ones(1, 1)))
    3.0
    >>> float(lin.weight), float(snap["weight"])
    (1.0, 3.0)
    """
    params = dict(module.named_parameters())
    missing = [n for n in snap if n not in params]
    if missing:
        raise KeyError(f"reference snapshot names {len(missing)} tensors the model lacks, e.g. {missing[0]}")
    live = {n: params[n].data for n in snap}
    try:
        for n, t in snap.items():
            params[n].data = t
        yield module
    finally:
        for n, t in live.items():
            params[n].data = t
