"""`srlkit eval` end to end on the tiny model, plus bench/model resolution units."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srlkit.errors import DataError


def _bench(path: Path, n: int = 3) -> Path:
    rows = [{"id": f"q{i}", "question": f"What is {i} + {i}?", "final": str(2 * i)} for i in range(n)]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_eval_tiny_model_end_to_end(tmp_path, cli, tiny_model_dir):
    bench = _bench(tmp_path / "add.jsonl")
    out = tmp_path / "res.json"
    res = cli("eval", f"tiny={tiny_model_dir}", f"again={tiny_model_dir}", "--bench", bench,
              "--problem-col", "question", "--answer-col", "final", "--k", "2", "--max-new-tokens", "8",
              "--out", out, "--bootstrap", "50")
    assert res.code == 0, res.err
    summary = json.loads(out.read_text())
    assert list(summary["results"]) == ["tiny", "again"]
    assert summary["machine"]["cpu"] and summary["machine"]["libs"]["torch"]  # where it was measured
    r = summary["results"]["tiny"]["add"]
    assert r["n"] == 3
    assert set(r["pass@"]) == {"1", "2"}
    assert 0.0 <= r["greedy_acc"] <= 1.0 and 0.0 <= r["avg@2"] <= 1.0
    assert r["pass@"]["1"] == pytest.approx(r["avg@2"])
    assert r["greedy_ci"][0] <= r["greedy_acc"] <= r["greedy_ci"][1]
    assert 0 < r["greedy_len"] <= 8 and 0 < r["mean_len"] <= 8
    assert set(r["think"]) >= {"blocks_mean", "leading", "interleaved", "trailing"}
    # same seed, same weights: the two columns agree exactly
    assert summary["results"]["again"]["add"] == r
    samples = [json.loads(x) for x in (tmp_path / "res.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and {s["model"] for s in samples} == {"tiny", "again"}
    assert all(len(s["samples_correct"]) == 2 for s in samples)
    # the side-by-side table goes to stdout
    assert "tiny" in res.out and "again" in res.out and "greedy acc" in res.out


def test_eval_bad_inputs_are_one_line_errors(tmp_path, cli, tiny_model_dir):
    bench = _bench(tmp_path / "add.jsonl")
    res = cli("eval", tiny_model_dir, "--bench", tmp_path / "missing.jsonl")
    assert res.code == 2 and "not found" in res.err and len(res.err.strip().splitlines()) == 1
    res = cli("eval", tiny_model_dir, "--bench", bench, "--problem-col", "nope")
    assert res.code == 2 and "no column 'nope'" in res.err
    res = cli("eval", tiny_model_dir, "--bench", "no-such-bench")
    assert res.code == 2 and "unknown bench" in res.err
    res = cli("eval", tmp_path, "--bench", bench, "--answer-col", "final")
    assert res.code == 2 and "not a model folder" in res.err
    res = cli("eval", tiny_model_dir, "--bench", "validation")
    assert res.code == 2 and "validation:DIR" in res.err
    res = cli("eval", tiny_model_dir, "--bench", "aime24")  # offline: the Hub is unreachable
    assert res.code == 2 and "aime24" in res.err and len(res.err.strip().splitlines()) == 1


def test_champ_heldout_is_stable_and_disjoint():
    from srlkit.eval.benches import champ_problems, is_champ_heldout, load_bench

    held = load_bench("champ-heldout")
    assert 30 <= len(held) <= 80
    assert [r.id for r in held] == [r.id for r in load_bench("champ-heldout")]
    assert all(is_champ_heldout(r.id) for r in held)
    rest = [r for r in champ_problems() if not is_champ_heldout(r.id)]
    assert not {r.id for r in rest} & {r.id for r in held}
    assert len(load_bench("champ-heldout", limit=5)) == 5


def test_validation_bench_reads_decomposed_folder(tmp_path):
    pl = pytest.importorskip("polars")
    from srlkit.eval.benches import load_bench

    d = tmp_path / "data"
    (d / "rlvr").mkdir(parents=True)
    pl.DataFrame({"id": ["a", "b"], "source_row": [0, 1], "problem": ["1+1?", "2+2?"], "answer": ["2", "4"],
                  "prompt": [[{"role": "user", "content": "x"}]] * 2}).write_parquet(
        d / "rlvr" / "validation-00000-of-00001.parquet")
    from srlkit import stage

    rel = "rlvr/validation-00000-of-00001.parquet"
    stage.finish(d, "decompose", [rel], splits={"rlvr": {"validation": [rel]}})  # what decompose writes
    rows = load_bench(f"validation:{d}")
    assert [(r.id, r.answer) for r in rows] == [("a", "2"), ("b", "4")]
    assert load_bench("validation", data_dir=d) == rows
    with pytest.raises(DataError):
        load_bench(f"validation:{tmp_path}")


def test_model_refs(tmp_path, tiny_model_dir):
    from srlkit.eval.models import resolve_ref

    run = tmp_path / "run"
    (run / "srl" / "best").mkdir(parents=True)
    (run / "state.json").write_text("{}")
    (run / "srl" / "best" / "adapter_config.json").write_text("{}")
    with pytest.raises(DataError, match="--phase"):
        resolve_ref(str(run))  # no final/ yet
    ref = resolve_ref(str(run), phase="srl", pick="best")
    assert ref.adapter and ref.path.endswith("srl/best") and ref.run_dir == run
    (run / "final").mkdir()
    (run / "final" / "config.json").write_text("{}")
    ref = resolve_ref(f"mine={run}")
    assert ref.label == "mine" and ref.path == str(run / "final") and not ref.adapter
    assert resolve_ref("org/some-model").path == "org/some-model"
    assert resolve_ref("base").path == resolve_ref("smollm2").path
