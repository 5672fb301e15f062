"""Model export (merged weights + adapter + generated card) and push through a loopback Hub."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from srlkit.config import TrainConfig, to_toml
from tests.helpers.hub_stub import TOKEN


@pytest.fixture
def finished_run(tmp_path, tiny_model_dir) -> Path:
    """A run folder shaped like `srlkit train` output: final/ merged + final/adapter/, config, summary,
    with a pipeline-style eval/results.json beside it."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    root = tmp_path / "pipe"
    run = root / "train"
    shutil.copytree(tiny_model_dir, run / "final")
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"]))
    peft_model.save_pretrained(run / "final" / "adapter")
    data = root / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({
        "source": {"spec": "someone/expert-traces", "description": "someone/expert-traces (Hub, split train)"},
        "counts": {"input": 12, "accepted": 10, "rejected": 2}}))
    cfg = TrainConfig(data=str(data), out=str(run), curriculum=["srl", "rlvr"])
    (run / "config.toml").write_text(to_toml(cfg))
    (run / "summary.json").write_text(json.dumps({"phases": {"srl": {"steps": 3}, "rlvr": {"steps": 2}}}))
    (run / "state.json").write_text(json.dumps({"finished": True}))
    res = {"greedy_acc": 0.5, "greedy_ci": [0.0, 1.0], "greedy_len": 10.0, "think": {
        "blocks_mean": 0.0, "with_think": 0.0, "multi_think": 0.0, "leading": 0.0, "interleaved": 0.0,
        "trailing": 0.0}}
    (root / "eval").mkdir()
    (root / "eval" / "results.json").write_text(json.dumps({
        "config": {"k": 0}, "models": {}, "benches": {"validation": {"n": 2}},
        "results": {"base": {"validation": {**res, "greedy_acc": 0.0}}, "trained": {"validation": res}}}))
    return run


def test_export_model_builds_card_and_files(finished_run):
    import yaml

    from srlkit.report.model_card import export_model

    out = export_model(finished_run)
    assert out == finished_run / "export"
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert (out / "srlkit_config.toml").is_file() and (out / "eval_results.json").is_file()
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "transformers"
    assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # the bundled default base
    assert meta["datasets"] == ["someone/expert-traces"] and "srl" in meta["tags"]
    assert "SRL → RLVR" in card
    assert "| srl | grpo | srl | step_similarity | 3 |" in card and "| rlvr | grpo | rlvr | math | 2 |" in card
    assert "| validation (n=2) | greedy acc % [95% CI] | 0.0 [0.0, 100.0] | 50.0 [0.0, 100.0] |" in card
    assert 'curriculum = [\n    "srl",\n    "rlvr",\n]' in card or 'curriculum = ["srl", "rlvr"]' in card
    # the exported model loads with transformers alone, the adapter with peft
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    m = AutoModelForCausalLM.from_pretrained(out)
    PeftModel.from_pretrained(m, out / "adapter")
    # re-export replaces the folder atomically; adapter-only export leaves the weights out
    out2 = export_model(finished_run, what="adapter")
    assert not (out2 / "model.safetensors").exists() and (out2 / "adapter").is_dir()
    assert "library_name: peft" in (out2 / "README.md").read_text()


def test_export_unfinished_run_is_one_line_error(tmp_path, cli):
    from srlkit.errors import DataError
    from srlkit.report.model_card import export_model

    (tmp_path / "run").mkdir()
    with pytest.raises(DataError, match="final/"):
        export_model(tmp_path / "run")


def test_push_exported_model_to_loopback_hub(finished_run, hub_stub):
    from huggingface_hub import HfApi

    from srlkit.report.model_card import export_model

    folder = export_model(finished_run)
    api = HfApi(endpoint=hub_stub.endpoint, token=TOKEN)
    api.create_repo("tester/srl-tiny", repo_type="model", exist_ok=True)
    api.upload_folder(folder_path=folder, repo_id="tester/srl-tiny", repo_type="model",
                      commit_message="srlkit model")
    repo = hub_stub.repo("tester/srl-tiny")
    local = {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert repo.files == local
    assert len(repo.commits) == 1 and repo.commits[0]["summary"] == "srlkit model"
    assert all(h == f"Bearer {TOKEN}" for h in hub_stub.auth_headers)


def test_push_cli_model(finished_run, hub_stub, cli):
    pytest.importorskip("srlkit.hub")
    res = cli("push", "--model", finished_run, "--repo", "tester/srl-cli")
    assert res.code == 0, res.err
    repo = hub_stub.repo("tester/srl-cli")
    assert "README.md" in repo.files and "adapter/adapter_config.json" in repo.files
    assert "model.safetensors" in repo.files
    assert b"SRL" in repo.files["README.md"]
    assert TOKEN not in res.out + res.err  # never print the token
