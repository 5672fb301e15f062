"""The polars segmentation (`vector.py`) decides a text only when it gives exactly the row-wise result,
and decompose's batch mode writes the same bytes as the row-wise path."""

from __future__ import annotations

import json
import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srlkit.config import DecomposeConfig
from srlkit.data import stats, vector
from srlkit.data.decompose import decompose
from srlkit.data.segment import Segmented, apply_limits, segment_text
from srlkit.data.unit import UnitProcessor
from tests.data.test_decompose import files_of, write_jsonl
from tests.helpers import ASSETS

LIMITS = [dict(min_chars=8, max_chars=4000, min_steps=2, max_steps=64),  # decompose's defaults
          dict(min_chars=0, max_chars=60, min_steps=1, max_steps=4),
          dict(min_chars=30, max_chars=200, min_steps=3, max_steps=6)]
DECIDED_AT_LEAST = [200, 200, 1]  # of the 4000 fuzzed texts (the third limits reject most of them)
BODIES = ["We add 1 and 1 to get 2.", "x", "so y = 3", "", "  ", "Compute $a^2$ - ok.", "é ü 中文 text here",
          "\tindented", "ends with\r", "ſtep 1: weird", "\x1c odd", "1234. not a marker", "12.5 is a number",
          "**bold** start", "a" * 50, "b" * 130, "Answer: 5", "## Heading here", "### Solution", "**Answer:**",
          "Proof.", "\u3000wide space", "2019. year", "٣. arabic digit", "K kelvin", "two\nlines here"]
TITLES = ["Add", "Sub tract", "", " :x: ", "a*b", "*T", "T" * 201, "é", "Add**:", "x\ny"]
SEPARATORS = ["", " ", ":", " : ", " — ", "-", "\t.\t", "*", "**"]


def marker(k: int, rng: random.Random) -> str:
    plain = [f"{k}. ", f"{k}) ", f"{k}.\t", f"Step {k}: ", f"{k}.",
             f"{k}. **{rng.choice(TITLES)}**{rng.choice(SEPARATORS)}"]
    odd = [f"  {k}. ", f"**Step {k}** ", f"### Step {k} ", f"STEP {k}. ", f"\t{k}. ", f"{k}.*", f"**Step {k}: T** "]
    return rng.choice(plain if rng.random() < 0.8 else odd)


def fuzz_text(rng: random.Random) -> str:
    lines = []
    if rng.random() < 0.5:
        lines.append(rng.choice(["SOLUTION:", "## Solution.", "We start with a preamble that is long.", "Hi", "",
                                 "**Solution**", "# Proof", "Answer 2:"]))
    k = 1
    for _ in range(rng.randint(0, 7)):
        if rng.random() < 0.75:
            num = k if rng.random() < 0.9 else rng.choice([1, k + 1, k - 1, 99])
            lines.append(marker(num, rng) + rng.choice(BODIES))
            k += 1
        else:
            lines.append(rng.choice(BODIES))
    return "\n".join(lines)


def clean_text(rng: random.Random) -> str:
    """A well-formed solution in the paper's `N. **Title** action` template (most real rows)."""
    head = rng.choice(["", "SOLUTION:\n", "## Solution\n", "We first restate what is asked of us.\n"])
    steps = [f"{k}. **{rng.choice(['Add', 'Factor', 'Check'])} step {k}** we compute {rng.randint(2, 99)} * "
             f"{rng.randint(2, 99)} here" + rng.choice(["", "\n$$x^2$$\nso it holds"]) for k in range(1, rng.randint(2, 7))]
    return head + "\n".join(steps) + f"\nThus \\boxed{{{rng.randint(1, 9)}}}."


def rowwise(text: str, limits: dict):
    seg = segment_text(text, "auto")
    return apply_limits(seg, **limits) if seg.strategy == "numbered" else None


def decided(texts: list[str], limits: dict) -> dict[int, Segmented]:
    d = vector.numbered_limits(pl.Series(texts, dtype=pl.String), **limits)
    out: dict[int, Segmented] = {}
    for r, body, title in d.steps.iter_rows():
        seg = out.setdefault(r, Segmented("numbered", [], [], "step" if d.preamble[r] else None))
        seg.steps.append(body)
        seg.titles.append(title)
    assert sorted(out) == [i for i, ok in enumerate(d.ok.to_list()) if ok]
    return out


@pytest.mark.parametrize("limits,least", zip(LIMITS, DECIDED_AT_LEAST))
def test_decided_texts_equal_the_rowwise_result(limits, least):
    rng = random.Random(7)
    texts = [fuzz_text(rng) for _ in range(4000)]
    got = decided(texts, limits)
    wrong = [(texts[i], seg, rowwise(texts[i], limits)) for i, seg in got.items() if seg != rowwise(texts[i], limits)]
    assert not wrong, wrong[:3]
    assert len(got) >= least  # the fuzz is adversarial, but simple texts must still be decided


