"""`srlkit push` against a loopback stand-in for the Hub (HF_ENDPOINT), plus dry runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import ASSETS
from tests.helpers.hub_stub import TOKEN


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    out = tmp_path_factory.mktemp("push") / "ds"
    decompose(DecomposeConfig(source=str(ASSETS / "numbered.jsonl"), val_size=0.3), out, show_progress=False)
    return out


def test_push_dataset_one_commit(cli, hub_stub, dataset_dir):
    res = cli("push", dataset_dir, "--repo", "me/srl-small", "--private", "--revision", "v1")
    assert res.code == 0, res.err
    assert TOKEN not in res.out + res.err
    posts = [path.split("?")[0] for method, path in hub_stub.requests if method == "POST"]
    assert posts[0] == "/api/repos/create" and "/api/datasets/me/srl-small/branch/v1" in posts
    assert hub_stub.validated, "the card's YAML was validated (a dataset card must declare configs)"
    repo = hub_stub.repo("me/srl-small", "dataset")
    assert repo.private and "v1" in repo.branches
    assert all(h == f"Bearer {TOKEN}" for h in hub_stub.auth_headers)
    assert len(repo.commits) == 1, "one commit for the whole folder"
    assert repo.commits[0]["revision"] == "v1"
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    assert set(repo.commits[0]["files"]) == set(manifest["files"]) | {"README.md", "manifest.json", "steps_hist.png"}
    assert repo.files["README.md"] == (dataset_dir / "README.md").read_bytes()


def test_push_errors_are_scrubbed(cli, hub_stub, tmp_path, dataset_dir, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on port 9
    res = cli("push", dataset_dir, "--repo", "me/x")
    assert res.code == 2 and "cannot reach the Hub" in res.err and TOKEN not in res.err
    assert res.err.count("\n") == 1


def test_dry_run_and_bad_input(cli, dataset_dir, tmp_path):
    res = cli("push", dataset_dir, "--repo", "me/srl", "--dry-run")
    assert res.code == 0 and "would upload" in res.out
    assert "README.md" in res.out and "srl/train-00000-of-00001.parquet" in res.out
    assert cli("push", dataset_dir, "--repo", "not-a-repo").code == 2
    assert cli("push", tmp_path, "--repo", "me/x").code == 2  # no manifest.json
    assert cli("push", "--repo", "me/x").code == 2  # neither folder nor --model
    res = cli("push", dataset_dir, "--repo", "me/x")  # conftest sets HF_HUB_OFFLINE=1
    assert res.code == 2 and "HF_HUB_OFFLINE" in res.err


def test_push_model_uses_export_model(cli, hub_stub, tmp_path, monkeypatch):
    import sys
    import types

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("# model")
    (folder / "notes.txt").write_text("not exported: never uploaded")
    from srlkit import stage

    stage.finish(folder, "export", ["config.json", "README.md"])  # what export_model writes
    fake = types.ModuleType("srlkit.report.model_card")
    fake.export_model = lambda run_dir: folder
    monkeypatch.setitem(sys.modules, "srlkit.report.model_card", fake)
    res = cli("push", "--model", tmp_path, "--repo", "me/model")
    assert res.code == 0, res.err
    repo = hub_stub.repo("me/model", "model")
    assert len(repo.commits) == 1 and repo.commits[0]["revision"] == "main"
    assert set(repo.commits[0]["files"]) == {"config.json", "README.md", "manifest.json"}


def test_published_layout_loads_back(dataset_dir, tmp_path):
    """What the commit uploads is the folder itself: load it back exactly as the Hub would serve it."""
    import shutil

    import datasets

    from srlkit.hub import upload_list

    mirror = tmp_path / "mirror"
    for f in upload_list(dataset_dir):
        (mirror / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(dataset_dir / f, mirror / f)
    srl = datasets.load_dataset(str(mirror), "srl")
    rlvr = datasets.load_dataset(str(mirror), "rlvr")
    assert srl["train"].num_rows + srl["validation"].num_rows == 36
    assert rlvr["train"].num_rows + rlvr["validation"].num_rows == 12
