"""Mixed precision and the chunked log-prob/entropy kernels.

- bf16 full fine-tuning keeps fp32 master weights, so small-LR AdamW steps are not lost:
  40 steps at lr 1e-5 move the weights about as far as the same run in fp32. The control
  (the old behaviour: bf16 weights updated in place) loses most of them.
- `logprobs.token_logprobs` / `token_entropy` in chunks equal the whole-tensor formulas,
  values and gradients, with a temperature.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
from srlkit.train.advantages import group_advantages
from srlkit.train.batch import collate
from srlkit.train.learner import Learner
from srlkit.train.logprobs import token_entropy, token_logprobs
from srlkit.train.model import load_policy

sys.path.insert(0, os.path.dirname(__file__))


def _batch(pad):
    adv = group_advantages([0.9, 0.1, 0.6, 0.2], 2)
    return collate([[11, 12, 13]] * 2 + [[21, 22]] * 2, [[5, 6, 7], [8, 9], [30, 31], [32, 33, 34]], adv, pad_id=pad)


def _run(tiny_model_dir, dtype: str, steps: int = 40, lr: float = 1e-5):
    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), dtype=dtype, lora=LoraConfig(enabled=False)))
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=lr, micro_batch_size=4, max_grad_norm=0.0), total_steps=steps)
    before = {n: p.detach().float().clone() for n, p in policy.trainable()}
    dtypes = ({p.dtype for _, p in policy.trainable()}, learner.acc.mixed_precision)
    batch = _batch(policy.tokenizer.pad_token_id)
    for _ in range(steps):
        learner.update(batch)
    delta = {n: p.detach().float() - before[n] for n, p in policy.trainable()}
    return delta, dtypes, learner


def _stats(delta):
    changed = sum(int((d != 0).sum()) for d in delta.values())
    total = sum(d.numel() for d in delta.values())
    norm = torch.sqrt(sum((d.double() ** 2).sum() for d in delta.values()))
    return changed / total, float(norm)


@pytest.fixture(scope="module")
def fp32_run(tiny_model_dir):
    return _run(tiny_model_dir, "float32")


def test_bf16_full_finetune_moves_weights_like_fp32(tiny_model_dir, fp32_run):
    d32, t32, _ = fp32_run
    d16, t16, _ = _run(tiny_model_dir, "bfloat16")
    assert t32 == ({torch.float32}, "no") and t16 == ({torch.float32}, "bf16")  # fp32 master weights in both
    f32, n32 = _stats(d32)
    f16, n16 = _stats(d16)
    assert f32 > 0.9 and f16 > 0.9 * f32, (f32, f16)
    assert 0.8 < n16 / n32 < 1.25, (n16, n32)
    # the update directions agree (bf16 compute only perturbs them)
    cos = sum(float((d32[n].double() * d16[n].double()).sum()) for n in d32) / (n32 * n16)
    assert cos > 0.9, cos


def test_bf16_weights_updated_in_place_lose_most_steps(tiny_model_dir, fp32_run):
    """The control: what the trainer did before (bf16 weights, plain AdamW) drops small updates."""
    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), dtype="bfloat16", lora=LoraConfig(enabled=False)))
    model = policy.model.to(torch.bfloat16)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0)
    batch = _batch(policy.tokenizer.pad_token_id)
    for _ in range(40):
        opt.zero_grad()
        L = batch.completion_mask.shape[1]
        logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits[:, -L - 1 : -1]
        lp = token_logprobs(logits, batch.input_ids[:, -L:])
        (-(lp * batch.completion_mask * batch.advantages[:, None]).sum()).backward()
        opt.step()
    changed, total = 0, 0
    for n, p in model.named_parameters():
        changed += int((p.detach() != before[n]).sum())
        total += p.numel()
    assert changed / total < 0.5 * _stats(fp32_run[0])[0], changed / total


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_chunked_logprobs_and_entropy_match_the_full_tensor(temperature):
    torch.manual_seed(0)
    logits = torch.randn(3, 11, 50, dtype=torch.float64).to(torch.bfloat16).requires_grad_(True)
    tokens = torch.randint(0, 50, (3, 11))
    full = torch.log_softmax(logits.float() / temperature, -1).gather(-1, tokens[..., None])[..., 0]
    g_full = torch.autograd.grad(full.sum(), logits)[0]
    budget = 3 * 50 * 4 * 2  # two positions per chunk: six chunks, the last one short
    chunked = token_logprobs(logits, tokens, temperature, budget=budget)
    g_chunk = torch.autograd.grad(chunked.sum(), logits)[0]
    assert chunked.dtype == torch.float32
    assert torch.allclose(full, chunked, atol=1e-6)
    assert torch.allclose(g_full.float(), g_chunk.float(), atol=1e-3)
    p = torch.softmax(logits.float() / temperature, -1)
    ent = -(p * torch.log(p)).sum(-1)
    assert torch.allclose(token_entropy(logits, temperature, budget=budget), ent, atol=1e-5)
