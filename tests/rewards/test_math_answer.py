"""The RLVR math reward: extraction, math-verify from threads, a hard time limit, counted errors."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from srlkit.rewards import make_reward
from srlkit.rewards.extract import (
    extract_answer,
    extract_boxed,
    extract_hash,
    strip_think,
)

POWER_TOWER = r"\boxed{9^{9^{9^{9}}}}"  # sympy tries to evaluate it exactly: hangs for minutes


@pytest.fixture(scope="module")
def reward():
    fn = make_reward("math", timeout=3.0)
    yield fn
    fn.close()


@pytest.mark.parametrize(
    "text, answer",
    [
        (r"so \boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"first \boxed{1}, finally \boxed{ {2}^{3} }", "{2}^{3}"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\fbox{7}", "7"),
        (r"\boxed 5 is it", "5"),
        ("24 * 2 = 48\n#### 48", "48"),
        ("Therefore, the answer is $-3$.", "-3"),
        (r"<think>maybe \boxed{3}</think> the answer is 4.", "4"),
        (r"\boxed{1} then \boxed{2", "1"),  # the last one is unbalanced: fall back to an earlier one
        ("<think>the answer is 9", None),  # only an unclosed monologue
        ("nothing here", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_extraction_never_hangs_on_adversarial_text():
    nasty = [
        "\\boxed{" * 200_000,  # 1.4 MB of unclosed boxes (quadratic for a naive scan)
        "\\boxed{" + "{" * 500_000 + "}" * 499_999,
        "the answer is " * 100_000,
        "#### " + "1" * 1_000_000,
        "<think>" * 100_000,
    ]
    def scan_all():
        return [(extract_answer(t), extract_boxed(t), extract_hash(t), strip_think(t)) for t in nasty]

    # linear scans finish in ~0.1 s; a quadratic one would run for hours, so a hang guard
    # (not a speed target) is enough to catch it
    with ThreadPoolExecutor(1) as ex:
        out = ex.submit(scan_all).result(timeout=120)
    assert out[0][1] is None and out[3][2] == "1" * 1_000_000


def test_values_and_format_penalty(reward):
    comps = [r"\boxed{\frac{1}{2}}", r"\boxed{0.5}", "#### 12", "The answer is 13.", "I give up", r"\boxed{x+1}"]
    rows = [{"answer": "1/2"}, {"answer": r"\frac12"}, {"answer": "12"}, {"answer": "12"}, {"answer": "3"},
            {"answer": "1+x"}]
    assert reward(comps, rows) == [1.0, 1.0, 1.0, 0.0, 0.0, 1.0]
    assert reward.last_stats["format_failures"] == 1.0
    assert reward.last_stats["scoring_errors"] == 0.0
    assert reward.last_stats["correct"] == 4.0
    pen = make_reward("math", penalty=-1.0)  # was format_penalty (now an error)
    try:
        assert pen(["no answer", r"\boxed{3}"], [{"answer": "3"}] * 2) == [-1.0, 1.0]
    finally:
        pen.close()


def test_works_from_a_thread_pool(reward):
    # math-verify's own signal.alarm timeouts raise outside the main thread; ours do not.
    jobs = [([rf"\boxed{{{n}}}", rf"\boxed{{{n + 1}}}"], [{"answer": str(n)}] * 2) for n in range(6)]
    with ThreadPoolExecutor(4) as ex:
        results = list(ex.map(lambda job: reward(*job), jobs))
    assert results == [[1.0, 0.0]] * 6


def test_timeout_fires_and_never_hangs_the_batch(caplog):
    fn = make_reward("math", timeout=1.0, error_value=-0.25)
    try:
        fn([r"\boxed{1}"], [{"answer": "1"}])  # start the worker outside the timed part
        comps = [r"\boxed{2}", POWER_TOWER, r"\boxed{3}"]
        rows = [{"answer": "2"}, {"answer": "1"}, {"answer": "3"}]
        with caplog.at_level(logging.WARNING, logger="srlkit.rewards.math_answer"):
            with ThreadPoolExecutor(1) as ex:  # from a thread, as a trainer would
                values = ex.submit(fn, comps, rows).result(timeout=60)  # a hang guard
        assert values == [1.0, -0.25, 1.0]  # the items around the hang are still scored
        assert fn.last_stats["scoring_errors"] == 1.0
        assert fn.last_stats["errors/timeout"] == 1.0
        assert "timeout" in caplog.text
        assert fn.pool.restarts >= 1
        assert fn([r"\boxed{5}"], [{"answer": "5"}]) == [1.0]  # the restarted worker serves on
    finally:
        fn.close()


def test_adversarial_answers_fail_within_the_limit():
    fn = make_reward("math", timeout=2.0)
    try:
        fn([r"\boxed{1}"], [{"answer": "1"}])
        comps = [
            "\\boxed{" + "x+" * 1_000_000 + "1}",  # megabytes of LaTeX in the box
            r"\boxed{" + r"\frac{1}{" * 300 + "2" + "}" * 300 + "}",  # deep nesting
            r"\boxed{" + "(" * 400 + "1" + ")" * 400 + "}",
            POWER_TOWER,
        ]
        values = fn(comps, [{"answer": "1"}] * len(comps))
        assert values == [0.0] * len(comps)
        st = fn.last_stats
        # refused before any parsing: the megabyte box is past the extractor's scan limit, the
        # 3,000-char nesting past max_answer_chars (2,000)
        assert st["format/no_answer"] == 1.0 and st["format/answer_too_long"] == 1.0
        assert st["format_failures"] == 2.0
        assert st["errors/timeout"] >= 1.0  # the power tower at least; nesting may also time out
    finally:
        fn.close()


def test_scoring_error_is_counted_and_logged_not_silent(caplog):
    fn = make_reward("math", error_value=0.0)
    try:
        with caplog.at_level(logging.WARNING, logger="srlkit.rewards.math_answer"):
            values = fn([r"\boxed{1}", r"\boxed{1}"], [{"answer": "$$"}, {"answer": None}])
        assert values == [0.0, 0.0]
        assert fn.last_stats["scoring_errors"] == 2.0
        assert fn.last_stats["errors/gold_unparsable"] == 1.0
        assert fn.last_stats["errors/no_gold"] == 1.0
        assert "gold_unparsable" in caplog.text
    finally:
        fn.close()


def test_scorer_surfaces_math_errors():
    from srlkit.config import RewardSpec
    from srlkit.rewards.scorer import build_scorer

    with build_scorer([RewardSpec(name="math")]) as scorer:
        res = scorer([r"\boxed{2}", "none", r"\boxed{1}"], [{"answer": "2"}, {"answer": "2"}, {"answer": "$$"}])
    assert res.total == [1.0, 0.0, 0.0]
    assert res.stats["format_failures"] == 1.0
    assert res.stats["scoring_errors"] == 1.0
    assert res.components["math"] == res.total


def test_gold_in_e_notation_is_a_power_of_ten_not_euler(reward):
    comps = [r"\boxed{7.7 \times 10^{-8}}", r"\boxed{0.000000077}", r"\boxed{7.7e-8}", r"\boxed{7.7}", r"\boxed{1.5E3}"]
    rows = [{"answer": "7.7e-8"}] * 4 + [{"answer": "1500"}]
    assert reward(comps, rows) == [1.0, 1.0, 1.0, 0.0, 1.0]
    assert reward.last_stats["scoring_errors"] == 0.0


def test_gold_with_an_escaped_dollar_parses(reward):
    comps = [r"\boxed{5}", r"\boxed{\$5}", r"\boxed{6}", r"The answer is $12.50$."]
    rows = [{"answer": r"\$5"}, {"answer": r"\$5"}, {"answer": r"\$5"}, {"answer": r"\$12.50"}]
    assert reward(comps, rows) == [1.0, 1.0, 0.0, 1.0]
    assert reward.last_stats["scoring_errors"] == 0.0


def test_champ_prose_golds_accept_the_bare_answer(reward):
    """CHAMP's prose final answers: the value they state is the gold; prose with no single value
    is left out (checked on every bundled problem in test_champ_golds_all_parse)."""
    from srlkit.data.gold import champ_answer

    cases = [("C(10, 5), or equivalently 252", r"\boxed{252}"), ("98 values", r"\boxed{98}"),
             ("5/14, or approximately 35.7%", r"\boxed{\frac{5}{14}}"), ("100 (i.e., all values)", r"\boxed{100}"),
             ("3 is the only possible value", r"\boxed{3}"),
             ("The limit exists and is equal to 2/3", r"\boxed{\frac{2}{3}}")]
    golds = [champ_answer(raw)[0] for raw, _ in cases]
    assert reward([c for _, c in cases], [{"answer": g} for g in golds]) == [1.0] * len(cases)
    assert reward.last_stats["scoring_errors"] == 0.0
    for prose in ("Yes", "376 and 625", "At least 1 number", "x(n)<y(n-1) for all n≥3", "f(x)=0 or f(x)=1"):
        gold, why = champ_answer(prose)
        assert gold is None and why.startswith("prose answer"), prose
    assert champ_answer("(x+y+z)(x^2+y^2+z^2-xy-yz-xz)")[0] is not None  # a product of variables is no prose


def test_champ_golds_all_parse():
    """Every CHAMP gold kept for RLVR parses and verifies against itself (no scoring errors)."""
    import json

    from math_verify import parse, verify

    from srlkit.assets import champ_path
    from srlkit.data.gold import champ_answer
    from srlkit.rewards.math_answer import as_latex

    problems = json.loads(champ_path().read_text(encoding="utf-8"))["problems"].values()
    kept = [g for g in (champ_answer(p["_answer"])[0] for p in problems) if g is not None]
    assert 180 <= len(kept) < 270
    for g in kept:
        parsed = parse(as_latex(g))
        assert parsed and verify(parsed, parse(as_latex(g))), g
