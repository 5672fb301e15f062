"""Issue 12, "correctness first": every recipe mistake is a one-line error when the recipe loads.

Typos in keys, phases, reward names and reward params (with "did you mean"), values out of
range, missing paths, and free phase names (behaviour comes from `kind`, not the name).
"""

from __future__ import annotations

import doctest
import inspect

import pytest
import tomllib

from srlkit import errors
from srlkit.config import RewardSpec, TrainConfig, load_recipe, to_toml
from srlkit.errors import ConfigError
from srlkit.rewards import REGISTRY, base, make_reward
from srlkit.rewards.base import PARAMS, params_model
from srlkit.train import curriculum

TINY = "pipelines/tiny-cpu.toml"


def _error(*sets: str, path: str | None = TINY) -> str:
    with pytest.raises(ConfigError) as e:
        load_recipe(path, list(sets))
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# --------------------------------------------------------------------------- typos


@pytest.mark.parametrize("sets,needles", [
    (["train.phases.rvlr.lr=1e-3"], ["[train.phases.rvlr]", "did you mean 'rlvr'?", "train.curriculum"]),
    (["train.phases.srl.lrr=1"], ["train.phases.srl.lrr", "did you mean 'lr'?"]),
    (["train.rollout.num_generation=4"], ["train.rollout.num_generation", "did you mean 'num_generations'?"]),
    (["train.phases.srl.rewards=[{name='step_similarity', paramz={}}]"], ["did you mean 'params'?"]),
    (["train.phases.srl.sampling.patiense=3"], ["train.phases.srl.sampling.patiense", "did you mean 'patience'?"]),
    (["train.phases.srl.rewards=[{name='step_similarity', params={penalti=-1}}]"],
     ["train.phases.srl.rewards.0", "reward 'step_similarity' has no parameter 'penalti'", "did you mean 'penalty'?"]),
    (["train.phases.rlvr.rewards=[{name='maht'}]"], ["unknown reward 'maht'", "did you mean 'math'?"]),
    (["train.phases.srl.rewards=[{name='mixed', params={components=[{name='step_similarity', params={ordr=1}}]}}]"],
     ["reward 'mixed'", "params.components.0", "no parameter 'ordr'", "did you mean 'order'?"]),
    (["train.phases.srl.rewards=[{name='agent_action', params={partial='maybe'}}]"], ["params.partial"]),
    (["train.curriculum='srl,rlv'"], ["phase 'rlv'", "add [train.phases.rlv]", "did you mean 'rlvr'?"]),
])
def test_typos_are_one_line_errors_with_did_you_mean(sets, needles):
    msg = _error(*sets)
    for needle in needles:
        assert needle in msg, msg


def test_unknown_key_without_a_close_match_lists_the_known_keys():
    msg = _error("train.zzzz=1")
    assert "train.zzzz: unknown key; known: " in msg and "curriculum" in msg


def test_dry_run_rejects_the_issue_examples(cli):
    for args, needle in [
        (["--set", "train.phases.rvlr.lr=1e-3"], "did you mean 'rlvr'?"),
        (["--set", "train.phases.srl.rewards=[{name='step_similarity', params={penalti=-1}}]"],
         "did you mean 'penalty'?"),
        (["--set", "train.rollout.num_generations=0"], "train.rollout.num_generations"),
        (["--data", "/nope"], "data folder '/nope' not found"),
        (["--data", __file__], "is a file; training reads a `srlkit decompose` output folder: run `srlkit decompose"),
    ]:
        res = cli("train", "--dry-run", *args)
        assert res.code == 2, (args, res.out)
        assert needle in res.err and len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err


# --------------------------------------------------------------------------- ranges and paths


@pytest.mark.parametrize("override,field", [
    ("train.rollout.num_generations=0", "train.rollout.num_generations"),
    ("train.rollout.top_p=1.5", "train.rollout.top_p"),
    ("train.rollout.top_k=0", "use -1 to disable"),
    ("train.rollout.temperature=0", "train.rollout.temperature"),
    ("train.rollout.gpu_memory_utilization=1.2", "train.rollout.gpu_memory_utilization"),
    ("train.phases.srl.lr=-1e-6", "train.phases.srl.lr"),
    ("train.phases.srl.warmup_ratio=2", "train.phases.srl.warmup_ratio"),
    ("train.phases.srl.prompts_per_step=0", "train.phases.srl.prompts_per_step"),
    ("train.phases.rlvr.steps=0", "train.phases.rlvr.steps"),
    ("train.phases.srl.sampling.max_attempts=0", "train.phases.srl.sampling.max_attempts"),
    ("train.phases.srl.max_new_tokens=0", "train.phases.srl.max_new_tokens"),
    ("train.loss.std_eps=0", "train.loss.std_eps"),
    ("train.model.lora.r=0", "train.model.lora.r"),
    ("decompose.val_size=-1", "decompose.val_size"),
    ("decompose.max_trajectory_steps=1", "min_trajectory_steps"),  # below min_steps (2)
    ("eval.max_new_tokens=0", "eval.max_new_tokens"),
    ("train.phases.rlvr.rewards=[{name='math', params={timeout=0}}]", "params.timeout"),
])
def test_values_out_of_range_fail_at_load(override, field):
    msg = _error(override)
    assert field in msg, msg


