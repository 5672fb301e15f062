"""Checks and helpers shared by every rollout engine (no torch at import).

Both engines validate their inputs the same way, bound prompt lengths the same way and
cut completions at the first stop token the same way, so the trainer sees one contract.

Prompt-length policy (decided here, documented once): an over-long prompt is an *error*
by default, never silently cut. Left-truncation would drop the system prompt and the
problem statement, which is the very context SRL conditions on, so the trainer should
drop such rows up front with `split_overlong` (and count them). `truncate_left` exists
for callers who prefer it (e.g. chat transcripts where only the tail matters).
Over-long *completions* are cut at `max_new_tokens` and reported with
`finish_reason == "length"`, so the trainer can mask or penalise them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Literal

from srlkit.errors import SrlkitError
from srlkit.rollout.base import FinishReason, SamplingParams

Overflow = Literal["error", "truncate_left"]


def validate_params(params: SamplingParams) -> None:
    """Reject sampling parameters no engine can honour, with a one-line fix."""
    if params.n < 1:
        raise SrlkitError(f"sampling n={params.n}: need at least 1 sample per prompt (rollout.num_generations)")
    if params.max_new_tokens < 1:
        raise SrlkitError(f"max_new_tokens={params.max_new_tokens}: must be >= 1 (rollout.max_new_tokens)")
    if not math.isfinite(params.temperature) or params.temperature < 0:
        raise SrlkitError(f"temperature={params.temperature}: must be >= 0 (0 means greedy)")
    if not (0.0 < params.top_p <= 1.0):
        raise SrlkitError(f"top_p={params.top_p}: must be in (0, 1] (1 disables nucleus sampling)")
    if params.top_k == 0 or params.top_k < -1:
        raise SrlkitError(f"top_k={params.top_k}: use -1 to disable, or a positive count")


def validate_prompts(prompts: Sequence[Sequence[int]], vocab_size: int | None = None) -> None:
    """Prompts are non-empty lists of in-vocabulary token ids (the trainer tokenises)."""
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise SrlkitError("prompts must be a list of token-id lists; tokenise them first (apply the chat template)")
    for i, p in enumerate(prompts):
        if isinstance(p, (str, bytes)) or not isinstance(p, Sequence) or len(p) == 0:
            raise SrlkitError(f"prompt {i} is empty or not a list of token ids; tokenise it first")
        if not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in p):
            raise SrlkitError(f"prompt {i} holds non-integer items; pass token ids, not text")
        if vocab_size is not None and (min(p) < 0 or max(p) >= vocab_size):
            raise SrlkitError(f"prompt {i} has token ids outside the vocabulary (0..{vocab_size - 1}); "
                              "was it tokenised with another tokenizer?")


def split_overlong(prompts: Sequence[Sequence[int]], max_prompt_tokens: int | None) -> tuple[list[int], list[int]]:
    """Indices of prompts that fit and of those longer than `max_prompt_tokens`.

    >>> split_overlong([[1, 2], [1, 2, 3, 4], [5]], 2)
    ([0, 2], [1])
    """
    if max_prompt_tokens is None:
        return list(range(len(prompts))), []
    keep = [i for i, p in enumerate(prompts) if len(p) <= max_prompt_tokens]
    drop = [i for i, p in enumerate(prompts) if len(p) > max_prompt_tokens]
    return keep, drop


def bound_prompts(
    prompts: Sequence[Sequence[int]], max_prompt_tokens: int | None, overflow: Overflow = "error"
) -> list[list[int]]:
    """Apply the prompt-length bound: raise on over-long prompts, or keep their last tokens.

    >>> bound_prompts([[1, 2, 3]], 2, "truncate_left")
    [[2, 3]]
    """
    out = [list(p) for p in prompts]
    if max_prompt_tokens is None:
        return out
    _, drop = split_overlong(out, max_prompt_tokens)
    if not drop:
        return out
    if overflow == "truncate_left":
        return [p[-max_prompt_tokens:] for p in out]
    longest = max(len(out[i]) for i in drop)
    raise SrlkitError(
        f"{len(drop)} prompt(s) exceed rollout.max_prompt_tokens={max_prompt_tokens} (longest: {longest}); "
        "raise the limit or drop them first with srlkit.rollout.common.split_overlong"
    )


def cut_at_stop(token_ids: Iterable[int], stop_ids: set[int], max_new_tokens: int) -> tuple[list[int], FinishReason]:
    """Completion tokens up to and including the first stop token; padding after it is dropped.

    >>> cut_at_stop([5, 6, 2, 2, 2], {2}, 5)
    ([5, 6, 2], 'stop')
    >>> cut_at_stop([5, 6, 7], {2}, 3)
    ([5, 6, 7], 'length')
    """
    out: list[int] = []
    for t in token_ids:
        out.append(int(t))
        if t in stop_ids:
            return out, "stop"
        if len(out) >= max_new_tokens:
            break
    return out, "length"


def chunks(n_items: int, size: int) -> list[range]:
    """Consecutive index ranges of at most `size` items.

    >>> chunks(5, 2)
    [range(0, 2), range(2, 4), range(4, 5)]
    """
    size = max(1, size)
    return [range(i, min(i + size, n_items)) for i in range(0, n_items, size)]


def plan_batches(
    lengths: Sequence[int], n: int, max_new_tokens: int, max_rows: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Group prompts (by index) into generate batches; each prompt brings its `n` rows.

    Longest prompts first, so a batch's prompts are of similar length (little padding).
    A batch holds at most `max_rows` rows and, with `max_tokens`, at most that many
    cache positions, rows x (its longest prompt + max_new_tokens). A prompt always goes
    whole into one batch (its samples share one prefill), even when `n` alone is over a bound.

    >>> plan_batches([5, 50, 7, 6], n=2, max_new_tokens=10, max_rows=4)
    [[1, 2], [3, 0]]
    >>> plan_batches([5, 50, 7, 6], n=1, max_new_tokens=10, max_rows=8, max_tokens=60)
    [[1], [2, 3, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    width = 0
    for i in order:
        w = max(width, lengths[i])
        rows = (len(cur) + 1) * n
        fits = rows <= max_rows and (max_tokens is None or rows * (w + max_new_tokens) <= max_tokens)
        if cur and not fits:
            out.append(cur)
            cur, w = [], lengths[i]
        cur.append(i)
        width = w
    if cur:
        out.append(cur)
    return out
