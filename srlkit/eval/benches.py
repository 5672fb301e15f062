"""Benchmarks as rows of (id, problem, answer).

A bench spec is one of:
- a local `.jsonl` / `.json` / `.parquet` file with problem and answer columns;
- a Hub preset: `amc23`, `aime24`, `aime25`, `math500`, `minerva` (loaded with
  `datasets.load_dataset`; needs network, fails with one line offline);
- `champ-heldout`: a deterministic slice of the bundled CHAMP problems (offline);
- `gym:chain_sum?test=500`: generated held-out questions from a disjoint seed range,
  deduplicated against the `gym:chain_sum` source's train and validation (offline);
- `validation:DIR`: the RLVR validation split of a decomposed dataset folder (offline);
  plain `validation` means the data folder of the srlkit run being evaluated.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from srlkit.errors import DataError


@dataclass(frozen=True)
class BenchRow:
    id: str
    problem: str
    answer: str
    # the chat messages training used for this problem (a decomposed RLVR table stores them);
    # None: eval renders `rlvr_prompt(problem)` with the templates of the run's data
    prompt: tuple | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class HubPreset:
    path: str
    split: str
    problem: str
    answer: str
    config: str | None = None
    id: str | None = None


# Column maps of the usual math sets as published on the Hub.
PRESETS: dict[str, HubPreset] = {
    "amc23": HubPreset("math-ai/amc23", "test", "question", "answer"),
    "aime24": HubPreset("HuggingFaceH4/aime_2024", "train", "problem", "answer", id="id"),
    "aime25": HubPreset("math-ai/aime25", "test", "problem", "answer", id="id"),
    "math500": HubPreset("HuggingFaceH4/MATH-500", "test", "problem", "answer", id="unique_id"),
    "minerva": HubPreset("math-ai/minervamath", "test", "question", "answer"),
}
ALIASES = {"math-500": "math500", "minerva-math": "minerva", "minervamath": "minerva"}

PROBLEM_COLS = ("problem", "question", "prompt", "input")
# Never `solution`: a worked solution is not a gold answer. `--answer-col solution` takes the
# final \boxed{} of each (rows without one are left out, and counted).
ANSWER_COLS = ("answer", "final_answer", "target")


class Bench(list):
    """A bench's rows, plus `dropped`: why source rows were left out, and how many."""

    def __init__(self, rows=(), dropped: dict[str, int] | None = None):
        super().__init__(rows)
        self.dropped = dict(dropped or {})

    def head(self, limit: int | None) -> Bench:
        return Bench(self[:limit] if limit else self, self.dropped)

# One CHAMP problem in this many (by id hash) is held out; a fixed rule, so it never moves.
CHAMP_HELDOUT_EVERY = 5


@functools.lru_cache(maxsize=1)
def champ_problems() -> tuple[BenchRow, ...]:
    """All bundled CHAMP problems that have a final answer, in file order (the file is 70 MB: cached)."""
    from srlkit.assets import champ_path
    from srlkit.data.gold import champ_answer

    data = json.loads(champ_path().read_text(encoding="utf-8"))["problems"]
    rows = []
    for pid, p in data.items():
        ans, _why = champ_answer(p.get("_answer"))  # prose golds are left out, as in RLVR
        if ans:
            rows.append(BenchRow(str(pid), str(p["_text"]), str(ans)))
    return tuple(rows)


def is_champ_heldout(pid: str) -> bool:
    """Whether a CHAMP id is in the held-out slice (stable across versions and seeds)."""
    h = int(hashlib.sha256(pid.encode("utf-8")).hexdigest()[:8], 16)
    return h % CHAMP_HELDOUT_EVERY == 0


def _pick(cols: list[str], given: str | None, candidates: tuple[str, ...], what: str, src: str) -> str:
    if given:
        if given not in cols:
            raise DataError(f"{src} has no column '{given}'; columns: {', '.join(cols)}")
        return given
    for c in candidates:
        if c in cols:
            return c
    hint = (" (--answer-col solution takes each solution's final \\boxed{} answer)"
            if what == "answer" and "solution" in cols else "")
    raise DataError(f"{src}: no {what} column found (tried {', '.join(candidates)}; columns: "
                    f"{', '.join(cols) or 'none'}); pass --{what}-col COL{hint}")


def _rows_from_records(
    records: list, src: str, problem_col: str | None, answer_col: str | None, id_col: str | None,
    dropped: dict[str, int] | None = None,
) -> Bench:
    """Rows with a problem and a usable answer; every other record counted in `dropped` by reason.
    Columns come from all the records, not the first one."""
    from srlkit.data.answers import answer_from_column

    dropped = dict(dropped or {})
    recs = [r for r in records if isinstance(r, dict)]
    if len(recs) < len(records):
        dropped["not a JSON object"] = dropped.get("not a JSON object", 0) + len(records) - len(recs)
    if not recs:
        raise DataError(f"{src} has no rows")
    cols = list(dict.fromkeys(k for r in recs for k in r))
    pc = _pick(cols, problem_col, PROBLEM_COLS, "problem", src)
    ac = _pick(cols, answer_col, ANSWER_COLS, "answer", src)
    ic = id_col if id_col in cols else ("id" if "id" in cols else None)
    out = []
    for i, r in enumerate(recs):
        problem, answer = r.get(pc), answer_from_column(r.get(ac))
        why = (f"no {pc}" if not isinstance(problem, str) or not problem.strip()
               else f"no answer in {ac}" if answer is None else None)
        if why:
            dropped[why] = dropped.get(why, 0) + 1
            continue
        out.append(BenchRow(str(r[ic]) if ic and r.get(ic) is not None else str(i), problem, answer))
    return Bench(out, dropped)