def test_grpo_needs_two_samples_per_group_but_sft_does_not():
    msg = _error("train.rollout.num_generations=1")
    assert "GRPO phase 'srl'" in msg and "at least 2" in msg
    cfg = load_recipe(TINY, ["train.rollout.num_generations=1", "train.curriculum='sft'"]).train
    assert cfg.rollout.num_generations == 1
    msg = _error("train.phases.rlvr.num_generations=1")  # a phase's own G: its key is named
    assert "train.phases.rlvr.num_generations = 1" in msg and "GRPO phase 'rlvr'" in msg
    ok = load_recipe(TINY, ["train.rollout.num_generations=1", "train.phases.srl.num_generations=4",
                            "train.phases.rlvr.num_generations=8"]).train
    curriculum.validate(ok)
    # a change in place (no re-validation of the whole config) is caught before training:
    cfg.phases["sft"].rewards = [RewardSpec(name="step_similarity")]
    cfg.phases["sft"].kind = "grpo"
    with pytest.raises(ConfigError, match="at least 2"):
        curriculum.validate(cfg)


def test_paths_are_checked_at_load(tmp_path):
    assert "data folder '/nope' not found" in _error("train.data='/nope'")
    assert "model folder '/nope/model' not found" in _error("train.model.name_or_path='/nope/model'")
    assert "template file" in _error(f"decompose.template='{tmp_path / 'none.txt'}'")
    cfg = load_recipe(TINY, [f"train.data='{tmp_path}'", "train.model.name_or_path='Qwen/Qwen2.5-7B-Instruct'"])
    assert cfg.train.data == str(tmp_path)  # a folder that exists, and a Hub id: accepted


# --------------------------------------------------------------------------- free phase names


def test_phases_are_named_freely_and_get_the_defaults_of_their_kind(tmp_path):
    p = tmp_path / "two_srl.toml"
    p.write_text(
        '[train]\ncurriculum = ["srl", "srl_cont", "warm", "rl2"]\n'
        '[train.phases.srl_cont]\nprompt_style = "continuation"\nlr = 1e-6\n'
        '[train.phases.warm]\nkind = "sft"\n'
        '[train.phases.rl2]\ntable = "rlvr"\n'
    )
    t = load_recipe(p).train
    assert t.curriculum == ["srl", "srl_cont", "warm", "rl2"]
    cont, warm, rl2 = t.phases["srl_cont"], t.phases["warm"], t.phases["rl2"]
    assert (cont.kind, cont.table, cont.prompt_style, cont.lr) == ("grpo", "srl", "continuation", 1e-6)
    assert [r.name for r in cont.rewards] == ["step_similarity"] and cont.epochs == 1.0
    assert warm.kind == "sft" and warm.lr == t.phases["sft"].lr and warm.sampling.dynamic is False
    assert rl2.kind == "grpo" and [r.name for r in rl2.rewards] == ["math"]  # not srl's reward on rlvr rows
    again = tmp_path / "again.toml"
    again.write_text(to_toml(load_recipe(p)))
    assert load_recipe(again) == load_recipe(p)


def test_curriculum_phase_without_a_table_names_the_table_to_add():
    msg = _error("train.curriculum='srl,srl2'")
    assert "phase 'srl2'" in msg and "add [train.phases.srl2]" in msg


def test_unused_tables_are_fine_only_for_the_default_phases():
    assert "sft" not in load_recipe(TINY).train.curriculum  # tiny-cpu's [train.phases.sft] is unused: fine
    msg = _error("train.phases.extra.lr=1e-6")
    assert "[train.phases.extra] is not in train.curriculum (srl, rlvr)" in msg and "add 'extra' there" in msg


