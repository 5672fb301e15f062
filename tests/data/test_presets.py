"""Presets against the real Hub schemas: default configs, pinned revisions, solution and gold rules."""

from __future__ import annotations

import json
import re

import pytest

from srlkit.data.gold import gold_from_solution, openr1_solution, s1k_gold
from srlkit.data.presets import PRESETS, detect_preset, extract, resolve
from srlkit.data.sources import Reject
from tests.helpers import ASSETS


def _rows(name: str) -> list[dict]:
    return [json.loads(x) for x in (ASSETS / name).read_text().splitlines()]


@pytest.mark.parametrize("name,config", [("gsm8k", "main"), ("openr1", "default"), ("s1k", "default"),
                                         ("numina", "default")])
def test_hub_presets_carry_config_and_revision(name, config):
    p = PRESETS[name]
    assert p.config == config and re.fullmatch(r"[0-9a-f]{40}", p.revision or "")
    assert PRESETS["s1k"].revision == "96c411f1fe4c49d20f0e2a1565f61e1a28b0b84d"


def test_fixtures_have_the_real_columns():
    """The column sets of the Hub cards (dataset_info features) at the pinned revisions."""
    assert list(_rows("r1_small.jsonl")[0]) == [
        "problem", "solution", "answer", "problem_type", "question_type", "source", "uuid",
        "is_reasoning_complete", "generations", "correctness_math_verify", "correctness_llama",
        "finish_reasons", "correctness_count", "messages"]
    assert list(_rows("s1k.jsonl")[0]) == [
        "solution", "question", "cot_type", "source_type", "metadata", "gemini_thinking_trajectory",
        "gemini_attempt", "deepseek_thinking_trajectory", "deepseek_attempt", "gemini_grade",
        "gemini_grade_reason", "deepseek_grade", "deepseek_grade_reason"]
    assert list(_rows("gsm8k.jsonl")[0]) == ["question", "answer"]
    assert list(_rows("numina.jsonl")[0]) == ["source", "problem", "solution", "messages"]
    kinds = [r["source_type"] for r in _rows("s1k.jsonl")]
    assert any("openaimath" in k for k in kinds) and any("AIME" in k for k in kinds)
    assert any("gpqa" in k for k in kinds) and any("OlympiadBench" in k for k in kinds)
    assert any(r["solution"] == "" and r["cot_type"] == "code" for r in _rows("s1k.jsonl"))


def test_openr1_uses_the_first_verified_generation_not_the_human_solution():
    rows = _rows("r1_small.jsonl")
    cols = resolve("openr1", list(rows[0]))
    assert (cols.solution, cols.id) == ("generations", "uuid")
    f = extract(rows[1], cols)  # generation 0 wrong, generation 1 verified correct
    assert f.solution == rows[1]["generations"][1].split("</think>")[1].strip()
    assert not f.solution.startswith("## Solution") and f.tid == rows[1]["uuid"] and f.answer == rows[1]["answer"]
    rej = openr1_solution(rows[3])
    assert isinstance(rej, Reject) and rej.reason == "no_correct_generation" and "0 marked correct" in rej.detail
    # a --solution-col override reads that column as before
    f = extract(rows[0], resolve("openr1", list(rows[0]), solution_col="solution"))
    assert f.solution.startswith("## Solution.")


def test_s1k_gold_rules():
    rows = {r["source_type"].split("/")[0]: r for r in _rows("s1k.jsonl")}
    assert s1k_gold(rows["qfq"]) == ("5", "")  # MATH: the solution's \boxed{}
    assert s1k_gold(rows["qq8933"]) == ("275", "")  # AIME: the short solution; R1 said 265, graded No
    assert s1k_gold(rows["Idavidrein"]) == ("C", "")  # GPQA: "Answer: C" after the explanation
    proof, why = s1k_gold(rows["Hothan"])
    assert proof is None and "graded 'No'" in why  # the attempt's \boxed{} is not trusted
    code, why = s1k_gold(rows["LiveCodeBench"])
    assert code is None and "solution is empty" in why
    graded_yes = {**rows["Hothan"], "deepseek_grade": "Yes"}
    assert s1k_gold(graded_yes)[0] == "\\sqrt{2} \\notin \\mathbb{Q}"  # attempt trusted only when graded Yes
    assert gold_from_solution("Long explanation line one.\nAnswer: (B)") == "(B)"


def test_messages_layout_is_detected_from_the_columns():
    assert detect_preset(["messages"]) == "messages"
    assert detect_preset(["id", "messages"], "turns") == "messages"
    assert detect_preset(["problem", "solution", "messages"]) is None  # NuminaMath: problem/solution win
    assert detect_preset(["problem", "messages"], "turns") == "messages"
