"""The chunked LM head: the same log-probs, entropy and gradients as full logits, without full logits."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from srlkit.config import LoraConfig, LossConfig, ModelConfig
from srlkit.train import head
from srlkit.train.batch import collate
from srlkit.train.learner import Learner
from srlkit.train.logprobs import token_entropy, token_logprobs
from srlkit.train.model import load_policy


def test_chunks_equal_the_full_log_softmax_values_entropy_and_gradients():
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 11, bias=True)
    hidden = torch.randn(3, 5, 8, requires_grad=True)
    targets = torch.randint(0, 11, (3, 5))
    T = 0.7
    # budget of 2 tokens' fp32 logits: 8 chunks, the last one short
    lp, ent = head.chunked_logprobs(hidden, lin, targets, T, entropy=True, budget=2 * 11 * 4)
    full = torch.log_softmax(lin(hidden).float() / T, -1)
    ref = full.gather(-1, targets[..., None])[..., 0]
    assert torch.allclose(lp, ref, atol=1e-6)
    assert torch.allclose(ent, -(full.exp() * full).sum(-1), atol=1e-5) and not ent.requires_grad
    w = torch.randn(3, 5)
    grads = torch.autograd.grad((lp * w).sum(), (hidden, lin.weight, lin.bias))
    refs = torch.autograd.grad((ref * w).sum(), (hidden, lin.weight, lin.bias))
    for g, r in zip(grads, refs):
        assert torch.allclose(g, r, atol=1e-6)


class _LargestLogits(TorchDispatchMode):
    """Records the largest [..., V] tensor any op returns, forward and backward (logits, their
    fp32 copies and gradients; weight gradients are [V, d])."""

    def __init__(self, vocab: int):
        super().__init__()
        self.vocab, self.numel = vocab, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func.is_view:  # a view allocates nothing (the head's weight.t() is [d, V])
            return out
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.dim() >= 2 and t.shape[-1] == self.vocab:
                self.numel = max(self.numel, t.numel())
        return out


def test_learner_logprobs_equal_todays_without_the_full_logits(tiny_model_dir, monkeypatch):
    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), pack_prompts=False,
                                     lora=LoraConfig(enabled=False)))
    learner = Learner(policy, LossConfig())
    pad = policy.tokenizer.pad_token_id
    batch = collate([[11, 12, 13, 14], [21, 22], [31, 32, 33]], [[5, 6, 7, 8], [9], [40, 41]], [1.0, -0.5, 0.2],
                    pad_id=pad, temperature=0.8)
    mask, L = batch.completion_mask, batch.completion_mask.shape[1]
    V = policy.model.config.vocab_size
    # today's path: full [n, L, V] logits, then chunked fp32 reductions
    logits = learner._logits(learner.model, batch)
    old = token_logprobs(logits, batch.input_ids[:, -L:], 0.8)
    old_ent = token_entropy(logits.detach(), 0.8)
    (old * mask).sum().backward()
    g_old = {n: p.grad.clone() for n, p in policy.trainable()}
    policy.model.zero_grad()
    monkeypatch.setattr(head, "CHUNK_BYTES", 4 * V * 4)  # 4 tokens per chunk
    with _LargestLogits(V) as seen:
        new, ent = learner._logprobs(learner.model, batch, entropy=True)
        (new * mask).sum().backward()
    assert seen.numel == 4 * V  # one chunk at a time: never the micro-batch's [3, 5, V] logits or their gradient
    m = mask.bool()
    assert torch.allclose(new[m], old[m], atol=1e-5) and torch.allclose(ent[m], old_ent[m], atol=1e-4)
    for n, p in policy.trainable():  # the tied embedding / LM head included
        assert torch.allclose(p.grad, g_old[n], atol=1e-6, rtol=1e-4), n


def test_other_heads_fall_back_to_full_logits(tiny_model_dir, monkeypatch):
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), pack_prompts=False))
    learner = Learner(policy, LossConfig())
    assert head.output_layer(learner.model) is not None
    monkeypatch.setattr(head, "FUSED_MODELS", frozenset())
    assert head.output_layer(learner.model) is None
    batch = collate([[11, 12]], [[5, 6]], [1.0], pad_id=policy.tokenizer.pad_token_id)
    lp, ent = learner._logprobs(learner.model, batch, entropy=True)
    assert lp.shape == ent.shape == (1, 2)
    with pytest.raises(ValueError):
        with head.selected_logprobs(learner.model, batch.input_ids, 1.0):
            pass
