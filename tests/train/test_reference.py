"""Per-phase KL: `kl_beta` and `kl_reference` per phase, the phase-start snapshot, and warm-up."""

from __future__ import annotations

import pytest
import torch

from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
from srlkit.errors import ConfigError
from srlkit.train.batch import collate
from srlkit.train.learner import Learner
from srlkit.train.model import load_policy


def _policy(tiny_model_dir, lora: bool, base_copy: bool = False):
    torch.manual_seed(0)
    cfg = ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(enabled=lora, r=4))
    return load_policy(cfg, base_copy=base_copy)


def _batch(pad):
    return collate([[11, 12, 13]] * 2 + [[21, 22]] * 2, [[5, 6, 7], [8, 9], [30, 31], [32, 33, 34]],
                   [1.0, -1.0, 1.0, -1.0], pad_id=pad)


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_phase_start_reference_is_the_weights_the_phase_began_with(tiny_model_dir, lora):
    policy = _policy(tiny_model_dir, lora)
    learner = Learner(policy, LossConfig(kl_beta=0.0))  # the run-wide default: no KL
    pad = policy.tokenizer.pad_token_id
    learner.begin_phase(PhaseConfig(lr=5e-2, micro_batch_size=4), total_steps=3)
    learner.update(_batch(pad))  # phase 1 moves the weights; no KL here
    assert learner.kl_beta == 0.0 and learner.ref_snapshot is None
    learner.begin_phase(PhaseConfig(lr=5e-2, micro_batch_size=4, kl_beta=0.3), total_steps=3)  # its own beta
    start = learner.logprobs(_batch(pad).to(learner.device), learner.model)
    first = learner.update(_batch(pad))
    assert first["kl"] == 0.0  # the reference *is* the phase's start
    live = {n: p.detach().clone() for n, p in policy.trainable()}
    b = learner.prepare(_batch(pad))
    assert torch.equal(b.ref_logprobs, start)  # the snapshot, not the moved weights
    assert all(torch.equal(live[n], p) for n, p in policy.trainable())  # the swap put them back
    assert learner.update(_batch(pad))["kl"] > 0


def test_base_reference_with_full_finetuning_needs_the_copy(tiny_model_dir):
    policy = _policy(tiny_model_dir, lora=False)
    learner = Learner(policy, LossConfig())
    with pytest.raises(ConfigError, match="base copy"):
        learner.begin_phase(PhaseConfig(kl_beta=0.1, kl_reference="base"), total_steps=2)
    policy = _policy(tiny_model_dir, lora=False, base_copy=True)
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=5e-2, micro_batch_size=4), total_steps=3)
    learner.update(_batch(policy.tokenizer.pad_token_id))
    learner.begin_phase(PhaseConfig(lr=5e-2, micro_batch_size=4, kl_beta=0.3, kl_reference="base"), total_steps=3)
    assert learner.ref_snapshot is None
    assert learner.update(_batch(policy.tokenizer.pad_token_id))["kl"] > 0  # phase 1 moved it off the base


def test_warmup_steps_ramp_the_lr(tiny_model_dir):
    policy = _policy(tiny_model_dir, lora=True)
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=1e-3, warmup_steps=2, micro_batch_size=4), total_steps=10)
    lrs = [learner.update(_batch(policy.tokenizer.pad_token_id))["lr"] for _ in range(3)]
    assert lrs == pytest.approx([5e-4, 1e-3, 1e-3])
    with pytest.raises(ValueError, match="not both"):
        PhaseConfig(warmup_steps=2, warmup_ratio=0.1)


def test_curriculum_kl_settings():
    from srlkit.config import TrainConfig
    from srlkit.train import curriculum

    cfg = TrainConfig(curriculum=["srl", "rlvr"])
    cfg.model.lora.enabled = False
    assert not curriculum.kl_copy(cfg) and not curriculum.base_copy(cfg)
    cfg.phases["rlvr"].kl_beta = 0.1
    assert curriculum.kl_beta(cfg, "rlvr") == 0.1 and curriculum.kl_beta(cfg, "srl") == 0.0
    assert curriculum.kl_copy(cfg) and not curriculum.base_copy(cfg)  # phase_start: a snapshot, no base copy
    cfg.phases["rlvr"].kl_reference = "base"
    assert curriculum.base_copy(cfg)
