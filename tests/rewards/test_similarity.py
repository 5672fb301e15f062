"""Step similarity: exact difflib semantics, the documented order/autojunk choice, fast path equality."""

from __future__ import annotations

import difflib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srlkit.rewards import make_reward
from srlkit.rewards.similarity import batch_ratios, ratio


def _champ_steps() -> list[str]:
    from srlkit.assets import champ_path

    probs = json.loads(champ_path().read_text(encoding="utf-8"))["problems"]
    return [s["_text"] for p in probs.values() for s in p["solution"]["steps"]]


STEPS = _champ_steps()
text = st.text(alphabet=st.sampled_from("ab cde=+x12\n$\\{}()"), max_size=400) | st.text(max_size=60)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(text, text), min_size=1, max_size=12), autojunk=st.booleans())
def test_fast_path_bit_identical_random(pairs, autojunk):
    ref = [difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio() for a, b in pairs]
    fast = batch_ratios(pairs, autojunk=autojunk, fast=True)
    assert [x.hex() for x in fast] == [x.hex() for x in ref]


@settings(max_examples=200, deadline=None)
@given(
    i=st.integers(0, len(STEPS) - 1), j=st.integers(0, len(STEPS) - 1),
    cut=st.integers(0, 400), reps=st.integers(1, 4), autojunk=st.booleans(),
)
def test_fast_path_bit_identical_real_steps(i, j, cut, reps, autojunk):
    # Real CHAMP steps, also concatenated past difflib's 200-char autojunk threshold, and
    # G rollouts sharing one expert step (the index-reuse path).
    target = " ".join([STEPS[i]] * reps)
    actions = [STEPS[j], target[:cut] + STEPS[j], target, target[cut:], ""]
    pairs = [(a, target) for a in actions] + [(target, a) for a in actions]
    ref = [difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio() for a, b in pairs]
    assert batch_ratios(pairs, autojunk=autojunk) == ref


@pytest.mark.parametrize("engine", ["rust", "cdifflib"])
def test_both_fast_engines_bit_identical_on_long_steps(engine, monkeypatch):
    """autojunk off runs on difflib-fast when installed, else cdifflib; both must equal difflib."""
    import srlkit.rewards.similarity as sim

    if engine == "rust":
        assert sim._rust_ratio is not None, "difflib-fast is a dependency: install it"
    else:
        monkeypatch.setattr(sim, "_rust_ratio", None)
    rng = random.Random(7)
    pairs = []
    for _ in range(60):
        target = " ".join(rng.choice(STEPS) for _ in range(rng.randrange(1, 8)))
        cut = rng.randrange(len(target) + 1)
        for action in (target, target[:cut] + rng.choice(STEPS), rng.choice(STEPS), target[cut:] + "é∑😀", ""):
            pairs += [(action, target), (target, action)]
    ref = [difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() for a, b in pairs]
    assert [x.hex() for x in batch_ratios(pairs)] == [x.hex() for x in ref]


def test_values_are_2m_over_t():
    fn = make_reward("step_similarity")
    got = fn(["<think>t</think>abcd"], [{"target": "bcde"}])
    assert got == [0.75]  # M = 3 ("bcd"), T = 8


def test_order_is_action_first_and_matters():
    # SequenceMatcher is not symmetric; this pair shows it. The default puts the action first.
    action, target = "tide", "diet"
    assert ratio(action, target) != ratio(target, action)
    row = [{"target": target}]
    comp = [f"<think>t</think>{action}"]
    assert make_reward("step_similarity")(comp, row) == [ratio(action, target)]
    assert make_reward("step_similarity", order="target_action")(comp, row) == [ratio(target, action)]


def test_autojunk_off_by_default_and_why():
    # Past 200 characters of expert step, autojunk makes difflib ignore every character
    # that fills >1% of it: spaces, 'e', digits... Partial credit for a related but
    # different step then collapses. Off (the default), the reward stays smooth in length.
    target = next(s for s in STEPS if len(s) > 250)
    others = [s for s in STEPS if 80 < len(s) < 250][:20]
    comps = [f"<think>t</think>{a}" for a in others]
    rows = [{"target": target}] * len(others)
    default = make_reward("step_similarity")(comps, rows)
    junky = make_reward("step_similarity", autojunk=True)(comps, rows)
    assert default == [difflib.SequenceMatcher(None, a, target, autojunk=False).ratio() for a in others]
    assert junky == [difflib.SequenceMatcher(None, a, target, autojunk=True).ratio() for a in others]
    assert sum(junky) < 0.7 * sum(default)
    # An exact copy scores 1.0 either way.
    exact = [f"<think>t</think>{target}"]
    assert make_reward("step_similarity")(exact, rows[:1]) == [1.0]
    assert make_reward("step_similarity", autojunk=True)(exact, rows[:1]) == [1.0]


def test_penalty_configurable_and_counted():
    rows = [{"target": "x = 3"}] * 3
    comps = ["<think>t</think>x = 2", "no think", "<think>t</think>"]
    fn = make_reward("step_similarity", penalty=-0.5)
    assert fn(comps, rows) == [0.8, -0.5, -0.5]
    assert fn.last_stats == {"format_failures": 2.0, "format/empty_action": 1.0, "format/missing_think": 1.0}
    assert make_reward("step_similarity")(comps, rows)[1:] == [-1.0, -1.0]


def test_slow_path_flag_gives_same_values():
    rng = random.Random(0)
    rows = [{"target": rng.choice(STEPS)} for _ in range(40)]
    comps = [f"<think>t</think>{rng.choice(STEPS)}" for _ in rows]
    assert make_reward("step_similarity", fast=False)(comps, rows) == make_reward("step_similarity")(comps, rows)


def test_bad_order_is_a_config_error(cli):
    from srlkit.errors import ConfigError

    with pytest.raises(ConfigError, match="params.order: Input should be 'action_target' or 'target_action'"):
        make_reward("step_similarity", order="backwards")
    with pytest.raises(ConfigError, match="has no parameter 'nope'"):
        make_reward("step_similarity", nope=1)


def test_lenient_scores_missing_think_but_keeps_other_failures():
    from srlkit.rewards import make_reward

    rows = [{"target": "x = 3"}] * 3
    texts = ["x = 2", "<think>unclosed x = 2", "   "]
    strict = make_reward("step_similarity")(texts, rows)
    lenient_fn = make_reward("step_similarity", lenient=True)
    lenient = lenient_fn(texts, rows)
    assert strict == [-1.0, -1.0, -1.0]
    assert lenient == [0.8, -1.0, -1.0]
    assert lenient_fn.last_stats["format_failures"] == 3.0  # still counted for logging
