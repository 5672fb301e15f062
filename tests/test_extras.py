"""Install what you use (issue 12): a command whose extra is missing stops with one line naming it."""

from __future__ import annotations

import importlib.util

import pytest


@pytest.fixture
def without(monkeypatch):
    """Pretend some modules are not installed (find_spec -> None), as on a data-only install."""

    def hide(*names: str) -> None:
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a, **k: None if name in names else real(name, *a, **k))

    return hide


@pytest.mark.parametrize("args, extra, module", [
    (["train", "--data", "DATA", "--out", "RUN"], "train", "torch"),
    (["eval", "base", "--bench", "amc23"], "train", "torch"),
    (["embed", "DATA"], "embed", "sentence_transformers"),
])
def test_missing_extra_is_one_line_naming_it(cli, without, tmp_path, args, extra, module):
    without("torch", "sentence_transformers")
    (tmp_path / "DATA").mkdir()
    args = [str(tmp_path / a) if a in ("DATA", "RUN") else a for a in args]
    res = cli(*args)
    assert res.code != 0
    err = res.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"needs the '{extra}' extra" in err and module in err and f"pip install 'srlkit[{extra}]'" in err


def test_sentence_segmentation_names_the_spacy_extra(without):
    from srlkit.assets import spacy_nlp
    from srlkit.errors import SrlkitError

    without("spacy")
    with pytest.raises(SrlkitError, match=r"needs the 'spacy' extra .*pip install 'srlkit\[spacy\]'"):
        spacy_nlp()


def test_the_data_side_imports_no_training_stack():
    """decompose's modules import neither torch, spaCy nor sentence-transformers at import time."""
    import subprocess
    import sys

    code = ("import sys, srlkit.cli.decompose, srlkit.data.decompose, srlkit.data.unit, srlkit.data.card; "
            "print(sorted(m for m in ('torch', 'spacy', 'sentence_transformers', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
