"""The bundled learnable task: gym:chain_sum (determinism, disjoint splits, step arithmetic)."""

from __future__ import annotations

import re

import pytest

from srlkit.data import gym
from srlkit.errors import DataError

SMALL = "gym:chain_sum?train=300&validation=40&test=60&seed=3"


def test_rows_are_deterministic_and_keep_reasoning_gyms_wording():
    spec = gym.parse_spec(SMALL)
    a = gym.source_rows(spec)
    gym._splits.cache_clear()
    b = gym.source_rows(gym.parse_spec(SMALL))
    assert a == b and len(a) == 340
    assert all(r["problem"].startswith("State the final answer to the following arithmetic problem: ")
               and r["problem"].endswith(" =") for r in a)
    assert {r["split"] for r in a} == {"train", "validation"}


def test_splits_come_from_disjoint_seeds_and_share_no_question():
    spec = gym.parse_spec(SMALL)
    s = gym._splits(spec)
    q = {k: {r["problem"] for r in v} for k, v in s.items()}
    assert not (q["train"] & q["validation"]) and not (q["train"] & q["test"]) and not (q["validation"] & q["test"])
    assert len(q["train"]) == 300 and len(q["validation"]) == 40
    # held-out rows are the first `test` of a fixed reserve: a bigger request extends, never reshuffles
    small = gym.heldout_rows(spec)
    big = gym.heldout_rows(gym.parse_spec(SMALL.replace("test=60", "test=100")))
    assert big[:60] == small


def test_every_step_is_correct_arithmetic_and_ends_in_the_boxed_answer():
    for r in gym.source_rows(gym.parse_spec(SMALL)):
        *steps, last = r["solution"]
        expr = r["problem"].split(": ", 1)[1].rstrip(" =")
        terms = expr.split()
        assert 3 <= (len(terms) + 1) // 2 <= 4 and len(steps) == (len(terms) - 1) // 2
        acc = int(terms[0])
        for step, (op, t) in zip(steps, zip(terms[1::2], terms[2::2])):
            a, op2, b, _, res = step.split()
            assert (int(a), op2, b) == (acc, op, t)
            acc = acc + int(t) if op == "+" else acc - int(t)
            assert int(res) == acc
        assert last == f"The answer is \\boxed{{{acc}}}." and r["answer"] == str(acc)
        assert all(0 <= abs(int(x)) <= 99 for x in terms[::2])


@pytest.mark.parametrize("spec, needle", [
    ("gym:nope", "unknown gym task 'nope'"),
    ("gym:chain_sum?trian=5", "unknown gym option 'trian'"),
    ("gym:chain_sum?terms=4-2", "need 1 <= low <= high"),
    ("gym:chain_sum?train=x", "is not a whole number"),
])
def test_bad_specs_are_one_line_errors(spec, needle):
    with pytest.raises(DataError, match=re.escape(needle)):
        gym.parse_spec(spec)


def test_decompose_reads_it_and_keeps_its_splits(cli, tmp_path):
    out = tmp_path / "cs"
    res = cli("decompose", "gym:chain_sum?train=50&validation=10&seed=1", "--out", out)
    assert res.code == 0, res.err
    import polars as pl

    rlvr_val = pl.read_parquet(next((out / "rlvr").glob("validation-*.parquet")))
    rlvr_train = pl.read_parquet(next((out / "rlvr").glob("train-*.parquet")))
    assert rlvr_val.height == 10 and rlvr_train.height == 50  # the source's splits, not a hashed fraction
    assert all("-validation-" in i for i in rlvr_val["id"]) and all("-train-" in i for i in rlvr_train["id"])
    srl = pl.read_parquet(next((out / "srl").glob("train-*.parquet")))
    assert srl.height == sum(len(r["solution"]) for r in gym.source_rows(gym.parse_spec(
        "gym:chain_sum?train=50&validation=10&seed=1")) if r["split"] == "train")
    assert set(rlvr_train["answer"].to_list()) <= {str(x) for x in range(-400, 400)}
    held = cli("eval", "--help")  # the held-out split is an eval bench
    assert held.code == 0
    from srlkit.eval.benches import load_bench

    bench = load_bench("gym:chain_sum?test=20&seed=1")
    assert len(bench) == 20 and not ({b.problem for b in bench} & set(rlvr_train["problem"].to_list()))


GSM = "gym:gsm_symbolic?train=40&validation=10&test=20&seed=1"


def test_gsm_symbolic_rows_are_worked_solutions_with_disjoint_splits():
    spec = gym.parse_spec(GSM)
    s = gym._splits(spec)
    q = {k: {r["problem"] for r in v} for k, v in s.items()}
    assert not (q["train"] & q["validation"]) and not (q["train"] & q["test"]) and not (q["validation"] & q["test"])
    for r in s["train"]:
        *steps, last = r["solution"]
        assert last == gym.answer_step(r["answer"]) and steps
        assert not any(x.startswith("####") for x in steps)
        assert not any(x in r["problem"] for x in steps)  # no step is copied from the question
    assert gym.source_rows(spec) == gym.source_rows(gym.parse_spec(GSM))
    with pytest.raises(DataError, match="chain_sum only"):
        gym.parse_spec("gym:gsm_symbolic?terms=3-4")


def test_decompose_reads_gsm_symbolic(cli, tmp_path):
    r = cli("decompose", GSM, "--out", tmp_path / "g")
    assert r.code == 0, r.err
    import polars as pl

    srl = pl.read_parquet(tmp_path / "g" / "srl" / "train-00000-of-00001.parquet")
    assert srl.height > 40 and srl["target"].str.contains("boxed").sum() > 0