def _read_records(path: Path) -> tuple[list, dict[str, int]]:
    """A local bench file's records (JSON lines one by one: an unreadable line is counted, not fatal)."""
    from srlkit.fileio import read_text

    if path.suffix == ".parquet":
        import polars as pl

        try:
            return pl.read_parquet(path).to_dicts(), {}
        except Exception as e:  # noqa: BLE001 - any reader failure is a bad file for the user
            raise DataError(f"cannot read bench file {path}: {str(e).splitlines()[0]}") from None
    text = read_text(path, fix="give a .jsonl, .json or .parquet bench file")
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"bench file {path} is not valid JSON ({e.msg}, line {e.lineno})") from None
        if isinstance(data, dict):
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise DataError(f"bench file {path} holds no list of rows")
        return data, {}
    records, bad = [], 0
    for line in text.splitlines():
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                bad += 1
    return records, ({"unreadable line": bad} if bad else {})


def load_local(path: Path, problem_col: str | None = None, answer_col: str | None = None) -> Bench:
    records, dropped = _read_records(path)
    return _rows_from_records(records, str(path), problem_col, answer_col, None, dropped)


def load_hub(name: str) -> list[BenchRow]:
    preset = PRESETS[name]
    try:
        import datasets

        ds = datasets.load_dataset(preset.path, preset.config, split=preset.split)
    except Exception as e:  # noqa: BLE001 - offline, missing, renamed: all one message
        first = (str(e).splitlines() or [type(e).__name__])[0][:160]
        raise DataError(
            f"cannot load bench '{name}' ({preset.path}) from the Hub: {first}; "
            "offline, use a local file, champ-heldout or validation:DIR"
        ) from None
    return _rows_from_records(list(ds), preset.path, preset.problem, preset.answer, preset.id)


def load_validation(data_dir: Path) -> list[BenchRow]:
    """The RLVR validation split of a decompose output: the shards its manifest lists, verified."""
    import polars as pl

    from srlkit import stage

    m = stage.require(data_dir, "decompose", flag="bench validation:", select=lambda r: r.startswith("rlvr/validation-"))
    files = [Path(data_dir) / r for r in ((m.get("splits") or {}).get("rlvr") or {}).get("validation", [])]
    if not files:
        raise DataError(f"{data_dir} has no rlvr/validation-*.parquet; is it a `srlkit decompose` folder?")
    cols = ["id", "problem", "answer"] + (["prompt"] if "prompt" in pl.read_parquet_schema(files[0]) else [])
    df = pl.concat([pl.read_parquet(f, columns=cols) for f in files])
    return [BenchRow(str(r["id"]), r["problem"], str(r["answer"]),
                     tuple(r["prompt"]) if r.get("prompt") else None) for r in df.to_dicts() if r["answer"]]


def data_templates(data_dir: Path | None):
    """The prompt templates a decomposed dataset was built with (its manifest names the file).

    Eval renders plain benches with these, so a model is asked exactly as training asked it.
    """
    from srlkit.data.templates import Templates

    from srlkit import stage

    m = stage.read(data_dir) if data_dir and Path(data_dir).is_dir() else None
    if not m:
        return Templates()
    path = (m.get("config") or {}).get("template")
    if path and not Path(path).is_file():
        raise DataError(f"{data_dir} was decomposed with template '{path}', which is gone; restore it so eval "
                        "prompts match training's")
    return Templates.load(path)


def bench_name(spec: str) -> str:
    """A short label for a spec (file stem, preset name, `validation`)."""
    if spec.startswith("validation"):
        return "validation"
    if spec.startswith("gym:"):
        return spec[4:].split("?")[0]
    p = Path(spec)
    return p.stem if p.suffix in (".jsonl", ".json", ".parquet") else spec.lower()


def load_bench(
    spec: str,
    *,
    problem_col: str | None = None,
    answer_col: str | None = None,
    data_dir: Path | None = None,
    limit: int | None = None,
) -> Bench:
    """Resolve a bench spec to rows (see the module docstring for the forms); `.dropped` says
    which source rows were left out and why."""
    key = ALIASES.get(spec.lower(), spec.lower())
    if key == "champ-heldout":
        rows = [r for r in champ_problems() if is_champ_heldout(r.id)]
    elif key == "validation" or key.startswith("validation:"):
        d = Path(spec.split(":", 1)[1]) if ":" in spec else data_dir
        if d is None:
            raise DataError("bench 'validation' needs a dataset folder: use validation:DIR, or evaluate a run")
        rows = load_validation(d)
    elif key.startswith("gym:"):  # generated held-out questions, never in a gym source's train/validation
        from srlkit.data import gym

        rows = [BenchRow(r["id"], r["problem"], r["answer"]) for r in gym.heldout_rows(gym.parse_spec(spec))]
    elif key in PRESETS:
        rows = load_hub(key)
    elif Path(spec).suffix in (".jsonl", ".json", ".parquet"):
        if not Path(spec).is_file():
            raise DataError(f"bench file '{spec}' not found")
        rows = load_local(Path(spec), problem_col, answer_col)
    else:
        known = ", ".join([*PRESETS, "champ-heldout", "validation[:DIR]"])
        raise DataError(f"unknown bench '{spec}'; use a .jsonl/.parquet file or one of: {known}")
    rows = rows if isinstance(rows, Bench) else Bench(rows)
    if not rows:
        why = ", ".join(f"{k}: {v}" for k, v in sorted(rows.dropped.items()))
        raise DataError(f"bench '{spec}' has no rows with a problem and an answer" + (f" ({why})" if why else ""))
    return rows.head(limit)
