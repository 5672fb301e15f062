"""`srlkit push` against a loopback stand-in for the Hub (HF_ENDPOINT), plus dry runs."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
TOKEN = "hf_loopbackSecretToken123456"


class FakeHub(BaseHTTPRequestHandler):
    """The few endpoints huggingface_hub's create_repo / create_branch / create_commit call."""

    calls: list = []

    def log_message(self, *args):  # keep test output clean
        pass

    def _json(self, obj, code=200):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.split("?")[0]
        self.calls.append({"path": path, "auth": self.headers.get("Authorization"), "body": raw})
        host = f"http://{self.headers['Host']}"
        if path == "/api/repos/create":
            p = json.loads(raw)
            return self._json({"url": f"{host}/{p.get('type', 'model')}s/{p['organization']}/{p['name']}"})
        if path == "/api/validate-yaml":  # the Hub checks the card's front matter before the commit
            import yaml

            body = json.loads(raw)
            chunks = body["content"].split("---")
            meta = (yaml.safe_load(chunks[1]) or {}) if len(chunks) > 2 else {}
            ok = body.get("repoType") != "dataset" or "configs" in meta
            return self._json({"warnings": []} if ok else {"error": "no configs"}, 200 if ok else 400)
        if "/branch/" in path:
            return self._json({})
        if "/preupload/" in path:
            files = json.loads(raw)["files"]
            return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                         for f in files]})
        if "/commit/" in path:
            kind, repo = path.split("/")[2], "/".join(path.split("/")[3:5])
            prefix = "" if kind == "models" else f"{kind}/"
            return self._json({"commitUrl": f"{host}/{prefix}{repo}/commit/{'a' * 40}", "commitOid": "a" * 40})
        return self._json({"error": f"unexpected {path}"}, 404)


@pytest.fixture
def fake_hub(monkeypatch):
    FakeHub.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    yield FakeHub.calls
    server.shutdown()


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory) -> Path:
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    out = tmp_path_factory.mktemp("push") / "ds"
    decompose(DecomposeConfig(source=str(ASSETS / "r1_small.jsonl"), val_size=0.3), out, show_progress=False)
    return out


def _commit_lines(calls) -> list[dict]:
    commit = [c for c in calls if "/commit/" in c["path"]]
    assert len(commit) == 1, "one commit for the whole folder"
    return [json.loads(line) for line in commit[0]["body"].decode().splitlines() if line.strip()]


def test_push_dataset_one_commit(cli, fake_hub, dataset_dir):
    res = cli("push", dataset_dir, "--repo", "me/srl-small", "--private", "--revision", "v1")
    assert res.code == 0, res.err
    assert TOKEN not in res.out + res.err
    paths = [c["path"] for c in fake_hub]
    assert "/api/validate-yaml" in paths
    assert paths[0] == "/api/repos/create" and "/api/datasets/me/srl-small/branch/v1" in paths
    create = json.loads(fake_hub[0]["body"])
    assert create["type"] == "dataset" and create["visibility"] == "private"
    assert all(c["auth"] == f"Bearer {TOKEN}" for c in fake_hub)
    lines = _commit_lines(fake_hub)
    assert lines[0]["key"] == "header"
    files = {ln["value"]["path"]: ln["value"] for ln in lines if ln["key"] == "file"}
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    assert set(files) == set(manifest["files"]) | {"README.md", "manifest.json", "steps_hist.png"}
    card = base64.b64decode(files["README.md"]["content"]).decode()
    assert card == (dataset_dir / "README.md").read_text()
    assert any(p.endswith("/commit/v1") for p in paths)


def test_push_errors_are_scrubbed(cli, fake_hub, tmp_path, dataset_dir, monkeypatch):
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


def test_push_model_uses_export_model(cli, fake_hub, tmp_path, monkeypatch):
    import sys
    import types

    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "README.md").write_text("# model")
    fake = types.ModuleType("srlkit.report.model_card")
    fake.export_model = lambda run_dir: folder
    monkeypatch.setitem(sys.modules, "srlkit.report.model_card", fake)
    res = cli("push", "--model", tmp_path, "--repo", "me/model")
    assert res.code == 0, res.err
    assert json.loads(fake_hub[0]["body"])["type"] == "model"
    files = {ln["value"]["path"] for ln in _commit_lines(fake_hub) if ln["key"] == "file"}
    assert files == {"config.json", "README.md"}
    assert any(c["path"] == "/api/models/me/model/commit/main" for c in fake_hub)


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
