"""Stage 2: map a source's columns onto (problem, solution, answer, id) and validate them.

A preset names a known schema, checked against the dataset's Hub card at `revision`
(the default `--revision` for a Hub load), with the default Hub `config`. `--problem-col`
etc. override a preset's columns. A preset may pick the solution from the row (`select`,
e.g. OpenR1's first verified generation) and the gold answer (`gold`, e.g. s1K's rules).
Validation turns every malformed field into a distinct reject reason
(`missing_field:X`, `null_field:X`, `non_string_field:X`, `empty_field:X`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from srlkit.data.answers import answer_from_column, extract_answer, strip_thinking
from srlkit.data.gold import champ_gold, openr1_solution, s1k_gold, s1k_solution
from srlkit.data.sources import Reject
from srlkit.errors import ConfigError, DataError


@dataclass(frozen=True)
class Preset:
    problem: str = "problem"
    solution: str = "solution"
    answer: str | None = "answer"
    id: str | None = "id"
    transform: Callable[[dict], dict] | None = None  # reshape a raw row first (CHAMP)
    clean: Callable[[str], str] | None = None  # clean the solution text (strip traces, calculators)
    note: str = ""
    select: Callable[[dict], str | Reject] | None = None  # the solution text from the whole row
    gold: Callable[[dict], tuple[str | None, str]] | None = None  # (answer, why there is none)
    config: str | None = None  # the Hub config (subset) to load when --subset is not given
    revision: str | None = None  # the Hub revision the schema was checked against (default --revision)


def _champ_row(row: dict) -> dict:
    sol = row.get("solution")
    steps = sol.get("steps") if isinstance(sol, dict) else None
    texts = [s.get("_text") for s in steps if isinstance(s, dict)] if isinstance(steps, list) else None
    return {"id": row.get("identifier"), "problem": row.get("_text"), "solution": texts,
            "answer": row.get("_answer")}


_GSM_CALC = re.compile(r"<<[^<>]*>>")
_GSM_FINAL = re.compile(r"\n?####[^\n]*$")


def _gsm8k_clean(text: str) -> str:
    return _GSM_FINAL.sub("", _GSM_CALC.sub("", text)).strip()


PRESETS: dict[str, Preset] = {
    "default": Preset(),
    "s1k": Preset("question", "deepseek_attempt", "solution", None, clean=strip_thinking, select=s1k_solution,
                  gold=s1k_gold, config="default", revision="96c411f1fe4c49d20f0e2a1565f61e1a28b0b84d",
                  note="simplescaling/s1K-1.1: R1's attempt; gold from `solution`, else from the attempt "
                       "only when deepseek_grade is Yes"),
    "openr1": Preset("problem", "generations", "answer", "uuid", clean=strip_thinking, select=openr1_solution,
                     config="default", revision="e4e141ec9dea9f8326f4d347be56105859b2bd68",
                     note="open-r1/OpenR1-Math-220k: R1's text after </think> from the first generation "
                          "that math-verify marked correct"),
    "numina": Preset("problem", "solution", None, None, config="default",
                     revision="78193828787c02a8eb8a8582166f3f0b42644797",
                     note="AI-MO/NuminaMath-CoT: answer from \\boxed{} in the solution"),
    "gsm8k": Preset("question", "answer", "answer", None, clean=_gsm8k_clean, config="main",
                    revision="740312add88f781978c0658806c59bc2815b9866",
                    note="openai/gsm8k: answer after '#### '; calculator annotations removed"),
    "champ": Preset("problem", "solution", "answer", "id", transform=_champ_row, gold=champ_gold,
                    note="CHAMP: prose final answers reduced to their value, else left out of RLVR"),
    "messages": Preset("messages", "messages", None, None,
                       note="chat rows: problem = first user turn, solution = assistant turn(s)"),
}


def detect_preset(columns: list[str], steps: str = "auto") -> str | None:
    """The preset a source's columns call for when none is given (None: the default columns).

    A `messages` column without a `problem` column is the chat / agent layout.

    >>> detect_preset(["messages"]), detect_preset(["id", "messages", "tools"]), detect_preset(["problem", "solution"])
    ('messages', 'messages', None)
    """
    have = set(columns)
    if "messages" in have and ("problem" not in have or steps == "turns"):
        return "messages"
    return None


@dataclass(frozen=True)
class Columns:
    """The resolved column mapping for one run."""

    problem: str
    solution: str
    answer: str | None
    id: str | None
    preset: Preset

    def as_dict(self) -> dict:
        return {"problem": self.problem, "solution": self.solution, "answer": self.answer, "id": self.id}


def get_preset(name: str | None) -> Preset:
    if name is None:
        return PRESETS["default"]
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name]


def resolve(preset_name: str | None, columns: list[str], *, problem_col=None, solution_col=None,
            answer_col=None, id_col=None) -> Columns:
    """Pick the columns and check that they exist in the source (one-line error otherwise).

    Explicit flags must exist; a preset's optional columns (answer, id) may be absent.
    """
    preset = get_preset(preset_name)
    have = set(columns)
    listed = ", ".join(columns) if columns else "(none)"

    def pick(flag, default, required, what):
        name = flag or default
        if name is None:
            return None
        if name not in have:
            if flag or required:
                known = ", ".join(sorted(set(PRESETS) - {"default"}))
                hint = "" if flag else f"; pass --{what}-col COL, or --preset ({known})"
                raise DataError(f"column '{name}' ({what}) not in the source; its columns are: {listed}{hint}")
            return None
        return name

    return Columns(
        problem=pick(problem_col, preset.problem, True, "problem"),
        solution=pick(solution_col, preset.solution, True, "solution"),
        answer=pick(answer_col, preset.answer, False, "answer"),
        id=pick(id_col, preset.id, False, "id"),
        preset=preset,
    )


@dataclass
class Fields:
    problem: str
    solution: str | list  # text, a list of given steps, or chat messages
    answer: str | None
    tid: str | None
    no_answer: str = ""  # why there is no gold answer (the preset's rule), for the RLVR reject


def _is_messages(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(m, dict) and "role" in m for m in v)


def _text_field(row: dict, col: str, allow_list: bool) -> str | list | Reject:
    if col not in row:
        return Reject(f"missing_field:{col}")
    v = row[col]
    if v is None:
        return Reject(f"null_field:{col}")
    if allow_list and isinstance(v, list):
        if _is_messages(v):
            return v
        if all(isinstance(s, str) for s in v):
            v = [s.strip() for s in v if s and s.strip()]
            return v if v else Reject(f"empty_field:{col}")
        return Reject(f"non_string_field:{col}", "a list that is neither steps nor chat messages")
    if not isinstance(v, str):
        return Reject(f"non_string_field:{col}", f"a {type(v).__name__}")
    if not v.strip():
        return Reject(f"empty_field:{col}")
    return v


def extract(row: dict, cols: Columns) -> Fields | Reject:
    """One row's fields, or the reason it cannot be used."""
    if cols.preset.transform:
        row = cols.preset.transform(row)
    problem = _text_field(row, cols.problem, allow_list=True)
    if isinstance(problem, Reject):
        return problem
    if isinstance(problem, list):  # chat: the first user message is the problem
        firsts = [m.get("content") for m in problem if isinstance(m, dict) and m.get("role") == "user"]
        problem = firsts[0] if firsts and isinstance(firsts[0], str) and firsts[0].strip() else None
        if problem is None:
            return Reject(f"empty_field:{cols.problem}", "no user message")
    if cols.preset.select is not None and cols.solution == cols.preset.solution:
        solution = cols.preset.select(row)
    else:
        solution = _text_field(row, cols.solution, allow_list=True)
    if isinstance(solution, Reject):
        return solution
    if isinstance(solution, str) and cols.preset.clean:
        solution = cols.preset.clean(solution)
        if not solution:
            return Reject(f"empty_field:{cols.solution}", "empty after cleaning")
    no_answer = ""
    if cols.preset.gold is not None and cols.answer == cols.preset.answer:
        answer, no_answer = cols.preset.gold(row)
    else:
        answer = answer_from_column(row.get(cols.answer)) if cols.answer else None
        if answer is None and isinstance(solution, str):
            answer = extract_answer(solution)
    tid = None
    if cols.id:
        if cols.id not in row:  # other rows of the source have it: this one cannot be told apart
            return Reject(f"missing_field:{cols.id}")
        v = row[cols.id]
        if v is None or (isinstance(v, str) and not v.strip()):
            return Reject(f"null_field:{cols.id}" if v is None else f"empty_field:{cols.id}")
        if not isinstance(v, (str, int)) or isinstance(v, bool):
            return Reject(f"non_string_field:{cols.id}", f"a {type(v).__name__}")
        tid = str(v).strip()
    return Fields(problem.strip(), solution, answer, tid, no_answer)
