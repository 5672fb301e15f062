"""The polars expansion gives exactly the rows of the row-wise `add_srl`; parquet bytes are layout-free."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from srlkit.config import DecomposeConfig
from srlkit.data import shards
from srlkit.data.decompose import decompose
from srlkit.data.expand import TrajBuffer, can_expand, expand
from srlkit.data.instances import Table, add_srl
from srlkit.data.templates import Templates

TEXT = st.text(alphabet=st.sampled_from(list("ab {}*\n.1é")), min_size=1, max_size=12)
TRAJ = st.lists(st.tuples(TEXT, st.one_of(st.none(), st.just(""), TEXT)), min_size=1, max_size=5)
CUSTOM = Templates(srl_user="P={problem} {{literal}} C=[{context}] #{step_number}",
                   srl_user_hint="{title}|{step_number}|{context}|{problem}")


def both(trajs, targets: str, hint: bool, templates: Templates) -> tuple[list[dict], list[dict]]:
    table, buf = Table(shards.SCHEMAS["srl"]), TrajBuffer(hint)
    for j, steps in enumerate(trajs):
        bodies, titles = [b for b, _ in steps], [t for _, t in steps]
        kw = {"tid": f"t{j}", "source_row": j, "problem": f"prob {{x}} {j}", "steps": bodies,
              "titles": titles, "answer": None if j % 2 else str(j), "strategy": "numbered"}
        add_srl(table, **kw, targets=targets, title_hint=hint, templates=templates)
        buf.add(seq=j, **kw)
    want = shards.frame(table, "srl").to_dicts()
    got = expand(buf, targets, templates).drop("_seq").to_dicts()
    return want, got


@settings(max_examples=25, deadline=None)
@given(trajs=st.lists(TRAJ, min_size=1, max_size=4), targets=st.sampled_from(["all", "skip-first", "skip-last"]),
       hint=st.booleans(), custom=st.booleans())
def test_expand_equals_rowwise(trajs, targets, hint, custom):
    want, got = both(trajs, targets, hint, CUSTOM if custom else Templates())
    assert got == want


def test_expand_values_and_schema():
    want, got = both([[("1+1=2", "Add"), ("so 2", None), ("x", "")]], "all", True, Templates())
    assert got == want and len(got) == 3
    assert got[1]["context_steps"] == ["**Add** 1+1=2"] and got[0]["target"] == "1+1=2"
    assert got[1]["prompt"][1]["content"].endswith("Write step 2.")
    buf = TrajBuffer(False)
    buf.add(seq=0, tid="a", source_row=0, problem="p", steps=["s"], titles=[None], answer=None, strategy="x")
    df = expand(buf, "skip-first", Templates())  # one step, first skipped: no rows, right types
    assert df.height == 0 and df.drop("_seq").schema == pl.Schema(shards.SCHEMAS["srl"])


def test_templates_python_only_fall_back(tmp_path):
    assert can_expand(Templates()) and can_expand(CUSTOM)
    assert not can_expand(Templates(srl_user="{problem!r} {context:>5} {step_number}"))
    rows = [{"id": f"r{i}", "problem": f"p{i}", "solution": f"1. **A** first {i} here\n2. **B** then {i} there"}
            for i in range(6)]
    src = tmp_path / "s.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tmpl = tmp_path / "t.toml"
    tmpl.write_text('srl_user = "{problem!r}|{context:>3}|{step_number}"\n')
    decompose(DecomposeConfig(source=str(src), template=str(tmpl), val_size=0.0), tmp_path / "o", show_progress=False)
    df = pl.read_parquet(next((tmp_path / "o" / "srl").glob("*.parquet")))
    assert df.height == 12 and df["prompt"][0][1]["content"] == "'p0'|(no steps yet)|1"


@pytest.mark.parametrize("n", [10, 4096, 9000])
def test_parquet_bytes_do_not_depend_on_chunking(tmp_path, n):
    df = pl.DataFrame({"a": [f"x{i}" for i in range(n)], "l": [[str(i)] * (i % 3) for i in range(n)]})
    pieces = pl.concat([df.slice(o, 1000) for o in range(0, n, 1000)], rechunk=False)
    shards.write_parquet(df, tmp_path / "a.parquet")
    shards.write_parquet(pieces, tmp_path / "b.parquet")
    assert Path(tmp_path / "a.parquet").read_bytes() == Path(tmp_path / "b.parquet").read_bytes()
    assert pl.read_parquet(tmp_path / "a.parquet").equals(df)
