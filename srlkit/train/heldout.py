"""Validation on held-out prompts: the score that picks each phase's best checkpoint.

- Phases with rewards: the mean reward of one *greedy* completion per validation prompt
  (temperature 0, as the paper evaluates). Greedy makes successive evaluations
  comparable without sampling noise, and costs one sample instead of G.
- `sft` (no reward): minus the mean per-token NLL of the expert targets.
Higher is better in both cases (`val/score`).
"""

from __future__ import annotations

import time
from typing import Any

from srlkit.config import RolloutConfig
from srlkit.rollout.base import SamplingParams
from srlkit.train.batch import collate
from srlkit.train.data import PromptTable, encode_target


def action_text(text: str) -> str:
    """The step a completion proposes (after its think block), stripped, for exact matching.

    >>> action_text("<think>add</think> 3 + 4 = 7 ")
    '3 + 4 = 7'
    """
    from srlkit.train.groups import _action_start

    return text[_action_start(text):].strip()


def reward_score(engine: Any, scorer: Any, table: PromptTable, rollout: RolloutConfig,
                 step_end: str = "eos", max_new_tokens: int | None = None) -> dict[str, float]:
    """Greedy reward on validation prompts; SRL rows also get exact-step accuracy (`val/exact_step`):
    the proposed step equals the expert's, a check that difflib credit alone cannot game."""
    if not len(table):
        return {}
    t0 = time.perf_counter()
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens or rollout.max_new_tokens, seed=0)
    out = engine.generate(table.prompt_ids, params)
    flat = [g[0] for g in out]
    if step_end == "boundary":
        from srlkit.train.groups import end_step, is_last_step

        flat = [end_step(table.tokenizer, s, is_last_step(r)) for s, r in zip(flat, table.rows)]
    res = scorer([s.text for s in flat], table.rows)
    n = len(flat)
    m = {
        "val/score": sum(res.total) / n,
        "val/reward_mean": sum(res.total) / n,
        "val/truncated_frac": sum(s.finish_reason == "length" for s in flat) / n,
        "val/len_mean": sum(len(s.token_ids) for s in flat) / n,
        "val/prompts": float(n),
        "val/seconds": time.perf_counter() - t0,
    }
    for name, v in res.components.items():
        m[f"val/reward/{name}"] = sum(v) / n
    if all("target" in r for r in table.rows):
        m["val/exact_step"] = sum(action_text(s.text) == str(r["target"]).strip()
                                  for s, r in zip(flat, table.rows)) / n
    return m


def solve_accuracy(engine: Any, scorer: Any, table: PromptTable, rollout: RolloutConfig,
                   max_new_tokens: int) -> dict[str, float]:
    """Whole-solution greedy accuracy on RLVR validation problems (the headline metric's
    in-training twin): one greedy completion per problem, scored by the math reward."""
    if not len(table):
        return {}
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new_tokens, seed=0)
    flat = [g[0] for g in engine.generate(table.prompt_ids, params)]
    res = scorer([s.text for s in flat], table.rows)
    n = len(flat)
    return {"val/solve_accuracy": sum(float(r > 0.5) for r in res.total) / n,
            "val/solve_truncated_frac": sum(s.finish_reason == "length" for s in flat) / n}


def nll_score(learner: Any, tokenizer: Any, table: PromptTable, rollout: RolloutConfig) -> dict[str, float]:
    if not len(table):
        return {}
    t0 = time.perf_counter()
    targets = [encode_target(tokenizer, str(r["target"]))[: rollout.max_new_tokens] for r in table.rows]
    batch = collate(table.prompt_ids, targets, [1.0] * len(targets), pad_id=tokenizer.pad_token_id)
    lp = learner.logprobs(batch.to(learner.device), learner.model)
    mask = batch.completion_mask.to(lp.device)
    nll = float(-(lp * mask).sum() / mask.sum().clamp(min=1))
    return {"val/score": -nll, "val/nll": nll, "val/prompts": float(len(targets)),
            "val/seconds": time.perf_counter() - t0}
