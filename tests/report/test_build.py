"""`srlkit report`: plots and report.md from a run folder (a fixture run, no training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srlkit.schema import METRIC_KEYS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def fake_run(root: Path) -> Path:
    """A run folder as `srlkit train` writes it: metrics.jsonl with METRIC_KEYS per step."""
    run = root / "run"
    run.mkdir(parents=True)
    rows, g = [], 0
    for phase, comps in (("srl", ["reward/step_similarity"]), ("rlvr", ["reward/math", "reward/format"])):
        for step in range(1, 7):
            g += 1
            r = {k: 0.0 for k in METRIC_KEYS}
            r.update({"phase": phase, "step": step, "global_step": g, "time": 10.0 * g,
                      "reward/mean": 0.1 * step, "reward/std": 0.05, "sampling/filter_rate": 0.5 / step,
                      "sampling/attempts": 1 + step % 2, "kl": 0.001 * step, "clip_frac": 0.02,
                      "completion/len_mean": 100 + step, "time/generate": 3.0, "time/reward": 0.5,
                      "time/update": 1.5})
            for c in comps:
                r[c] = 0.05 * step
            rows.append(r)
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n{\"torn", encoding="utf-8")
    (run / "eval.jsonl").write_text(
        json.dumps({"phase": "srl", "step": 6, "val/reward_mean": 0.4}) + "\n", encoding="utf-8")
    (run / "state.json").write_text(json.dumps({"finished": True}), encoding="utf-8")
    (run / "summary.json").write_text(json.dumps(
        {"srl": {"steps": 6, "best_val": 0.4, "wall_time": 60.0}, "rlvr": {"steps": 6, "wall_time": 90.0}}))
    return run


def fake_results(path: Path) -> Path:
    res = {"greedy_acc": 0.25, "greedy_ci": [0.0, 0.5], "greedy_len": 50.0, "avg@2": 0.2,
           "avg_ci": [0.05, 0.4], "pass@": {"1": 0.2, "2": 0.3}, "mean_len": 60.0, "truncated_frac": 0.0,
           "think": {"blocks_mean": 1.0, "with_think": 1.0, "multi_think": 0.0, "leading": 1.0,
                     "interleaved": 0.0, "trailing": 0.0}}
    summary = {"config": {"k": 2}, "models": {"base": {}, "trained": {}},
               "benches": {"validation": {"spec": "validation", "n": 4}},
               "results": {"base": {"validation": res}, "trained": {"validation": {**res, "greedy_acc": 0.5}}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary))
    return path


def _is_png(p: Path) -> bool:
    return p.is_file() and p.stat().st_size > 1000 and p.read_bytes()[:8] == PNG_MAGIC


def test_report_cli_writes_pngs_and_markdown(tmp_path, cli):
    run = fake_run(tmp_path)
    fake_results(tmp_path / "eval" / "results.json")  # pipeline layout: ROOT/eval beside ROOT/run
    res = cli("report", run)
    assert res.code == 0, res.err
    out = run / "report"
    for name in ("rewards.png", "filter_rate.png", "kl_clip_len.png", "time_split.png", "eval.png"):
        assert _is_png(out / name), name
    md = (out / "report.md").read_text()
    for name in ("rewards.png", "filter_rate.png", "kl_clip_len.png", "time_split.png", "eval.png"):
        assert f"]({name})" in md
    assert "| validation (n=4) | greedy acc % [95% CI] | 25.0 [0.0, 50.0] | 50.0 [0.0, 50.0] |" in md
    assert "| srl | – / 6 | – | – | 0.4000 | 60 |" in md  # an old summary without update counts
    assert "did not train as asked" not in md
    assert str(out / "report.md") in res.out


def test_report_shows_validation_curve_and_warns_about_idle_phases(tmp_path, cli):
    run = fake_run(tmp_path)
    (run / "eval.jsonl").write_text("".join(json.dumps(
        {"phase": ph, "step": s, "global_step": g, "val/reward_mean": 0.3, "val/solve_accuracy": a,
         "val/exact_step": 0.5} if ph == "srl" else
        {"phase": ph, "step": s, "global_step": g, "val/reward_mean": a, "val/solve_accuracy": a}) + "\n"
        for ph, s, g, a in [("srl", 0, 0, 0.02), ("srl", 6, 6, 0.2), ("rlvr", 6, 12, 0.3)]))
    (run / "summary.json").write_text(json.dumps({"phases": {
        "srl": {"steps": 6, "updates": 6, "filter_rate": 0.1, "prompts_consumed": 30, "wall_s": 60.0},
        "rlvr": {"steps": 6, "updates": 0, "filter_rate": 1.0, "prompts_consumed": 40, "wall_s": 9.0,
                 "gave_up": "rlvr: 5 draws in a row with every group's rewards equal (all 0)"}}}))
    res = cli("report", run)
    assert res.code == 0, res.err
    md = (run / "report" / "report.md").read_text()
    assert _is_png(run / "report" / "val_accuracy.png") and "](val_accuracy.png)" in md
    assert "## Warning: phases that did not train as asked" in md
    assert "**rlvr made 0 of 6 optimizer updates**: rlvr: 5 draws in a row" in md
    assert "| srl | 6 / 6 | 0.10 | 30 |" in md and "| rlvr | 0 / 6 | 1.00 | 40 |" in md


def test_report_without_eval_and_custom_out(tmp_path, cli):
    run = fake_run(tmp_path)
    res = cli("report", run, "--out", tmp_path / "r")
    assert res.code == 0, res.err
    assert _is_png(tmp_path / "r" / "rewards.png")
    assert not (tmp_path / "r" / "eval.png").exists()
    assert "Eval table" not in (tmp_path / "r" / "report.md").read_text()


def test_report_bad_inputs_are_one_line_errors(tmp_path, cli):
    res = cli("report", tmp_path / "missing")
    assert res.code == 2 and "not found" in res.err and len(res.err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    res = cli("report", empty)
    assert res.code == 2 and "metrics.jsonl" in res.err
    run = fake_run(tmp_path)
    res = cli("report", run, "--eval", tmp_path / "nope.json")
    assert res.code == 2 and "nope.json" in res.err


def test_time_split_and_components():
    from srlkit.report.plots import reward_components, time_split

    rows = [{"phase": "srl", "time/generate": 2.0, "time/reward": 1.0, "time/update": 0.5, "reward/mean": 1,
             "reward/x": 1},
            {"phase": "srl", "time/generate": 2.0, "time/reward": 1.0, "time/update": 0.5, "reward/y": 2}]
    assert time_split(rows) == {"srl": {"generate": 4.0, "reward": 2.0, "update": 1.0}}
    assert reward_components(rows) == ["reward/x", "reward/y"]


def test_steps_histogram(tmp_path):
    pl = pytest.importorskip("polars")
    from srlkit.data.card import plot_steps_histogram

    d = tmp_path / "data"
    (d / "srl").mkdir(parents=True)
    pl.DataFrame({"trajectory_id": ["a", "a", "b", "c", "c", "c"], "num_steps": [2, 2, 1, 3, 3, 3]}).write_parquet(
        d / "srl" / "train-00000-of-00001.parquet")
    p = plot_steps_histogram(d, tmp_path / "steps_hist.png")
    assert p is not None and _is_png(p)
    assert plot_steps_histogram(tmp_path / "nothing", tmp_path / "x.png") is None