@settings(max_examples=30, deadline=None)
@given(st.lists(st.lists(st.tuples(st.sampled_from(["1", "2", "3", "4", "Step 2", " 2", "**Step 1**", ""]),
                                   st.sampled_from([". ", ") ", ".", ": ", ". **T** ", ". **T**: "]),
                                   st.text(alphabet=list("ab .*:#\t\n1é\r\x1c"), max_size=14)),
                         max_size=6), min_size=1, max_size=20),
       st.sampled_from(LIMITS))
def test_decided_texts_equal_rowwise_hypothesis(docs, limits):
    texts = ["\n".join(n + sep + body for n, sep, body in lines) for lines in docs]
    for i, seg in decided(texts, limits).items():
        assert seg == rowwise(texts[i], limits), texts[i]


def test_simple_numbered_texts_are_decided_with_their_values():
    texts = ["SOLUTION:\n1. **Add** 1+1=2.\n2. **Double**: 2*2=4\nso 4.",
             "We first set up the whole problem.\n## Solution\n1. Let x = 2 here.\n2. Then y = 4 there.",
             "1. **Only a title**\n2. **a*b** star inside\n3. **T** \u2014 dash body"]
    got = decided(texts, LIMITS[0])
    assert got[0] == Segmented("numbered", ["1+1=2.", "2*2=4\nso 4."], ["Add", "Double"])
    assert got[1] == Segmented("numbered", ["We first set up the whole problem.", "Let x = 2 here.", "Then y = 4 there."],
                               [None, None, None], "step")
    assert got[2] == Segmented("numbered", ["Only a title", "**a*b** star inside", "dash body"], [None, None, "T"])
    for i, t in enumerate(texts):
        assert got[i] == rowwise(t, LIMITS[0])


@pytest.mark.parametrize("text", [
    "1. **Setup** where:\n   1. the first term\n   2. the last term\n2. **Compute** the sum",  # nested list
    "1. Let x = 2 here.\n3. Then y = 4 there.",  # out of sequence
    "**Step 1** Let x = 2 here.\n**Step 2** Then y = 4 there.",  # bold markers
    "### Step 1\nLet x = 2 here.\n### Step 2\nThen y = 4 there.",  # heading markers
    "1. Let x = 2 here.\n2. ok",  # a short untitled step: merged
    "1. Let x = 2 here.\n2. " + "y = 4. " * 700,  # a step over max_chars: split
    "1. Let x = 2 here, only one step.",  # too few steps
    "1. Let x = 2 here.\x1c\n2. Then y = 4 there.",  # whitespace Python and Rust disagree on
    "\u0661. Let x = 2 here.\n\u0662. Then y = 4 there.",  # non-ASCII digits
])
def test_texts_that_need_python_are_left_to_it(text):
    assert not vector.numbered_limits(pl.Series([text]), **LIMITS[0]).ok[0]


def test_add_block_equals_add_trajectory():
    rng = random.Random(3)
    trajs = [[("x" * rng.randint(1, 9000)) for _ in range(rng.randint(1, 7))] for _ in range(300)]
    one, block = stats.new_stats(), stats.new_stats()
    for j, steps in enumerate(trajs):
        stats.add_trajectory(one, steps, "numbered", "step" if j % 3 == 0 else None)
    seq = pl.Series([j for j, steps in enumerate(trajs) for _ in steps])
    lengths = pl.Series([len(s) for steps in trajs for s in steps])
    stats.add_block(block, seq, lengths, "numbered", preamble=sum(1 for j in range(300) if j % 3 == 0))
    assert stats.to_json(one) == stats.to_json(block)


def mixed_rows(n: int, seed: int = 7) -> list:
    """Rows shaped like `{id, problem, solution, answer}` SFT data, with every way a row can go wrong."""
    rng = random.Random(seed)
    rows: list = []
    for i in range(n):
        r = {"id": f"m{i}", "problem": f"Problem {i}: find x." + rng.choice(["", "  ", " é"]),
             "solution": clean_text(rng) if rng.random() < 0.6 else fuzz_text(rng), "answer": rng.choice([str(i), None, "\\boxed{3}", 7, ""])}
        x = rng.random()
        if x < 0.03:
            r["id"] = f"m{i - 1}"  # duplicate
        elif x < 0.05:
            r["solution"] = ["step one here", "step two here"]
        elif x < 0.06:
            r["problem"] = None
        elif x < 0.08:
            del r["id"]
        elif x < 0.09:
            r["solution"] = [{"role": "user", "content": "q"},
                             {"role": "assistant", "content": "1. **A** do this thing\n2. **B** do that thing"}]
        elif x < 0.10:
            r["solution"] = "1. **A** long " + "z" * 5000 + "\n2. **B** fine step here"
        line = json.dumps(r, ensure_ascii=rng.random() < 0.5).encode() + b"\n"
        rows.append(line[:-4] + b"\n" if rng.random() < 0.01 else line)  # some broken JSON
    return rows


