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

from srlkit.config import LossConfig, PhaseConfig, RolloutConfig
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


def rl_rollouts(
    *, engine: Any, scorer: Any, table: PromptTable, phase_name: str, phase: PhaseConfig,
    rollout: RolloutConfig, loss: LossConfig, seed: int, step: int, pad_id: int, n_samples: int = 4,
) -> StepRollouts:
    """Sample groups until `prompts_per_step` informative ones (or `max_attempts` calls).

    Each attempt draws only as many new prompts as informative groups are still missing,
    so a mostly-informative phase pays for few extra generations.
    """
    from srlkit.sampling.dynamic import Group, is_informative, sample_until_full

    G = rollout.num_generations
    want = phase.prompts_per_step
    eps = phase.sampling.epsilon
    timing = {"generate": 0.0, "reward": 0.0}
    found = [0]
    score_stats: dict[str, float] = {}
    # Everything generated, kept or filtered: what the policy did this step (for logging).
    seen: dict[str, list] = {"rewards": [], "lens": [], "trunc": []}
    seen_comps: dict[str, list[float]] = {}

    def attempt(k: int) -> list[Any]:
        idx = table.take(max(1, want - found[0]))
        params = SamplingParams(
            n=G, temperature=rollout.temperature, top_p=rollout.top_p, top_k=rollout.top_k,
            max_new_tokens=rollout.max_new_tokens, seed=derive_seed(seed, phase_name, step, k),
        )
        t0 = time.perf_counter()
        out = engine.generate([table.prompt_ids[i] for i in idx], params)
        t1 = time.perf_counter()
        flat = [s for group in out for s in group]
        res = scorer([s.text for s in flat], [table.rows[i] for i in idx for _ in range(G)])
        total = list(res.total)
        if rollout.truncation == "penalize":
            total = [rollout.truncation_penalty if s.finish_reason == "length" else r for s, r in zip(flat, total)]
        for key, v in res.stats.items():
            if not key.startswith("time/") and "/" not in key:
                score_stats[key] = score_stats.get(key, 0.0) + float(v)
        timing["generate"] += t1 - t0
        timing["reward"] += time.perf_counter() - t1
        seen["rewards"] += total
        seen["lens"] += [len(s.token_ids) for s in flat]
        seen["trunc"] += [s.finish_reason == "length" for s in flat]
        for name, v in res.components.items():
            if "/" not in name:
                seen_comps.setdefault(name, []).extend(v)
        groups = []
        for j, i in enumerate(idx):
            sl = slice(j * G, (j + 1) * G)
            comps = {name: list(v[sl]) for name, v in res.components.items() if "/" not in name}
            groups.append(Group(total[sl], (i, flat[sl], comps)))
            found[0] += is_informative(total[sl], eps)
        return groups

    kept, report = sample_until_full(attempt, target_groups=want, max_attempts=phase.sampling.max_attempts,
                                     eps=eps, enabled=phase.sampling.dynamic)
    groups = [(g.payload[0], g.payload[1], list(g.rewards), g.payload[2]) for g in kept]
    t_gen, t_rew = timing["generate"], timing["reward"]
    prompts, comps_ids, rewards, keep_rows = [], [], [], []
    samples = []
    for i, group, rs, _comps in groups:
        for j, s in enumerate(group):
            prompts.append(table.prompt_ids[i])
            comps_ids.append(list(s.token_ids))
            rewards.append(rs[j])
            keep_rows.append(not (rollout.truncation == "mask" and s.finish_reason == "length"))
        if len(samples) < n_samples:
            samples.append({"id": table.rows[i].get("id"), "completion": group[0].text, "reward": rs[0],
                            "target": table.rows[i].get("target", table.rows[i].get("answer"))})
    adv = group_advantages(rewards, G, scale_std=loss.scale_std, eps=loss.std_eps) if rewards else []
    batch = collate(prompts, comps_ids, adv, pad_id=pad_id, keep=keep_rows,
                    temperature=rollout.temperature, max_new_tokens=rollout.max_new_tokens)
    all_r = seen["rewards"]
    n = max(1, len(all_r))
    mean = sum(all_r) / n
    m = {
        # reward and completion stats cover every generated sample, kept or filtered;
        # reward/group_std covers the kept (trained-on) groups.
        "reward/mean": mean,
        "reward/std": (sum((r - mean) ** 2 for r in all_r) / n) ** 0.5,
        "reward/group_std": sum(group_std(rewards, G)) / max(1, len(groups)) if rewards else 0.0,
        **report.as_metrics(),
        "completion/len_mean": sum(seen["lens"]) / n,
        "completion/truncated_frac": sum(seen["trunc"]) / n,
        "time/generate": t_gen,
        "time/reward": t_rew,
        "tokens/generated": float(sum(seen["lens"])),
    }
    for name, v in seen_comps.items():
        m[f"reward/{name}"] = sum(v) / max(1, len(v))
    for key, v in score_stats.items():  # counts, e.g. format failures, scoring errors (summed over attempts)
        m[f"score/{key}"] = v
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
