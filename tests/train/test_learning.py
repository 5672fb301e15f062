"""Issue 9: no silent dead phases, engine logprobs as the behaviour policy (truncated IS),
per-step log lines, step-boundary SRL targets and the continuation prompt."""

from __future__ import annotations

import json
import math

import pytest
import torch

from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
from srlkit.train.batch import collate
from srlkit.train.learner import Learner
from srlkit.train.loss import policy_loss
from srlkit.train.model import load_policy
from tests.helpers import training as fx


def _const_factory(value: float = 0.5, **_):
    return lambda completions, rows: [value] * len(completions)


def _install_const():
    from srlkit.rewards import base

    fx.install()
    base.REGISTRY.setdefault("test_const", _const_factory)


# ---------------------------------------------------------------- dead phases


def test_constant_rewards_make_no_optimizer_step_and_fail_clearly(cli, tmp_path, tiny_model_dir, tiny_data):
    _install_const()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl",
                            "--set", "train.phases.srl.rewards=[{name='test_const'}]",
                            "--set", "train.phases.srl.sampling.patience=2"))
    assert res.code != 0
    err = res.err.strip().splitlines()[-1]
    assert "srl: 2 draws in a row with every group's rewards equal (all 0.5" in err
    assert "no update" in err and "allow_idle_phases" in err
    assert not (out / "metrics.jsonl").exists() or not (out / "metrics.jsonl").read_text().strip()
    summary = json.loads((out / "summary.json").read_text())["phases"]["srl"]
    assert summary["updates"] == 0 and summary["steps"] == 3 and summary["filter_rate"] == 1.0
    assert summary["empty_draws"] == 2 and summary["prompts_consumed"] > 0
    assert "every group's rewards equal" in summary["gave_up"]


def test_idle_phase_allowed_by_switch_is_reported_not_hidden(cli, tmp_path, tiny_model_dir, tiny_data):
    _install_const()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr",
                            "--set", "train.phases.rlvr.rewards=[{name='test_const', params={value=0.0}}]",
                            "--set", "train.phases.rlvr.sampling.patience=1",
                            "--set", "train.allow_idle_phases=true"))
    assert res.code == 0, res.err
    assert "warning: rlvr: 1 draws in a row with every group's rewards equal (all 0;" in res.err
    summary = json.loads((out / "summary.json").read_text())["phases"]
    assert summary["srl"]["updates"] == 3 and summary["rlvr"]["updates"] == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert {r["phase"] for r in rows} == {"srl"}  # no step line pretends rlvr trained
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals if r["phase"] == "srl"][-1] == 3
    assert {r["step"] for r in evals if r["phase"] == "rlvr"} == {0}  # nor does its validation curve


def test_a_phase_that_gives_up_on_a_validation_step_is_scored_there_once(cli, tmp_path, tiny_model_dir, tiny_data):
    """The phase-end validation reuses a validation already made at the step the phase stopped at
    (here the starting point, step 0): one row per step in eval.jsonl, not two of the same weights."""
    _install_const()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr",
                            "--set", "train.phases.rlvr.rewards=[{name='test_const', params={value=0.0}}]",
                            "--set", "train.phases.rlvr.sampling.patience=1", "--set", "train.phases.rlvr.eval_every=1",
                            "--set", "train.allow_idle_phases=true"))
    assert res.code == 0, res.err
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals if r["phase"] == "rlvr"] == [0]
    summary = json.loads((out / "summary.json").read_text())["phases"]["rlvr"]
    assert summary["updates"] == 0 and summary["final_val"] == [r for r in evals if r["phase"] == "rlvr"][0]["val/score"]


# ---------------------------------------------------------------- per-step log lines


def test_one_log_line_per_optimizer_step_off_a_terminal(cli, tmp_path, tiny_model_dir, tiny_data):
    fx.install()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,sft"))
    assert res.code == 0, res.err
    lines = [x for x in res.err.splitlines() if " step " in x and "/3 |" in x]
    assert [x.split(" |")[0] for x in lines] == [f"{p} step {i}/3" for p in ("srl", "sft") for i in (1, 2, 3)]
    assert all("s/step" in x and "ETA" in x for x in lines)
    srl, sft = [x for x in lines if x.startswith("srl")], [x for x in lines if x.startswith("sft")]
    assert all("reward" in x and "filter" in x and "kept" in x and "| loss " in x for x in srl)
    # SFT shows its cross-entropy, not the GRPO surrogate (a constant -1 with advantage 1)
    assert all("| nll " in x and "loss" not in x and "nll 0.0000" not in x for x in sft)


