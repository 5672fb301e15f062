"""Per-dataset rules for the expert text and the gold answer (used by `presets.py`).

OpenR1-Math-220k: `solution` is the human NuminaMath solution; R1's traces are in
`generations`, with `correctness_math_verify` per generation. The expert text is the
post-`</think>` part of the first generation math-verify marked correct.

s1K-1.1: 370 of R1's 1,000 attempts are graded wrong (`deepseek_grade`), so the gold
answer comes from `solution` (a short value, its `\\boxed{}`, or an "Answer: X" line),
and from R1's attempt only when that attempt is graded "Yes". A row with neither has no
trustworthy gold: it stays in SRL and is left out of RLVR with the reason.
"""

from __future__ import annotations

import re

from srlkit.data.answers import extract_answer, extract_boxed, last_match, strip_thinking
from srlkit.data.sources import Reject

S1K_REVISION = "96c411f1fe4c49d20f0e2a1565f61e1a28b0b84d"
SHORT_ANSWER = 100  # a one-line solution up to this long is the answer itself
_ANSWER_LINE = re.compile(
    r"^[ \t]*(?:\*\*)?(?:final[ \t]+)?answer(?:\*\*)?[ \t]*[:：][ \t]*(?:\*\*)?[ \t]*(\S[^\n]*?)[ \t]*$",
    re.IGNORECASE | re.MULTILINE)
_THINK_END = "</think>"


def _text(row: dict, col: str) -> str | Reject:
    if col not in row:
        return Reject(f"missing_field:{col}")
    v = row[col]
    if v is None:
        return Reject(f"null_field:{col}")
    if isinstance(v, list):
        return Reject(f"non_string_field:{col}", f"a list: s1K-1.1 before revision {S1K_REVISION[:8]} stored "
                                                 f"lists; pass --revision {S1K_REVISION}")
    if not isinstance(v, str):
        return Reject(f"non_string_field:{col}", f"a {type(v).__name__}")
    return v if v.strip() else Reject(f"empty_field:{col}")


def s1k_solution(row: dict) -> str | Reject:
    """R1's attempt (`deepseek_attempt`), which must be one string."""
    return _text(row, "deepseek_attempt")


def answer_line(text: str) -> str | None:
    """The value of the last "Answer: X" line (GPQA explanations end with one).

    >>> answer_line("Long explanation.\\n\\nAnswer: C"), answer_line("**Answer:** $12$."), answer_line("none")
    ('C', '12', None)
    """
    m = last_match(_ANSWER_LINE, text)
    if m is None:
        return None
    return m.group(1).strip().rstrip(".").strip().strip("$").strip() or None


def gold_from_solution(solution: object) -> str | None:
    """A gold answer written in a reference solution: its last `\\boxed{}`, an "Answer: X" line, or
    the whole solution when it is one short line (AIME's "275")."""
    if not isinstance(solution, str) or not solution.strip():
        return None
    v = solution.strip()
    found = extract_boxed(v) or answer_line(v)
    if found:
        return found
    return v if "\n" not in v and len(v) <= SHORT_ANSWER else None


def s1k_gold(row: dict) -> tuple[str | None, str]:
    """(gold answer, "") or (None, why there is no trustworthy one).

    >>> s1k_gold({"solution": "Answer: B", "deepseek_grade": "No"})
    ('B', '')
    >>> s1k_gold({"solution": "", "deepseek_attempt": "so \\\\boxed{3}", "deepseek_grade": "No"})[0] is None
    True
    """
    found = gold_from_solution(row.get("solution"))
    if found:
        return found, ""
    sol = row.get("solution")
    what = "solution is empty" if not isinstance(sol, str) or not sol.strip() else \
        "solution has no short value, \\boxed{} or 'Answer:' line"
    grade = row.get("deepseek_grade")
    if not (isinstance(grade, str) and grade.strip().lower() == "yes"):
        return None, f"{what}, and R1's attempt is graded {grade!r}, not 'Yes'"
    attempt = row.get("deepseek_attempt")
    found = extract_answer(strip_thinking(attempt)) if isinstance(attempt, str) else None
    if found:
        return found, ""
    return None, f"{what}, and R1's attempt (graded 'Yes') has no \\boxed{{}} answer"


