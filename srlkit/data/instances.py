"""Stage 4: turn one segmented trajectory into SRL instances and an RLVR row.

Rows are appended column-wise into `Table` buffers (no per-row objects). `decompose`
expands text trajectories with polars instead (`expand.py`, same values); `add_srl` is
its reference and the path for templates polars cannot render, `add_agent` serves `turns`.

Targets (`--targets`): `all` (default) makes every step a target, so a trajectory of
N steps gives N instances and step 1 is predicted from the problem alone;
`skip-first` gives the paper's N-1 instances (its worked example: step 1 is context,
step 2 the first target); `skip-last` drops the final step instead.
The target text is the expert step as written (`**Title** body`), or only the body
when `--title-hint` already shows the title in the prompt.
"""

from __future__ import annotations

from srlkit.data.templates import Templates, rlvr_prompt, srl_messages, srl_prompt
from srlkit.data.turns import Turn, context_entries
from srlkit.schema import step_hash


class Table:
    """Column-wise row buffer for one output table."""

    def __init__(self, columns: dict[str, str]):
        self.cols: dict[str, list] = {c: [] for c in columns}

    def add(self, **row) -> None:
        for c, values in self.cols.items():
            values.append(row[c])

    def __len__(self) -> int:
        return len(next(iter(self.cols.values())))


def target_range(n: int, targets: str) -> range:
    """Indices (0-based) of the steps that become targets.

    >>> list(target_range(3, "all")), list(target_range(3, "skip-first")), list(target_range(3, "skip-last"))
    ([0, 1, 2], [1, 2], [0, 1])
    """
    if targets == "skip-first":
        return range(1, n)
    if targets == "skip-last":
        return range(0, n - 1)
    return range(n)


def full_step(body: str, title: str | None) -> str:
    return f"**{title}** {body}" if title else body


def add_srl(table: Table, *, tid: str, source_row: int, problem: str, steps: list[str],
            titles: list[str | None], answer: str | None, strategy: str, targets: str,
            title_hint: bool, templates: Templates) -> int:
    """Append the SRL instances of one text trajectory; returns how many.

    The hot loop of decompose: columns are appended directly and the numbered context
    grows by one line per step instead of being re-joined for every target.
    """
    shown = [full_step(b, t) for b, t in zip(steps, titles)]
    n = len(steps)
    c = table.cols
    wanted = set(target_range(n, targets))
    context = ""
    for k in range(n):
        if k in wanted:
            hint = titles[k] if title_hint else None
            target = steps[k] if hint else shown[k]
            c["id"].append(f"{tid}/{k}")
            c["trajectory_id"].append(tid)
            c["source_row"].append(source_row)
            c["step_index"].append(k)
            c["num_steps"].append(n)
            c["problem"].append(problem)
            c["context_steps"].append(shown[:k])
            c["target"].append(target)
            c["target_title"].append(titles[k])
            c["target_hash"].append(step_hash(target))
            c["answer"].append(answer)
            c["strategy"].append(strategy)
            c["prompt"].append(srl_messages(problem, context, k + 1, hint, templates=templates))
        context = f"{context}\n{k + 1}. {shown[k]}" if k else f"1. {shown[0]}"
    return len(wanted)


def add_agent(table: Table, *, tid: str, source_row: int, problem: str, ts: list[Turn],
              history: int, targets: str, templates: Templates) -> int:
    """Append the SRL instances of one agent trajectory (target = the action only)."""
    n = len(ts)
    count = 0
    for k in target_range(n, targets):
        ctx = context_entries(ts, k, history)
        table.add(
            id=f"{tid}/{k}", trajectory_id=tid, source_row=source_row, step_index=k, num_steps=n,
            problem=problem, context_steps=ctx, target=ts[k].action, target_title=None,
            target_hash=step_hash(ts[k].action), answer=None, strategy="turns",
            prompt=srl_prompt(problem, ctx, k + 1, None, templates=templates, agent=True),
        )
        count += 1
    return count


def add_rlvr(table: Table, *, tid: str, source_row: int, problem: str, answer: str,
             templates: Templates) -> None:
    table.add(id=tid, source_row=source_row, problem=problem, answer=answer,
              prompt=rlvr_prompt(problem, templates=templates))


def add_reject(table: Table, source_row: int, tid: str | None, reason: str, detail: str = "",
               which: str = "all") -> None:
    table.add(source_row=source_row, trajectory_id=tid, table=which, reason=reason, detail=detail[:300])
