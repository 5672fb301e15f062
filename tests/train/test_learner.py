"""The phase-blind learner on SRL, RLVR and SFT batches; collation; the data cursor."""

from __future__ import annotations

import copy

import pytest
import torch

from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
from srlkit.train.advantages import group_advantages
from srlkit.train.batch import collate, position_ids
from srlkit.train.data import PromptTable, read_rows
from srlkit.train.learner import Learner
from srlkit.train.model import load_policy


def _policy(tiny_model_dir, lora=True, beta=0.0):
    torch.manual_seed(0)
    return load_policy(ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(enabled=lora, r=4)), kl_beta=beta)


def _snapshot(policy):
    return {n: p.detach().clone() for n, p in policy.trainable()}


def test_collate_layout():
    b = collate([[1, 2, 3], [4]], [[7, 8], [9, 10, 11]], [1.0, -1.0], pad_id=0, keep=[True, False])
    assert b.input_ids.tolist() == [[1, 2, 3, 7, 8, 0], [0, 0, 4, 9, 10, 11]]
    assert b.attention_mask.tolist() == [[1, 1, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1]]
    assert b.completion_mask.tolist() == [[1, 1, 0], [0, 0, 0]]  # row 2 masked out (keep=False)
    assert b.prompt_len == 3 and b.max_new_tokens == 3
    assert position_ids(b.attention_mask).tolist() == [[0, 1, 2, 3, 4, 4], [0, 0, 0, 1, 2, 3]]


def _srl_batch(pad):
    rewards = [0.9, 0.1, 0.6, 0.2]  # 2 prompts x G=2
    adv = group_advantages(rewards, 2)
    return collate([[11, 12, 13]] * 2 + [[21, 22]] * 2, [[5, 6, 7], [8, 9], [30, 31], [32, 33, 34]], adv, pad_id=pad)


def _rlvr_batch(pad):
    adv = group_advantages([1.0, 0.0, 0.0, 1.0], 2)
    return collate([[40, 41]] * 2 + [[50, 51, 52]] * 2, [[60], [61, 62], [63, 64], [65]], adv, pad_id=pad)


def _sft_batch(pad):
    return collate([[11, 12, 13], [21, 22]], [[5, 6, 7, 2], [30, 31, 2]], [1.0, 1.0], pad_id=pad)


def test_one_learner_updates_on_srl_rlvr_and_sft_batches(tiny_model_dir):
    policy = _policy(tiny_model_dir)
    learner = Learner(policy, LossConfig())
    pad = policy.tokenizer.pad_token_id
    for make in (_srl_batch, _rlvr_batch, _sft_batch):
        learner.begin_phase(PhaseConfig(lr=1e-2, micro_batch_size=2), total_steps=5)
        before = _snapshot(policy)
        stats = learner.update(make(pad))
        after = _snapshot(policy)
        assert any(not torch.equal(before[n], after[n]) for n in before), make.__name__
        assert stats["grad_norm"] > 0 and stats["entropy"] > 0 and stats["lr"] == pytest.approx(1e-2)


def test_sft_updates_reduce_nll(tiny_model_dir):
    policy = _policy(tiny_model_dir)
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=5e-2, micro_batch_size=4), total_steps=10)
    batch = _sft_batch(policy.tokenizer.pad_token_id)

    def nll():
        lp = learner.logprobs(batch, policy.model)
        return float(-(lp * batch.completion_mask).sum() / batch.completion_mask.sum())

    start = nll()
    reported = []
    for _ in range(5):
        before = nll()
        reported.append(learner.update(batch)["nll"])
        assert reported[-1] == pytest.approx(before, rel=1e-4)  # `nll`: the cross-entropy before the step
    assert nll() < start - 0.2 and reported[-1] < reported[0]


def test_gradient_accumulation_matches_one_big_batch(tiny_model_dir):
    """Micro-batches of 1 accumulate to the gradient of one batch of 4 (the normalisers are global)."""
    grads = []
    for mbs in (1, 4):
        policy = _policy(tiny_model_dir, lora=False)
        learner = Learner(policy, LossConfig(aggregation="seq_mean"))
        learner.begin_phase(PhaseConfig(lr=1e-3, micro_batch_size=mbs, max_grad_norm=0.0), total_steps=1)
        seen = {}
        step = learner.optimizer.step

        def capture(*a, **k):
            seen.update({n: p.grad.clone() for n, p in policy.trainable() if p.grad is not None})
            return step(*a, **k)

        learner.optimizer.step = capture
        learner.update(_srl_batch(policy.tokenizer.pad_token_id))
        grads.append(seen)
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6, rtol=1e-4), n


def test_mu_updates_and_kl_with_lora_reference(tiny_model_dir):
    policy = _policy(tiny_model_dir, beta=0.1)
    assert policy.ref_model is None  # LoRA: the reference is the adapter-disabled base, no copy
    learner = Learner(policy, LossConfig(kl_beta=0.1))
    learner.begin_phase(PhaseConfig(lr=5e-2, micro_batch_size=2, mu=3), total_steps=4)
    batch = _srl_batch(policy.tokenizer.pad_token_id)
    s1 = learner.update(batch)
    s2 = learner.update(_srl_batch(policy.tokenizer.pad_token_id))
    assert s1["kl"] > 0 and s2["kl"] > 0  # mu=3: passes 2 and 3 see a policy that moved off the reference
    assert s1["clip_frac"] > 0 or s2["clip_frac"] > 0  # mu=3 at a high LR moves past the clip range


def test_full_finetune_kl_uses_frozen_copy(tiny_model_dir):
    policy = _policy(tiny_model_dir, lora=False, beta=0.1)
    assert policy.ref_model is not None and not any(p.requires_grad for p in policy.ref_model.parameters())


def test_fully_masked_batch_is_a_no_op(tiny_model_dir):
    policy = _policy(tiny_model_dir)
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=1e-2), total_steps=3)
    before = _snapshot(policy)
    b = collate([[1, 2]], [[3, 4]], [1.0], pad_id=0, keep=[False])
    assert learner.update(b)["loss"] == 0.0
    assert all(torch.equal(before[n], v) for n, v in _snapshot(policy).items())


def test_prompt_table_cursor_resumes_exactly(tiny_data, tiny_model_dir):
    from srlkit.train.model import load_tokenizer

    tok = load_tokenizer(str(tiny_model_dir))
    rows = read_rows(tiny_data, "srl", "train")
    a = PromptTable(rows, tok, seed=3, max_prompt_tokens=2048)
    first = a.take(7) + a.take(7)
    b = PromptTable(rows, tok, seed=3, max_prompt_tokens=2048)
    b.take(7)
    c = PromptTable(rows, tok, seed=3, max_prompt_tokens=2048)
    c.restore(copy.deepcopy(b.cursor.to_dict()))
    assert c.take(7) == first[7:]
    assert sorted(first[:10]) == list(range(10))  # an epoch is a permutation
    short = PromptTable(rows, tok, seed=3, max_prompt_tokens=5)
    assert len(short) == 0 and short.too_long == len(rows)


def test_dataset_layout(tiny_data):
    """The fixture writes the schema's layout (guards the other tests' input)."""
    import polars as pl

    from srlkit.schema import RLVR_COLUMNS, SRL_COLUMNS

    srl = pl.read_parquet(tiny_data / "srl" / "train-00000-of-00001.parquet")
    rlvr = pl.read_parquet(tiny_data / "rlvr" / "validation-00000-of-00001.parquet")
    assert list(srl.columns) == list(SRL_COLUMNS) and list(rlvr.columns) == list(RLVR_COLUMNS)
