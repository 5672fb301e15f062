"""Dynamic sampling: the std > eps filter and the bounded sample-until-full loop."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from srlkit.sampling import Group, informative_mask, population_std, sample_until_full


def test_mask_threshold_not_exact_zero():
    noisy_equal = [0.1 + 0.2, 0.3, 0.3, 0.3]  # 0.1 + 0.2 != 0.3: std ~1e-17, not 0
    assert population_std(noisy_equal) > 0.0
    assert informative_mask(noisy_equal, 4, eps=1e-6) == [False]
    assert informative_mask([0.0, 0.0, 0.0, 1.0], 4, eps=1e-6) == [True]
    # eps is a real threshold: a small spread passes a small eps, not a large one
    tiny = [0.5, 0.5, 0.5, 0.5001]
    assert informative_mask(tiny, 4, eps=1e-6) == [True]
    assert informative_mask(tiny, 4, eps=1e-3) == [False]


def test_mask_layout_and_validation():
    rewards = [1, 1, 0, 0.2, 0.2, 0.2, 0.7, 0.1, 0.4]
    assert informative_mask(rewards, 3, eps=1e-6) == [True, False, True]
    assert informative_mask([], 4, eps=0.0) == []
    assert informative_mask([float("nan"), 1.0], 2, eps=0.0) == [False]
    with pytest.raises(ValueError, match="groups of 4"):
        informative_mask([1, 2, 3], 4, eps=0.0)
    with pytest.raises(ValueError):
        informative_mask([1, 2], 0, eps=0.0)
    with pytest.raises(ValueError):
        informative_mask([1, 2], 2, eps=-1.0)


@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=16), st.floats(-10, 10, allow_nan=False))
def test_constant_shift_never_informative_and_std_matches_pstdev(values, c):
    import statistics

    assert math.isclose(population_std(values), statistics.pstdev(values), rel_tol=1e-9, abs_tol=1e-12)
    shifted = [c + 0.0 * v for v in values]
    assert informative_mask(shifted, len(shifted), eps=1e-9) == [False]


def test_agrees_with_trainer_advantage_std():
    # The filter and GRPO's advantage normalisation use the same population std.
    from srlkit.train.advantages import group_std

    rng = random.Random(0)
    rewards = [rng.random() for _ in range(32)]
    stds = group_std(rewards, 8)
    for g, s in enumerate(stds):
        assert math.isclose(s, population_std(rewards[g * 8:(g + 1) * 8]), rel_tol=1e-9)


@dataclass
class Rollouts:
    """A trainer-side group type: anything with `.rewards` works."""

    prompt_id: int
    rewards: list[float]


def test_loop_fills_the_batch_and_reports():
    rng = random.Random(1)
    calls = []

    def generate(attempt: int) -> list[Rollouts]:
        calls.append(attempt)
        out = []
        for k in range(4):
            flat = rng.random() < 0.6
            out.append(Rollouts(attempt * 4 + k, [1.0] * 4 if flat else [rng.random() for _ in range(4)]))
        return out

    kept, rep = sample_until_full(generate, target_groups=5, max_attempts=50, eps=1e-6)
    assert len(kept) == 5 and rep.full
    assert all(isinstance(g, Rollouts) and population_std(g.rewards) > 1e-6 for g in kept)
    assert calls == list(range(rep.attempts))
    assert rep.generated == 4 * rep.attempts
    assert rep.dropped_equal + sum(rep.per_attempt) == rep.generated
    assert rep.kept + rep.surplus == sum(rep.per_attempt)
    assert rep.filter_rate == pytest.approx(rep.dropped_equal / rep.generated)
    m = rep.as_metrics()
    assert m["sampling/attempts"] == rep.attempts and m["sampling/dropped_equal"] == rep.dropped_equal
    # kept groups are in generation order
    assert [g.prompt_id for g in kept] == sorted(g.prompt_id for g in kept)


def test_loop_is_bounded_when_everything_is_flat():
    kept, rep = sample_until_full(lambda a: [Group([0.0] * 8) for _ in range(3)], 2, max_attempts=4, eps=1e-6)
    assert kept == [] and not rep.full
    assert rep.attempts == 4 and rep.dropped_equal == 12 and rep.filter_rate == 1.0


def test_loop_counts_nan_groups_separately_and_drops_surplus():
    batches = [[Group([float("nan"), 1.0]), Group([0.0, 1.0]), Group([1.0, 0.0]), Group([0.2, 0.9])]]
    kept, rep = sample_until_full(lambda a: batches[a], target_groups=2, max_attempts=3, eps=1e-6)
    assert [g.rewards for g in kept] == [[0.0, 1.0], [1.0, 0.0]]
    assert rep.dropped_invalid == 1 and rep.dropped_equal == 0 and rep.surplus == 1 and rep.attempts == 1


def test_disabled_makes_one_call_and_keeps_everything():
    groups = [Group([1.0, 1.0]), Group([0.0, 1.0])]
    kept, rep = sample_until_full(lambda a: groups, 2, max_attempts=8, eps=1e-6, enabled=False)
    assert kept == groups and rep.attempts == 1 and rep.dropped_equal == 1


def test_works_on_scorer_output():
    # The SRL path end to end: rewards from the real scorer, grouped G = 4 per prompt.
    from srlkit.config import RewardSpec
    from srlkit.rewards.scorer import build_scorer

    scorer = build_scorer([RewardSpec(name="step_similarity")])
    target = {"target": "x = 2"}
    attempts = [
        ["<think>a</think>x = 2"] * 4 + ["bad"] * 4,  # both groups flat: 1.0s and -1.0s
        ["<think>a</think>x = 2", "<think>b</think>x = 3", "nope", "<think>c</think>y"] * 2,
    ]

    def generate(attempt: int) -> list[Group]:
        res = scorer(attempts[attempt], [target] * 8)
        return [Group(res.total[i:i + 4], payload=attempts[attempt][i:i + 4]) for i in (0, 4)]

    kept, rep = sample_until_full(generate, target_groups=2, max_attempts=2, eps=1e-6)
    assert rep.attempts == 2 and rep.dropped_equal == 2 and len(kept) == 2
    assert kept[0].rewards == [1.0, 0.8, -1.0, 0.0]


def test_docstring_examples_run():
    import doctest

    import srlkit.sampling.dynamic as mod

    assert doctest.testmod(mod).failed == 0