# ---------------------------------------------------------------- importance sampling


def test_truncated_importance_weights_on_known_ratios():
    mask = torch.ones(1, 3)
    old = torch.zeros(1, 3)
    behav = torch.log(torch.tensor([[1.0, 0.5, 0.25]]))  # pi_old / pi_behav = 1, 2, 4
    adv = torch.tensor([1.0])
    logp = old.clone()  # ratio 1: the surrogate is -A * w per token
    loss, st = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.28, aggregation="token_mean",
                           behav_logp=behav, tis_cap=3.0)
    assert loss.item() == pytest.approx(-(1 + 2 + 3) / 3)  # w = 1, 2, min(4, 3)
    assert st["mismatch_max"] == pytest.approx(math.log(4)) and st["tis_clipped"] == 1
    # no correction with tis_cap = 0, and none without engine logprobs
    loss0, _ = policy_loss(logp, old, adv, mask, clip_low=0.2, clip_high=0.28, aggregation="token_mean",
                           behav_logp=behav, tis_cap=0.0)
    assert loss0.item() == pytest.approx(-1.0)
    # the clipped ratio still acts under the weight: r = 1.5 > 1.28 with A > 0
    logp2 = old + math.log(1.5)
    loss2, st2 = policy_loss(logp2, old, adv, mask, clip_low=0.2, clip_high=0.28, aggregation="token_mean",
                             behav_logp=behav, tis_cap=3.0)
    assert loss2.item() == pytest.approx(-1.28 * (1 + 2 + 3) / 3) and st2["clipped"] == 3


def test_clip_fraction_is_nonzero_with_two_updates_per_batch(tiny_model_dir):
    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(enabled=False)))
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(mu=2, lr=0.05, max_grad_norm=0.0, micro_batch_size=4), total_steps=1)
    pad = policy.tokenizer.pad_token_id
    batch = collate([[11, 12, 13]] * 4, [[5, 6, 7, 8]] * 2 + [[9, 10, 11, 12]] * 2, [1.0, 1.0, -1.0, -1.0],
                    pad_id=pad, behavior_logprobs=[[-2.0] * 4] * 4)
    stats = learner.update(batch)
    assert stats["clip_frac"] > 0.0  # the second pass sees ratios the first one moved
    assert stats["mismatch/mean"] > 0.0 and stats["mismatch/max"] >= stats["mismatch/mean"]


def test_rollout_batch_carries_engine_logprobs(tiny_model_dir, tiny_data):
    """rl_rollouts hands the engine's per-token logprobs to the learner as behaviour logprobs."""
    from srlkit.config import LossConfig, RolloutConfig
    from srlkit.rewards.scorer import build_scorer
    from srlkit.rollout.hf import HFEngine
    from srlkit.train.data import PromptTable, read_rows
    from srlkit.train.groups import rl_rollouts

    fx.install()
    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(enabled=False)))
    table = PromptTable(read_rows(tiny_data, "srl", "train"), policy.tokenizer, seed=0, max_prompt_tokens=512)
    rollout = RolloutConfig(num_generations=2, max_new_tokens=6, truncation="keep")
    from srlkit.config import RewardSpec

    engine = HFEngine(policy.model, policy.tokenizer)
    roll = rl_rollouts(engine=engine, scorer=build_scorer([RewardSpec(name="test_len")], tiny_data), table=table,
                       phase_name="0:srl", phase=PhaseConfig(prompts_per_step=2), rollout=rollout,
                       loss=LossConfig(), seed=0, step=1, pad_id=policy.tokenizer.pad_token_id)
    b = roll.batch
    assert b.behavior_logprobs is not None and b.behavior_logprobs.shape == b.completion_mask.shape
    assert bool(((b.behavior_logprobs < 0) | (b.completion_mask == 0)).all())
    assert roll.metrics["sampling/prompts"] >= 2


