"""A curriculum is its phases run one after the other.

The `rlvr` phase of one `srl,rlvr` run must equal a separate `rlvr` run started from the SRL
phase's final weights (`--model RUN/srl/final`) with the same run seed: the same weights, the
same training and validation metrics, bit for bit. What the chain carries over is the weights
(with LoRA: the adapter itself, which the separate run continues from its folder); it resets
the optimizer moments and the LR schedule, and each phase's data order and sampling seeds
derive from its name, not its position (`curriculum.seed_key`).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers import training as fx

VOLATILE = {"time", "global_step", "time/generate", "time/reward", "time/update", "time/step", "tokens_per_s",
            "val/seconds"}


def _rows(path: Path, phase: str) -> list[dict]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return [{k: v for k, v in r.items() if k not in VOLATILE} for r in rows if r.get("phase") == phase]


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    assert files, folder
    out: dict[str, torch.Tensor] = {}
    for f in files:
        out.update(load_file(str(f)))
    return out


@pytest.mark.parametrize("lora, extra", [
    (False, ["--set", "train.loss.kl_beta=0.5"]),  # full fine-tuning, KL to the phase start
    (True, []),  # the adapter carries over
], ids=["full-kl", "lora"])
def test_rlvr_phase_of_chain_equals_rlvr_run_from_srl_weights(cli, tmp_path, tiny_model_dir, tiny_data, lora, extra):
    fx.install()
    common = ["--set", f"train.model.lora.enabled={str(lora).lower()}", "--set", "train.phases.rlvr.eval_every=2",
              *extra]
    chain, apart = tmp_path / "chain", tmp_path / "apart"
    r = cli(*fx.tiny_args(tiny_model_dir, tiny_data, chain, "--curriculum", "srl,rlvr", *common))
    assert r.code == 0, r.err
    r = cli(*fx.tiny_args(tiny_model_dir, tiny_data, apart, "--curriculum", "rlvr", *common),
            "--model", str(chain / "srl" / "final"))
    assert r.code == 0, r.err

    a, b = _weights(chain / "rlvr" / "final"), _weights(apart / "rlvr" / "final")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:3]
    start = _weights(chain / "srl" / "final")
    assert any(not torch.equal(a[k], start[k]) for k in a)  # RLVR did move the weights
    if lora:
        assert all(".lora_" in k for k in a)  # the adapter itself, continued (not merged into a new base)

    train_a, train_b = _rows(chain / "metrics.jsonl", "rlvr"), _rows(apart / "metrics.jsonl", "rlvr")
    assert len(train_a) == 3 and train_a == train_b
    if extra:
        assert train_a[0]["kl"] == 0.0 and train_a[1]["kl"] > 0  # the reference is the phase's start
    val_a, val_b = _rows(chain / "eval.jsonl", "rlvr"), _rows(apart / "eval.jsonl", "rlvr")
    assert [v["step"] for v in val_a] == [0, 2, 3] and val_a == val_b
    summ_a = json.loads((chain / "summary.json").read_text())["phases"]["rlvr"]
    summ_b = json.loads((apart / "summary.json").read_text())["phases"]["rlvr"]
    for k in ("updates", "draws", "filter_rate", "prompts_consumed", "best", "final_val"):
        assert summ_a[k] == summ_b[k], k


class _Abort(Exception):
    pass


def test_resume_mid_phase_keeps_the_phase_start_kl_reference(cli, tmp_path, tiny_model_dir, tiny_data, monkeypatch):
    """Killed after RLVR's step-2 checkpoint and resumed: the KL reference is still the weights RLVR
    began with (saved in the checkpoint), not the resumed ones, so the run ends bit-equal."""
    from srlkit.train import curriculum

    fx.install()
    common = ["--set", "train.model.lora.enabled=false", "--set", "train.loss.kl_beta=0.5"]
    ref, out = tmp_path / "ref", tmp_path / "run"
    r = cli(*fx.tiny_args(tiny_model_dir, tiny_data, ref, "--curriculum", "srl,rlvr", *common))
    assert r.code == 0, r.err

    def hook(phase, step, *, phase_end=False):
        if phase == "rlvr" and step == 2 and not phase_end:
            raise _Abort()

    monkeypatch.setattr(curriculum, "kill_hook", hook)
    monkeypatch.setenv("SRLKIT_DEBUG", "1")  # let the abort through the CLI's error boundary
    with pytest.raises(_Abort):
        cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr", *common))
    ckpt = sorted((out / "checkpoints").glob("rlvr-000002"))
    assert ckpt and (ckpt[0] / "reference.safetensors").is_file()
    monkeypatch.undo()
    assert cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr", *common), "--resume").code == 0
    a, b = _weights(ref / "rlvr" / "final"), _weights(out / "rlvr" / "final")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(ref / "metrics.jsonl", "rlvr") == _rows(out / "metrics.jsonl", "rlvr")


def test_keep_checkpoints_prunes_kl_checkpoints_and_never_a_users_file(cli, tmp_path, tiny_model_dir, tiny_data,
                                                                       capsys):
    """A KL phase's checkpoints hold `reference.safetensors`; pruning them must work (a 30-step RLVR
    with KL once died at its end here), and an old checkpoint holding a user's file is kept whole."""
    from srlkit.train import checkpoint

    fx.install()
    out = tmp_path / "run"
    sets = ["--set", "train.model.lora.enabled=false", "--set", "train.phases.rlvr.kl_beta=0.5",
            "--set", "train.phases.rlvr.save_every=1", "--set", "train.phases.rlvr.steps=4",
            "--set", "train.keep_checkpoints=2"]
    r = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl,rlvr", *sets))
    assert r.code == 0, r.err
    left = [d.name for d in checkpoint.list_checkpoints(out)]
    assert left == ["rlvr-000003", "rlvr-000004"], left
    assert (out / "checkpoints" / "rlvr-000003" / "reference.safetensors").is_file()  # mid-phase: saved
    assert (out / "rlvr" / "final").is_dir()

    old = out / "checkpoints" / "rlvr-000003"
    (old / "notes.txt").write_text("mine\n")
    before = sorted(p.name for p in old.iterdir())
    checkpoint._prune(out / "checkpoints", 1)
    assert sorted(p.name for p in old.iterdir()) == before  # kept whole, not half-deleted
    assert "rlvr-000003 kept" in capsys.readouterr().err
    with pytest.raises(checkpoint.CheckpointError, match="notes.txt"):
        checkpoint._remove(old)
    assert sorted(p.name for p in old.iterdir()) == before


