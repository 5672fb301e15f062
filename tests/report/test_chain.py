"""What each phase added: the paired held-out comparison and the validation table."""

from __future__ import annotations

import json

import pytest

from srlkit.report.chain import gain_line, phase_gain, validation_table


def _samples(path, model, correct):
    with path.open("a") as f:
        for i, ok in enumerate(correct):
            f.write(json.dumps({"model": model, "bench": "b", "id": f"p{i}", "greedy_correct": ok}) + "\n")


def test_phase_gain_pairs_the_same_problems(tmp_path):
    res = tmp_path / "results.json"
    _samples(tmp_path / "results.samples.jsonl", "srl", [True] * 10 + [False] * 90)
    _samples(tmp_path / "results.samples.jsonl", "trained", [True] * 30 + [False] * 70)
    (g,) = phase_gain(res, "srl", "trained")
    assert g["n"] == 100 and g["before"] == 0.1 and g["after"] == 0.3 and g["delta"] == pytest.approx(0.2)
    assert 0.1 < g["ci"][0] < 0.2 < g["ci"][1] < 0.3  # 20 problems gained, none lost: tight and above 0
    assert gain_line(g, "srl", "rlvr").startswith("RLVR added 20.0 points over the end of SRL [")
    assert phase_gain(res, "srl", "missing") == []


def test_a_loss_and_a_tie_are_said_plainly(tmp_path):
    res = tmp_path / "results.json"
    _samples(tmp_path / "results.samples.jsonl", "srl", [True] * 40 + [False] * 60)
    _samples(tmp_path / "results.samples.jsonl", "trained", [False] * 100)
    (g,) = phase_gain(res, "srl", "trained")
    assert gain_line(g, "srl", "rlvr").startswith("RLVR LOST 40.0 points against the end of SRL")
    tie = {"bench": "b", "n": 100, "before": 0.0, "after": 0.0, "delta": 0.0, "ci": (0.0, 0.0)}
    assert "did NOT add" in gain_line(tie, "srl", "rlvr")


def test_validation_table_shows_each_phase_start_and_end():
    rows = [{"phase": "srl", "step": 0, "val/solve_accuracy": 0.0}, {"phase": "srl", "step": 30, "val/solve_accuracy": 0.1},
            {"phase": "rlvr", "step": 0, "val/solve_accuracy": 0.1}, {"phase": "rlvr", "step": 30, "val/solve_accuracy": 0.16}]
    t = validation_table(rows)
    assert "| rlvr | 0..30 | 10.0% | 16.0% | +6.0 points |" in t and "| srl | 0..30 | 0.0% | 10.0% |" in t
    assert validation_table([{"phase": "srl", "step": 1}]) == ""
