"""Per-token log-probabilities and entropy in chunks, never a whole [N, L, V] fp32 tensor.

The model's logits stay in their compute dtype (bf16 under mixed precision). Each chunk of
positions is upcast to fp32, divided by the temperature, reduced, and dropped; under autograd
the chunk function is checkpointed, so backward recomputes the fp32 chunk instead of keeping
it. At Qwen2.5-7B's sizes (4 x 4096 positions x 152k vocabulary) a full fp32 copy is ~10 GB;
with the default 256 MiB budget a chunk is a few hundred positions.
"""

from __future__ import annotations

import torch
from torch.utils.checkpoint import checkpoint

CHUNK_BYTES = 256 * 2**20  # fp32 bytes of one chunk


def chunk_len(rows: int, vocab: int, budget: int = CHUNK_BYTES) -> int:
    """Positions per chunk so that one fp32 [rows, chunk, vocab] block fits `budget` bytes."""
    return max(1, budget // max(1, rows * vocab * 4))


def _logp(logits: torch.Tensor, tokens: torch.Tensor, inv_t: float) -> torch.Tensor:
    x = logits.float()
    if inv_t != 1.0:
        x = x * inv_t
    return x.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(x, dim=-1)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0,
                   budget: int = CHUNK_BYTES) -> torch.Tensor:
    """log softmax(logits / T)[token] per position: [N, L, V], [N, L] -> [N, L] float32."""
    inv_t = 1.0 / temperature if temperature not in (0.0, 1.0) else 1.0
    size = chunk_len(logits.shape[0], logits.shape[-1], budget)
    grad = torch.is_grad_enabled() and logits.requires_grad
    out = []
    for lc, tc in zip(logits.split(size, dim=1), tokens.split(size, dim=1)):
        out.append(checkpoint(_logp, lc, tc, inv_t, use_reentrant=False) if grad else _logp(lc, tc, inv_t))
    return torch.cat(out, dim=1)


@torch.no_grad()
def token_entropy(logits: torch.Tensor, temperature: float = 1.0, budget: int = CHUNK_BYTES) -> torch.Tensor:
    """Entropy of softmax(logits / T) per position: [N, L, V] -> [N, L] float32 (no autograd)."""
    inv_t = 1.0 / temperature if temperature not in (0.0, 1.0) else 1.0
    size = chunk_len(logits.shape[0], logits.shape[-1], budget)
    out = []
    for lc in logits.split(size, dim=1):
        x = lc.float()
        if inv_t != 1.0:
            x = x * inv_t
        logz = torch.logsumexp(x, dim=-1, keepdim=True)
        out.append(logz.squeeze(-1) - (torch.softmax(x, dim=-1) * x).sum(-1))
        del x
    return torch.cat(out, dim=1)
