"""`srlkit run`: stage skipping by config fingerprint, --force, --dry-run (stages stubbed),
plus one real tiny end-to-end run (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import srlkit.pipeline as P

RECIPE = """
name = "t"
[decompose]
val_size = 0.2
[embed]
enabled = true
[train]
curriculum = ["srl"]
[eval]
k = 2
"""


@pytest.fixture
def stubbed(monkeypatch):
    """Replace each stage by a stub that writes the stage's outputs, with their manifests, and
    records the call."""
    from srlkit import stage as S

    calls: list[tuple[str, bool]] = []

    def make(name):
        def stage(recipe, paths: P.Paths, resume: bool):
            calls.append((name, resume))
            if name == "decompose":
                paths.data.mkdir(parents=True, exist_ok=True)
                (paths.data / "srl.parquet").write_text(f"val_size {recipe.decompose.val_size}")
                S.finish(paths.data, "decompose", ["srl.parquet"])
            elif name == "embed":
                (paths.data / "embeddings" / "m").mkdir(parents=True, exist_ok=True)
                (paths.data / "embeddings" / "m" / "x.parquet").write_text("x")
                m = S.read(paths.data)
                m["embeddings"] = {"m": {"files": {"embeddings/m/x.parquet": S.file_info(paths.data / "embeddings/m/x.parquet")}}}
                (paths.data / "manifest.json").write_text(json.dumps(m))
            elif name == "train":
                (paths.train / "final").mkdir(parents=True, exist_ok=True)
                (paths.train / "final" / "model.safetensors").write_text("w")
                S.finish(paths.train, "train", ["final/model.safetensors"])
            elif name == "eval":
                paths.eval.parent.mkdir(parents=True, exist_ok=True)
                paths.eval.write_text(json.dumps({"stage": "eval", "config": {}, "results": {}, "files": {}}))
            else:
                paths.report.mkdir(parents=True, exist_ok=True)
                (paths.report / "report.md").write_text("# r")
                S.finish(paths.report, "report", ["report.md"])
        return stage

    for name in P.STAGES:
        monkeypatch.setattr(P, f"stage_{name}", make(name))
    return calls


def _names(calls):
    out = [c[0] for c in calls]
    calls.clear()
    return out


def test_stages_skip_when_config_matches(tmp_path, cli, stubbed):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    root = tmp_path / "root"
    res = cli("run", recipe, "--out", root)
    assert res.code == 0, res.err
    assert _names(stubbed) == list(P.STAGES)
    assert f"report: {root / 'report' / 'report.md'}" in res.out
    for s in P.STAGES:
        assert (root / ".stamps" / f"{s}.done.json").is_file()

    res = cli("run", recipe, "--out", root)  # nothing changed: all skipped
    assert res.code == 0 and _names(stubbed) == []
    assert res.err.count("skipped") == 5 and "[train] skipped: outputs match the config" in res.err

    # an eval-only change reruns eval and report, not training
    assert cli("run", recipe, "--out", root, "--set", "eval.k=3").code == 0
    assert _names(stubbed) == ["eval", "report"]

    # a decompose change invalidates everything downstream
    assert cli("run", recipe, "--out", root, "--set", "eval.k=3", "--set", "decompose.val_size=0.3").code == 0
    assert _names(stubbed) == list(P.STAGES)


def test_force_redoes_a_stage_and_everything_after(tmp_path, cli, stubbed):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    root = tmp_path / "root"
    assert cli("run", recipe, "--out", root).code == 0
    _names(stubbed)
    res = cli("run", recipe, "--out", root, "--force", "train")
    assert res.code == 0, res.err
    assert _names(stubbed) == ["train", "eval", "report"]
    res = cli("run", recipe, "--out", root, "--force", "nope")
    assert res.code == 2 and "unknown stage" in res.err


def test_missing_outputs_rerun_and_embed_can_be_off(tmp_path, cli, stubbed):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    root = tmp_path / "root"
    assert cli("run", recipe, "--out", root, "--set", "embed.enabled=false").code == 0
    assert _names(stubbed) == ["decompose", "train", "eval", "report"]
    (root / "eval" / "results.json").unlink()  # stamp still there, output gone
    assert cli("run", recipe, "--out", root, "--set", "embed.enabled=false").code == 0
    assert _names(stubbed) == ["eval", "report"]


def test_interrupted_train_resumes(tmp_path, stubbed, monkeypatch):
    from srlkit.config import Recipe

    recipe = Recipe.model_validate({"name": "t", "train": {"curriculum": ["srl"]}})
    root = tmp_path / "root"
    P.run_pipeline(recipe, root, log=lambda m: None)
    stubbed.clear()

    def boom(recipe, paths, resume):
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "stage_eval", boom)
    with pytest.raises(KeyboardInterrupt):
        P.run_pipeline(recipe, root, force=["train"], log=lambda m: None)
    assert stubbed == [("train", False)]
    # train finished, eval was interrupted: a plain rerun skips train and retries eval
    steps = {s.name: s.action for s in P.plan(recipe, P.Paths(root))}
    assert steps["train"] == "skip" and steps["eval"] == "run"
    # a train interrupted mid-way (started stamp, no done stamp) resumes
    (root / ".stamps" / "train.done.json").rename(root / ".stamps" / "train.started.json")
    steps = {s.name: s.action for s in P.plan(recipe, P.Paths(root))}
    assert steps["train"] == "resume"


def test_dry_run_prints_plan_and_runs_nothing(tmp_path, cli, stubbed):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE)
    res = cli("run", recipe, "--out", tmp_path / "root", "--dry-run", "--set", "train.seed=3")
    assert res.code == 0, res.err
    assert stubbed == []
    assert "seed = 3" in res.out and "# train" in res.out and "no outputs yet" in res.out
    assert not (tmp_path / "root").exists()
    res = cli("run", tmp_path / "missing.toml")
    assert res.code == 2 and "not found" in res.err


def test_fingerprint_ignores_output_locations(tmp_path):
    from srlkit.config import Recipe

    r = Recipe()
    a = [s.fingerprint for s in P.plan(r, P.Paths(tmp_path / "a"))]
    b = [s.fingerprint for s in P.plan(r, P.Paths(tmp_path / "b"))]
    assert a == b


@pytest.mark.slow
def test_tiny_pipeline_end_to_end(tmp_path, cli, tiny_model_dir):
    """The real stages on the tiny model: decompose CHAMP, train 1 SRL + 1 RLVR step, eval the base,
    the end of SRL and the trained model, report; the last line says what RLVR added over SRL."""
    from tests.helpers import training as fx

    fx.install()
    pytest.importorskip("srlkit.train.run")
    pytest.importorskip("srlkit.data.decompose")
    root = tmp_path / "root"
    sets = [
        f"train.model.name_or_path={tiny_model_dir}", "embed.enabled=false", "decompose.limit=30",
        "train.curriculum=srl,rlvr", "train.phases.srl.steps=1", "train.phases.srl.prompts_per_step=2",
        "train.phases.srl.val_prompts=2", "train.phases.rlvr.steps=1", "train.phases.rlvr.prompts_per_step=2",
        "train.phases.rlvr.val_prompts=2", "train.phases.rlvr.rewards=[{name='test_len'}]",
        "train.rollout.num_generations=2", "train.rollout.max_new_tokens=8",
        "train.report_to=[\"jsonl\"]", "eval.k=1", "eval.limit=2", "eval.max_new_tokens=8", "eval.bootstrap=20",
    ]
    args = ["run", Path("pipelines/tiny-cpu.toml").resolve(), "--out", root]
    for s in sets:
        args += ["--set", s]
    res = cli(*args)
    assert res.code == 0, res.err
    assert (root / "report" / "report.md").is_file() and (root / "report" / "rewards.png").stat().st_size > 0
    results = json.loads((root / "eval" / "results.json").read_text())
    assert set(results["results"]) == {"base", "srl", "trained"}
    last = [x for x in (res.out + res.err).splitlines() if x.strip()][-1]
    assert "[chain] RLVR" in last and "over the end of SRL" in last, last
    assert "## What each phase added" in (root / "report" / "report.md").read_text()
    res = cli(*args)
    assert res.code == 0 and res.err.count("skipped") == 5
