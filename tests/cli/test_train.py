"""`srlkit train` through the CLI: --dry-run, overrides, one-line errors, and a slow real-model run."""

from __future__ import annotations

import json

import pytest
import tomllib

from tests.helpers import training as fx


def test_help_is_fast_and_lists_options(cli):
    res = cli("train", "--help")
    assert res.code == 0
    for opt in ("--curriculum", "--resume", "--dry-run", "--set", "--max-steps", "--no-lora"):
        assert opt in res.out


def test_dry_run_prints_resolved_toml(cli):
    res = cli("train", "--dry-run", "--curriculum", "rlvr,srl", "--max-steps", "3", "--no-lora", "--seed", "7",
              "--set", "train.phases.srl.lr=1e-6", "--set", "train.loss.aggregation='dr_grpo'", "--engine", "hf")
    assert res.code == 0, res.err
    cfg = tomllib.loads(res.out)
    assert cfg["curriculum"] == ["rlvr", "srl"] and cfg["seed"] == 7
    assert cfg["phases"]["srl"]["lr"] == 1e-6 and cfg["phases"]["srl"]["steps"] == 3
    assert cfg["phases"]["rlvr"]["steps"] == 3 and cfg["phases"]["sft"]["steps"] == 60  # not in the curriculum: untouched
    assert cfg["model"]["lora"]["enabled"] is False and cfg["loss"]["aggregation"] == "dr_grpo"


def test_dry_run_default_is_the_tiny_cpu_recipe(cli):
    res = cli("train", "--dry-run")
    assert res.code == 0
    cfg = tomllib.loads(res.out)
    assert cfg["rollout"]["num_generations"] == 4 and cfg["model"]["lora"]["enabled"] is False
    assert cfg["phases"]["srl"]["prompt_style"] == "continuation" and cfg["phases"]["srl"]["step_end"] == "boundary"


def test_recipes_resolve(cli):
    res = cli("train", "--config", "pipelines/s1k-qwen2.5-7b.toml", "--dry-run")
    assert res.code == 0, res.err
    cfg = tomllib.loads(res.out)
    assert cfg["phases"]["srl"]["prompts_per_step"] == 512 and cfg["phases"]["rlvr"]["prompts_per_step"] == 128
    assert cfg["rollout"]["engine"] == "vllm" and cfg["loss"]["kl_beta"] == 0.0


@pytest.mark.parametrize("args,needle", [
    (["--set", "train.phases.srl.lr"], "KEY=VALUE"),
    (["--set", "train.nope=1"], "nope"),
    (["--curriculum", "srl,ppo"], "curriculum"),
    (["--config", "missing.toml"], "not found"),
    (["--max-steps", "0"], "--max-steps"),
    (["--resume"], "--out"),
])
def test_bad_input_is_one_line_error(cli, args, needle):
    res = cli("train", *args, *(["--dry-run"] if "--resume" not in args else []))
    assert res.code == 2
    assert needle in res.err and len(res.err.strip().splitlines()) == 1 and "Traceback" not in res.err


def test_missing_data_and_existing_run_are_clear_errors(cli, tmp_path, tiny_model_dir, tiny_data):
    fx.install()
    res = cli(*fx.tiny_args(tiny_model_dir, tmp_path / "nope", tmp_path / "run"))
    assert res.code == 2 and "decompose" in res.err
    (tmp_path / "empty").mkdir()
    res = cli(*fx.tiny_args(tiny_model_dir, tmp_path / "empty", tmp_path / "run2"))
    assert res.code == 2 and "srlkit decompose" in res.err and len(res.err.strip().splitlines()) == 1
    ck = tmp_path / "run3" / "checkpoints" / "srl-000001"
    ck.mkdir(parents=True)
    (ck / "trainer_state.json").write_text(json.dumps({"seq": 1}))
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, tmp_path / "run3"))
    assert res.code == 2 and "--resume" in res.err


def test_sft_then_srl_full_finetune(cli, tmp_path, tiny_model_dir, tiny_data):
    """sft goes through the same learner; full fine-tuning writes a plain HF folder per phase."""
    fx.install()
    out = tmp_path / "run"
    res = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "sft,srl", "--no-lora", "--max-steps", "2"))
    assert res.code == 0, res.err
    assert res.out.strip().endswith(str(out))
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["phase"], r["step"]) for r in rows] == [("sft", 1), ("sft", 2), ("srl", 1), ("srl", 2)]
    assert all(r["grad_norm"] > 0 for r in rows if r["phase"] == "sft")
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert "val/nll" in evals[0] and "val/reward_mean" in evals[1]
    assert (out / "sft" / "final" / "model.safetensors").is_file() and not (out / "final" / "adapter").exists()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out / "final")


@pytest.mark.slow
def test_real_smollm2_runs_a_couple_of_steps(cli, tmp_path, smollm2_dir, tiny_data):
    """The real model, both phases, real rewards, one step each."""
    fx.install()
    out = tmp_path / "run"
    res = cli("train", "--model", str(smollm2_dir), "--data", str(tiny_data), "--out", str(out),
              "--curriculum", "srl,rlvr", "--max-steps", "1",
              "--set", "train.rollout.num_generations=2", "--set", "train.rollout.max_new_tokens=16",
              "--set", "train.phases.srl.prompts_per_step=1", "--set", "train.phases.rlvr.prompts_per_step=1",
              "--set", "train.phases.srl.val_prompts=1", "--set", "train.phases.rlvr.val_prompts=1",
              "--set", "train.phases.srl.sampling.max_attempts=1", "--set", "train.phases.rlvr.sampling.max_attempts=1",
              "--set", "train.phases.rlvr.sampling.patience=1", "--set", "train.allow_idle_phases=true",
              "--set", "train.val_solve=1")
    assert res.code == 0, res.err
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())["phases"]
    # SRL's lenient step similarity differs between two sampled steps: it always trains
    assert rows[0]["phase"] == "srl" and rows[0]["sampling/kept"] == 1 and "reward/step_similarity" in rows[0]
    assert summary["srl"]["updates"] == 1
    # RLVR on a 135M model mostly sees all-0 groups: either it trained, or it says it did not
    rlvr_rows = [r for r in rows if r["phase"] == "rlvr"]
    assert summary["rlvr"]["updates"] == len(rlvr_rows)
    assert rlvr_rows or "every group's rewards equal" in summary["rlvr"]["gave_up"]
    assert (out / "final" / "model.safetensors").is_file()


def test_set_typo_anywhere_in_the_recipe_is_a_one_line_error(cli):
    res = cli("train", "--dry-run", "--set", "train.phases.srl.lrr=1")
    assert res.code == 2 and "lrr" in res.err and len(res.err.strip().splitlines()) == 1
    res = cli("train", "--dry-run", "--set", "nosuchstage.x=1")
    assert res.code == 2 and "nosuchstage" in res.err
