"""Final-answer extraction for RLVR: `\\boxed{...}`, `#### N`, or "the answer is ...".

All three scans are linear in the text and bounded, so a megabyte of adversarial LaTeX
costs milliseconds here; the expensive part (symbolic checking) runs in
`srlkit.rewards.verify_pool` under a hard time limit.
"""

from __future__ import annotations

import re

_BOXED = ("\\boxed", "\\fbox")
_HASH = re.compile(r"^[ \t]*####[ \t]*(\S[^\n]*)$", re.MULTILINE)
_ANSWER_IS = re.compile(r"answer is[ \t]*:?[ \t]*([^\n]{1,300})", re.IGNORECASE)
MAX_BOXED_TRIES = 3  # how many trailing \boxed occurrences to try when the last is unbalanced


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


def _balanced_from(text: str, start: int, limit: int) -> str | None:
    """The content of the brace group opening at `text[start] == '{'`, or None if unbalanced."""
    depth, i, end = 0, start, min(len(text), start + limit)
    while i < end:
        c = text[i]
        if c == "\\":  # \{ and \} are literal braces, not grouping
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1:i]
        i += 1
    return None


def extract_boxed(text: str, *, limit: int = 100_000) -> str | None:
    """The content of the last balanced `\\boxed{...}` (nested braces allowed), else None.

    >>> extract_boxed(r"so \\boxed{\\frac{1}{2}} and finally \\boxed{x^{2}}")
    'x^{2}'
    >>> extract_boxed(r"\\boxed 5"), extract_boxed(r"\\boxed{\\{1, 2\\}}"), extract_boxed(r"\\boxed{1")
    ('5', '\\\\{1, 2\\\\}', None)
    """
    hits: list[int] = []
    for name in _BOXED:
        pos = len(text)
        for _ in range(MAX_BOXED_TRIES):
            pos = text.rfind(name, 0, pos)
            if pos < 0:
                break
            hits.append(pos)
    for pos in sorted(hits, reverse=True)[:MAX_BOXED_TRIES]:
        j = pos + (len("\\boxed") if text.startswith("\\boxed", pos) else len("\\fbox"))
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            inner = _balanced_from(text, j, limit)
            if inner is not None:
                return inner.strip()
        elif j > pos and j < len(text) and text[j - 1] == " ":  # `\boxed 5`
            m = re.match(r"[^\s$]+", text[j:j + 300])
            if m:
                return m.group(0)
    return None


def extract_hash(text: str) -> str | None:
    """The answer after the last `#### ` line (GSM8K style).

    >>> extract_hash("so 3 + 4 = 7\\n#### 7")
    '7'
    """
    last = None
    for last in _HASH.finditer(text):
        pass
    return last.group(1).strip().rstrip(".") or None if last else None


def extract_answer_is(text: str) -> str | None:
    """The phrase after the last "the answer is".

    >>> extract_answer_is("Thus the final answer is: $42$.")
    '42'
    """
    last = None
    for last in _ANSWER_IS.finditer(text):
        pass
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
