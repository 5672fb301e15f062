"""Shared-prompt packing for the learner's forward: each distinct prompt of a micro-batch runs once.

The G completions of a group share one prompt. In the plain layout (one row per completion,
`prompt + completion`), a 300-token prompt with G = 8 goes through the model 8 times in the
forward and 8 times in the backward, while the completions it serves are 64 tokens long.
Packed, one row of the model's batch holds a prompt followed by the completions of its rows,
each in its own slot of L columns:

    [prompt, left-padded to P] [completion 1] [completion 2] ... [completion k]

A 4D attention mask lets the tokens of slot j see the prompt and the earlier tokens of slot j
only, and slot j's positions continue from the prompt's. Every completion token therefore
attends to the same keys, at the same positions, as in the plain layout: its logits are the
same function of the same inputs (equal up to float rounding), and so are the gradients, the
prompt's being the sum over its completions. Only the prompt's share of the compute and of
the activations shrinks, by about G times.

The mask is a dense boolean [U, 1, S, S] tensor for `sdpa` and `eager` (additive for eager),
or a FlexAttention `BlockMask` for `flex_attention`, whose kernel skips the blocks no query of
a block may see (a slot's tokens never see the other slots). Dense kernels compute every
[S, S] score, so for long completions behind a short prompt the packed row can cost more
attention than the plain rows; whether a micro-batch is packed is decided in `pack_policy.py`.
`plan` returns None when packing would not save at least a quarter of the tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

MASKED_ATTENTION = ("sdpa", "eager", "flex_attention")  # kernels that take a packed layout's mask
MIN_SAVED = 0.25  # pack only when it removes at least this fraction of the tokens


@dataclass
class Packing:
    """Where each row of the micro-batch sits in the packed batch."""

    prompt_of: list[int]  # row -> index of its distinct prompt (a packed row)
    slot_of: list[int]  # row -> its slot within that packed row
    first_row: list[int]  # packed row -> a micro-batch row holding its prompt
    slots: int  # slots per packed row (the most any prompt has)

    def slot_index(self, device) -> torch.Tensor:
        """Row -> its slot in the packed rows flattened to [U * slots]."""
        return torch.tensor([u * self.slots + j for u, j in zip(self.prompt_of, self.slot_of)], device=device)


def _config(model: Any) -> Any:
    """The transformers config under DDP / peft / accelerate wrappers (None if there is none)."""
    seen = 0
    while model is not None and seen < 8:
        cfg = getattr(model, "config", None)
        if isinstance(getattr(cfg, "_attn_implementation", None), str):
            return cfg
        model = getattr(model, "module", None) or getattr(model, "base_model", None)
        seen += 1
    return None


def attention_kind(model: Any) -> str:
    """The model's attention implementation, looked up through DDP / peft / accelerate wrappers."""
    cfg = _config(model)
    return cfg._attn_implementation if cfg is not None else "unknown"


def set_attention(model: Any, kind: str | None) -> None:
    """Switch the attention kernel the model's layers use from their next call (read per call)."""
    cfg = _config(model)
    if kind and cfg is not None and cfg._attn_implementation != kind:
        cfg._attn_implementation = kind


def plan(input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int) -> Packing | None:
    """Group the rows by identical prompt; None when packing would not save `MIN_SAVED` of the tokens."""
    rows = input_ids.shape[0]
    if rows < 2 or prompt_len == 0:
        return None
    keys = (input_ids[:, :prompt_len] * attention_mask[:, :prompt_len]).tolist()
    masks = attention_mask[:, :prompt_len].tolist()
    index: dict[tuple, int] = {}
    prompt_of, slot_of, first_row, counts = [], [], [], []
    for r in range(rows):
        key = (tuple(keys[r]), tuple(masks[r]))
        u = index.get(key)
        if u is None:
            u = index[key] = len(first_row)
            first_row.append(r)
            counts.append(0)
        prompt_of.append(u)
        slot_of.append(counts[u])
        counts[u] += 1
    slots = max(counts)
    completion_len = input_ids.shape[1] - prompt_len
    plain = rows * (prompt_len + completion_len)
    packed = len(first_row) * (prompt_len + slots * completion_len)
    if packed > (1.0 - MIN_SAVED) * plain:
        return None
    return Packing(prompt_of, slot_of, first_row, slots)


