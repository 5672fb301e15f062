"""Final-answer extraction: `\\boxed{...}` (nested braces), `#### N`, or an answer column.

Pure functions with no dependencies, so the rewards code can import them cheaply.
When a text holds several boxed answers, the *last* one wins: solutions usually box
intermediate results before the final one.
"""

from __future__ import annotations

import re

_BOXED_NAMES = ("\\boxed", "\\fbox")
_HASHES = re.compile(r"####\s*([^\n]+)")
_THINK_END = "</think>"


MAX_BOXED_TRIES = 3  # trailing \boxed occurrences tried when the last one is unbalanced


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
                return text[start + 1 : i]
        i += 1
    return None  # unbalanced: no answer rather than a truncated one


def extract_boxed(text: str | None, *, limit: int = 100_000) -> str | None:
    """The content of the last balanced `\\boxed{...}` (or `\\fbox{...}`), nested braces included.

    Linear and bounded: only the last few occurrences are tried, each scan stops after
    `limit` characters, so megabytes of unclosed `\\boxed{` cost milliseconds.

    >>> extract_boxed(r"so \\boxed{\\frac{1}{2}} and")
    '\\\\frac{1}{2}'
    >>> extract_boxed(r"\\boxed{1} then \\boxed{ 2 }"), extract_boxed("none"), extract_boxed(r"\\boxed 7.")
    ('2', None, '7')
    >>> extract_boxed(r"\\boxed{\\{1, 2\\}}"), extract_boxed(r"\\boxed{1"), extract_boxed(r"\\boxed 3.5")
    ('\\\\{1, 2\\\\}', None, '3.5')
    """
    if not text or "\\" not in text:
        return None
    hits: list[int] = []
    for name in _BOXED_NAMES:
        pos = len(text)
        for _ in range(MAX_BOXED_TRIES):
            pos = text.rfind(name, 0, pos)
            if pos < 0:
                break
            hits.append(pos)
    for pos in sorted(hits, reverse=True)[:MAX_BOXED_TRIES]:
        j = pos + (len("\\boxed") if text.startswith("\\boxed", pos) else len("\\fbox"))
        while j < len(text) and text[j] in " \t":
            j += 1
        if j < len(text) and text[j] == "{":
            inner = _balanced_from(text, j, limit)
            if inner is not None and inner.strip():
                return inner.strip()
        elif j < len(text) and text[j - 1] in " \t":  # `\boxed 7`: a bare token
            m = re.match(r"[^\s$]+", text[j : j + 300])
            if m and m.group(0).rstrip(".,;"):
                return m.group(0).rstrip(".,;")
    return None


def last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The last match of `pattern` in `text` (answers come last in a solution).

    >>> last_match(re.compile(r"\\d"), "a1b2").group(0)
    '2'
    """
    found = None
    for found in pattern.finditer(text):  # keeps the last one
        pass
    return found


def extract_hashes(text: str | None) -> str | None:
    """The answer after a GSM8K-style `#### N` marker (commas in numbers removed).

    >>> extract_hashes("48/2 = 24\\n#### 1,024")
    '1024'
    """
    if not text:
        return None
    m = last_match(_HASHES, text)
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
