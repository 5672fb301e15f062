"""The loss maths, advantages and aggregation against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from srlkit.train.advantages import group_advantages, group_std
from srlkit.train.learner import lr_lambda
from srlkit.train.loss import (
    aggregate,
    batch_norm,
    kl_k3,
    policy_loss,
    token_entropy,
    token_logprobs,
)

CLIP = dict(clip_low=0.2, clip_high=0.28)


def _lp(ratios):
    return torch.log(torch.tensor([ratios], dtype=torch.float32))


def test_clipped_loss_positive_advantage():
    # ratios 1.5, 0.5, 1.0; A = +1: min(rA, clip(r)A) = 1.28, 0.5, 1.0 -> loss -(2.78)/3
    logp, old = _lp([1.5, 0.5, 1.0]), torch.zeros(1, 3)
    loss, st = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 3), aggregation="token_mean", **CLIP)
    assert loss.item() == pytest.approx(-(1.28 + 0.5 + 1.0) / 3, abs=1e-6)
    assert st["clipped"] == 1.0 and st["tokens"] == 3.0


def test_clipped_loss_negative_advantage():
    # A = -1: min(-r, -clip(r)) = -1.5, -0.8, -1.0 -> loss (1.5 + 0.8 + 1.0)/3; only r=0.5 is clipped
    logp, old = _lp([1.5, 0.5, 1.0]), torch.zeros(1, 3)
    loss, st = policy_loss(logp, old, torch.tensor([-1.0]), torch.ones(1, 3), aggregation="token_mean", **CLIP)
    assert loss.item() == pytest.approx((1.5 + 0.8 + 1.0) / 3, abs=1e-6)
    assert st["clipped"] == 1.0


def test_clip_high_is_asymmetric():
    # r = 1.25 is inside clip-high 0.28 but outside a symmetric 0.2
    logp, old = _lp([1.25]), torch.zeros(1, 1)
    loss, _ = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), aggregation="token_mean", **CLIP)
    assert loss.item() == pytest.approx(-1.25, abs=1e-6)
    loss2, _ = policy_loss(logp, old, torch.tensor([1.0]), torch.ones(1, 1), aggregation="token_mean",
                           clip_low=0.2, clip_high=0.2)
    assert loss2.item() == pytest.approx(-1.2, abs=1e-6)


@pytest.mark.parametrize("how,expected", [("token_mean", 10 / 4), ("seq_mean", (6 / 3 + 4 / 1) / 2), ("dr_grpo", 10 / (2 * 4))])
def test_aggregation_variants(how, expected):
    per_token = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 9.0, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    assert aggregate(per_token, mask, how, batch_norm(mask, 4)).item() == pytest.approx(expected)


def test_micro_batch_losses_sum_to_full_batch_loss():
    torch.manual_seed(0)
    per_token = torch.rand(4, 5)
    mask = (torch.rand(4, 5) > 0.3).float()
    for how in ("token_mean", "seq_mean", "dr_grpo"):
        norm = batch_norm(mask, 5)
        full = aggregate(per_token, mask, how, norm)
        parts = sum(aggregate(per_token[i : i + 1], mask[i : i + 1], how, norm) for i in range(4))
        assert parts.item() == pytest.approx(full.item(), rel=1e-6)


def test_kl_k3_hand_value_and_zero_at_equality():
    logp = torch.zeros(1, 2)
    ref = torch.tensor([[math.log(2.0), 0.0]])
    kl = kl_k3(logp, ref)
    assert kl[0, 0].item() == pytest.approx(2 - math.log(2) - 1, abs=1e-6)
    assert kl[0, 1].item() == 0.0


def test_kl_term_added_with_beta():
    logp, old = torch.zeros(1, 1), torch.zeros(1, 1)
    ref = torch.tensor([[math.log(2.0)]])
    loss, st = policy_loss(logp, old, torch.tensor([0.0]), torch.ones(1, 1), aggregation="token_mean",
                           ref_logp=ref, beta=0.5, **CLIP)
    assert loss.item() == pytest.approx(0.5 * (1 - math.log(2)), abs=1e-6)
    assert st["kl_sum"] == pytest.approx(1 - math.log(2), abs=1e-6)


def test_group_advantages_hand_values():
    assert group_advantages([1.0, 0.0, 1.0, 1.0], 2, eps=0.0) == [1.0, -1.0, 0.0, 0.0]
    a = group_advantages([1.0, 0.0], 2, eps=1e-4)
    assert a[0] == pytest.approx(0.5 / (0.5 + 1e-4))
    # std scaling off (Dr.GRPO): only centred
    assert group_advantages([3.0, 1.0, 2.0, 2.0], 2, scale_std=False) == [1.0, -1.0, 0.0, 0.0]
    assert group_std([3.0, 1.0, 2.0, 2.0], 2) == [1.0, 0.0]
    with pytest.raises(ValueError):
        group_advantages([1.0, 2.0, 3.0], 2)


def test_token_logprobs_and_entropy_match_softmax():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 7)
    tokens = torch.randint(0, 7, (2, 3))
    ref = torch.log_softmax(logits, -1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(token_logprobs(logits, tokens), ref, atol=1e-6)
    uniform = torch.zeros(1, 1, 8)
    assert token_entropy(uniform).item() == pytest.approx(math.log(8), abs=1e-6)


def test_sft_through_clipped_loss_has_the_nll_gradient():
    """advantage 1, old = detached current: the gradient is exactly the mean-NLL gradient."""
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 11, requires_grad=True)
    tokens = torch.randint(0, 11, (2, 4))
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    logp = token_logprobs(logits, tokens)
    loss, st = policy_loss(logp, logp.detach(), torch.ones(2), mask, aggregation="token_mean", **CLIP)
    (g_pg,) = torch.autograd.grad(loss, logits)
    logp2 = token_logprobs(logits, tokens)
    nll = -(logp2 * mask).sum() / mask.sum()
    (g_nll,) = torch.autograd.grad(nll, logits)
    assert torch.allclose(g_pg, g_nll, atol=1e-7)
    assert st["clipped"] == 0.0


def test_lr_schedules():
    const = lr_lambda("constant", 10, 0)
    assert [const(s) for s in (0, 9)] == [1.0, 1.0]
    warm = lr_lambda("cosine", 10, 2)
    assert warm(0) == 0.5 and warm(1) == 1.0 and warm(2) == pytest.approx(1.0)
    assert warm(9) == pytest.approx(0.5 * (1 + math.cos(math.pi * 7 / 8)))
    lin = lr_lambda("linear", 4, 0)
    assert [lin(s) for s in range(4)] == [1.0, 0.75, 0.5, 0.25]


# --------------------------------------------------------------------------- GSPO and CISPO


def _grad(objective, logp, adv, mask, how="token_mean", **kw):
    logp = logp.clone().requires_grad_(True)
    loss, st = policy_loss(logp, torch.zeros_like(logp), adv, mask, aggregation=how, objective=objective,
                           **{**CLIP, **kw})
    (g,) = torch.autograd.grad(loss, logp)
    return loss.item(), g, st


def test_gspo_clips_the_sequence_ratio_not_the_tokens():
    # row 0: token ratios 2 and 1/2, s = 1 (a token-level clip would zero token 0's gradient);
    # row 1: s = exp((0.1 + 0.3) / 2), inside the clip range, A = -1; its pad column is ignored;
    # row 2: s = e > 1.28 with A = +1: clipped, no gradient
    logp = torch.tensor([[math.log(2.0), math.log(0.5)], [0.1, 0.3], [1.0, 7.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    adv = torch.tensor([1.0, -1.0, 1.0])
    s1 = math.exp(0.2)
    loss, g, st = _grad("gspo", logp, adv, mask, how="seq_mean")
    assert loss == pytest.approx((-1.0 + s1 - 1.28) / 3, abs=1e-6)
    # d/d logp_t of -s A / 3 (seq_mean over 3 rows) = -A s / (3 |y|)
    expected = torch.tensor([[-1 / 6, -1 / 6], [s1 / 6, s1 / 6], [0.0, 0.0]])
    assert torch.allclose(g, expected, atol=1e-6), g
    assert st["clipped"] == 1.0  # row 2's one token
    _, g_tok, _ = _grad("clip", logp, adv, mask, how="seq_mean")
    assert g_tok[0, 0] == 0.0 and g[0, 0] != 0.0  # what the sequence ratio changes


def test_cispo_keeps_the_gradient_of_clipped_tokens():
    # ratios 1.5, 0.5, 1 with A = +1: the weights are clip(r, 0.8, 1.28) = 1.28, 0.8, 1, detached
    logp = torch.log(torch.tensor([[1.5, 0.5, 1.0]]))
    loss, g, st = _grad("cispo", logp, torch.tensor([1.0]), torch.ones(1, 3))
    assert loss == pytest.approx(-(1.28 * math.log(1.5) + 0.8 * math.log(0.5)) / 3, abs=1e-6)
    assert torch.allclose(g, torch.tensor([[-1.28, -0.8, -1.0]]) / 3, atol=1e-6), g
    assert st["clipped"] == 2.0
    _, g_clip, _ = _grad("clip", logp, torch.tensor([1.0]), torch.ones(1, 3))
    assert g_clip[0, 0] == 0.0  # the clipped surrogate zeroes the r = 1.5 token; CISPO does not


@pytest.mark.parametrize("objective", ["gspo", "cispo"])
def test_every_objective_is_the_policy_gradient_on_policy(objective):
    """At r = 1 (old = current) all objectives have the gradient -A d log pi (aggregated)."""
    logp = torch.tensor([[-0.5, -1.0, -2.0], [-0.1, -0.2, -0.3]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    adv = torch.tensor([0.7, -1.3])
    for how in ("token_mean", "seq_mean", "dr_grpo"):
        lp = logp.clone().requires_grad_(True)
        loss, _ = policy_loss(lp, lp.detach(), adv, mask, aggregation=how, objective=objective, **CLIP)
        (g,) = torch.autograd.grad(loss, lp)
        lp2 = logp.clone().requires_grad_(True)
        ref, _ = policy_loss(lp2, lp2.detach(), adv, mask, aggregation=how, **CLIP)
        (g_ref,) = torch.autograd.grad(ref, lp2)
        if objective == "gspo" and how != "seq_mean":  # the sequence ratio spreads the row's weight evenly
            continue
        assert torch.allclose(g, g_ref, atol=1e-7), (how, g, g_ref)


def test_unknown_objective_is_an_error():
    with pytest.raises(ValueError, match="unknown objective"):
        policy_loss(torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1), torch.ones(1, 1), aggregation="token_mean",
                    objective="ppo2", **CLIP)
