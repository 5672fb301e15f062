"""A loopback stand-in for the Hugging Face Hub's write API, for push tests (no network).

`add_dataset` serves a dataset repo for reads (`datasets.load_dataset(id, config, revision=...)`:
repo info, tree listings, file downloads with byte ranges).
For writes it answers the calls `huggingface_hub` makes for `create_repo` + `upload_folder`/`create_commit`:
`POST /api/repos/create`, `POST /api/validate-yaml` (a dataset card must declare `configs:`),
`POST /api/{type}s/{repo}/branch/{rev}`, `POST /api/{type}s/{repo}/preupload/{rev}` (everything "regular",
so file bytes travel base64 inside the commit) and `POST /api/{type}s/{repo}/commit/{rev}`
(ndjson), plus `GET /api/whoami-v2`. Received repos and files are kept in `HubStub.repos`
for assertions. Use the `hub_stub` fixture: it points `huggingface_hub` at the server and
lifts offline mode for the test only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

TOKEN = "hf_stub_token_for_tests"


@dataclass
class StubRepo:
    repo_type: str
    private: bool
    files: dict[str, bytes] = field(default_factory=dict)
    commits: list[dict] = field(default_factory=list)
    branches: set[str] = field(default_factory=lambda: {"main"})


class HubStub:
    def __init__(self) -> None:
        self.repos: dict[str, StubRepo] = {}  # "model:owner/name" -> repo
        self.requests: list[tuple[str, str]] = []
        self.auth_headers: list[str | None] = []
        self.validated: list[str] = []  # README contents sent to /api/validate-yaml
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> HubStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def repo(self, repo_id: str, repo_type: str = "model") -> StubRepo:
        return self.repos[f"{repo_type}:{repo_id}"]

    # ------------------------------------------------------------------ reads (load_dataset by Hub id)

    def add_dataset(self, repo_id: str, files: dict[str, bytes], sha: str = "a" * 40) -> StubRepo:
        """A dataset repo `datasets.load_dataset(repo_id, ...)` can stream, pinned at revision `sha`."""
        repo = StubRepo("dataset", False, dict(files))
        repo.sha = sha
        self.repos[f"dataset:{repo_id}"] = repo
        return repo

    def serve_read(self, h, head: bool) -> bool:
        """Answer the read calls of `huggingface_hub` / `datasets`: repo info, tree listings, file
        downloads (with byte ranges). A revision other than `main` or the repo's sha is not found."""
        from urllib.parse import parse_qs, unquote, urlsplit

        url = urlsplit(h.path)
        path, query = unquote(url.path), parse_qs(url.query)
        m = (re.match(r"^/api/(dataset)s/([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)(?:/(.*))?)?$", path)
             or re.match(r"^/(datasets)/([^/]+/[^/]+)/(resolve)/([^/]+)/(.+)$", path))
        if not m:
            return False
        rid, kind, rev, sub = m.group(2), m.group(3), m.group(4) or "main", (m.group(5) or "").strip("/")
        repo = self.repos.get(f"dataset:{rid}")
        if repo is None or not hasattr(repo, "sha"):
            return self._send(h, 404, b'{"error": "Repository not found"}', {"X-Error-Code": "RepoNotFound"}, head)
        if rev not in ("main", repo.sha):
            return self._send(h, 404, b'{"error": "Invalid rev id"}', {"X-Error-Code": "RevisionNotFound"}, head)
        oid = {f: hashlib.sha1(b).hexdigest() for f, b in repo.files.items()}
        if kind in (None, "revision"):
            info = {"id": rid, "_id": rid, "sha": repo.sha, "private": False, "disabled": False, "gated": False,
                    "downloads": 0, "likes": 0, "tags": [], "lastModified": "2025-01-01T00:00:00.000Z",
                    "siblings": [{"rfilename": f} for f in sorted(repo.files)]}
            return self._send(h, 200, json.dumps(info).encode(), {"Content-Type": "application/json"}, head)
        if kind == "tree":
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            prefix = f"{sub}/" if sub else ""
            entries, dirs = [], set()
            for f in sorted(repo.files):
                if not f.startswith(prefix):
                    continue
                rest = f[len(prefix):].split("/")
                for i in range(1, len(rest)):
                    if recursive or i == 1:
                        dirs.add(prefix + "/".join(rest[:i]))
                if recursive or len(rest) == 1:
                    entries.append({"type": "file", "oid": oid[f], "size": len(repo.files[f]), "path": f})
            entries += [{"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in sorted(dirs)]
            return self._send(h, 200, json.dumps(entries).encode(), {"Content-Type": "application/json"}, head)
        data = repo.files.get(sub)
        if data is None:
            return self._send(h, 404, b"", {"X-Error-Code": "EntryNotFound"}, head)
        headers = {"ETag": f'"{oid[sub]}"', "X-Repo-Commit": repo.sha, "Accept-Ranges": "bytes"}
        rng = re.match(r"bytes=(\d+)-(\d*)", h.headers.get("Range") or "")
        if rng:
            a = int(rng.group(1))
            b = min(int(rng.group(2)) if rng.group(2) else len(data) - 1, len(data) - 1)
            headers["Content-Range"] = f"bytes {a}-{b}/{len(data)}"
            return self._send(h, 206, data[a : b + 1], headers, head)
        return self._send(h, 200, data, headers, head)

    @staticmethod
    def _send(h, code: int, body: bytes, headers: dict, head: bool) -> bool:
        h.send_response(code)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)
        return True

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def do_GET(self):
                stub.requests.append(("GET", self.path))
                if self.path.startswith("/api/whoami"):
                    return self._reply(200, {"name": "tester", "type": "user", "orgs": [],
                                             "auth": {"accessToken": {"role": "write"}}})
                if stub.serve_read(self, head=False):
                    return None
                return self._reply(404, {"error": f"stub: GET {self.path} not handled"})

            def do_HEAD(self):
                stub.requests.append(("HEAD", self.path))
                if not stub.serve_read(self, head=True):
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def do_POST(self):
                stub.requests.append(("POST", self.path))
                stub.auth_headers.append(self.headers.get("Authorization"))
                body = self._body()
                path = self.path.split("?")[0]
                if path == "/api/validate-yaml":  # the Hub checks a README's YAML metadata block
                    req = json.loads(body)
                    content = req.get("content", "")
                    stub.validated.append(content)
                    has_meta = content.startswith("---\n")
                    ok = not has_meta or "\n---\n" in content[3:]  # an opened block must close
                    if req.get("repoType") == "dataset":  # our dataset cards must declare their configs
                        ok = has_meta and ok and "\nconfigs:" in content.split("\n---\n", 1)[0]
                    if ok:
                        return self._reply(200, {"errors": [], "warnings": []})
                    return self._reply(400, {"errors": [{"message": "stub: no YAML metadata block"}]})
                if path == "/api/repos/create":
                    req = json.loads(body)
                    rtype = req.get("type") or "model"
                    rid = f"{req['organization']}/{req['name']}" if req.get("organization") else req["name"]
                    key = f"{rtype}:{rid}"
                    url = f"{stub.endpoint}/{'datasets/' if rtype == 'dataset' else ''}{rid}"
                    if key in stub.repos:
                        return self._reply(409, {"error": "You already created this repo", "url": url})
                    private = bool(req.get("private")) or req.get("visibility") == "private"  # new clients send visibility
                    stub.repos[key] = StubRepo(rtype, private)
                    return self._reply(200, {"url": url, "name": rid})
                m = re.match(r"^/api/(model|dataset|space)s/([^/]+/[^/]+)/branch/(.+)$", path)
                if m:  # create_branch: remember it, commits to it are then accepted
                    rtype, rid, branch = m.groups()
                    repo = stub.repos.get(f"{rtype}:{rid}")
                    if repo is None:
                        return self._reply(404, {"error": "Repository not found"})
                    repo.branches.add(branch)
                    return self._reply(200, {})
                m = re.match(r"^/api/(model|dataset|space)s/([^/]+/[^/]+)/(preupload|commit)/(.+)$", path)
                if not m:
                    return self._reply(404, {"error": f"stub: POST {path} not handled"})
                rtype, rid, action, rev = m.groups()
                repo = stub.repos.get(f"{rtype}:{rid}")
                if repo is None:
                    return self._reply(404, {"error": "Repository not found"})
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
                lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
                header = next((x["value"] for x in lines if x["key"] == "header"), {})
                added = []
                for x in lines:
                    if x["key"] == "file":
                        repo.files[x["value"]["path"]] = base64.b64decode(x["value"]["content"])
                        added.append(x["value"]["path"])
                    elif x["key"] in ("deletedFile", "deletedFolder"):
                        repo.files.pop(x["value"]["path"], None)
                oid = hashlib.sha1(body).hexdigest()
                repo.commits.append({"summary": header.get("summary"), "files": added, "revision": rev})
                prefix = "datasets/" if rtype == "dataset" else ""
                return self._reply(200, {"commitUrl": f"{stub.endpoint}/{prefix}{rid}/commit/{oid}",
                                         "commitOid": oid, "pullRequestUrl": None, "success": True})

        return Handler


@pytest.fixture
def hub_stub(monkeypatch):
    """A running HubStub; `huggingface_hub` talks to it for this test (token: TOKEN)."""
    import huggingface_hub.constants as C

    stub = HubStub().start()
    monkeypatch.setenv("HF_ENDPOINT", stub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(C, "ENDPOINT", stub.endpoint)
    monkeypatch.setattr(C, "HF_HUB_OFFLINE", False)
    try:
        yield stub
    finally:
        stub.stop()


@pytest.fixture
def hub_datasets(hub_stub, monkeypatch, tmp_path):
    """`hub_stub`, plus `datasets.load_dataset(<Hub id>)` pointed at it, with caches under tmp_path."""
    import datasets
    import huggingface_hub.constants as C

    resolve = "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(C, "HUGGINGFACE_CO_URL_TEMPLATE", hub_stub.endpoint + resolve)
    monkeypatch.setattr(C, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setattr(datasets.config, "HF_ENDPOINT", hub_stub.endpoint)
    monkeypatch.setattr(datasets.config, "HUB_DATASETS_URL",
                        hub_stub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets-cache")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    return hub_stub
