"""The decompose / inspect commands as a user runs them: presets, strategies, errors, output."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.helpers import ASSETS


def _srl(out: Path) -> pl.DataFrame:
    return pl.read_parquet(out / "srl" / "*.parquet")


@pytest.mark.parametrize("name,args,strategies,answer", [
    ("numbered.jsonl", ["--id-col", "id"], {"numbered"}, "14"),
    ("gsm8k.jsonl", ["--preset", "gsm8k"], {"paragraph"}, "3"),
    ("numina.jsonl", ["--preset", "numina"], {"paragraph", "numbered"}, "5"),
    ("messages.jsonl", ["--preset", "messages"], {"paragraph"}, "0"),
    ("messages.jsonl", [], {"paragraph"}, "0"),  # the messages layout is detected from the columns
])
def test_presets(cli, tmp_path, name, args, strategies, answer):
    out = tmp_path / "out"
    res = cli("decompose", ASSETS / name, "--out", out, "--val-size", "0", *args)
    assert res.code == 0, res.err
    df = _srl(out)
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["rejected"] == 0 and set(df["strategy"]) == strategies
    assert df["answer"][0] == answer
    text = "".join(df["target"])
    assert "<think>" not in text and "<<" not in text and "## Solution" not in text
    rlvr = pl.read_parquet(out / "rlvr" / "*.parquet")
    assert rlvr.height == m["counts"]["accepted"]
    if name == "messages.jsonl":
        assert m["preset"] == "messages"


def test_openr1_takes_a_verified_r1_generation(cli, tmp_path):
    """OpenR1-Math-220k rows: `solution` is the human NuminaMath text; R1 is in `generations`."""
    out = tmp_path / "or1"
    res = cli("decompose", ASSETS / "r1_small.jsonl", "--preset", "openr1", "--out", out, "--val-size", "0")
    assert res.code == 0, res.err
    rows = [json.loads(x) for x in (ASSETS / "r1_small.jsonl").read_text().splitlines()]
    df = _srl(out)
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {"input": 10, "accepted": 9, "rejected": 1, "rlvr_rejected": 0}
    rej = pl.read_parquet(out / "rejects.parquet")
    assert rej["reason"].to_list() == ["no_correct_generation"] and rej["source_row"].to_list() == [3]
    assert set(df["trajectory_id"]) == {r["uuid"] for i, r in enumerate(rows) if i != 3}
    for i, r in enumerate(rows):
        if i == 3:
            continue
        steps = df.filter(pl.col("source_row") == i).sort("step_index")
        want = next(g for g, ok in zip(r["generations"], r["correctness_math_verify"]) if ok)
        assert want.split("</think>")[1].strip().endswith(steps["target"][-1].split("** ")[-1])
        assert "kuna.\n" not in "".join(steps["target"]) and "In total the shop" not in "".join(steps["target"])
    row5 = df.filter(pl.col("source_row") == 5)  # generation 1 ran out of tokens; generation 2 is used
    assert row5.height >= 2 and "hmm, wait" not in "".join(row5["target"])
    assert m["stats"]["preamble"] == {"step": 3}  # R1's sentence before "1." is its own step


def test_s1k_gold_answers_are_trusted_or_left_out(cli, tmp_path):
    """s1K-1.1 rows, one per source type: MATH, AIME, GPQA, OlympiadBench proof, empty coding solution."""
    out = tmp_path / "s1k"
    res = cli("decompose", ASSETS / "s1k.jsonl", "--preset", "s1k", "--out", out, "--val-size", "0")
    assert res.code == 0, res.err
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"] == {"input": 5, "accepted": 5, "rejected": 0, "rlvr_rejected": 2}
    rlvr = pl.read_parquet(out / "rlvr" / "*.parquet").sort("source_row")
    # MATH: the solution's \boxed{}; AIME: the short solution, not R1's wrong 265; GPQA: "Answer: C"
    assert rlvr["answer"].to_list() == ["5", "275", "C"] and rlvr["source_row"].to_list() == [0, 1, 2]
    rej = pl.read_parquet(out / "rejects.parquet").sort("source_row")
    assert rej["source_row"].to_list() == [3, 4] and set(rej["table"]) == {"rlvr"}
    assert set(rej["reason"]) == {"no_trusted_answer"}
    assert "graded 'No'" in rej["detail"][0] and "solution is empty" in rej["detail"][1]
    assert m["stats"]["rlvr_reject_reasons"] == {"no_trusted_answer": 2}  # the manifest records why
    srl = _srl(out)
    assert set(srl["source_row"]) == {0, 1, 2, 3, 4}  # every row still teaches its steps (SRL)
    assert srl.filter(pl.col("source_row") == 1)["answer"].to_list()[0] == "275"


def test_s1k_list_columns_name_the_revision(cli, tmp_path):
    row = json.loads((ASSETS / "s1k.jsonl").read_text().splitlines()[0])
    row["deepseek_attempt"] = [row["deepseek_attempt"]]  # how an earlier revision stored it
    src = tmp_path / "old.jsonl"
    src.write_text(json.dumps(row) + "\n" + (ASSETS / "s1k.jsonl").read_text())
    out = tmp_path / "o"
    assert cli("decompose", src, "--preset", "s1k", "--out", out, "--val-size", "0").code == 0
    rej = pl.read_parquet(out / "rejects.parquet").filter(pl.col("table") == "all")
    assert rej["reason"].to_list() == ["non_string_field:deepseek_attempt"]
    assert "--revision 96c411f1fe4c49d20f0e2a1565f61e1a28b0b84d" in rej["detail"][0]


def test_turns_agent_trajectories(cli, tmp_path):
    out = tmp_path / "agent"
    # no --preset: the OpenAI messages layout (system/user/assistant, tool_calls, tool turns) is detected
    res = cli("decompose", ASSETS / "agent_turns.jsonl", "--out", out,
              "--steps", "turns", "--id-col", "id", "--history", "1", "--val-size", "0")
    assert res.code == 0, res.err
    assert json.loads((out / "manifest.json").read_text())["preset"] == "messages"
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


def test_turns_errors_name_the_flag(cli, tmp_path):
    res = cli("decompose", ASSETS / "gsm8k.jsonl", "--steps", "turns", "--out", tmp_path / "o")
    assert res.code == 2 and res.err.count("\n") == 1 and "--steps auto" in res.err
    rows = [json.loads(x) for x in (ASSETS / "agent_turns.jsonl").read_text().splitlines()]
    src = tmp_path / "conv.jsonl"  # chat turns under another column name: decompose cannot tell
    src.write_text("".join(json.dumps({"id": r["id"], "conversation": r["messages"]}) + "\n" for r in rows))
    res = cli("decompose", src, "--steps", "turns", "--out", tmp_path / "o")
    assert res.code == 2 and res.err.count("\n") == 1
    assert "--preset messages --problem-col conversation --solution-col conversation" in res.err
    res = cli("decompose", src, "--steps", "turns", "--preset", "messages", "--problem-col", "conversation",
              "--solution-col", "conversation", "--out", tmp_path / "ok", "--val-size", "0")
    assert res.code == 0, res.err


def test_all_rejected_says_so_and_rejects_load(cli, tmp_path):
    import datasets

    src = tmp_path / "bad.jsonl"
    src.write_text("".join(json.dumps({"problem": f"p{i}", "solution": "one step only"}) + "\n" for i in range(3)))
    out = tmp_path / "o"
    res = cli("decompose", src, "--out", out)
    assert res.code == 2 and res.err.count("\n") == 1
    assert "nothing was accepted: all 3 rows were rejected (too_few_steps 3)" in res.err
    card = (out / "README.md").read_text()
    assert "**No row was accepted**" in card and "- config_name: rejects" in card
    rej = datasets.load_dataset(str(out), "rejects", cache_dir=str(tmp_path / "cache"))["train"]
    assert rej.num_rows == 3 and set(rej["reason"]) == {"too_few_steps"}
    assert cli("decompose", src, "--out", out).code == 2  # a rerun of the finished folder says it again


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
    assert "column 'problem'" in res.err and "question, answer" in res.err and "--preset" in res.err
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
    assert cli("decompose", ASSETS / "numbered.jsonl", "--out", out, "--targets", "skip-first").code == 0
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
        rows = [json.loads(x) for x in (ASSETS / "numbered.jsonl").read_text().splitlines()]
        return iter(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    res = cli("decompose", "someone/r1-data", "--subset", "main", "--split", "test", "--revision", "abc",
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
    assert cli("decompose", ASSETS / "numbered.jsonl", "--out", out).code == 0
    before = sorted(p.name for p in out.rglob("*"))
    res = cli("decompose", ASSETS / "numbered.jsonl", "--out", out, "--problem-col", "typo")
    assert res.code == 2 and sorted(p.name for p in out.rglob("*")) == before


def _parquet(rows: list[dict]) -> bytes:
    import io

    buf = io.BytesIO()
    pl.DataFrame(rows).write_parquet(buf)
    return buf.getvalue()


GSM8K_CARD = b"""---
configs:
- config_name: main
  data_files:
  - split: train
    path: main/train-*