def test_a_phase_draws_its_own_group_size(tiny_model_dir, tiny_data):
    """phase.num_generations overrides rollout.num_generations: groups of the phase's G, and
    advantages centred within each such group (a group of the rollout's G would straddle two)."""
    from srlkit.config import LossConfig, RewardSpec, RolloutConfig
    from srlkit.rewards.scorer import build_scorer
    from srlkit.rollout.hf import HFEngine
    from srlkit.train.data import PromptTable, read_rows
    from srlkit.train.groups import rl_rollouts

    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(enabled=False)))
    table = PromptTable(read_rows(tiny_data, "srl", "train"), policy.tokenizer, seed=0, max_prompt_tokens=512)
    scorer = build_scorer([RewardSpec(name="test_len")], tiny_data)

    def draw(phase_g):
        phase = PhaseConfig(prompts_per_step=2, num_generations=phase_g, sampling={"dynamic": False})
        return rl_rollouts(engine=HFEngine(policy.model, policy.tokenizer), scorer=scorer, table=table,
                           phase_name="0:srl", phase=phase, rollout=RolloutConfig(num_generations=2, max_new_tokens=6,
                                                                                   truncation="keep"),
                           loss=LossConfig(), seed=0, step=1, pad_id=policy.tokenizer.pad_token_id)

    assert draw(None).batch.rows == 4
    b = draw(5).batch
    assert b.rows == 10
    for g in range(2):  # the prompt is shared within a group of 5, and its advantages sum to 0
        assert all(torch.equal(b.input_ids[5 * g, :b.prompt_len], b.input_ids[5 * g + j, :b.prompt_len])
                   for j in range(5))
        assert abs(float(b.advantages[5 * g:5 * g + 5].sum())) < 1e-4
    assert not torch.equal(b.input_ids[0, :b.prompt_len], b.input_ids[5, :b.prompt_len])


def test_expert_in_group_puts_the_expert_step_last_in_each_group(tiny_model_dir, tiny_data):
    """expert_in_group: G-1 samples plus the expert's step (NaN behaviour logprobs: weight 1),
    scored like the rest; the logged reward covers the policy's own samples only."""
    from srlkit.config import LossConfig, RewardSpec, RolloutConfig
    from srlkit.rewards.scorer import build_scorer
    from srlkit.rollout.hf import HFEngine
    from srlkit.train.data import PromptTable, encode_target, read_rows
    from srlkit.train.groups import rl_rollouts

    policy = load_policy(ModelConfig(name_or_path=str(tiny_model_dir), lora=LoraConfig(enabled=False)))
    table = PromptTable(read_rows(tiny_data, "srl", "train"), policy.tokenizer, seed=0, max_prompt_tokens=512)
    rollout = RolloutConfig(num_generations=3, max_new_tokens=6, truncation="keep")
    scorer = build_scorer([RewardSpec(name="step_exact", params={"lenient": True})], tiny_data)
    phase = PhaseConfig(prompts_per_step=2, expert_in_group=True, sampling={"dynamic": False})
    roll = rl_rollouts(engine=HFEngine(policy.model, policy.tokenizer), scorer=scorer, table=table,
                       phase_name="0:srl", phase=phase, rollout=rollout, loss=LossConfig(), seed=0, step=1,
                       pad_id=policy.tokenizer.pad_token_id)
    b = roll.batch
    assert b.rows == 6 and roll.metrics["sampling/expert_rows"] == 2
    P = b.prompt_len
    for g in range(2):
        expert_row = 3 * g + 2
        ids = b.input_ids[expert_row, P:][b.completion_mask[expert_row] > 0].tolist()
        assert torch.isnan(b.behavior_logprobs[expert_row][b.completion_mask[expert_row] > 0]).all()
        assert not torch.isnan(b.behavior_logprobs[3 * g][b.completion_mask[3 * g] > 0]).any()
        assert ids[-1] == policy.tokenizer.eos_token_id  # step_end = "eos": the step, then EOS
        assert b.advantages[expert_row] > 0  # the random tiny model never writes the step
    assert roll.metrics["reward/mean"] == 0.0  # the expert's 1.0 is not counted as the policy's
    wanted = [encode_target(policy.tokenizer, str(r["target"])) for r in table.rows]
    assert ids in wanted
    # the learner takes NaN behaviour logprobs as weight 1 (no NaN reaches the loss)
    learner = Learner(policy, LossConfig())
    learner.begin_phase(PhaseConfig(lr=1e-3, micro_batch_size=6), total_steps=1)
    stats = learner.update(b)
    assert math.isfinite(stats["loss"]) and math.isfinite(stats["mismatch/mean"])