def openr1_solution(row: dict) -> str | Reject:
    """R1's text after `</think>` in the first generation that math-verify marked correct."""
    gens, ok = row.get("generations"), row.get("correctness_math_verify")
    for col, v in (("generations", gens), ("correctness_math_verify", ok)):
        if v is None:
            return Reject(f"missing_field:{col}" if col not in row else f"null_field:{col}")
        if not isinstance(v, list):
            return Reject(f"non_string_field:{col}", f"a {type(v).__name__}, expected a list")
    for g, correct in zip(gens, ok):
        if correct is True and isinstance(g, str) and _THINK_END in g:
            text = g.rsplit(_THINK_END, 1)[1].strip()
            if text:
                return text
    return Reject("no_correct_generation", f"{len(gens)} generations, {sum(c is True for c in ok)} marked "
                                           "correct by math-verify, none with text after </think>")


# CHAMP: 118 of the 270 final answers hold words. Phrasings that wrap one value are reduced
# to it; answers that stay prose ("Yes", "376 and 625", "At least 1 number") have no value a
# verifier can compare, so they are left out of RLVR (and champ-heldout) with the reason.
_CHAMP_REWRITES = (
    (re.compile(r"^(.+?),?\s+or (?:equivalently|an equivalent form such as)\s+(.+)$", re.I), 2),
    (re.compile(r"^(.+?),?\s+or approximately\s+.+$", re.I), 1),
    (re.compile(r"^(.+?)\s*\((?:i\.e\.|none|no |all )[^()]*(?:\([^()]*\)[^()]*)*\)$", re.I), 1),
    (re.compile(r"^(.+?) is the only possible value$", re.I), 1),
    (re.compile(r"^the limit exists and is equal to (.+)$", re.I), 1),
    (re.compile(r"^the only possible value for the limit is (.+)$", re.I), 1),
    (re.compile(r"^([+-]?\d+) [a-z]+$", re.I), 1),  # "98 values", "2 inequalities", "0 roots"
)
_MATH_WORDS = re.compile(r"\b(?:sqrt|floor|ceil|sum|prod|log|ln|exp|sin|cos|tan|pi|binom|mod|gcd|lcm)\b|\\[a-zA-Z]+")
# a word of 3+ letters, or a short English one ("xy" is a product of variables, "or" is prose)
_WORD = re.compile(r"[A-Za-z]{3,}|\b(?:or|no|is|of|at|to|if|an|as)\b", re.I)


def champ_gold(row: dict) -> tuple[str | None, str]:
    """A CHAMP final answer reduced to the value it states, or (None, why it cannot be verified).

    >>> champ_gold({"answer": "C(10, 5), or equivalently 252"}), champ_gold({"answer": "98 values"})
    (('252', ''), ('98', ''))
    >>> champ_gold({"answer": "5/14, or approximately 35.7%"}), champ_gold({"answer": "100 (i.e., all values)"})
    (('5/14', ''), ('100', ''))
    >>> champ_gold({"answer": "Yes"})[0], champ_gold({"answer": "sqrt(3)"})
    (None, ('sqrt(3)', ''))
    """
    raw = row.get("answer")
    if not isinstance(raw, str) or not raw.strip():
        return None, "no final answer"
    a = raw.strip().rstrip(".")
    for _ in range(3):  # rewrites can nest: "X (i.e., ...), or equivalently Y"
        before = a
        for pattern, group in _CHAMP_REWRITES:
            m = pattern.match(a)
            if m:
                a = m.group(group).strip().rstrip(".")
        if a == before:
            break
    if _WORD.search(_MATH_WORDS.sub("", a)):
        return None, f"prose answer, no single value to verify: {raw[:120]!r}"
    return a, ""


def champ_answer(raw: str | None) -> tuple[str | None, str]:
    """A CHAMP final answer as a verifiable value, or (None, why not): for RLVR and champ-heldout.

    "C(10, 5), or equivalently 252" -> "252", "98 values" -> "98"; prose such as "Yes" or
    "376 and 625" has no single value math-verify can compare (see `champ_gold`).
    """
    return champ_gold({"answer": raw})
