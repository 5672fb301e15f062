"""The optional LLM rewrite: format check, OpenAI-compatible endpoint, local SmolLM2."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import polars as pl
import pytest

from srlkit.data.rewrite import check_format, messages
from tests.helpers import ASSETS, REPO


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


def _reply(handler, text: str) -> None:
    """Answer an OpenAI-style chat request with one assistant message."""
    out = json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(out)))
    handler.end_headers()
    handler.wfile.write(out)


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
        _reply(self, text)


def test_rewrite_through_endpoint(cli, tmp_path):
    FakeLLM.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = tmp_path / "rw"
        res = cli("decompose", ASSETS / "numbered.jsonl", "--out", out, "--limit", "4", "--val-size", "0",
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
    from srlkit.errors import DataError

    cfg = DecomposeConfig(source=str(ASSETS / "numbered.jsonl"), limit=2, rewrite=True,
                          rewrite_endpoint="http://127.0.0.1:9/v1")
    with pytest.raises(DataError, match="nothing was accepted: all 2 rows were rejected"):
        decompose(cfg, tmp_path / "o", show_progress=False)
    m = json.loads((tmp_path / "o" / "manifest.json").read_text())
    assert m["stats"]["reject_reasons"] == {"rewrite_error": 2} and m["counts"]["accepted"] == 0


class TemplateLLM(FakeLLM):
    """Rewrites any solution into two template steps that keep its final answer."""

    def do_POST(self):
        from srlkit.data.answers import extract_answer

        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeLLM.requests.append((self.path, body))
        ans = extract_answer(body["messages"][-1]["content"].split("\nSolution: ", 1)[1])
        end = f"\\boxed{{{ans}}}" if ans else "done"
        text = f"SOLUTION:\n1. **Set up** write down what is given.\n2. **Finish** so the result is {end}."
        _reply(self, text)


def test_s1k_recipe_rewrites_through_an_endpoint(tmp_path):
    """The paper's s1K preparation: every R1 attempt rewritten into "N. **Title** action" first."""
    from srlkit.config import load_recipe
    from srlkit.data.decompose import decompose

    FakeLLM.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), TemplateLLM)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    recipe = load_recipe(REPO / "pipelines" / "s1k-qwen2.5-7b.toml", [])
    d = recipe.decompose
    assert d.rewrite and d.preset == "s1k" and d.revision == "96c411f1fe4c49d20f0e2a1565f61e1a28b0b84d"
    assert d.rewrite_endpoint.startswith("http://localhost:")
    cfg = d.model_copy(update={"source": str(ASSETS / "s1k.jsonl"), "val_size": 0.0,
                               "rewrite_endpoint": f"http://127.0.0.1:{server.server_port}/v1"})
    try:
        m = decompose(cfg, tmp_path / "s1k", show_progress=False)
    finally:
        server.shutdown()
    assert len(FakeLLM.requests) == 5 and FakeLLM.requests[0][1]["model"] == d.rewrite_model
    assert "Problem: What is the sum of the roots" in FakeLLM.requests[0][1]["messages"][-1]["content"]
    srl = pl.read_parquet(tmp_path / "s1k" / "srl" / "*.parquet")
    # skip-first (the recipe's targets): step 2 of the rewrite is each trajectory's one target
    assert set(srl["target_title"]) == {"Finish"} and m["counts"]["accepted"] == 5
    assert srl.sort("source_row")["target"].to_list()[0] == "**Finish** so the result is \\boxed{5}."


def test_rewrite_engine_vllm_in_process(monkeypatch):
    """`--rewrite-engine vllm` without an endpoint: greedy `LLM.chat` (a stand-in vllm module here)."""
    import sys
    import types

    from srlkit.data.rewrite import make_rewriter

    calls = {}

    class LLM:
        def __init__(self, model):
            calls["model"] = model

        def chat(self, batch, params, use_tqdm):
            calls["params"], calls["msgs"] = params, batch[0]
            text = "SOLUTION:\n1. **Add** 1 + 1 = 2.\n2. **Box** so \\boxed{2}."
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text=text)])]

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, lambda **kw: kw
    monkeypatch.setitem(sys.modules, "vllm", fake)
    rewrite = make_rewriter(None, "some/model", engine="vllm")
    assert rewrite("1+1?", "It is \\boxed{2}.").startswith("SOLUTION:\n1. **Add**")
    assert calls["model"] == "some/model" and calls["params"]["temperature"] == 0.0
    assert calls["msgs"][-1]["content"] == "Problem: 1+1?\nSolution: It is \\boxed{2}."


@pytest.mark.slow
def test_rewrite_with_bundled_smollm2(smollm2_dir):
    """The plumbing with a real local model (greedy, short): the 135M model's rewrites may
    well fail the format check, which must then be a clean reject."""
    from srlkit.data.rewrite import make_rewriter
    from srlkit.data.sources import Reject

    rewrite = make_rewriter(None, str(smollm2_dir), max_new_tokens=64)
    rows = [json.loads(line) for line in (ASSETS / "numbered.jsonl").read_text().splitlines()[:2]]
    outs = [rewrite(r["problem"], r["solution"]) for r in rows]
    for o in outs:
        assert (isinstance(o, Reject) and o.reason == "rewrite_format") or check_format(o) == o