# ---------------------------------------------------------------- step boundary, continuation prompt


def test_cut_at_boundary_with_the_real_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    from srlkit.rollout.base import Sample
    from srlkit.train.groups import cut_at_boundary

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    ids = tok("83 + 44 = 127\n127 - 5 = 122", add_special_tokens=False)["input_ids"]
    cut = cut_at_boundary(tok, Sample(ids, "", [-0.1] * len(ids), "length"))
    assert cut.text == "83 + 44 = 127\n" and cut.finish_reason == "stop" and len(cut.logprobs) == len(cut.token_ids)
    ids2 = tok("<think>add\nthe two</think>\n3 + 4 = 7\nmore", add_special_tokens=False)["input_ids"]
    assert cut_at_boundary(tok, Sample(ids2, "", [0.0] * len(ids2), "length")).text.endswith("3 + 4 = 7\n")
    eos = tok("3 + 4 = 7", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    no_eos = cut_at_boundary(tok, Sample(eos, "", [0.0] * len(eos), "stop"))
    assert tok.eos_token_id not in no_eos.token_ids and no_eos.text == "3 + 4 = 7"


def test_the_last_step_is_scored_with_what_follows_it(tiny_model_dir):
    """boundary mode: a last step followed by more lines scores below the same step ended with EOS."""
    from transformers import AutoTokenizer

    from srlkit.rewards import make_reward
    from srlkit.rollout.base import Sample
    from srlkit.train.groups import end_step

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)

    def sample(text, eos):
        ids = tok(text, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if eos else [])
        return Sample(ids, tok.decode(ids, skip_special_tokens=True), [0.0] * len(ids), "stop" if eos else "length")

    ended = end_step(tok, sample("The answer is \\boxed{7}.", eos=True), last=True)
    runs_on = end_step(tok, sample("The answer is \\boxed{7}.\n7 + 1 = 8", eos=False), last=True)
    assert ended.token_ids[-1] == tok.eos_token_id  # EOS is trained on the last step
    assert runs_on.text.endswith("7 + 1 = 8")  # not cut at the line break
    sim = make_reward("step_similarity", lenient=True)
    row = {"target": "The answer is \\boxed{7}."}
    a, b = sim([ended.text, runs_on.text], [row, row])
    assert a == 1.0 and b < 0.9
    # an intermediate step is still cut at its line break
    mid = end_step(tok, sample("3 + 4 = 7\n7 + 1 = 8", eos=False), last=False)
    assert mid.text == "3 + 4 = 7\n"


def test_step_exact_reward_pays_only_the_expert_step():
    from srlkit.rewards import make_reward
    from srlkit.rewards.scorer import build_scorer

    exact = make_reward("step_exact", lenient=True)
    rows = [{"target": "197 + 42 = 239"}] * 3
    assert exact(["197 + 42 = 239\n", "197 + 42 = 233", "<think>unclosed"], rows) == [1.0, 0.0, 0.0]
    sim = make_reward("step_similarity", lenient=True)
    near = sim(["197 + 42 = 233"], rows[:1])[0]
    assert near > 0.9  # difflib alone barely separates a near miss from the right step
    from srlkit.config import RewardSpec

    scorer = build_scorer([RewardSpec(name="step_similarity", weight=0.5, params={"lenient": True}),
                           RewardSpec(name="step_exact", weight=0.5, params={"lenient": True})])
    right, wrong = scorer(["197 + 42 = 239", "197 + 42 = 233"], rows[:2]).total
    assert right == 1.0 and wrong < 0.5


def test_continuation_prompt_continues_the_answer(tiny_model_dir):
    from transformers import AutoTokenizer

    from srlkit.data.templates import rlvr_prompt
    from srlkit.train.data import continuation_prompt, encode_prompt

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    row = {"problem": "1 + 2 + 3 =", "context_steps": ["1 + 2 = 3"], "prompt": []}
    text = tok.decode(encode_prompt(tok, continuation_prompt(row)))
    whole = tok.decode(encode_prompt(tok, rlvr_prompt("1 + 2 + 3 =")))
    assert text == whole + "1 + 2 = 3\n"  # the whole-solution prompt, with step 1 already written
    first = {"problem": "1 + 2 + 3 =", "context_steps": [], "prompt": []}
    assert tok.decode(encode_prompt(tok, continuation_prompt(first))) == whole