def rowwise_only(monkeypatch):
    real = vector.numbered_limits

    def decide_nothing(texts, **kw):
        d = real(texts, **kw)
        return vector.Decided(pl.Series([False] * texts.len()), d.steps.clear(), d.preamble)

    monkeypatch.setattr(vector, "numbered_limits", decide_nothing)


@pytest.mark.parametrize("opts", [
    dict(val_size=0.1, shard_rows=700),
    dict(val_size=25, shard_rows=900, targets="skip-first", title_hint=True),
    dict(val_size=0.2, steps="numbered", min_step_chars=20, max_step_chars=300, max_trajectory_steps=5),
])
def test_batch_mode_writes_the_rowwise_bytes(tmp_path, monkeypatch, opts):
    src = write_jsonl(tmp_path / "mixed.jsonl", mixed_rows(2500))
    calls = []
    real = vector.numbered_limits
    monkeypatch.setattr(vector, "numbered_limits", lambda t, **kw: calls.append(d := real(t, **kw)) or d)
    fast = decompose(DecomposeConfig(source=str(src), **opts), tmp_path / "fast", show_progress=False)
    assert sum(int(d.ok.sum()) for d in calls) > 500  # the batch path really decided rows (of 2500)
    rowwise_only(monkeypatch)
    slow = decompose(DecomposeConfig(source=str(src), **opts), tmp_path / "slow", show_progress=False)
    assert fast["counts"] == slow["counts"] and fast["counts"]["rejected"] > 100
    assert files_of(tmp_path / "fast") == files_of(tmp_path / "slow")


@pytest.mark.parametrize("name", ["r1_small.jsonl", "s1k.jsonl", "numina.jsonl", "gsm8k.jsonl", "numbered.jsonl"])
def test_batch_mode_on_hub_shaped_fixtures(tmp_path, monkeypatch, name):
    preset = {"r1_small.jsonl": "openr1", "s1k.jsonl": "s1k", "gsm8k.jsonl": "gsm8k"}.get(name)
    cfg = DecomposeConfig(source=str(ASSETS / name), preset=preset, val_size=0.0)
    decompose(cfg, tmp_path / "fast", show_progress=False)
    rowwise_only(monkeypatch)
    decompose(cfg, tmp_path / "slow", show_progress=False)
    assert files_of(tmp_path / "fast") == files_of(tmp_path / "slow")


def test_custom_rlvr_template_rows_match(tmp_path, monkeypatch):
    tmpl = tmp_path / "t.toml"
    tmpl.write_text('rlvr_system = "Solve: {problem} {{x}}"\nrlvr_user = "Q {problem}!"\n')
    src = write_jsonl(tmp_path / "mixed.jsonl", mixed_rows(400, seed=2))
    cfg = DecomposeConfig(source=str(src), template=str(tmpl), val_size=0.1)
    decompose(cfg, tmp_path / "fast", show_progress=False)
    rowwise_only(monkeypatch)
    decompose(cfg, tmp_path / "slow", show_progress=False)
    assert files_of(tmp_path / "fast") == files_of(tmp_path / "slow")
    df = pl.read_parquet(next(Path(tmp_path / "fast" / "rlvr").glob("train-*.parquet")))
    assert df["prompt"][0][0]["content"] == f"Solve: {df['problem'][0]} {{x}}"


def test_batch_mode_only_where_it_applies(tmp_path):
    cfg = DecomposeConfig(source="x.jsonl")
    from srlkit.data.presets import get_preset, resolve
    from srlkit.data.templates import Templates

    cols = resolve(None, ["problem", "solution"], problem_col=None, solution_col=None, answer_col=None, id_col=None)

    def unit(c, rw=None, t=None):
        return UnitProcessor(0, c, cols, t or Templates(), rw, tmp_path, set())

    assert unit(cfg).batch
    assert not unit(cfg.model_copy(update={"steps": "paragraph"})).batch
    assert not unit(cfg, rw=lambda p, s: s).batch  # a rewriter answers row by row
    assert not unit(cfg, t=Templates(srl_user="{problem!r}")).batch  # templates polars cannot render
    assert get_preset(None).transform is None


def test_draining_early_for_big_rows_changes_no_byte(tmp_path, monkeypatch):
    """Batch mode drains a unit early once its held rows pass PENDING_CHARS; outputs stay the same."""
    from srlkit.data import unit as unit_mod

    src = write_jsonl(tmp_path / "mixed.jsonl", mixed_rows(1500, seed=5))
    cfg = DecomposeConfig(source=str(src), val_size=0.1, shard_rows=600)
    decompose(cfg, tmp_path / "once", show_progress=False)
    drains = []
    real = UnitProcessor._drain
    monkeypatch.setattr(UnitProcessor, "_drain", lambda self: drains.append(len(self.pending)) or real(self))
    monkeypatch.setattr(unit_mod, "PENDING_CHARS", 5_000)
    decompose(cfg, tmp_path / "often", show_progress=False)
    assert len([n for n in drains if n]) > 20  # many drains per 600-row unit
    assert files_of(tmp_path / "once") == files_of(tmp_path / "often")
