"""Typed batch records and their collation.

Layout: each row is `prompt (left-padded to P) + completion (right-padded to L)`, so every
completion starts at column P. Aligned completion columns let the learner ask the model for
only the last L+1 logits (`logits_to_keep`) instead of a full [B, P+L, V] tensor, which is
the largest activation in the step. Position ids are derived from the attention mask, so
left padding does not shift positions.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch


@dataclass
class RolloutBatch:
    """What the learner consumes. N = B*G rows (prompts x rollouts), P prompt, L completion columns."""

    input_ids: torch.Tensor  # [N, P+L] long
    attention_mask: torch.Tensor  # [N, P+L] long, 0 on padding
    completion_mask: torch.Tensor  # [N, L] float, the loss mask (0: padding or masked-out row)
    advantages: torch.Tensor  # [N] float, one per sequence (broadcast over its tokens)
    old_logprobs: torch.Tensor | None = None  # [N, L]; None: the current policy's, detached
    ref_logprobs: torch.Tensor | None = None  # [N, L]; None: no KL, or computed by the learner
    behavior_logprobs: torch.Tensor | None = None  # [N, L]; the rollout engine's (None: SFT, or unknown)
    temperature: float = 1.0  # the sampling temperature: logits are divided by it
    max_new_tokens: int = 0  # the Dr.GRPO constant; 0: L

    @property
    def prompt_len(self) -> int:
        return self.input_ids.shape[1] - self.completion_mask.shape[1]

    @property
    def rows(self) -> int:
        return self.input_ids.shape[0]

    def slice(self, start: int, stop: int) -> RolloutBatch:
        """Rows [start, stop) as a micro-batch (tensors are views, not copies)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v[start:stop] if isinstance(v, torch.Tensor) else v
        return RolloutBatch(**kw)

    def to(self, device: torch.device | str) -> RolloutBatch:
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            kw[f.name] = v.to(device) if isinstance(v, torch.Tensor) else v
        return RolloutBatch(**kw)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting only real tokens (left padding gets position 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def collate(
    prompts: list[list[int]],
    completions: list[list[int]],
    advantages: list[float],
    *,
    pad_id: int,
    keep: list[bool] | None = None,
    old_logprobs: list[list[float]] | None = None,
    behavior_logprobs: list[list[float]] | None = None,
    temperature: float = 1.0,
    max_new_tokens: int = 0,
) -> RolloutBatch:
    """Build a `RolloutBatch` from token lists (one prompt per row; repeat a prompt G times).

    `keep[i] = False` zeroes row i's loss mask (e.g. a masked truncated completion): the row
    stays in the tensor so shapes and groups are unchanged, but carries no gradient.
    """
    if not (len(prompts) == len(completions) == len(advantages)):
        raise ValueError("prompts, completions and advantages must have one entry per row")
    n = len(prompts)
    p_len = max((len(p) for p in prompts), default=0)
    c_len = max(1, max((len(c) for c in completions), default=1))
    ids = torch.full((n, p_len + c_len), pad_id, dtype=torch.long)
    att = torch.zeros((n, p_len + c_len), dtype=torch.long)
    cmask = torch.zeros((n, c_len), dtype=torch.float32)
    old = torch.zeros((n, c_len), dtype=torch.float32) if old_logprobs is not None else None
    behav = torch.zeros((n, c_len), dtype=torch.float32) if behavior_logprobs is not None else None
    for i, (p, c) in enumerate(zip(prompts, completions)):
        if p:
            ids[i, p_len - len(p) : p_len] = torch.tensor(p, dtype=torch.long)
            att[i, p_len - len(p) : p_len] = 1
        if c:
            ids[i, p_len : p_len + len(c)] = torch.tensor(c, dtype=torch.long)
            att[i, p_len : p_len + len(c)] = 1
            if keep is None or keep[i]:
                cmask[i, : len(c)] = 1.0
            if old is not None:
                old[i, : len(c)] = torch.tensor(old_logprobs[i][: len(c)], dtype=torch.float32)
            if behav is not None:
                behav[i, : len(c)] = torch.tensor(behavior_logprobs[i][: len(c)], dtype=torch.float32)
    return RolloutBatch(
        input_ids=ids,
        attention_mask=att,
        completion_mask=cmask,
        advantages=torch.tensor(advantages, dtype=torch.float32),
        old_logprobs=old,
        behavior_logprobs=behav,
        temperature=temperature,
        max_new_tokens=max_new_tokens or c_len,
    )
