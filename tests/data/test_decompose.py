"""decompose end to end: rejects, identity, splits, targets, formats, shards, determinism, resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from srlkit.config import DecomposeConfig
from srlkit.data.decompose import decompose
from tests.helpers import ASSETS


def numbered_row(i: int, n: int = 3, **extra) -> dict:
    steps = "\n".join(f"{k}. **Do part {k}** compute value {i}-{k} carefully" for k in range(1, n + 1))
    return {"id": f"t{i}", "problem": f"Problem number {i}?", "solution": steps + f" \\boxed{{{i}}}", **extra}


def write_jsonl(path: Path, rows: list) -> Path:
    with open(path, "wb") as f:
        for r in rows:
            f.write(r if isinstance(r, bytes) else json.dumps(r).encode() + b"\n")
    return path


def files_of(d: Path) -> dict[str, bytes]:
    return {p.relative_to(d).as_posix(): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_every_reject_reason_and_identity(tmp_path):
    good = [numbered_row(i) for i in range(4)]
    bad = [
        b"{broken json\n",
        b'{"id": "u", "problem": "\xff\xfe bad", "solution": "1. a b c d e\\n2. f g h i j"}\n',
        json.dumps({"id": "big", "problem": "p", "solution": "x" * 1_100_000}).encode() + b"\n",
        {"id": "m", "problem": "p"},
        {"id": "n", "problem": None, "solution": "1. aaaaaaaa\n2. bbbbbbbb\n3. cccccccc"},
        {"id": "e", "problem": "  ", "solution": "1. aaaaaaaa\n2. bbbbbbbb\n3. cccccccc"},
        {"id": "s", "problem": "p", "solution": 5},
        {"id": "ns", "problem": "p", "solution": "no markers at all in this one"},
        {"id": "few", "problem": "p", "solution": "1. aaaaaaaaaa\n2. bbbbbbbbbb"},
        numbered_row(90, n=7),
        {"id": "long", "problem": "p", "solution": "1. " + "y" * 400 + "\n2. bbbbbbbbbb\n3. cccccccccc"},
        numbered_row(0),  # duplicate id t0
        b"[1, 2]\n",
        {"id": "noans", "problem": "p", "solution": "1. aaaaaaaaaa\n2. bbbbbbbbbb\n3. cccccccccc"},
    ]
    src = write_jsonl(tmp_path / "bad.jsonl", good + bad)
    cfg = DecomposeConfig(source=str(src), steps="numbered", min_trajectory_steps=3, max_trajectory_steps=5, max_step_chars=300,
                          val_size=0.0)
    m = decompose(cfg, tmp_path / "out", show_progress=False)
    c = m["counts"]
    assert c["input"] == len(good) + len(bad) == c["accepted"] + c["rejected"]
    rej = pl.read_parquet(tmp_path / "out" / "rejects.parquet")
    reasons = dict(zip(rej["trajectory_id"].to_list(), rej["reason"].to_list()))
    all_reasons = sorted(rej.filter(pl.col("table") == "all")["reason"].to_list())
    assert all_reasons == sorted([
        "broken_json", "invalid_utf8", "row_too_large", "missing_field:solution", "null_field:problem",
        "empty_field:problem", "non_string_field:solution", "no_steps", "too_few_steps", "too_many_steps",
        "step_too_long", "duplicate_id", "not_an_object",
    ])
    assert reasons["noans"] == "no_answer"
    assert rej.filter(pl.col("reason") == "no_answer")["table"].to_list() == ["rlvr"]
    assert c["accepted"] == 5 and c["rlvr_rejected"] == 1
    assert sorted(rej["source_row"].to_list()) == sorted(set(rej["source_row"].to_list()))
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"accepted + rejected = input: 5 + {c['rejected']} = {c['input']}" in card
    assert "`duplicate_id` | 1" in card


def test_champ_default_loads_with_datasets(tmp_path, cli):
    import datasets

    res = cli("decompose", "--out", tmp_path / "champ")
    assert res.code == 0, res.err
    srl = datasets.load_dataset(str(tmp_path / "champ"), "srl")
    rlvr = datasets.load_dataset(str(tmp_path / "champ"), "rlvr")
    m = json.loads((tmp_path / "champ" / "manifest.json").read_text())
    assert m["counts"]["input"] == 270
    assert srl["train"].num_rows + srl["validation"].num_rows == m["stats"]["steps_total"]
    assert rlvr["train"].num_rows + rlvr["validation"].num_rows == m["counts"]["accepted"] - m["counts"]["rlvr_rejected"]
    row = srl["train"][0]
    assert row["prompt"][0]["role"] == "system" and "Write step 1." in row["prompt"][1]["content"]
    train_ids = set(srl["train"]["trajectory_id"])
    assert train_ids.isdisjoint(set(srl["validation"]["trajectory_id"]))  # no leakage
    assert "\\boxed{}" in rlvr["train"][0]["prompt"][0]["content"]
    # CHAMP's prose final answers: reduced to their value, or left out of RLVR with the reason
    golds = set(rlvr["train"]["answer"]) | set(rlvr["validation"]["answer"])
    assert "C(10, 5), or equivalently 252" not in golds and "252" in golds and "Yes" not in golds
    rej = pl.read_parquet(tmp_path / "champ" / "rejects.parquet").filter(pl.col("table") == "rlvr")
    assert set(rej["reason"]) == {"no_trusted_answer"} and rej.height == m["counts"]["rlvr_rejected"] > 0
    assert all(d.startswith("prose answer") for d in rej["detail"])
    for f, info in m["files"].items():
        import hashlib

        assert hashlib.sha256((tmp_path / "champ" / f).read_bytes()).hexdigest() == info["sha256"]


def test_targets_title_hint_and_template(tmp_path):
    src = ASSETS / "numbered.jsonl"
    base = dict(source=str(src), val_size=0.0)
    m = decompose(DecomposeConfig(**base, targets="skip-first"), tmp_path / "a", show_progress=False)
    df = pl.read_parquet(tmp_path / "a" / "srl" / "train-00000-of-00001.parquet")
    assert df.height == 12 * 2 and df["step_index"].min() == 1  # N-1 per trajectory
    first = df.row(0, named=True)
    assert first["context_steps"] == ["**Write the sum** We need 2 + 5."]
    assert first["target"].startswith("**Add the numbers**") and m["counts"]["accepted"] == 12

    decompose(DecomposeConfig(**base, title_hint=True, template=str(ASSETS / "template_override.toml")),
              tmp_path / "b", show_progress=False)
    df = pl.read_parquet(tmp_path / "b" / "srl" / "train-00000-of-00001.parquet")
    row = df.row(1, named=True)
    assert row["target"] == "2 + 5 = 7." and row["target_title"] == "Add the numbers"
    assert row["prompt"][1]["content"].startswith("PROBLEM What is twice 2 plus 5?")
    assert row["answer"] == "14"


def test_split_by_trajectory_is_seeded(tmp_path):
    rows = [numbered_row(i) for i in range(60)]
    src = write_jsonl(tmp_path / "s.jsonl", rows)
    splits = {}
    for seed in (0, 1):
        decompose(DecomposeConfig(source=str(src), val_size=0.3, seed=seed), tmp_path / f"o{seed}", show_progress=False)
        val = pl.read_parquet(tmp_path / f"o{seed}" / "srl" / "validation-*.parquet")
        tr = pl.read_parquet(tmp_path / f"o{seed}" / "srl" / "train-*.parquet")
        assert set(val["trajectory_id"]).isdisjoint(set(tr["trajectory_id"]))
        splits[seed] = set(val["trajectory_id"])
        assert 5 < len(splits[seed]) < 35
    assert splits[0] != splits[1]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json", "glob", "folder"])
def test_local_formats_match_jsonl(tmp_path, fmt):
    df = pl.read_ndjson(ASSETS / "numbered.jsonl")
    d = tmp_path / "src"
    d.mkdir()
    if fmt in ("csv", "glob"):
        df.head(6).write_csv(d / "a.csv")
        df.tail(6).write_csv(d / "b.csv")
        src = str(d / "*.csv") if fmt == "glob" else str(d / "a.csv")
        want = 12 if fmt == "glob" else 6
    elif fmt == "parquet":
        df.write_parquet(d / "a.parquet")
        src, want = str(d / "a.parquet"), 12
    elif fmt == "json":
        (d / "a.json").write_text(json.dumps({"data": df.to_dicts()}))
        src, want = str(d / "a.json"), 12
    else:
        df.head(5).write_ndjson(d / "x.jsonl")
        df.tail(7).write_parquet(d / "y.parquet")
        src, want = str(d), 12
    m = decompose(DecomposeConfig(source=src, val_size=0.0), tmp_path / "out", show_progress=False)
    assert m["counts"]["accepted"] == want and m["counts"]["rejected"] == 0


def test_shards_limit_rerun_and_stale_outputs(tmp_path):
    src = write_jsonl(tmp_path / "s.jsonl", [numbered_row(i) for i in range(25)])
    out = tmp_path / "out"
    m = decompose(DecomposeConfig(source=str(src), shard_rows=10, val_size=0.0), out, show_progress=False)
    assert m["splits"]["srl"]["train"] == [f"srl/train-0000{i}-of-00003.parquet" for i in range(3)]
    first = files_of(out)
    assert decompose(DecomposeConfig(source=str(src), shard_rows=10, val_size=0.0), out, show_progress=False) == m
    assert files_of(out) == first  # rerun of a finished folder: untouched
    m2 = decompose(DecomposeConfig(source=str(src), shard_rows=100, val_size=0.0, limit=7), out, show_progress=False)
    assert m2["counts"]["input"] == 7
    assert sorted(p.name for p in (out / "srl").iterdir()) == ["train-00000-of-00001.parquet"]
    assert not (out / "_work").exists()


def _run_cli(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "srlkit", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_sigkill_then_rerun_is_byte_identical(tmp_path):
    rows = [numbered_row(i, n=4) for i in range(3000)]
    src = write_jsonl(tmp_path / "big.jsonl", rows)
    out = tmp_path / "out"
    args = ["decompose", str(src), "--out", str(out), "--shard-rows", "100"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    p = _run_cli(args, env)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    ref = files_of(out)
    shutil.rmtree(out)

    p = _run_cli(args, env)
    deadline = time.time() + 60
    while not list((out / "_work").glob("unit-0000[3-9].json")) and time.time() < deadline:
        time.sleep(0.005)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    markers = list((out / "_work").glob("unit-*.json"))
    assert 0 < len(markers) < 30, "the kill should land mid-run"
    assert json.loads((out / "manifest.json").read_text())["complete"] is False  # marked unfinished
    p = _run_cli(args, env)
    assert p.wait(timeout=120) == 0, p.stderr.read().decode()
    assert files_of(out) == ref


def test_val_size_count_is_exact_and_independent_of_units(tmp_path):
    from srlkit.data.unit import split_hash

    src = write_jsonl(tmp_path / "s.jsonl", [numbered_row(i) for i in range(25)])
    want = set(sorted((f"t{i}" for i in range(25)), key=lambda t: split_hash(t, 3))[:4])
    for rows in (7, 100):
        out = tmp_path / f"o{rows}"
        m = decompose(DecomposeConfig(source=str(src), val_size=4, seed=3, shard_rows=rows), out, show_progress=False)
        val = pl.read_parquet(out / "rlvr" / "validation-*.parquet")
        assert set(val["id"]) == want
        srl_val = pl.read_parquet(out / "srl" / "validation-*.parquet")
        assert set(srl_val["trajectory_id"]) == want
        train = pl.read_parquet(out / "srl" / "train-*.parquet")
        assert train.height + srl_val.height == 75 and set(train["trajectory_id"]).isdisjoint(want)
        assert not (out / "_work").exists() and m["counts"]["accepted"] == 25


@pytest.mark.parametrize("limits,reason", [({"min_trajectory_steps": 1, "max_trajectory_steps": 1}, "too_many_steps"),
                                           ({"min_trajectory_steps": 40}, "too_few_steps")])
def test_agent_turns_outside_the_step_limits_are_rejects(tmp_path, limits, reason):
    with pytest.raises(Exception, match="nothing was accepted") as e:
        decompose(DecomposeConfig(source=str(ASSETS / "agent_turns.jsonl"), steps="turns", **limits),
                  tmp_path / "o", show_progress=False)
    assert reason in str(e.value)
    rejects = pl.read_parquet(tmp_path / "o" / "rejects.parquet")
    assert set(rejects["reason"]) == {reason} and rejects.height == len((ASSETS / "agent_turns.jsonl").read_text().splitlines())


@pytest.mark.parametrize("fmt", ["jsonl", "json", "csv"])
def test_a_byte_order_mark_is_not_part_of_the_first_row(tmp_path, fmt):
    """Windows editors and Excel start UTF-8 files with a BOM: the first row (or CSV header) is
    still a row like the others, not a `broken_json` reject or an unknown column."""
    rows = [numbered_row(i) for i in range(6)]
    src = tmp_path / f"bom.{fmt}"
    if fmt == "jsonl":
        body = "".join(json.dumps(r) + "\n" for r in rows).encode()
    elif fmt == "json":
        body = json.dumps(rows).encode()
    else:
        pl.DataFrame(rows).select("problem", "solution", "id").write_csv(tmp_path / "plain.csv")  # BOM + "problem"
        body = (tmp_path / "plain.csv").read_bytes()
    src.write_bytes(b"\xef\xbb\xbf" + body)
    m = decompose(DecomposeConfig(source=str(src), val_size=0.0), tmp_path / "out", show_progress=False)
    assert m["counts"] == {**m["counts"], "input": 6, "accepted": 6, "rejected": 0}, m["stats"]["reject_reasons"]
