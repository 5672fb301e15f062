"""Final-answer extraction for RLVR: `\\boxed{...}`, `#### N`, or "the answer is ...".

All three scans are linear in the text and bounded, so a megabyte of adversarial LaTeX
costs milliseconds here; the expensive part (symbolic checking) runs in
`srlkit.rewards.verify_pool` under a hard time limit.
"""

from __future__ import annotations

import re

from srlkit.data.answers import (  # the one linear, bounded implementation
    extract_boxed,
    last_match,
)

_HASH = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*)$", re.MULTILINE)
_ANSWER_IS = re.compile(r"answer is[ \t]*:?[ \t]*([^\n]{1,300})", re.IGNORECASE)


def strip_think(text: str) -> str:
    """Drop `<think>...</think>` blocks (answers in a monologue do not count), and an unclosed tail.

    >>> strip_think("<think>maybe 3</think>So \\\\boxed{4}.")
    'So \\\\boxed{4}.'
    """
    # A manual scan, not a regex: `<think>.*?</think>` is quadratic on many unclosed tags.
    parts, pos = [], 0
    while True:
        start = text.find("<think>", pos)
        if start < 0:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        end = text.find("</think>", start)
        if end < 0:
            break
        pos = end + len("</think>")
    return "".join(parts)


def extract_hash(text: str) -> str | None:
    """The answer after the last `#### ` line (GSM8K style).

    >>> extract_hash("so 3 + 4 = 7\\n#### 7")
    '7'
    """
    last = last_match(_HASH, text)
    return last.group(1).strip().rstrip(".") or None if last else None


def extract_answer_is(text: str) -> str | None:
    """The phrase after the last "the answer is".

    >>> extract_answer_is("Thus the final answer is: $42$.")
    '42'
    """
    last = last_match(_ANSWER_IS, text)
    if not last:
        return None
    ans = last.group(1).strip().rstrip(".").strip().strip("$").strip()
    return ans or None


def extract_answer(text: str) -> str | None:
    """The final answer of a completion: `\\boxed{}` first, then `####`, then "the answer is".

    Text inside think blocks is ignored.

    >>> extract_answer("<think>\\\\boxed{3}?</think> The answer is \\\\boxed{\\\\frac{a}{b}}.")
    '\\\\frac{a}{b}'
    >>> extract_answer("no answer here") is None
    True
    """
    text = strip_think(text)
    return extract_boxed(text) or extract_hash(text) or extract_answer_is(text)
