"""Every docstring example in the package runs (what `pytest --doctest-modules srlkit` checks)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import srlkit

MODULES = sorted(m.name for m in pkgutil.walk_packages(srlkit.__path__, "srlkit."))
OPTIONAL = {"srlkit.rollout.vllm"}  # imports vLLM lazily, but say so if that ever changes


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    try:
        mod = importlib.import_module(name)
    except ImportError as e:
        if name in OPTIONAL:
            pytest.skip(f"{name}: {e}")
        raise
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    assert res.failed == 0, f"{res.failed} of {res.attempted} examples failed in {name}"


def test_the_examples_are_many():
    """The walk finds the package's modules and their examples (guards against an empty walk)."""
    finder = doctest.DocTestFinder()
    count = sum(len(t.examples) for name in MODULES if name != "srlkit.__main__"
                for t in finder.find(importlib.import_module(name)))
    assert len(MODULES) > 60 and count > 100
