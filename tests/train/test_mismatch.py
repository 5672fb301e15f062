"""Engine/trainer mismatch correction per token and per sequence, against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from srlkit.config import LossConfig
from srlkit.train.loss import policy_loss
from srlkit.train.mismatch import mismatch_weights

CLIP = dict(clip_low=0.2, clip_high=0.28)
# trainer logprobs 0; the engine's: row 0 gives each token rho = e^0.5 (the sequence: e > 2),
# row 1 gives rho = e^-0.1 then 1, row 2 is an expert step (NaN: no engine sampled it)
OLD = torch.zeros(3, 2)
BEHAV = torch.tensor([[-0.5, -0.5], [0.1, 0.0], [float("nan"), float("nan")]])
MASK = torch.ones(3, 2)


def _loss(mode):
    logp = OLD.clone().requires_grad_(True)  # ratio 1: the loss is -sum(w) / tokens with A = 1
    loss, st = policy_loss(logp, OLD, torch.ones(3), MASK, aggregation="token_mean", behav_logp=BEHAV,
                           tis_cap=2.0, tis_mode=mode, **CLIP)
    (g,) = torch.autograd.grad(loss, logp)
    return loss.item(), g, st


def test_token_truncate_is_todays_correction():
    loss, g, st = _loss("token_truncate")
    w = [math.exp(0.5)] * 2 + [math.exp(-0.1), 1.0] + [1.0, 1.0]
    assert loss == pytest.approx(-sum(w) / 6, abs=1e-6)
    assert st["tis_clipped"] == 0.0
    assert torch.allclose(g, -torch.tensor(w).view(3, 2) / 6, atol=1e-6)


def test_sequence_truncate_caps_the_product_of_the_row():
    loss, g, st = _loss("sequence_truncate")
    w = [2.0, 2.0, math.exp(-0.1), math.exp(-0.1), 1.0, 1.0]  # row 0: e capped at 2
    assert loss == pytest.approx(-sum(w) / 6, abs=1e-6)
    assert st["tis_clipped"] == 2.0
    assert torch.allclose(g, -torch.tensor(w).view(3, 2) / 6, atol=1e-6)


def test_sequence_mask_drops_rows_outside_the_band():
    loss, g, st = _loss("sequence_mask")
    assert loss == pytest.approx(-4 / 6, abs=1e-6)  # row 0 (rho = e > 2) dropped, the rest weight 1
    assert st["tis_clipped"] == 2.0
    assert torch.equal(g[0], torch.zeros(2)) and torch.allclose(g[1:], torch.full((2, 2), -1 / 6))
    # the lower edge: rho below 1/C drops a row too
    w, hit = mismatch_weights(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]]), torch.ones(1, 2), 2.0, "sequence_mask")
    assert w.flatten().tolist() == [0.0] and hit.flatten().tolist() == [1.0]


def test_token_mask_drops_single_tokens():
    behav = torch.tensor([[-1.0, 0.0]])  # rho = e (out of [1/2, 2]) and 1
    w, hit = mismatch_weights(torch.zeros(1, 2), behav, torch.ones(1, 2), 2.0, "token_mask")
    assert w.tolist() == [[0.0, 1.0]] and hit.tolist() == [[1.0, 0.0]]


def test_sequence_ratio_ignores_masked_columns():
    behav = torch.tensor([[-0.5, -50.0]])  # the pad column's huge mismatch must not count
    w, _ = mismatch_weights(torch.zeros(1, 2), behav, torch.tensor([[1.0, 0.0]]), 2.0, "sequence_truncate")
    assert w.item() == pytest.approx(math.exp(0.5))


def test_config_offers_the_modes_and_keeps_the_default():
    assert LossConfig().tis_mode == "token_truncate" and LossConfig().objective == "clip"
    assert LossConfig(tis_mode="sequence_mask", objective="gspo").objective == "gspo"
    with pytest.raises(Exception):
        LossConfig(tis_mode="sequence")
