"""The clipped policy-gradient loss, KL and aggregation: pure tensor functions.

All per-token tensors are [N, L] (rows x completion columns) with a 0/1 `mask`.
The aggregation normalisers can be given for the *whole* rollout batch, so that summing
micro-batch losses under gradient accumulation gives exactly the full-batch loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(token) per position: logits [N, L, V], tokens [N, L] -> [N, L] (float32).

    Computed as gathered logit minus logsumexp, which never materialises a second
    [N, L, V] log-softmax tensor.
    """
    logits = logits.float()
    picked = logits.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


@torch.no_grad()
def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the next-token distribution per position: [N, L, V] -> [N, L]."""
    logits = logits.float()
    logz = torch.logsumexp(logits, dim=-1, keepdim=True)
    p = torch.exp(logits - logz)
    return (logz.squeeze(-1) - (p * logits).sum(-1))


def importance_weights(old_logp: torch.Tensor, behav_logp: torch.Tensor, cap: float) -> torch.Tensor:
    """Truncated importance weights min(exp(old - behav), cap) per token (no gradient).

    >>> importance_weights(torch.tensor([0.0, 0.0]), torch.tensor([0.0, -2.0]), 2.0).tolist()
    [1.0, 2.0]
    """
    return torch.exp(old_logp - behav_logp).clamp(max=cap).detach()


def kl_k3(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token KL(pi || ref) estimator k3 = exp(ref - logp) - (ref - logp) - 1 (>= 0, unbiased)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


@dataclass
class Norm:
    """Aggregation normalisers of the whole rollout batch (see `batch_norm`)."""

    tokens: float  # unmasked tokens
    rows: float  # rows with at least one unmasked token
    all_rows: float  # every row (Dr.GRPO divides by the batch size)
    max_new_tokens: float


def batch_norm(mask: torch.Tensor, max_new_tokens: int) -> Norm:
    lens = mask.sum(-1)
    return Norm(
        tokens=float(lens.sum().clamp(min=1.0)),
        rows=float((lens > 0).sum().clamp(min=1)),
        all_rows=float(max(1, mask.shape[0])),
        max_new_tokens=float(max_new_tokens or mask.shape[1]),
    )


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str, norm: Norm) -> torch.Tensor:
    """Reduce [N, L] per-token losses to a scalar.

    - token_mean (DAPO): sum over all tokens / tokens in the batch; long answers weigh more.
    - seq_mean (GRPO): mean over rows of each row's token mean.
    - dr_grpo: sum / (rows x max_new_tokens); a constant normaliser, no length bias.
    """
    masked = per_token * mask
    if how == "token_mean":
        return masked.sum() / norm.tokens
    if how == "seq_mean":
        lens = mask.sum(-1)
        per_row = masked.sum(-1) / lens.clamp(min=1.0)
        return per_row.sum() / norm.rows
    if how == "dr_grpo":
        return masked.sum() / (norm.all_rows * norm.max_new_tokens)
    raise ValueError(f"unknown aggregation '{how}'")


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_low: float,
    clip_high: float,
    aggregation: str,
    norm: Norm | None = None,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    behav_logp: torch.Tensor | None = None,
    tis_cap: float = 0.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped surrogate: -min(r A, clip(r, 1-clip_low, 1+clip_high) A) * w + beta KL.

    `advantages` is [N] (one per sequence) or [N, L] (per token). `old_logp` is the
    trainer's own log-probability at rollout time (pi_old); `behav_logp`, when given, is
    the rollout engine's (the policy that actually sampled). Engines and trainers never
    agree exactly (other kernels, bf16, merged LoRA), so each token is reweighted by the
    truncated importance weight w = min(pi_old / pi_behav, tis_cap) (detached; tis_cap <= 0:
    no correction). Returns the loss and summed statistics (clipped tokens, KL sum, token
    count, |old - behav| sum and max) for logging.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1).expand_as(logp)
    norm = norm or batch_norm(mask, logp.shape[1])
    ratio = torch.exp(logp - old_logp)
    clipped = torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    per_token = -torch.minimum(ratio * advantages, clipped * advantages)
    stats: dict[str, float] = {"tokens": float(mask.sum())}
    if behav_logp is not None:
        # NaN marks tokens no engine sampled (an expert step placed in a group): weight 1
        behav_logp = torch.where(torch.isnan(behav_logp), old_logp.detach(), behav_logp)
        diff = (old_logp.detach() - behav_logp) * mask
        stats["mismatch_sum"] = float(diff.abs().sum())
        stats["mismatch_max"] = float(diff.abs().max()) if diff.numel() else 0.0
        if tis_cap > 0:
            w = importance_weights(old_logp.detach(), behav_logp, tis_cap)
            stats["tis_clipped"] = float(((w >= tis_cap) * mask).sum())
            per_token = per_token * w
    # A token is clipped when the clipped branch is the one min() picked and it differs.
    is_clipped = ((ratio < 1.0 - clip_low) & (advantages < 0)) | ((ratio > 1.0 + clip_high) & (advantages > 0))
    stats["clipped"] = float((is_clipped.float() * mask).sum())
    if ref_logp is not None and beta > 0:
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + beta * kl
        stats["kl_sum"] = float((kl.detach() * mask).sum())
    loss = aggregate(per_token, mask, aggregation, norm)
    return loss, stats
