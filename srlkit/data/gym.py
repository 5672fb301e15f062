"""Procedural SFT sources from reasoning-gym, with expert steps and disjoint held-out splits.

`gym:chain_sum`, a learnable task for small models on a CPU: reasoning-gym's `chain_sum` questions (its own
wording, e.g. "State the final answer to the following arithmetic problem: 21 + 62 - 44 =")
with a step-by-step expert solution, one step per partial result, and a last step that
states the answer in the `\\boxed{}` form the math reward checks:

    21 + 62 = 83
    83 - 44 = 39
    The answer is \\boxed{39}.

`gym:gsm_symbolic`, the paper's regime for a small model: grade-school word problems (GSM8K
templates with fresh numbers) with reasoning-gym's worked solution (`answer_cot`) as the expert
trace, one step per line (a numbered block with its bullets is one step), then the same answer
step. The steps restate quantities in words and compute them; none can be copied from the question,
and each solution is written in its own template's style, so exact imitation is hard.

Splits come from disjoint seed ranges and are deduplicated against each other by question:
`test` is generated first (a fixed reserve of `TEST_RESERVE` questions), then `validation`
skips test questions, then `train` skips both. reasoning-gym seeds item `i` with `seed + i`,
so the ranges are `SPAN` apart and never overlap for any size below `SPAN`.

Spec: `gym:chain_sum?train=4000&validation=200&seed=0&terms=3-4&digits=1-2`
(every option optional; the values shown are the defaults). `srlkit decompose gym:chain_sum`
reads train and validation rows (each row carries its `split`); `srlkit eval --bench
gym:chain_sum?test=500` reads the first 500 test questions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl

from srlkit.errors import DataError

SPAN = 10_000_000  # seed distance between splits (reasoning-gym seeds item i with seed + i)
TEST_RESERVE = 5_000  # test questions reserved (and kept out of train/validation)
SPLIT_OFFSET = {"test": 0, "validation": 1, "train": 2}
TASKS = ("chain_sum", "gsm_symbolic")


@dataclass(frozen=True)
class GymSpec:
    task: str = "chain_sum"
    train: int = 4000
    validation: int = 200
    test: int = 500
    seed: int = 0
    min_terms: int = 3
    max_terms: int = 4
    min_digits: int = 1
    max_digits: int = 2

    @property
    def name(self) -> str:
        if self.task != "chain_sum":
            return f"{self.task}-s{self.seed}"
        return f"{self.task}-t{self.min_terms}{self.max_terms}-d{self.min_digits}{self.max_digits}-s{self.seed}"


def _range(text: str, what: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise DataError(f"gym option {what}={text!r}: give a number or a range like 3-4") from None
    if not 1 <= a <= b:
        raise DataError(f"gym option {what}={text!r}: need 1 <= low <= high")
    return a, b


def parse_spec(spec: str) -> GymSpec:
    """`gym:TASK?key=value&...` -> GymSpec (one-line errors for typos).

    >>> parse_spec("gym:chain_sum?train=10&terms=2-3").max_terms
    3
    """
    body = spec[len("gym:"):] if spec.startswith("gym:") else spec
    task, _, query = body.partition("?")
    if task not in TASKS:
        raise DataError(f"unknown gym task '{task}'; known: {', '.join(TASKS)} (e.g. gym:chain_sum?train=4000)")
    out = GymSpec(task=task)
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in ("train", "validation", "test", "seed"):
            try:
                n = int(value)
            except ValueError:
                raise DataError(f"gym option {key}={value!r} is not a whole number") from None
            if n < 0 or (key != "seed" and n >= SPAN) or (key == "test" and n > TEST_RESERVE):
                raise DataError(f"gym option {key}={n} is out of range")
            out = replace(out, **{key: n})
        elif key in ("terms", "digits") and out.task != "chain_sum":
            raise DataError(f"gym option '{key}' is for gym:chain_sum only")
        elif key == "terms":
            lo, hi = _range(value, key)
            out = replace(out, min_terms=max(2, lo), max_terms=max(2, hi))
        elif key == "digits":
            lo, hi = _range(value, key)
            out = replace(out, min_digits=lo, max_digits=hi)
        else:
            raise DataError(f"unknown gym option '{key}'; known: train, validation, test, seed, terms, digits")
    return out


def solve_steps(expression: str) -> tuple[list[str], int]:
    """Left-to-right partial results of `a op b op c ...` as steps, plus the result.

    >>> solve_steps("21 + 62 - 44")
    (['21 + 62 = 83', '83 - 44 = 39'], 39)
    """
    parts = expression.split()
    acc = int(parts[0])
    steps = []
    for op, tok in zip(parts[1::2], parts[2::2]):
        nxt = acc + int(tok) if op == "+" else acc - int(tok)
        steps.append(f"{acc} {op} {tok} = {nxt}")
        acc = nxt
    return steps, acc


def answer_step(answer: int | str) -> str:
    return f"The answer is \\boxed{{{answer}}}."


def cot_steps(cot: str) -> list[str]:
    """A worked solution's lines as steps: the `#### N` line dropped, a numbered line together
    with the bullet lines under it as one step, blank lines ignored.

    >>> cot_steps("He has 3*2=6 apples.\\nSo 6+1=7.\\n#### 7")
    ['He has 3*2=6 apples.', 'So 6+1=7.']
    >>> cot_steps("1. Start:\\n   \\u2022 a = 2\\n   \\u2022 b = 3\\n2. Sum: 5\\n#### 5")
    ['1. Start:\\n   \\u2022 a = 2\\n   \\u2022 b = 3', '2. Sum: 5']
    """
    steps: list[str] = []
    for line in cot.splitlines():
        if not line.strip() or line.lstrip().startswith("####"):
            continue
        if steps and line[:1].isspace() and line.strip()[:1] in ("\u2022", "-", "*"):
            steps[-1] += "\n" + line.rstrip()
        else:
            steps.append(line.strip())
    return steps


def _solve(task: str, item: dict) -> tuple[list[str], str]:
    """The expert steps (without the answer step) and the answer of one generated item."""
    if task == "chain_sum":
        steps, result = solve_steps(item["metadata"]["expression"])
        if str(result) != str(item["answer"]):  # our steps must agree with the generator
            raise DataError(f"gym:{task}: step arithmetic disagrees with the generator on {item['question']!r}")
        return steps, str(result)
    return cot_steps(item["metadata"]["answer_cot"]), str(item["answer"]).strip()


def _create(spec: GymSpec, size: int, seed: int):
    import reasoning_gym

    if spec.task == "chain_sum":
        return reasoning_gym.create_dataset(spec.task, size=size, seed=seed, min_terms=spec.min_terms,
                                            max_terms=spec.max_terms, min_digits=spec.min_digits,
                                            max_digits=spec.max_digits)
    return reasoning_gym.create_dataset(spec.task, size=size, seed=seed)


def _items(spec: GymSpec, split: str, count: int, skip: frozenset[str]) -> list[dict]:
    out: list[dict] = []
    seen = set(skip)
    base = spec.seed * 3 * SPAN + SPLIT_OFFSET[split] * SPAN
    batch = max(64, count)
    start = 0
    while len(out) < count:
        if start + batch > SPAN:
            raise DataError(f"gym:{spec.task}: cannot find {count} distinct {split} questions; "
                            "widen terms/digits or ask for fewer")
        for item in _create(spec, batch, base + start):
            q = item["question"]
            if q in seen:
                continue
            seen.add(q)
            steps, result = _solve(spec.task, item)
            idx = len(out)
            out.append({"id": f"{spec.name}-{split}-{idx:06d}", "problem": q,
                        "solution": steps + [answer_step(result)], "answer": str(result), "split": split})
            if len(out) == count:
                break
        start += batch
    return out


@functools.lru_cache(maxsize=8)
def _splits(spec: GymSpec) -> dict[str, list[dict]]:
    test = _items(spec, "test", TEST_RESERVE, frozenset())
    test_q = frozenset(r["problem"] for r in test)
    val = _items(spec, "validation", spec.validation, test_q)
    train = _items(spec, "train", spec.train, test_q | {r["problem"] for r in val})
    return {"test": test, "validation": val, "train": train}


def source_rows(spec: GymSpec) -> list[dict]:
    """Train then validation rows, each with its `split` (what decompose reads)."""
    s = _splits(spec)
    return s["train"] + s["validation"]


def heldout_rows(spec: GymSpec) -> list[dict]:
    """The first `spec.test` held-out questions (never in train or validation)."""
    return _splits(spec)["test"][: spec.test]
