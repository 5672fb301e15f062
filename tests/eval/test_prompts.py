"""Eval asks a model exactly as RLVR training asked it: same messages, same template, same tokens."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from srlkit.config import DecomposeConfig
from srlkit.data.decompose import decompose
from srlkit.errors import DataError


def _source(path: Path, n: int = 6) -> Path:
    rows = [{"id": f"t{i}", "problem": f"Problem number {i}: what is {i} + {i}?",
             "solution": f"1. **Add** {i} + {i} = {2 * i}\n2. **Answer** so it is \\boxed{{{2 * i}}}"}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tok(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def _training_ids(data_dir: Path, tok) -> dict[str, list[int]]:
    """{problem: prompt ids} exactly as the RLVR phase builds them (train and validation splits)."""
    from srlkit.train.data import PromptTable, read_rows

    out = {}
    for split in ("train", "validation"):
        try:
            rows = read_rows(data_dir, "rlvr", split)
        except DataError:
            continue
        table = PromptTable(rows, tok, seed=0, max_prompt_tokens=10**6)
        out.update({r["problem"]: ids for r, ids in zip(table.rows, table.prompt_ids)})
    return out


@pytest.mark.parametrize("template", [None, "rlvr_override.toml"])
def test_plain_and_validation_benches_use_trainings_prompt(tmp_path, tok, template):
    from srlkit.data.templates import RLVR_SYSTEM
    from srlkit.eval.benches import data_templates, load_bench
    from srlkit.eval.run import _tokenize

    tfile = None
    if template:
        tfile = tmp_path / template
        tfile.write_text('rlvr_system = "Solve it. Box the answer."\nrlvr_user = "Q: {problem}\\nA:"\n')
    data = tmp_path / "data"
    decompose(DecomposeConfig(source=str(_source(tmp_path / "src.jsonl")), val_size=2,
                              template=str(tfile) if tfile else None), data, show_progress=False)
    train_ids = _training_ids(data, tok)
    assert len(train_ids) == 6
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(json.dumps({"question": p, "answer": "0"}) + "\n" for p in train_ids))
    rows = load_bench(str(bench))
    templates = data_templates(data)
    assert _tokenize(tok, rows, templates) == [train_ids[r.problem] for r in rows]
    val = load_bench(f"validation:{data}")
    assert len(val) == 2 and all(r.prompt for r in val)  # the stored messages are used as they are
    assert _tokenize(tok, val, templates) == [train_ids[r.problem] for r in val]
    # the check can fail: the default template gives other tokens when training used an override
    default = _tokenize(tok, rows)
    assert (default == [train_ids[r.problem] for r in rows]) == (template is None)
    if template:
        assert templates.rlvr_system != RLVR_SYSTEM


def test_missing_template_file_is_a_one_line_error(tmp_path):
    from srlkit.eval.benches import data_templates

    (tmp_path / "manifest.json").write_text(json.dumps({"config": {"template": str(tmp_path / "gone.toml")}}))
    with pytest.raises(DataError, match="gone.toml"):
        data_templates(tmp_path)
    assert data_templates(None).rlvr_user == "{problem}"
