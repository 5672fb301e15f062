"""Agent-action reward, the mixed reward, the scorer contract, and every reward's doctest."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from srlkit.config import RewardSpec
from srlkit.errors import ConfigError
from srlkit.rewards import REGISTRY, make_reward
from srlkit.rewards.agent import normalize_action
from srlkit.rewards.scorer import build_scorer


def test_every_registered_reward_has_a_docstring_example():
    assert {"step_similarity", "embedding", "mixed", "math", "agent_action"} <= set(REGISTRY)
    for name, factory in REGISTRY.items():
        assert ">>>" in (factory.__doc__ or ""), name


@pytest.mark.parametrize(
    "a, b",
    [
        ('open({"path": "a.py", "line": 3})', 'open({"line":3,"path":"a.py"})'),
        ('{"name": "open", "arguments": {"line": 3, "path": "a.py"}}', 'open({"path": "a.py", "line": 3})'),
        ('{"type": "function", "function": {"name": "open", "arguments": "{\\"path\\": \\"a.py\\", \\"line\\": 3}"}}',
         'open({"path": "a.py", "line": 3})'),
        ('<tool_call>\n{"name": "open", "arguments": {"path": "a.py", "line": 3}}\n</tool_call>',
         'open({"line": 3, "path": "a.py"})'),
        ("<function=bash>\n<parameter=command>ls -la</parameter>\n</function>",
         '{"name": "bash", "arguments": {"command": "ls -la"}}'),
        ("git  diff\n  HEAD", "git diff HEAD"),
    ],
)
def test_equivalent_spellings_normalise_equal(a, b):
    assert normalize_action(a) == normalize_action(b)
    fn = make_reward("agent_action")
    assert fn([f"<think>t</think>{a}"], [{"target": b}]) == [1.0]


def test_agent_partial_credit_and_exact_mode():
    row = [{"target": 'edit({"path": "a.py", "old": "x = 1", "new": "x = 2"})'}]
    close = ['<think>t</think>edit({"path": "a.py", "old": "x = 1", "new": "x = 3"})']
    other_tool = ['<think>t</think>view({"path": "a.py", "old": "x = 1", "new": "x = 2"})']
    partial = make_reward("agent_action")(close, row)[0]
    assert 0.8 < partial < 1.0
    assert make_reward("agent_action")(other_tool, row) == [0.0]
    assert make_reward("agent_action", partial=False)(close, row) == [0.0]
    fn = make_reward("agent_action", penalty=-0.5)
    assert fn(["<think>t</think>a()\n<tool_call>x</tool_call><tool_call>y</tool_call>"], row) == [-0.5]
    assert fn.last_stats["format/multiple_steps"] == 1.0


def test_scorer_weights_components_and_stats():
    specs = [RewardSpec(name="step_similarity", weight=2.0), RewardSpec(name="step_similarity", weight=-1.0,
                                                                       params={"penalty": 0.0})]
    with build_scorer(specs) as scorer:
        res = scorer(["<think>t</think>x = 2", "oops"], [{"target": "x = 3"}] * 2)
    assert res.components == {"step_similarity": [0.8, -1.0], "step_similarity#2": [0.8, 0.0]}
    assert res.total == [pytest.approx(0.8), -2.0]
    assert res.stats["format_failures"] == 1.0 and res.stats["scoring_errors"] == 0.0
    assert res.stats["step_similarity/format/missing_think"] == 1.0
    assert "time/step_similarity" in res.stats


def test_scorer_accepts_plain_dicts_and_custom_rewards():
    from srlkit.rewards import register

    if "length_test" not in REGISTRY:
        @register("length_test")
        def length_test(scale: float = 1.0):
            """Completion length times `scale` (test only).

            >>> length_test()(["ab"], [{}])
            [2.0]
            """
            return lambda comps, rows: [scale * len(c) for c in comps]

    scorer = build_scorer([{"name": "length_test", "weight": 0.5, "params": {"scale": 2.0}}])
    assert scorer(["abc"], [{}]).total == [3.0]
    scorer.close()


def test_config_mistakes_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown reward 'nope'"):
        build_scorer([{"name": "nope"}])
    with pytest.raises(ValidationError, match="unknown reward 'nope'"):  # a spec is checked when it is made
        RewardSpec(name="nope")
    with pytest.raises(ConfigError, match="no rewards configured"):
        build_scorer([])
    with pytest.raises(ConfigError, match="components"):
        make_reward("mixed")
    with pytest.raises(ConfigError, match="cannot contain another mixed"):
        make_reward("mixed", components=[{"name": "mixed"}])
    with pytest.raises(ConfigError, match="dataset folder"):
        make_reward("embedding")
