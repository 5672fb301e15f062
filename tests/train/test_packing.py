"""Shared-prompt packing: the learner's packed forward equals the plain one, logits and gradients."""

from __future__ import annotations

import pytest
import torch

from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
from srlkit.train import packing
from srlkit.train.advantages import group_advantages
from srlkit.train.batch import collate
from srlkit.train.learner import Learner
from srlkit.train.model import load_policy
from srlkit.train.pack_policy import Packer


def _policy(tiny_model_dir, pack: bool | str, attn: str = "sdpa", lora: bool = False):
    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), pack_prompts=pack,
                                     lora=LoraConfig(enabled=lora, r=4)))
    policy.model.config._attn_implementation = attn
    return policy


def _group_batch(pad: int):
    """2 prompts of different lengths x G=3, completions of different lengths (right padding)."""
    prompts = [[11, 12, 13, 14, 15, 16, 17, 18]] * 3 + [[21, 22, 23, 24, 25]] * 3
    completions = [[5, 6, 7], [8], [9, 10, 40, 41], [30, 31], [32, 33, 34], [35]]
    adv = group_advantages([0.9, 0.1, 0.5, 0.2, 0.8, 0.3], 3)
    return collate(prompts, completions, adv, pad_id=pad)


def test_plan_groups_rows_by_prompt_and_skips_distinct_prompts():
    b = collate([[1, 2, 3, 4]] * 3 + [[5, 6]] * 3, [[7]] * 6, [0.0] * 6, pad_id=0)
    p = packing.plan(b.input_ids, b.attention_mask, b.prompt_len)
    assert p.prompt_of == [0, 0, 0, 1, 1, 1] and p.slot_of == [0, 1, 2, 0, 1, 2] and p.slots == 3
    distinct = collate([[1, 2, 3], [4, 5, 6]], [[7], [8]], [0.0, 0.0], pad_id=0)
    assert packing.plan(distinct.input_ids, distinct.attention_mask, distinct.prompt_len) is None
    # a long completion behind a short shared prompt saves too little to pack
    short = collate([[1]] * 2, [list(range(2, 40))] * 2, [0.0, 0.0], pad_id=0)
    assert packing.plan(short.input_ids, short.attention_mask, short.prompt_len) is None


@pytest.fixture
def eager_flex(monkeypatch):
    """FlexAttention through torch's reference path on CPU: no inductor compile (slow on 2 cores),
    and backward allowed (torch's CPU kernel has none; the reference path computes it densely).
    What is tested is the block mask, the rule a GPU kernel runs."""
    import torch.nn.attention.flex_attention as fa
    from transformers.integrations import flex_attention as hf_flex

    if torch.cuda.is_available():
        return
    monkeypatch.setattr(fa, "_validate_device", lambda *a: None)
    monkeypatch.setattr(hf_flex, "compile_friendly_flex_attention",
                        lambda q, k, v, training=False, **kw: fa.flex_attention(q, k, v, **kw))


def _learners(tiny_model_dir, attn, lora=False):
    plain, packed = _policy(tiny_model_dir, False, "sdpa" if attn == "flex_attention" else attn, lora), \
        _policy(tiny_model_dir, True, "sdpa" if attn == "flex_attention" else attn, lora)
    a, b = Learner(plain, LossConfig()), Learner(packed, LossConfig())
    b.packing = Packer(kind=attn, own=packing.attention_kind(packed.model), mode="always", device="cpu")
    return a, b


@pytest.mark.parametrize("attn", ["sdpa", "eager", "flex_attention"])
def test_packed_logits_and_gradients_equal_the_plain_forward(tiny_model_dir, attn, eager_flex):
    a, b = _learners(tiny_model_dir, attn)
    assert a.packing is None
    batch = _group_batch(a.policy.tokenizer.pad_token_id)
    la, lb = a._logits(a.model, batch), b._logits(b.model, batch)
    assert la.shape == lb.shape == (6, batch.completion_mask.shape[1], la.shape[-1])
    m = batch.completion_mask.bool()
    assert torch.allclose(la[m], lb[m], atol=1e-5, rtol=1e-5)
    # the learner's own path (chunked head): equal log-probs, and gradients of the same objective
    for learner in (a, b):
        lp, _ = learner._logprobs(learner.model, batch)
        ((lp * batch.completion_mask).sum(-1) * batch.advantages).sum().backward()
        learner.lp = lp.detach()
    assert torch.allclose(a.lp[m], b.lp[m], atol=1e-5, rtol=1e-5)
    ga = dict(a.policy.trainable())
    for n, p in b.policy.trainable():
        assert torch.allclose(ga[n].grad, p.grad, atol=1e-5, rtol=1e-4), n
    if attn == "flex_attention":  # a packed forward switches the kernel; the learner's calls switch it back
        assert packing.attention_kind(b.model) == "flex_attention"
        packing.set_attention(b.model, "sdpa")
        b.logprobs(batch, b.model)
        assert packing.attention_kind(b.model) == "sdpa"


@pytest.mark.gpu
def test_flex_packing_on_cuda_equals_the_plain_layout(tiny_model_dir):
    """The compiled FlexAttention kernel (forward and backward) on a GPU, bf16 LoRA policy."""
    a, b = _learners(tiny_model_dir, "flex_attention", lora=True)
    batch = _group_batch(a.policy.tokenizer.pad_token_id)
    for learner in (a, b):
        with learner.acc.autocast():
            lp, _ = learner._logprobs(learner.model, batch.to(learner.device))
        (lp * batch.completion_mask.to(lp.device)).sum().backward()
        learner.lp = lp.detach().cpu()
    m = batch.completion_mask.bool()
    assert torch.allclose(a.lp[m], b.lp[m], atol=5e-2), (a.lp[m] - b.lp[m]).abs().max()
    ga = dict(a.policy.trainable())
    for n, p in b.policy.trainable():  # bf16: the same direction, not the same bits
        cos = torch.nn.functional.cosine_similarity(ga[n].grad.flatten().float(), p.grad.flatten().float(), dim=0)
        assert cos > 0.99 or ga[n].grad.abs().max() == 0, (n, float(cos))


def test_packed_update_matches_the_plain_update(tiny_model_dir, monkeypatch):
    """A whole `update` (micro-batches that cut a group, mu = 2) moves the weights the same way."""
    calls = []
    real_pack = packing.pack
    monkeypatch.setattr(packing, "pack", lambda p, *a: calls.append(p.slots) or real_pack(p, *a))
    results = []
    for pack in (False, True):
        policy = _policy(tiny_model_dir, pack, lora=True)
        learner = Learner(policy, LossConfig())
        learner.begin_phase(PhaseConfig(lr=1e-2, micro_batch_size=4, mu=2), total_steps=3)
        stats = learner.update(_group_batch(policy.tokenizer.pad_token_id))
        results.append((stats, {n: p.detach().clone() for n, p in policy.trainable()}))
    assert calls == [2, 2]  # the second micro-batch (2 rows of one prompt) packed, in both passes
    (sa, wa), (sb, wb) = results
    for k in ("loss", "nll", "entropy", "grad_norm", "clip_frac"):
        assert sb[k] == pytest.approx(sa[k], rel=1e-4, abs=1e-6), k
    for n in wa:
        assert torch.allclose(wa[n], wb[n], atol=1e-5), n


def test_attention_kind_reads_through_wrappers(tiny_model_dir):
    policy = _policy(tiny_model_dir, True, "sdpa", lora=True)
    assert packing.attention_kind(policy.model) == "sdpa"
    assert packing.attention_kind(object()) == "unknown"
