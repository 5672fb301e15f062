"""Segmentation strategies, titles, length limits and agent turns."""

from srlkit.data.segment import (
    Segmented,
    apply_limits,
    numbered,
    paragraph,
    segment_text,
    sentence,
)
from srlkit.data.sources import Reject
from srlkit.data.turns import context_entries, split_turn, turns


def test_numbered_paper_template_titles():
    s = numbered("SOLUTION:\n1. **Expand** (x+1)^2 = x^2+2x+1\n2. **Compare** so a = 2\n   and b = 1.")
    assert s.titles == ["Expand", "Compare"]
    assert s.steps == ["(x+1)^2 = x^2+2x+1", "so a = 2\n   and b = 1."]


def test_numbered_marker_forms():
    forms = {
        "1) one here\n2) two here": ["one here", "two here"],
        "Step 1: one here\nStep 2: two here": ["one here", "two here"],
        "**Step 1** one here\n**Step 2** two here": ["one here", "two here"],
        "### Step 1\none here\n### Step 2\ntwo here": ["one here", "two here"],
    }
    for text, want in forms.items():
        assert numbered(text).steps == want, text
    h = numbered("### Step 1: Set up\nLet x = 1.\n### Step 2: Solve\nx + 1 = 2.")
    assert h.titles == ["Set up", "Solve"] and h.steps == ["Let x = 1.", "x + 1 = 2."]


def test_numbered_keeps_out_of_sequence_lists_inside_a_body():
    s = numbered("1. Cases:\n   1. a\n   2. b\n2. Done with 3 things")
    assert len(s.steps) == 2 and "1. a" in s.steps[0]
    assert numbered("just 1. one marker") is None


def test_paragraph_and_line_fallback():
    assert paragraph("a b c\n\n  \nd e f").steps == ["a b c", "d e f"]
    assert paragraph("line one\nline two").steps == ["line one", "line two"]


def test_sentence_spacy():
    s = sentence("We set x to two. Then y equals three.")
    assert s.strategy == "sentence" and len(s.steps) == 2


def test_auto_records_choice():
    assert segment_text("1. a\n2. b", "auto").strategy == "numbered"
    assert segment_text("a\n\nb", "auto").strategy == "paragraph"
    assert segment_text("One sentence. Two sentences.", "auto").strategy == "sentence"
    assert segment_text("no markers", "numbered").steps == []


def test_limits_merge_split_reject():
    seg = Segmented("paragraph", ["ok", "a longer step", "tail"], [None, "T", None])
    out = apply_limits(seg, min_chars=5, max_chars=100, min_steps=1, max_steps=10)
    assert out.steps == ["ok\na longer step\ntail"]
    big = Segmented("paragraph", ["Sentence one is here. Sentence two is here.", "short one ok"], [None, None])
    out = apply_limits(big, min_chars=1, max_chars=25, min_steps=1, max_steps=10)
    assert out.steps == ["Sentence one is here.", "Sentence two is here.", "short one ok"]
    giant = Segmented("paragraph", ["x" * 50], [None])
    assert apply_limits(giant, min_chars=1, max_chars=10, min_steps=1, max_steps=9).reason == "step_too_long"
    two = Segmented("paragraph", ["first step", "second step"], [None, None])
    assert apply_limits(two, min_chars=1, max_chars=99, min_steps=3, max_steps=9).reason == "too_few_steps"
    assert apply_limits(two, min_chars=1, max_chars=99, min_steps=1, max_steps=1).reason == "too_many_steps"
    assert isinstance(apply_limits(Segmented("numbered", [], []), min_chars=1, max_chars=9, min_steps=1,
                                   max_steps=9), Reject)


