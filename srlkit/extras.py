"""Optional parts of srlkit and the one-line error when one is missing.

`pip install srlkit` is the data side (decompose, inspect, push of datasets). Training,
evaluation and reports need the `train` extra, `srlkit embed` the `embed` extra, sentence
segmentation the `spacy` extra and vLLM rollouts the `vllm` extra; `srlkit[all]` has every
CPU part. Commands check their extra before importing it, so a missing one is one line that
names the extra, never an ImportError traceback.
"""

from __future__ import annotations

import importlib.util

from srlkit.errors import SrlkitError

EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("torch", "transformers", "peft", "accelerate", "math_verify", "matplotlib"),
    "embed": ("torch", "sentence_transformers"),
    "spacy": ("spacy",),
    "vllm": ("vllm",),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here.

    >>> missing("spacy") in ([], ["spacy"])
    True
    """
    return [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]


def require(extra: str, what: str) -> None:
    """Raise a one-line error naming the extra when `what` cannot run without it."""
    gone = missing(extra)
    if gone:
        raise SrlkitError(f"{what} needs the '{extra}' extra ({', '.join(gone)} not installed): "
                          f"pip install 'srlkit[{extra}]'")
