"""The optional LLM rewrite: format check, OpenAI-compatible endpoint, local SmolLM2."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import polars as pl
import pytest

from srlkit.data.rewrite import check_format, messages

ASSETS = Path(__file__).parent / "assets"


def test_check_format():
    good = "SOLUTION:\n1. **Add** 2 + 5 = 7.\n2. **Double** 2 * 7 = \\boxed{14}."
    assert check_format("  " + good + "\n\n") == good
    assert check_format(good, original="so \\boxed{14}") == good
    assert check_format(good, original="so \\boxed{15}") is None  # the answer changed
    assert check_format("SOLUTION:\n1. **Add** x\n3. **Skip** y") is None  # numbering gap
    assert check_format("SOLUTION:\n1. Add x\n2. **Double** y") is None  # no bold title
    assert check_format("SOLUTION:\n1. **Add**\n2. **Double** y") is None  # empty action
    assert check_format("1. **Add** x\n2. **Double** y") is None  # no header


def test_two_shot_prompt_is_fixed():
    m = messages("P?", "S.")
    assert [x["role"] for x in m] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert all(check_format(x["content"]) for x in m if x["role"] == "assistant")
    assert m[-1]["content"] == "Problem: P?\nSolution: S."


class FakeLLM(BaseHTTPRequestHandler):
    requests: list = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeLLM.requests.append((self.path, body))
        user = body["messages"][-1]["content"]
        if "twice 2 " in user:
            text = "Sure! Here it is: 1) add 2) double"  # fails the format check
        else:
            num = user.split("\\boxed{")[-1].split("}")[0]
            text = f"SOLUTION:\n1. **Add the numbers** first add them.\n2. **Double the sum** it is \\boxed{{{num}}}."
        out = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


def test_rewrite_through_endpoint(cli, tmp_path):
    FakeLLM.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "rw"
        res = cli("decompose", ASSETS / "r1_small.jsonl", "--out", out, "--limit", "4", "--val-size", "0",
                  "--rewrite", "--rewrite-endpoint", f"http://127.0.0.1:{server.server_port}/v1",
                  "--rewrite-model", "my-model")
    finally:
        server.shutdown()
    assert res.code == 0, res.err
    path, body = FakeLLM.requests[0]
    assert path == "/v1/chat/completions" and body["model"] == "my-model" and body["temperature"] == 0
    srl = pl.read_parquet(out / "srl" / "*.parquet")
    assert srl.height == 3 * 2 and set(srl["target_title"]) == {"Add the numbers", "Double the sum"}
    rej = pl.read_parquet(out / "rejects.parquet")
    assert rej["reason"].to_list() == ["rewrite_format"] and rej["source_row"].to_list() == [0]


def test_rewrite_endpoint_down_rejects_rows(tmp_path):
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    cfg = DecomposeConfig(source=str(ASSETS / "r1_small.jsonl"), limit=2, rewrite=True,
                          rewrite_endpoint="http://127.0.0.1:9/v1")
    m = decompose(cfg, tmp_path / "o", show_progress=False)
    assert m["stats"]["reject_reasons"] == {"rewrite_error": 2} and m["counts"]["accepted"] == 0


@pytest.mark.slow
def test_rewrite_with_bundled_smollm2(smollm2_dir):
    """The plumbing with a real local model (greedy, short): the 135M model's rewrites may
    well fail the format check, which must then be a clean reject."""
    from srlkit.data.rewrite import make_rewriter
    from srlkit.data.sources import Reject

    rewrite = make_rewriter(None, str(smollm2_dir), max_new_tokens=64)
    rows = [json.loads(line) for line in (ASSETS / "r1_small.jsonl").read_text().splitlines()[:2]]
    outs = [rewrite(r["problem"], r["solution"]) for r in rows]
    for o in outs:
        assert (isinstance(o, Reject) and o.reason == "rewrite_format") or check_format(o) == o
