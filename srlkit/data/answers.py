"""Final-answer extraction: `\\boxed{...}` (nested braces), `#### N`, or an answer column.

Pure functions with no dependencies, so the rewards code can import them cheaply.
When a text holds several boxed answers, the *last* one wins: solutions usually box
intermediate results before the final one.
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*")
_HASHES = re.compile(r"####\s*([^\n]+)")
_THINK_END = "</think>"


def _braced(text: str, start: int) -> str | None:
    """The content of the brace group opening at `text[start]` (which must be '{')."""
    depth = 0
    i = start
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2  # an escaped char (\\{, \\}) never opens or closes a group
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : i]
        i += 1
    return None  # unbalanced: no answer rather than a truncated one


def extract_boxed(text: str | None) -> str | None:
    """The content of the last `\\boxed{...}` (or `\\fbox{...}`), nested braces included.

    >>> extract_boxed(r"so \\boxed{\\frac{1}{2}} and")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"\\boxed{1} then \\boxed{ 2 }"), extract_boxed("none"), extract_boxed(r"\\boxed 7.")
    ('2', None, '7')
    """
    if not text or "\\" not in text:
        return None
    found = None
    for m in _BOXED.finditer(text):
        end = m.end()
        if end < len(text) and text[end] == "{":
            inner = _braced(text, end)
        else:  # `\boxed 7`: a bare token
            tok = re.match(r"[^\s$.,;]+", text[end:])
            inner = tok.group(0) if tok else None
        if inner is not None and inner.strip():
            found = inner.strip()
    return found


def extract_hashes(text: str | None) -> str | None:
    """The answer after a GSM8K-style `#### N` marker (commas in numbers removed).

    >>> extract_hashes("48/2 = 24\\n#### 1,024")
    '1024'
    """
    if not text:
        return None
    m = None
    for m in _HASHES.finditer(text):
        pass
    if m is None:
        return None
    ans = m.group(1).strip()
    if re.fullmatch(r"-?[\d,]+(?:\.\d+)?", ans):
        ans = ans.replace(",", "")
    return ans or None


def strip_thinking(text: str) -> str:
    """Drop a reasoning trace: everything up to the last `</think>`.

    >>> strip_thinking("<think>hmm</think>\\n1. Do it.")
    '1. Do it.'
    """
    if _THINK_END in text:
        text = text.rsplit(_THINK_END, 1)[1]
    return text.strip()


def extract_answer(text: str | None) -> str | None:
    """The final answer of a solution or completion: `\\boxed{}` first, then `#### N`.

    >>> extract_answer(r"<think>\\boxed{3}</think> so \\boxed{4}"), extract_answer("#### 12"), extract_answer("no")
    ('4', '12', None)
    """
    if not text:
        return None
    return extract_boxed(text) or extract_hashes(text)


def answer_from_column(value: object) -> str | None:
    """A usable answer from an answer column: boxed/#### when present, else a short one-line value.

    Long free text without a marker (a full reference solution) is not an answer.

    >>> answer_from_column(42), answer_from_column(" 1/2 "), answer_from_column(r"It is \\boxed{5}.")
    ('42', '1/2', '5')
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        return None
    found = extract_answer(value)
    if found:
        return found
    v = value.strip()
    if v and "\n" not in v and len(v) <= 200:
        return v
    return None
