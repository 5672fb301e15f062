"""A loopback stand-in for the Hugging Face Hub's write API, for push tests (no network).

It answers the calls `huggingface_hub` makes for `create_repo` + `upload_folder`/`create_commit`:
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
                return self._reply(404, {"error": f"stub: GET {self.path} not handled"})

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