def test_turns_action_is_only_the_tool_call():
    msgs = [
        {"role": "user", "content": "Fix the bug"},
        {"role": "assistant", "content": "I will grep.", "tool_calls": [
            {"type": "function", "function": {"name": "bash", "arguments": '{"cmd": "grep x"}'}}]},
        {"role": "tool", "content": "x.py:1"},
        {"role": "assistant", "content": "Edit it:\n```python\nfix()\n```\nthen test."},
        {"role": "user", "content": "ok"},
        {"role": "assistant", "content": "All done."},
    ]
    ts = turns(msgs)
    assert [t.action for t in ts] == ['bash({"cmd": "grep x"})', "fix()", "All done."]
    assert ts[0].monologue == "I will grep." and ts[0].observation == "x.py:1"
    assert split_turn(msgs[3]) == ("fix()", "Edit it:\n\nthen test.")
    ctx = context_entries(ts, 2, history=1)
    assert ctx == ["Action: fix()\nObservation: ok"]
    assert len(context_entries(ts, 2, history=2)) == 2 and context_entries(ts, 0, 2) == []


def test_text_before_the_first_marker_is_kept_and_recorded():
    s = numbered("We factor first, then solve.\n\n1. **Factor** (x-2)(x-3) = 0\n2. **Solve** x = 2 or x = 3")
    assert s.steps == ["We factor first, then solve.", "(x-2)(x-3) = 0", "x = 2 or x = 3"]
    assert s.titles == [None, "Factor", "Solve"] and s.preamble == "step"
    for header in ("SOLUTION:", "## Solution.", "**Solution:**", "### Answer"):  # headers alone are dropped
        s = numbered(f"{header}\n1. **Factor** (x-2)(x-3) = 0\n2. **Solve** x = 2 or x = 3")
        assert len(s.steps) == 2 and s.preamble is None, header
    short = apply_limits(numbered("So:\n1. **Factor** (x-2)(x-3) = 0\n2. **Solve** x = 2 or x = 3"),
                         min_chars=8, max_chars=99, min_steps=1, max_steps=9)
    assert short.preamble == "merged" and short.steps[0] == "So:\n(x-2)(x-3) = 0"


def test_indented_sub_list_stays_inside_its_step():
    text = ("1. **Setup** The sum runs over the terms, where:\n   1. the first term is a\n   2. the last term is b\n"
            "2. **Compute** The sum is (a + b) n / 2.")
    s = numbered(text)
    assert s.titles == ["Setup", "Compute"]
    assert s.steps[0] == "The sum runs over the terms, where:\n   1. the first term is a\n   2. the last term is b"
    # a nested list before the outer "1." does not set the level either
    s = numbered("Given:\n  1. x > 0\n  2. y > 0\n1. **Add** x + y > 0\n2. **Done** so it holds")
    assert s.titles == [None, "Add", "Done"] and s.steps[0].startswith("Given:")


def test_headings_are_not_steps_in_paragraph_mode():
    s = paragraph("## Solution.\nLet $t$ be the time per km.\n\n### Speeds\nThen $v = 1/t$.\n\n## Answer\n\n$v = 4$.")
    assert s.steps == ["Let $t$ be the time per km.", "Then $v = 1/t$.", "$v = 4$."]
    assert s.titles == [None, "Speeds", None]  # a generic "Solution"/"Answer" heading is no title
    assert all(not st.startswith("#") for st in paragraph("# Title\nline one\n## Part\nline two").steps)


def test_a_short_titled_step_is_a_step():
    seg = numbered("1. **Add** 1+1=2.\n2. **Answer** \\boxed{2}")
    out = apply_limits(seg, min_chars=8, max_chars=4000, min_steps=2, max_steps=64)
    assert out.steps == ["1+1=2.", "\\boxed{2}"] and out.titles == ["Add", "Answer"]
    untitled = apply_limits(Segmented("paragraph", ["1+1=2.", "so the answer is 2"], [None, None]),
                            min_chars=8, max_chars=4000, min_steps=1, max_steps=64)
    assert untitled.steps == ["1+1=2.\nso the answer is 2"]  # an untitled fragment still merges
