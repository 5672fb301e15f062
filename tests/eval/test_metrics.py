"""Eval metrics against hand-computed values."""

import math

import pytest

from srlkit.eval.metrics import (
    avg_at_k,
    bootstrap_ci,
    greedy_accuracy,
    pass_at_k,
    pass_at_k_mean,
    think_blocks,
    think_stats,
)


@pytest.mark.parametrize(
    "n,c,k,expected",
    [
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (4, 1, 1, 0.25),  # pass@1 is the plain success rate
        (8, 3, 1, 3 / 8),
        (4, 0, 4, 0.0),  # nothing correct
        (4, 4, 1, 1.0),  # everything correct
        (5, 3, 3, 1.0),  # n - c < k: every draw of 3 contains a correct one
        (1, 1, 1, 1.0),
    ],
)
def test_pass_at_k_hand_computed(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_matches_binomials_for_large_n():
    n, c, k = 200, 3, 50
    exact = 1 - math.comb(n - c, k) / math.comb(n, k)
    assert pass_at_k(n, c, k) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("n,c,k", [(3, 1, 4), (3, 4, 1), (0, 0, 1), (3, 1, 0)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_avg_and_pass_over_problems():
    correct = [[True, False, False, False], [True, True, True, True], [False] * 4]
    assert avg_at_k(correct) == pytest.approx((0.25 + 1 + 0) / 3)
    # problem 1: 1 - C(3,2)/C(4,2) = 0.5
    assert pass_at_k_mean(correct, 2) == pytest.approx((0.5 + 1 + 0) / 3)
    assert pass_at_k_mean(correct, 1) == pytest.approx(avg_at_k(correct))
    assert greedy_accuracy([True, False, True, True]) == 0.75


def test_bootstrap_is_seeded_and_brackets_the_mean():
    scores = [1.0] * 30 + [0.0] * 70
    a = bootstrap_ci(scores, n_boot=500, seed=3)
    b = bootstrap_ci(scores, n_boot=500, seed=3)
    assert a == b
    varied = [(i * 37 % 101) / 101 for i in range(60)]
    assert bootstrap_ci(varied, seed=1) != bootstrap_ci(varied, seed=2)  # the seed matters
    lo, hi = a
    assert lo < 0.3 < hi
    # normal approximation: sd of the mean ~ sqrt(.3*.7/100) = .046, so the 95% interval is ~2 x 1.96 x .046 = .18 wide
    assert 0.13 < hi - lo < 0.23
    assert bootstrap_ci([0.0, 0.0]) == (0.0, 0.0)
    assert bootstrap_ci([]) == (0.0, 0.0)


def test_think_block_placement():
    assert think_blocks("<think>plan</think>x=1") == ["leading"]
    assert think_blocks("x=1 <think>check</think> y=2 <think>ok</think>") == ["interleaved", "trailing"]
    assert think_blocks("  <think>never closed") == ["leading"]
    assert think_blocks("x <think>never closed") == ["trailing"]
    stats = think_stats(["<think>a</think> s1 <think>b</think> s2", "plain", "<think>c</think>"])
    assert stats["blocks_mean"] == pytest.approx(1.0)
    assert stats["with_think"] == pytest.approx(2 / 3)
    assert stats["multi_think"] == pytest.approx(1 / 3)
    assert stats["leading"] == pytest.approx(2 / 3)
    assert stats["interleaved"] == pytest.approx(1 / 3)
    assert stats["trailing"] == 0.0
    assert think_stats([])["blocks_mean"] == 0.0
