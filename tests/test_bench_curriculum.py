"""benchmarks/curriculum.py's pairing: a two-phase arm against its one-phase arm and against its own
first phase's end, on the same problems (no model: hand-written eval samples)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_curriculum", ROOT / "benchmarks" / "curriculum.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _samples(out: Path, arm: str, correct: list[int]) -> None:
    (out / "eval").mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"q{i}", "greedy_correct": bool(c)} for i, c in enumerate(correct)]
    (out / "eval" / f"{arm}.full.samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_chain_is_paired_with_its_own_first_phase_end(tmp_path):
    b = _bench()
    assert b.phase_end_arm("srl_rlvr") == "srl_rlvr.srl_end" and b.phase_end_arm("sft_rlvr") == "sft_rlvr.sft_end"
    assert b.phase_end_arm("srl") is None and b.phase_end_arm("base") is None
    n = 40
    _samples(tmp_path, "srl_rlvr.srl_end", [1] * 4 + [0] * (n - 4))   # 10%
    _samples(tmp_path, "srl_rlvr", [1] * 12 + [0] * (n - 12))         # 30%, every earlier success kept
    p = b.paired(tmp_path, "srl_rlvr.srl_end", "srl_rlvr")
    assert p["n"] == n and abs(p["delta"] - 0.2) < 1e-12 and p["acc"] == [0.1, 0.3]
    assert p["ci"][0] > 0  # 8 problems gained, none lost: the paired CI is clear of zero
    line = b.paired_lines([p])
    assert line.startswith("- srl_rlvr vs its own end of srl: +20.0 points")
    assert "10.0% -> 30.0%" in line and line.endswith("better")
    _samples(tmp_path, "srl", [0] * 12 + [1] * 12 + [0] * (n - 24))  # as many right, other problems
    worse_or_not = b.paired_lines([b.paired(tmp_path, "srl", "srl_rlvr")])
    assert worse_or_not.startswith("- srl_rlvr vs srl: +0.0 points") and "includes 0" in worse_or_not


def test_side_by_side_arms_label_every_stderr_line(monkeypatch, capsys):
    """Under --jobs, the trainer's own step lines carry the arm's name; alone, nothing is added, and
    stderr is restored after the arm either way."""
    import sys
    from types import SimpleNamespace

    b = _bench()

    def fake(arm, args, recipe, data, bench):
        print("srl step 1/30 | loss 0.1", file=sys.stderr)
        print(f"[{arm}] done in 1 s", file=sys.stderr)
        return {}

    monkeypatch.setattr(b, "_run_arm", fake)
    before = sys.stderr
    for jobs in (2, 1):
        b.run_arm("srl_rlvr", SimpleNamespace(jobs=jobs), None, Path("."), "")
        assert sys.stderr is before
    err = capsys.readouterr().err.splitlines()
    assert err == ["[srl_rlvr] srl step 1/30 | loss 0.1", "[srl_rlvr] done in 1 s",
                   "srl step 1/30 | loss 0.1", "[srl_rlvr] done in 1 s"]


def test_with_a_starting_model_each_arm_is_paired_with_it(tmp_path):
    """`--model W --arms base,rlvr`: "base" is W, scored in the same command, and the command states what
    RLVR added to it; without --model, base is the bundled model and is not paired."""
    b = _bench()
    _samples(tmp_path, "base", [0] * 40)
    _samples(tmp_path, "rlvr", [1] * 10 + [0] * 30)
    pairs = b.pairings(tmp_path, ["base", "rlvr"], started_from_model=True)
    (line,) = b.paired_lines(pairs, started_from_model=True).splitlines()
    assert line.startswith("- rlvr vs its starting model (--model): +25.0 points") and line.endswith("better")
    assert b.pairings(tmp_path, ["base", "rlvr"]) == []


def test_the_table_says_which_cpu_and_libraries_measured_it():
    from srlkit import provenance

    amd = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx avx2 fma\n"
    intel = "model name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f amx_tile amx_bf16\n"
    a, b = provenance.machine(amd), provenance.machine(intel)
    assert (a["cpu"], a["simd"]) == ("AMD EPYC 7B13", "avx2")
    assert (b["cpu"], b["simd"]) == ("Intel(R) Xeon(R) Processor", "amx+avx512+avx2")
    assert provenance.differences(a, b) == ["cpu AMD EPYC 7B13 -> Intel(R) Xeon(R) Processor", "simd avx2 -> amx+avx512+avx2"]
    line = _bench().machine_line(b)
    assert line.startswith("machine Intel(R) Xeon(R) Processor (amx+avx512+avx2); torch ")
    assert "transformers " in line


def test_a_task_keeps_its_own_options_in_both_sources():
    from srlkit.data.gym import parse_spec

    train, held = _bench().gym_specs("chain_sum?terms=5-6&digits=2-3", 2000, 500, 3)
    for spec in (train, held):
        parsed = parse_spec(spec)
        assert (parsed.min_terms, parsed.max_terms, parsed.min_digits, parsed.max_digits) == (5, 6, 2, 3)
        assert parsed.seed == 3
    assert parse_spec(train).train == 2000 and parse_spec(held).test == 500
    assert _bench().gym_specs("gsm_symbolic", 10, 5, 0) == ("gym:gsm_symbolic?train=10&validation=100&seed=0",
                                                            "gym:gsm_symbolic?test=5&seed=0")


def test_step_arithmetic_counts_the_lines_whose_result_is_right(tmp_path):
    (tmp_path / "eval").mkdir()
    rows = [{"id": "a", "greedy": "12 + 30 = 42\n42 - 50 = -8\nThe answer is \\boxed{-8}."},
            {"id": "b", "greedy": "-8 - 5 = -3\n-3 + 4 = 1\nsome words\n"},
            {"id": "c", "greedy": ""}]
    (tmp_path / "eval" / "m.full.samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert _bench().step_arithmetic(tmp_path, "m") == (3, 4)  # -8 - 5 is -13, not -3
