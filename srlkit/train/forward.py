"""The learner's forward pass: completion log-probs of a micro-batch, plain or packed.

One function gives the learner what it needs, log p(token) [n, L] (fp32, temperature applied)
and optionally the entropy, choosing:
- the layout: one row per completion, or a group's prompt once with its completions packed
  behind it (`packing.py`), when `pack_policy.Packer.use` says it pays for this micro-batch;
- the attention kernel of a packed forward (`sdpa`/`eager` with a 4D mask, or FlexAttention
  with a block mask); the model's own kernel is put back by `restore_attention`;
- the head: chunked log-probs straight from the hidden states (`head.py`), or full logits for
  models whose head is not a plain linear layer.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import torch
import torch.nn.functional as F

from srlkit.train import head, packing
from srlkit.train.batch import RolloutBatch, position_ids
from srlkit.train.logprobs import token_entropy, token_logprobs
from srlkit.train.pack_policy import Packer


def _inputs(mb: RolloutBatch, packer: Packer | None, unwrapped: Any
            ) -> tuple[packing.Packing | None, dict, torch.Tensor]:
    """Model kwargs for `mb`, the packing plan (None: plain) and the target of each kept position."""
    L, P = mb.completion_mask.shape[1], mb.prompt_len
    plan = packing.plan(mb.input_ids, mb.attention_mask, P) if packer is not None else None
    if plan is not None and packer.use(plan, mb):
        packing.set_attention(unwrapped, packer.kind)
        kw = packing.pack(plan, mb.input_ids, mb.attention_mask, P, packer.kind, torch.float32)
        return plan, kw, kw["input_ids"][:, P:]  # slot j's kept positions predict slot j's tokens
    if packer is not None:
        packing.set_attention(unwrapped, packer.own)
    kw = dict(input_ids=mb.input_ids, attention_mask=mb.attention_mask,
              position_ids=position_ids(mb.attention_mask), logits_to_keep=L + 1)
    return None, kw, F.pad(mb.input_ids[:, P:], (0, 1))  # the last kept position predicts nothing


def _rows(plan: packing.Packing | None, x: torch.Tensor, L: int) -> torch.Tensor:
    """Per kept position [rows, K, ...] -> the micro-batch's [n, L, ...]."""
    return packing.unpack(plan, x) if plan is not None else x[:, :L]


def completion_logits(model: Any, unwrapped: Any, mb: RolloutBatch, packer: Packer | None) -> torch.Tensor:
    """Raw logits [n, L, V] in the compute dtype (the fallback path; temperature is not applied)."""
    plan, kw, _ = _inputs(mb, packer, unwrapped)
    return _rows(plan, model(**kw, use_cache=False).logits, mb.completion_mask.shape[1])


def completion_logprobs(model: Any, unwrapped: Any, mb: RolloutBatch, packer: Packer | None, entropy: bool = False
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(token) [n, L] fp32 at temperature `mb.temperature` (and the entropy [n, L], no autograd)."""
    L = mb.completion_mask.shape[1]
    tokens = mb.input_ids[:, -L:]
    if head.output_layer(unwrapped) is None:
        logits = completion_logits(model, unwrapped, mb, packer)
        ent = token_entropy(logits.detach(), mb.temperature) if entropy else None
        return token_logprobs(logits, tokens, mb.temperature), ent
    plan, kw, targets = _inputs(mb, packer, unwrapped)
    with head.selected_logprobs(unwrapped, targets, mb.temperature, entropy) as out:
        lp = model(**kw, use_cache=False).logits
    ent = _rows(plan, out.entropy.unsqueeze(-1), L)[..., 0] if entropy else None
    return _rows(plan, lp.unsqueeze(-1), L)[..., 0], ent


def restore_attention(method: Callable) -> Callable:
    """Decorator of a Learner method: the policy's attention kernel is what it was before the call
    (a packed forward may switch it, and backward recomputation needs the switch to last)."""

    @wraps(method)
    def run(self: Any, *args: Any, **kw: Any) -> Any:
        models = [self.acc.unwrap_model(self.policy.model)]
        if self.policy.ref_model is not None:
            models.append(self.policy.ref_model)
        saved = [packing.attention_kind(m) for m in models]
        try:
            return method(self, *args, **kw)
        finally:
            for m, k in zip(models, saved):
                packing.set_attention(m, k)

    return run
