"""The decompose / inspect commands as a user runs them: presets, strategies, errors, output."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

ASSETS = Path(__file__).parent / "assets"


def _srl(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "srl" / "*.parquet")


@pytest.mark.parametrize("name,args,strategy,answer", [
    ("r1_small.jsonl", ["--preset", "openr1", "--id-col", "id"], "numbered", "14"),
    ("gsm8k.jsonl", ["--preset", "gsm8k"], "paragraph", "3"),
    ("s1k.jsonl", ["--preset", "s1k"], "numbered", "2"),
    ("numina.jsonl", ["--preset", "numina"], "paragraph", "5"),
    ("messages.jsonl", ["--preset", "messages"], "paragraph", "0"),
])
def test_presets(cli, tmp_path, name, args, strategy, answer):
    out = tmp_path / "out"
    res = cli("decompose", ASSETS / name, "--out", out, "--val-size", "0", *args)
    assert res.code == 0, res.err
    df = _srl(out)
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["rejected"] == 0 and set(df["strategy"]) == {strategy}
    assert df["answer"][0] == answer
    assert "<think>" not in "".join(df["target"]) and "<<" not in "".join(df["target"])
    rlvr = pl.read_parquet(out / "rlvr" / "*.parquet")
    assert rlvr.height == m["counts"]["accepted"]


def test_turns_agent_trajectories(cli, tmp_path):
    out = tmp_path / "agent"
    res = cli("decompose", ASSETS / "agent_turns.jsonl", "--out", out, "--preset", "messages",
              "--steps", "turns", "--id-col", "id", "--history", "1", "--val-size", "0")
    assert res.code == 0, res.err
    df = _srl(out).filter(pl.col("trajectory_id") == "swe-0").sort("step_index")
    assert df["target"].to_list() == [
        'bash({"command": "grep -rn \'def add\' src/"})',
        'edit({"path": "src/math.py", "old": "a - b", "new": "a + b"})',
        "pytest -q tests/test_math.py",
        "submit({})",
    ]
    assert df["problem"][0].startswith("Issue 0")
    ctx = df["context_steps"][2].to_list()
    assert len(ctx) == 1 and ctx[0].startswith("Action: edit(") and "Observation: edited" in ctx[0]
    assert "software engineering agent" in df["prompt"][0][0]["content"]
    rej = pl.read_parquet(out / "rejects.parquet")
    assert set(rej["reason"]) == {"no_answer"} and set(rej["table"]) == {"rlvr"}


def test_sentence_and_paragraph_flags(cli, tmp_path):
    src = tmp_path / "t.jsonl"
    src.write_text(json.dumps({"problem": "p?", "solution": "We set x to two. Then y equals three.\n\nFinally we add them up."}) + "\n")
    for steps, n in (("sentence", 3), ("paragraph", 2)):
        out = tmp_path / steps
        assert cli("decompose", src, "--out", out, "--steps", steps, "--val-size", "0").code == 0
        df = _srl(out)
        assert df.height == n and set(df["strategy"]) == {steps}


def test_one_line_errors(cli, tmp_path):
    res = cli("decompose", ASSETS / "gsm8k.jsonl", "--out", tmp_path / "o")
    assert res.code == 2 and res.err.count("\n") == 1
    assert "column 'problem'" in res.err and "question, answer" in res.err
    res = cli("decompose", ASSETS / "gsm8k.jsonl", "--preset", "gsm8k", "--answer-col", "nope", "--out", tmp_path / "o")
    assert res.code == 2 and "'nope'" in res.err
    for args, needle in ((["missing.jsonl"], "not found"), (["--preset", "zzz"], "unknown preset"),
                         (["--steps", "zzz"], "steps"), (["--targets", "x"], "targets"),
                         (["--val-size", "1.5"], "val-size")):
        res = cli("decompose", *args, "--out", tmp_path / "o")
        assert res.code == 2 and needle in res.err and res.err.count("\n") == 1, (args, res.err)
        assert "Traceback" not in res.err


def test_unknown_flag_is_one_line(cli, tmp_path):
    res = cli("decompose", "--bogus", "--out", tmp_path / "o")
    assert res.code == 2 and "No such option" in res.err and res.err.count("\n") == 1


def test_inspect_and_help(cli, tmp_path):
    out = tmp_path / "d"
    assert cli("decompose", ASSETS / "r1_small.jsonl", "--out", out, "--targets", "skip-first").code == 0
    res = cli("inspect", out, "--n", "2")
    assert res.code == 0
    assert "12 accepted + 0 rejected" in res.out and "strategies: numbered 12" in res.out
    assert res.out.count("[target]") == 2 and "Write step 2." in res.out
    assert cli("inspect", out, "--table", "rlvr", "--n", "1").out.count("[answer]") == 1
    assert cli("inspect", tmp_path / "none").code == 2
    help_text = "".join(c for c in cli("decompose", "--help").out if c.isalnum() or c in "-/<>")
    assert "skip-first" in help_text and "data/<sourcename>" in help_text
    card = (out / "README.md").read_text()
    assert "srlkit decompose" in card and "--targets skip-first" in card and "configs:" in card


def test_hub_source_streams_with_config_split_revision(cli, tmp_path, monkeypatch):
    import datasets

    seen = {}

    def fake_load(path, name=None, split=None, revision=None, streaming=False):
        seen.update(path=path, name=name, split=split, revision=revision, streaming=streaming)
        rows = [json.loads(x) for x in (ASSETS / "r1_small.jsonl").read_text().splitlines()]
        return iter(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    res = cli("decompose", "someone/r1-data", "--config", "main", "--split", "test", "--revision", "abc",
              "--out", tmp_path / "hub")
    assert res.code == 0, res.err
    assert seen == {"path": "someone/r1-data", "name": "main", "split": "test", "revision": "abc", "streaming": True}
    m = json.loads((tmp_path / "hub" / "manifest.json").read_text())
    assert m["source"]["kind"] == "hub" and m["counts"]["accepted"] == 12


def test_hub_source_offline_is_one_line(cli, tmp_path):
    res = cli("decompose", "nobody/does-not-exist", "--out", tmp_path / "o")
    assert res.code == 2 and "could not stream Hub dataset" in res.err and res.err.count("\n") == 1


def test_bad_options_leave_earlier_outputs_alone(cli, tmp_path):
    out = tmp_path / "keep"
    assert cli("decompose", ASSETS / "r1_small.jsonl", "--out", out).code == 0
    before = sorted(p.name for p in out.rglob("*"))
    res = cli("decompose", ASSETS / "r1_small.jsonl", "--out", out, "--problem-col", "typo")
    assert res.code == 2 and sorted(p.name for p in out.rglob("*")) == before