@pytest.mark.parametrize("name", ["final", "checkpoints", "a/b", "-x", "srl.v2"])
def test_phase_names_that_clash_with_the_run_folder_are_errors(name):
    with pytest.raises(ValueError, match="is not allowed"):
        TrainConfig(curriculum=[name], phases={name: {}})


def test_phase_checks_by_kind_not_by_name():
    msg = _error("train.phases.srl.rewards=[]")
    assert "phase 'srl' has no rewards" in msg
    msg = _error("train.curriculum='warm'", "train.phases.warm.kind='sft'", "train.phases.warm.table='rlvr'")
    assert "kind sft" in msg and "train.phases.warm.table" in msg
    load_recipe(TINY, ["train.curriculum='warm'", "train.phases.warm.kind='sft'"])  # no rewards needed


def test_both_shipped_recipes_load():
    assert load_recipe(TINY).train.phases["srl"].rewards[0].params == {"lenient": True}
    s1k = load_recipe("pipelines/s1k-qwen2.5-7b.toml").train
    assert s1k.phases["sft"].kind == "sft" and s1k.rollout.num_generations == 8


# --------------------------------------------------------------------------- typed reward params


def test_every_builtin_reward_has_a_params_model_matching_its_factory():
    for name in ("step_similarity", "embedding", "math", "agent_action", "mixed"):
        assert name in PARAMS, name
        model, sig = PARAMS[name], inspect.signature(REGISTRY[name])
        assert list(model.model_fields) == list(sig.parameters), name
        for pname, field in model.model_fields.items():
            want = sig.parameters[pname].default
            got = field.default_factory() if field.default_factory else field.default
            assert got == (list(want) if isinstance(want, tuple) else want), (name, pname)  # mixed: () vs []


def test_format_penalty_is_one_name_and_the_old_one_says_so():
    for name in ("step_similarity", "embedding", "agent_action", "math"):
        assert "penalty" in PARAMS[name].model_fields and "format_penalty" not in PARAMS[name].model_fields
    fn = make_reward("math", penalty=-1.0)
    try:
        assert fn(["no answer"], [{"answer": "3"}]) == [-1.0]
    finally:
        fn.close()
    with pytest.raises(ConfigError, match="'format_penalty' is now called 'penalty'"):
        make_reward("math", format_penalty=-1.0)
    assert "'format_penalty' is now called 'penalty'" in _error(
        "train.phases.rlvr.rewards=[{name='math', params={format_penalty=-1}}]")


def test_rewards_registered_without_a_model_are_typed_from_their_signature(monkeypatch):
    def sig_typed_test(scale: float = 1.0, label: str = "x"):
        return lambda completions, rows: [scale] * len(completions)

    def sig_kwargs_test(**params):
        return lambda completions, rows: [0.0] * len(completions)

    monkeypatch.setattr(base, "PARAMS", dict(base.PARAMS))  # derived models are cached there: undone after
    for name, factory in (("sig_typed_test", sig_typed_test), ("sig_kwargs_test", sig_kwargs_test)):
        monkeypatch.setitem(REGISTRY, name, factory)  # as a plugin's @register would; gone after the test
    assert set(params_model("sig_typed_test").model_fields) == {"scale", "label"}
    assert "sig_typed_test" in base.PARAMS and "sig_typed_test" not in PARAMS
    assert make_reward("sig_typed_test", scale=2)(["a"], [{}]) == [2.0]
    with pytest.raises(ConfigError, match="did you mean 'scale'"):
        make_reward("sig_typed_test", scael=2)
    with pytest.raises(ValueError, match="did you mean 'scale'"):  # and in a recipe's spec
        RewardSpec.model_validate({"name": "sig_typed_test", "params": {"scael": 2}})
    with pytest.raises(ConfigError, match="params.scale"):
        make_reward("sig_typed_test", scale="big")
    assert make_reward("sig_kwargs_test", anything=1)(["a"], [{}]) == [0.0]  # **params: its own business


def test_error_helpers_doctests():
    assert doctest.testmod(errors).failed == 0
    assert doctest.testmod(base).failed == 0


def test_dry_run_output_still_parses_with_a_free_phase(cli):
    res = cli("train", "--dry-run", "--curriculum", "srl,srl2",
              "--set", "train.phases.srl2.prompt_style='continuation'", "--set", "train.phases.srl2.steps=2")
    assert res.code == 0, res.err
    cfg = tomllib.loads(res.out.split("\n# ")[0])
    assert cfg["curriculum"] == ["srl", "srl2"] and cfg["phases"]["srl2"]["steps"] == 2
    assert cfg["phases"]["srl2"]["rewards"][0]["name"] == "step_similarity"