@pytest.mark.parametrize("schedule, same", [("constant", True), ("cosine", False)])
def test_shorter_constant_lr_phase_is_the_longer_one_stopped_early(cli, tmp_path, tiny_model_dir, tiny_data,
                                                                   schedule, same):
    """A phase's data order and sampling do not depend on its length, so at a constant LR (the
    recipe's SRL) SRL-N is SRL-M stopped at step N: RESULTS reads the chain's SRL-30 end as SRL-60's
    step 30. A schedule that spans the phase (cosine) makes them differ once its LR starts to decay."""
    fx.install()
    runs = {}
    for steps in (2, 3):
        out = tmp_path / f"{schedule}{steps}"
        r = cli(*fx.tiny_args(tiny_model_dir, tiny_data, out, "--curriculum", "srl"),
                "--set", f"train.phases.srl.steps={steps}", "--set", f"train.phases.srl.lr_schedule='{schedule}'")
        assert r.code == 0, r.err
        ckpt = sorted((out / "checkpoints").glob("srl-*2"))
        assert len(ckpt) == 1, sorted(p.name for p in (out / "checkpoints").iterdir())
        runs[steps] = (_rows(out / "metrics.jsonl", "srl")[:2], _weights_of(ckpt[0]))
    (rows2, w2), (rows3, w3) = runs[2], runs[3]
    assert [r["step"] for r in rows2] == [r["step"] for r in rows3] == [1, 2]
    equal = rows2 == rows3 and w2.keys() == w3.keys() and all(torch.equal(w2[k], w3[k]) for k in w2)
    assert equal is same


def _weights_of(ckpt: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(ckpt / "trainable.safetensors"))
