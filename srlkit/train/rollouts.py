"""Prompts -> rollout batch: generate, score, filter (dynamic sampling), handle truncation, advantages.

This is where phases differ, and only here: `srl`/`rlvr` generate G completions per prompt
and score them; `sft` uses the expert target as the one completion with advantage 1.
The learner then sees the same `RolloutBatch` either way.

Every generate call is seeded from (run seed, phase, step, attempt), so a resumed run
draws exactly the samples an uninterrupted one would. The generate / reward wall time is
measured here; the update time is measured by the caller.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from srlkit.config import PhaseConfig, RolloutConfig, LossConfig
from srlkit.rollout.base import SamplingParams
from srlkit.train.advantages import group_advantages, group_std
from srlkit.train.batch import RolloutBatch, collate
from srlkit.train.data import PromptTable, encode_target


def derive_seed(*parts: Any) -> int:
    """A stable 31-bit seed from any parts (no Python hash randomisation).

    >>> derive_seed(0, "srl", 3, 0) == derive_seed(0, "srl", 3, 0)
    True
    """
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


@dataclass
class StepRollouts:
    batch: RolloutBatch
    metrics: dict[str, float]
    samples: list[dict[str, Any]] = field(default_factory=list)  # a few, for RUN/samples/


def informative(rewards: list[float], group_size: int, epsilon: float) -> list[bool]:
    """One flag per group: its reward std exceeds epsilon (delegates to srlkit.sampling)."""
    from srlkit.sampling.dynamic import informative_mask

    return [bool(x) for x in informative_mask(rewards, group_size, epsilon)]


def rl_rollouts(
    *, engine: Any, scorer: Any, table: PromptTable, phase_name: str, phase: PhaseConfig,
    rollout: RolloutConfig, loss: LossConfig, seed: int, step: int, pad_id: int, n_samples: int = 4,
) -> StepRollouts:
    """Sample groups until `prompts_per_step` informative ones (or `max_attempts` calls)."""
    G = rollout.num_generations
    want = phase.prompts_per_step
    groups: list[tuple[int, list[Any], list[float], dict[str, list[float]]]] = []
    attempts = seen = dropped = 0
    t_gen = t_rew = 0.0
    max_attempts = phase.sampling.max_attempts if phase.sampling.dynamic else 1
    while len(groups) < want and attempts < max_attempts:
        idx = table.take(want - len(groups))
        params = SamplingParams(
            n=G, temperature=rollout.temperature, top_p=rollout.top_p, top_k=rollout.top_k,
            max_new_tokens=rollout.max_new_tokens, seed=derive_seed(seed, phase_name, step, attempts),
        )
        t0 = time.perf_counter()
        out = engine.generate([table.prompt_ids[i] for i in idx], params)
        t1 = time.perf_counter()
        flat = [s for group in out for s in group]
        rows = [table.rows[i] for i in idx for _ in range(G)]
        res = scorer([s.text for s in flat], rows)
        total = list(res.total)
        if rollout.truncation == "penalize":
            total = [rollout.truncation_penalty if s.finish_reason == "length" else r for s, r in zip(flat, total)]
        t_rew += time.perf_counter() - t1
        t_gen += t1 - t0
        keep = informative(total, G, phase.sampling.epsilon) if phase.sampling.dynamic else [True] * len(idx)
        for k, i in enumerate(idx):
            sl = slice(k * G, (k + 1) * G)
            if keep[k] and len(groups) < want:
                comps = {name: list(v[sl]) for name, v in res.components.items()}
                groups.append((i, flat[sl], total[sl], comps))
            elif not keep[k]:
                dropped += 1
        seen += len(idx)
        attempts += 1
    prompts, comps_ids, rewards, keep_rows, lens, trunc = [], [], [], [], [], []
    comp_vals: dict[str, list[float]] = {}
    samples = []
    for i, group, rs, comps in groups:
        for j, s in enumerate(group):
            prompts.append(table.prompt_ids[i])
            comps_ids.append(list(s.token_ids))
            rewards.append(rs[j])
            lens.append(len(s.token_ids))
            trunc.append(s.finish_reason == "length")
            keep_rows.append(not (rollout.truncation == "mask" and s.finish_reason == "length"))
            for name, v in comps.items():
                comp_vals.setdefault(name, []).append(v[j])
        if len(samples) < n_samples:
            samples.append({"id": table.rows[i].get("id"), "completion": group[0].text, "reward": rs[0],
                            "target": table.rows[i].get("target", table.rows[i].get("answer"))})
    adv = group_advantages(rewards, G, scale_std=loss.scale_std, eps=loss.std_eps) if rewards else []
    batch = collate(prompts, comps_ids, adv, pad_id=pad_id, keep=keep_rows,
                    temperature=rollout.temperature, max_new_tokens=rollout.max_new_tokens)
    n = max(1, len(rewards))
    mean = sum(rewards) / n
    m = {
        "reward/mean": mean,
        "reward/std": (sum((r - mean) ** 2 for r in rewards) / n) ** 0.5,
        "reward/group_std": sum(group_std(rewards, G)) / max(1, len(groups)) if rewards else 0.0,
        "sampling/filter_rate": dropped / max(1, seen),
        "sampling/attempts": float(attempts),
        "sampling/dropped_equal": float(dropped),
        "sampling/groups": float(len(groups)),
        "completion/len_mean": sum(lens) / n,
        "completion/truncated_frac": sum(trunc) / n,
        "time/generate": t_gen,
        "time/reward": t_rew,
        "tokens/generated": float(sum(lens)),
    }
    for name, v in comp_vals.items():
        m[f"reward/{name}"] = sum(v) / max(1, len(v))
    return StepRollouts(batch, m, samples)


def sft_rollouts(
    *, tokenizer: Any, table: PromptTable, phase: PhaseConfig, rollout: RolloutConfig, pad_id: int,
    n_samples: int = 4,
) -> StepRollouts:
    """The expert target as the completion, advantage 1, old logprobs left to the learner (ratio 1)."""
    idx = table.take(phase.prompts_per_step)
    targets = [encode_target(tokenizer, str(table.rows[i]["target"])) for i in idx]
    trunc = [len(t) > rollout.max_new_tokens for t in targets]
    targets = [t[: rollout.max_new_tokens] for t in targets]
    batch = collate([table.prompt_ids[i] for i in idx], targets, [1.0] * len(idx), pad_id=pad_id,
                    max_new_tokens=rollout.max_new_tokens)
    n = max(1, len(idx))
    m = {
        "sampling/filter_rate": 0.0, "sampling/attempts": 0.0, "sampling/dropped_equal": 0.0,
        "completion/len_mean": sum(len(t) for t in targets) / n,
        "completion/truncated_frac": sum(trunc) / n,
        "time/generate": 0.0, "time/reward": 0.0, "tokens/generated": 0.0,
    }
    samples = [{"id": table.rows[i].get("id"), "completion": table.rows[i]["target"], "reward": None}
               for i in idx[:n_samples]]
    return StepRollouts(batch, m, samples)
