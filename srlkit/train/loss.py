"""The clipped policy-gradient loss, KL and aggregation: pure tensor functions.

All per-token tensors are [N, L] (rows x completion columns) with a 0/1 `mask`.
The aggregation normalisers can be given for the *whole* rollout batch, so that summing
micro-batch losses under gradient accumulation gives exactly the full-batch loss.

Objectives (`loss.objective`), with r = pi / pi_old:
- `clip` (PPO/GRPO/DAPO): -min(r A, clip(r) A) per token.
- `gspo` (GSPO, Zheng et al. 2025): one ratio per sequence, s = exp(mean_t log r_t), clipped
  per sequence: -min(s A, clip(s) A) on each of its tokens. Its gradient reaches every token
  through the mean, so a sequence is clipped (or not) as a whole.
- `cispo` (CISPO, MiniMax-M1): -sg(clip(r)) A log pi. The clipped ratio is only a
  coefficient, so a clipped token still has the gradient A * w * d log pi (the clipped
  surrogate zeroes it). At r = 1 all three have the plain policy gradient.
The engine/trainer mismatch correction (`loss.tis_mode`) is in `mismatch.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from srlkit.train.mismatch import importance_weights, mismatch_weights  # noqa: F401  (importance_weights: API)


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
    objective: str = "clip",
    tis_mode: str = "token_truncate",
) -> tuple[torch.Tensor, dict[str, float]]:
    """The policy-gradient loss of `objective` (see the module docstring) + beta KL.

    `advantages` is [N] (one per sequence) or [N, L] (per token). `old_logp` is the
    trainer's own log-probability at rollout time (pi_old); `behav_logp`, when given, is
    the rollout engine's (the policy that actually sampled). Engines and trainers never
    agree exactly (other kernels, bf16, merged LoRA), so the loss is reweighted by
    pi_old / pi_behav as `tis_mode` says (`mismatch.mismatch_weights`; by default each token's
    truncated ratio min(pi_old / pi_behav, tis_cap); tis_cap <= 0: no correction). Returns the
    loss and summed statistics (clipped tokens, KL sum, token count, |old - behav| sum and max,
    corrected tokens) for logging.
    """
    if advantages.dim() == 1:
        advantages = advantages.unsqueeze(-1).expand_as(logp)
    norm = norm or batch_norm(mask, logp.shape[1])
    lo, hi = 1.0 - clip_low, 1.0 + clip_high
    if objective == "gspo":  # [N, 1]: the geometric mean of the token ratios
        log_ratio = ((logp - old_logp) * mask).sum(-1, keepdim=True) / mask.sum(-1, keepdim=True).clamp(min=1.0)
        ratio = torch.exp(log_ratio)
    else:
        ratio = torch.exp(logp - old_logp)
    if objective == "cispo":
        weight = torch.clamp(ratio, lo, hi).detach()
        per_token = -weight * advantages * logp
        is_clipped = (ratio < lo) | (ratio > hi)
    elif objective in ("clip", "gspo"):
        clipped = torch.clamp(ratio, lo, hi)
        per_token = -torch.minimum(ratio * advantages, clipped * advantages)
        # A token is clipped when the clipped branch is the one min() picked and it differs.
        is_clipped = ((ratio < lo) & (advantages < 0)) | ((ratio > hi) & (advantages > 0))
    else:
        raise ValueError(f"unknown objective '{objective}'")
    stats: dict[str, float] = {"tokens": float(mask.sum())}
    if behav_logp is not None:
        # NaN marks tokens no engine sampled (an expert step placed in a group): weight 1
        behav_logp = torch.where(torch.isnan(behav_logp), old_logp.detach(), behav_logp)
        diff = (old_logp.detach() - behav_logp) * mask
        stats["mismatch_sum"] = float(diff.abs().sum())
        stats["mismatch_max"] = float(diff.abs().max()) if diff.numel() else 0.0
        if tis_cap > 0:
            w, corrected = mismatch_weights(old_logp.detach(), behav_logp, mask, tis_cap, tis_mode)
            stats["tis_clipped"] = float((corrected * mask).sum())
            per_token = per_token * w
    stats["clipped"] = float((is_clipped.float() * mask).sum())
    if ref_logp is not None and beta > 0:
        kl = kl_k3(logp, ref_logp)
        per_token = per_token + beta * kl
        stats["kl_sum"] = float((kl.detach() * mask).sum())
    loss = aggregate(per_token, mask, aggregation, norm)
    return loss, stats