def pack(p: Packing, input_ids: torch.Tensor, attention_mask: torch.Tensor, prompt_len: int,
         kind: str, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The packed model inputs: input_ids, a 4D attention_mask (a BlockMask for flex_attention),
    position_ids and logits_to_keep."""
    P, L, k, U = prompt_len, input_ids.shape[1] - prompt_len, p.slots, len(p.first_row)
    S = P + k * L
    dev = input_ids.device
    first = torch.tensor(p.first_row, device=dev)
    ids = torch.zeros((U, S), dtype=input_ids.dtype, device=dev)
    real = torch.zeros((U, S), dtype=torch.bool, device=dev)  # a key that may be attended
    ids[:, :P] = input_ids.index_select(0, first)[:, :P]
    real[:, :P] = attention_mask.index_select(0, first)[:, :P].bool()
    where = p.slot_index(dev)
    slot_ids = torch.zeros((U * k, L), dtype=input_ids.dtype, device=dev)
    slot_real = torch.zeros((U * k, L), dtype=torch.bool, device=dev)
    slot_ids[where] = input_ids[:, P:]
    slot_real[where] = attention_mask[:, P:].bool()
    ids[:, P:] = slot_ids.view(U, k * L)
    real[:, P:] = slot_real.view(U, k * L)
    # positions: the prompt's count of real tokens, then each slot continues from the prompt
    n_prompt = real[:, :P].sum(-1, keepdim=True)
    pos = torch.zeros((U, S), dtype=torch.long, device=dev)
    pos[:, :P] = (real[:, :P].long().cumsum(-1) - 1).clamp(min=0)
    pos[:, P:] = (n_prompt + torch.arange(L, device=dev)).repeat(1, k)
    # segment 0 is the prompt, j + 1 is slot j; a query sees earlier real keys of the prompt or its own slot
    seg = torch.cat([torch.zeros(P, dtype=torch.long, device=dev),
                     torch.arange(1, k + 1, device=dev).repeat_interleave(L)])
    # logits of slot j: the prompt's last position predicts its first token, then its own positions
    keep = torch.cat([torch.cat([torch.tensor([P - 1]), P + j * L + torch.arange(L - 1)]) for j in range(k)])
    out = {"input_ids": ids, "position_ids": pos, "logits_to_keep": keep.to(dev)}
    if kind == "flex_attention":
        return out | {"attention_mask": block_mask(seg, real)}
    col = torch.arange(S, device=dev)
    causal = col[None, :] <= col[:, None]
    same = (seg[None, :] == 0) | (seg[None, :] == seg[:, None])
    allowed = (causal & same)[None] & real[:, None, :]
    allowed |= torch.eye(S, dtype=torch.bool, device=dev)[None]  # padding queries see themselves (no empty rows)
    mask = allowed[:, None]
    if kind != "sdpa":  # eager adds the mask to the scores
        mask = torch.zeros(mask.shape, dtype=dtype, device=dev).masked_fill_(~mask, torch.finfo(dtype).min)
    return out | {"attention_mask": mask}


def block_mask(seg: torch.Tensor, real: torch.Tensor) -> Any:
    """`pack`'s rule as a FlexAttention BlockMask: seg [S] (0: prompt, j + 1: slot j), real [U, S]."""
    from torch.nn.attention.flex_attention import create_block_mask

    def sees(b, h, q, kv):
        return ((kv <= q) & ((seg[kv] == 0) | (seg[kv] == seg[q])) & real[b, kv]) | (q == kv)

    S = seg.shape[0]
    return create_block_mask(sees, B=real.shape[0], H=None, Q_LEN=S, KV_LEN=S, device=real.device)


def unpack(p: Packing, logits: torch.Tensor) -> torch.Tensor:
    """Packed logits [U, k * L, V] -> the micro-batch's rows [n, L, V], in row order."""
    U, kL, V = logits.shape
    flat = logits.reshape(U * p.slots, kL // p.slots, V)
    return flat.index_select(0, p.slot_index(logits.device))