- config_name: socratic
  data_files:
  - split: train
    path: socratic/train-*
---
# gsm8k, as laid out on the Hub: two configs and no default
"""


def test_hub_id_with_preset_config_and_revision(cli, tmp_path, hub_datasets):
    """Loading by Hub id through the loopback Hub: the gsm8k preset picks config `main` and pins
    the revision it was checked against; --subset picks another; no config is a one-line error."""
    from srlkit.data.presets import PRESETS

    rows = [json.loads(x) for x in (ASSETS / "gsm8k.jsonl").read_text().splitlines()]
    pin = PRESETS["gsm8k"].revision
    hub_datasets.add_dataset("openai/gsm8k", {
        "README.md": GSM8K_CARD, "main/train-00000-of-00001.parquet": _parquet(rows),
        "socratic/train-00000-of-00001.parquet": _parquet(rows[:2])}, sha=pin)
    out = tmp_path / "gsm"
    res = cli("decompose", "openai/gsm8k", "--preset", "gsm8k", "--out", out, "--val-size", "0")
    assert res.code == 0, res.err
    m = json.loads((out / "manifest.json").read_text())
    assert m["counts"]["accepted"] == 6 and m["source"]["kind"] == "hub"
    assert "name=main" in m["source"]["description"] and f"revision={pin}" in m["source"]["description"]
    assert any(p.startswith(f"/datasets/openai/gsm8k/resolve/{pin}/main/") for _, p in hub_datasets.requests)
    res = cli("decompose", "openai/gsm8k", "--preset", "gsm8k", "--subset", "socratic", "--out", tmp_path / "soc",
              "--val-size", "0")
    assert res.code == 0, res.err
    assert json.loads((tmp_path / "soc" / "manifest.json").read_text())["counts"]["input"] == 2
    res = cli("decompose", "openai/gsm8k", "--problem-col", "question", "--solution-col", "answer",
              "--out", tmp_path / "noconf")
    assert res.code == 2 and res.err.count("\n") == 1
    assert "Config name is missing" in res.err and "--subset" in res.err and "'socratic'" in res.err
    res = cli("decompose", "openai/gsm8k", "--preset", "gsm8k", "--revision", "f" * 40, "--out", tmp_path / "rev")
    assert res.code == 2 and res.err.count("\n") == 1 and "--revision" in res.err
