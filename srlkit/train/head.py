"""The LM head in token chunks: log p(chosen token) and entropy, never a [n, L, V] logits tensor.

The learner needs one number per completion token (its log-probability) and, for logging,
the entropy. Computing them from full logits keeps [n, L+1, V] in the compute dtype for
backward plus its gradient of the same size: at a GPU shape (64 rows x 129 positions x a 49k
vocabulary, bf16) that is 1.6 GB, more than the whole model with LoRA. Here the model's output
layer is swapped, for one forward, for a function that takes the last hidden states
[n, K, d] and, per chunk of tokens, runs the head, upcasts to fp32, divides by the
temperature and keeps log p(target) (and the entropy, without autograd). Under autograd each
chunk is checkpointed: backward recomputes its logits instead of keeping them. The model then
returns [n, K] log-probs where it would return logits, so wrappers (DDP, FSDP, peft,
accelerate) see an ordinary forward, and the head's weights are used inside it, where the
sharded backends have gathered them.

Only architectures whose causal-LM forward applies the head and nothing else (no soft-capping,
no logit scaling) use it (`FUSED_MODELS`); any other model gets full logits and the chunked
fp32 reductions of `logprobs.py`, the same numbers with more memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from srlkit.train.memory import FUSED_MODELS  # beside the estimate, which imports no torch

# fp32 bytes of one chunk's logits. Backward holds about four such blocks at once (the
# recomputed logits, their exp, the gather's scatter and the sum), so this bounds the head's
# transient memory at ~256 MiB; chunks of 341 tokens at a 49k vocabulary still fill a GPU matmul.
CHUNK_BYTES = 64 * 2**20



@dataclass
class HeadOutput:
    entropy: torch.Tensor | None = None  # [n, K] float32, no autograd (when asked for)


def output_layer(model: Any) -> torch.nn.Linear | None:
    """The plain nn.Linear output layer of a supported model (through peft), else None."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(inner, "config", None)
    if getattr(cfg, "model_type", None) not in FUSED_MODELS or not hasattr(inner, "get_output_embeddings"):
        return None
    head = inner.get_output_embeddings()
    return head if type(head) is torch.nn.Linear else None  # a LoRA-wrapped head is not plain


def tokens_per_chunk(vocab: int, budget: int | None = None) -> int:
    """Tokens whose fp32 logits fit `budget` bytes (default `CHUNK_BYTES`)."""
    return max(1, (budget or CHUNK_BYTES) // max(1, vocab * 4))


def _chunk(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, tokens: torch.Tensor, inv_t: float,
           sink: list | None) -> torch.Tensor:
    x = F.linear(h, weight, bias).float()
    if inv_t != 1.0:
        x = x * inv_t
    logz = torch.logsumexp(x, dim=-1)
    if sink is not None and not sink[0]:  # the entropy, once (not again when backward recomputes)
        with torch.no_grad():
            sink.append(logz - (torch.softmax(x, dim=-1) * x).sum(-1))
        sink[0] = True
    return x.gather(-1, tokens.unsqueeze(-1)).squeeze(-1) - logz


def chunked_logprobs(hidden: torch.Tensor, head: torch.nn.Linear, targets: torch.Tensor, temperature: float = 1.0,
                     entropy: bool = False, budget: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """hidden [n, K, d], targets [n, K] -> log softmax(head(hidden) / T)[target] [n, K] fp32 (+ entropy).

    `budget`: fp32 bytes of one chunk's logits (default `CHUNK_BYTES`)."""
    n, K, d = hidden.shape
    inv_t = 1.0 / temperature if temperature not in (0.0, 1.0) else 1.0
    flat, tok = hidden.reshape(n * K, d), targets.reshape(n * K)
    size = tokens_per_chunk(head.out_features, budget or CHUNK_BYTES)
    grad = torch.is_grad_enabled() and (hidden.requires_grad or head.weight.requires_grad)
    out, ents = [], []
    for s in range(0, n * K, size):
        sink = [False] if entropy else None
        args = (flat[s:s + size], head.weight, head.bias, tok[s:s + size], inv_t, sink)
        out.append(checkpoint(_chunk, *args, use_reentrant=False) if grad else _chunk(*args))
        if sink is not None:
            ents.append(sink[1])
    lp = torch.cat(out).view(n, K)
    return lp, (torch.cat(ents).view(n, K) if entropy else None)


@contextmanager
def selected_logprobs(model: Any, targets: torch.Tensor, temperature: float, entropy: bool = False
                      ) -> Iterator[HeadOutput]:
    """During this block the model returns log p(targets) [n, K] as its `logits`.

    `targets[i, j]` is the token that the j-th kept position of row i predicts. `model` is the
    unwrapped policy (peft or transformers); the caller may run the wrapped one.
    """
    head = output_layer(model)
    if head is None:
        raise ValueError("this model's output layer cannot be chunked; check head.output_layer first")
    out = HeadOutput()

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        lp, out.entropy = chunked_logprobs(hidden, head, targets.to(hidden.device), temperature, entropy)
        return lp

    head.forward = forward  # an instance attribute shadows nn.Linear.forward; hooks still run
    try:
        yield out
    finally:
        del head.forward
