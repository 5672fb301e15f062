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

from srlkit.config import LossConfig, PhaseConfig, RolloutConfig, group_size
from srlkit.errors import ConfigError
from srlkit.rollout.base import SamplingParams
from srlkit.sampling.dynamic import population_std
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


def _action_start(text: str) -> int:
    """Where the scored action begins: after `</think>` when the completion thinks first."""
    stripped = text.lstrip()
    if stripped.startswith("<think>"):
        end = text.find("</think>")
        return len(text) if end < 0 else end + len("</think>")
    return 0


def is_last_step(row: dict[str, Any]) -> bool:
    """An SRL row whose target is its trajectory's last step (that step may end with EOS)."""
    n, i = row.get("num_steps"), row.get("step_index")
    return n is not None and i is not None and int(i) == int(n) - 1


def cut_at_boundary(tokenizer: Any, sample: Any) -> Any:
    r"""The sample up to and including the first line break that ends a non-empty action.

    Used with `step_end = "boundary"` for steps that are not the last: an SRL step then ends
    where the next one would begin, not with EOS. A trailing EOS is dropped too, so single-step
    training never rewards stopping mid-solution. A completion with no boundary is returned as
    it is (finish_reason unchanged).

    >>> class T:  # a character tokenizer
    ...     eos_token_id = 0
    ...     def decode(self, ids, **kw): return "".join(chr(i) for i in ids if i)
    >>> from srlkit.rollout.base import Sample
    >>> s = Sample([ord(c) for c in "\n1+2=3\n3+4"], "", [0.0] * 10, "length")
    >>> cut = cut_at_boundary(T(), s); cut.text, cut.finish_reason, len(cut.logprobs)
    ('\n1+2=3\n', 'stop', 7)
    """
    from srlkit.rollout.base import Sample

    ids = list(sample.token_ids)
    text = ""
    for j, t in enumerate(ids):
        if t == tokenizer.eos_token_id:
            ids = ids[:j]
            break
        text += tokenizer.decode([t], skip_special_tokens=True)
        head = text.lstrip()
        if len(head) < len("<think>") and "<think>".startswith(head):
            continue  # may still open a think block
        if head.startswith("<think>") and "</think>" not in text:
            continue  # inside the monologue: its line breaks are not step boundaries
        start = _action_start(text)
        if "\n" in text[start:] and text[start:].strip():
            body = text[start:]
            nl = body.find("\n", len(body) - len(body.lstrip()))
            if nl >= 0:
                return Sample(ids[: j + 1], text, list(sample.logprobs[: j + 1]), "stop")
    if sample.token_ids and sample.token_ids[-1] == tokenizer.eos_token_id:  # ended with EOS: no boundary
        return Sample(ids, tokenizer.decode(ids, skip_special_tokens=True), list(sample.logprobs[: len(ids)]), "stop")
    return sample


def end_step(tokenizer: Any, sample: Any, last: bool) -> Any:
    r"""A `step_end = "boundary"` sample as it is scored and trained.

    An intermediate step ends at its line break (`cut_at_boundary`). The last step of a
    solution must end with EOS, as a whole solution does, so it is *not* cut: whatever the
    model writes after the answer line (another step, or text up to the length cap) stays in
    the scored action and lowers its similarity to the expert's last step. Without this, a
    last step followed by more lines scored as well as one followed by EOS, and SRL taught
    whole solutions never to end.
    """
    return sample if last else cut_at_boundary(tokenizer, sample)


def expert_sample(tokenizer: Any, row: dict[str, Any], step_end: str) -> Any:
    """The expert's next step as a completion, ended as a sampled one would be (line break or
    EOS), with NaN behaviour log-probs: no engine sampled it, so its importance weight is 1."""
    from srlkit.rollout.base import Sample

    target = str(row["target"])
    if step_end == "boundary" and not is_last_step(row):
        text, eos = target + "\n", False
    else:
        text, eos = target, True
    ids = encode_target(tokenizer, text, eos=eos)
    return Sample(ids, text, [float("nan")] * len(ids), "stop")


def empty_draw(m: dict[str, float]) -> tuple[str, str] | None:
    """Why a draw gives no optimizer step, from its (rank-reduced) metrics: (what the draw did,
    what a run of such draws had), or None when it has something to train on.

    >>> empty_draw({"sampling/kept": 2.0, "tokens/trainable": 0.0})[1]
    'no trainable token (every kept completion masked out of the loss)'
    """
    if m.get("sampling/kept", 1) < 1:
        return "kept no group", "every group's rewards equal"
    if m.get("tokens/trainable", 1) < 1:  # e.g. all completions truncated under truncation = "mask"
        return ("had no trainable token (every kept completion masked out of the loss)",
                "no trainable token (every kept completion masked out of the loss)")
    return None


def rl_rollouts(
    *, engine: Any, scorer: Any, table: PromptTable, phase_name: str, phase: PhaseConfig,
    rollout: RolloutConfig, loss: LossConfig, seed: int, step: int, pad_id: int, n_samples: int = 4,
    draw: int = 0,
) -> StepRollouts:
    """Sample groups until `prompts_per_step` informative ones (or `max_attempts` calls).

    Each attempt draws only as many new prompts as informative groups are still missing,
    so a mostly-informative phase pays for few extra generations. `draw` > 0 is a retry of
    the same optimizer step after a draw that kept nothing (fresh seeds, fresh prompts).
    """
    from srlkit.sampling.dynamic import Group, is_informative, sample_until_full

    num_generations = group_size(phase, rollout)  # G; num_generations in the paper
    expert = int(phase.expert_in_group)
    if expert and (num_generations < 2 or (table.rows and "target" not in table.rows[0])):
        raise ConfigError(f"{phase_name}: expert_in_group needs num_generations >= 2 and an SRL table "
                          "with a 'target' column")
    want = phase.prompts_per_step
    eps = phase.sampling.epsilon
    timing = {"generate": 0.0, "reward": 0.0}
    found = [0]
    score_stats: dict[str, float] = {}
    # Everything generated, kept or filtered: what the policy did this step (for logging).
    seen: dict[str, list] = {"rewards": [], "lens": [], "trunc": []}
    seen_comps: dict[str, list[float]] = {}

    drawn = [0]

    def attempt(k: int) -> list[Any]:
        idx = table.take(max(1, want - found[0]))
        drawn[0] += len(idx)
        call_seed = derive_seed(seed, phase_name, step, k) if draw == 0 else derive_seed(seed, phase_name, step, f"d{draw}", k)
        params = SamplingParams(
            n=num_generations - expert, temperature=rollout.temperature, top_p=rollout.top_p, top_k=rollout.top_k,
            max_new_tokens=phase.max_new_tokens or rollout.max_new_tokens, seed=call_seed,
        )
        t0 = time.perf_counter()
        out = engine.generate([table.prompt_ids[i] for i in idx], params)
        t1 = time.perf_counter()
        if expert:  # the group's last member is the expert's step
            out = [list(group) + [expert_sample(table.tokenizer, table.rows[i], phase.step_end)]
                   for group, i in zip(out, idx)]
        flat = [s for group in out for s in group]
        if phase.step_end == "boundary":
            last = [is_last_step(table.rows[i]) for i in idx for _ in range(num_generations)]
            flat = [end_step(table.tokenizer, s, k) for s, k in zip(flat, last)]
        res = scorer([s.text for s in flat], [table.rows[i] for i in idx for _ in range(num_generations)])
        total = list(res.total)
        if rollout.truncation == "penalize":
            total = [rollout.truncation_penalty if s.finish_reason == "length" else r for s, r in zip(flat, total)]
        for key, v in res.stats.items():
            if not key.startswith("time/") and "/" not in key:
                score_stats[key] = score_stats.get(key, 0.0) + float(v)
        timing["generate"] += t1 - t0
        timing["reward"] += time.perf_counter() - t1
        # the policy's own samples only: an expert member would flatter every statistic
        own = [j % num_generations < num_generations - expert for j in range(len(flat))]
        seen["rewards"] += [r for r, o in zip(total, own) if o]
        seen["lens"] += [len(s.token_ids) for s, o in zip(flat, own) if o]
        seen["trunc"] += [s.finish_reason == "length" for s, o in zip(flat, own) if o]
        for name, v in res.components.items():
            if "/" not in name:
                seen_comps.setdefault(name, []).extend(x for x, o in zip(v, own) if o)
        groups = []
        for j, i in enumerate(idx):
            sl = slice(j * num_generations, (j + 1) * num_generations)
            comps = {name: list(v[sl]) for name, v in res.components.items() if "/" not in name}
            groups.append(Group(total[sl], (i, flat[sl], comps)))
            found[0] += is_informative(total[sl], eps)
        return groups

    kept, report = sample_until_full(attempt, target_groups=want, max_attempts=phase.sampling.max_attempts,
                                     eps=eps, enabled=phase.sampling.dynamic)
    groups = [(g.payload[0], g.payload[1], list(g.rewards), g.payload[2]) for g in kept]
    t_gen, t_rew = timing["generate"], timing["reward"]
    prompts, comps_ids, rewards, keep_rows, behav = [], [], [], [], []
    samples = []
    for i, group, rs, _comps in groups:
        for j, s in enumerate(group):
            prompts.append(table.prompt_ids[i])
            comps_ids.append(list(s.token_ids))
            behav.append(list(s.logprobs))
            rewards.append(rs[j])
            keep_rows.append(not (rollout.truncation == "mask" and s.finish_reason == "length"))
        if len(samples) < n_samples:
            samples.append({"id": table.rows[i].get("id"), "completion": group[0].text, "reward": rs[0],
                            "target": table.rows[i].get("target", table.rows[i].get("answer"))})
    adv = group_advantages(rewards, num_generations, scale_std=loss.scale_std, eps=loss.std_eps) if rewards else []
    has_lp = all(len(b) == len(c) for b, c in zip(behav, comps_ids))  # engines that return logprobs
    batch = collate(prompts, comps_ids, adv, pad_id=pad_id, keep=keep_rows,
                    behavior_logprobs=behav if has_lp and behav else None,
                    temperature=rollout.temperature, max_new_tokens=phase.max_new_tokens or rollout.max_new_tokens)
    all_r = seen["rewards"]
    n = max(1, len(all_r))
    mean = sum(all_r) / n
    m = {
        # reward and completion stats cover every generated sample, kept or filtered;
        # reward/group_std covers the kept (trained-on) groups.
        "reward/mean": mean,
        "reward/std": population_std(all_r),
        "reward/group_std": sum(group_std(rewards, num_generations)) / max(1, len(groups)) if rewards else 0.0,
        **report.as_metrics(),
        "completion/len_mean": sum(seen["lens"]) / n,
        "completion/truncated_frac": sum(seen["trunc"]) / n,
        "time/generate": t_gen,
        "time/reward": t_rew,
        "tokens/generated": float(sum(seen["lens"])),
        "tokens/trainable": float(batch.completion_mask.sum()),  # 0: nothing to learn from (`empty_draw`)
        "sampling/prompts": float(drawn[0]),
        "sampling/expert_rows": float(expert * len(groups)),
        # for the give-up message: how many distinct reward values the step saw
        "reward/distinct": float(len({round(r, 6) for r in all_r})),
        "reward/min": min(all_r) if all_r else 0.0,
        "reward/max": max(all_r) if all_r else 0.0,
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
    if phase.step_end == "boundary":  # a step ends at its line break; only the last one with EOS
        targets = [encode_target(tokenizer, str(table.rows[i]["target"]) + "\n", eos=is_last_step(table.rows[i]))
                   for i in idx]
    else:
        targets = [encode_target(tokenizer, str(table.rows[i]["target"])) for i in idx]
    trunc = [len(t) > rollout.max_new_tokens for t in targets]
    targets = [t[: rollout.max_new_tokens] for t in targets]
    batch = collate([table.prompt_ids[i] for i in idx], targets, [1.0] * len(idx), pad_id=pad_id,
                    max_new_tokens=rollout.max_new_tokens)
    n = max(1, len(idx))
    m = {
        "sampling/filter_rate": 0.0, "sampling/attempts": 0.0, "sampling/dropped_equal": 0.0,
        "sampling/kept": float(len(idx)), "sampling/prompts": float(len(idx)),
        "completion/len_mean": sum(len(t) for t in targets) / n,
        "completion/truncated_frac": sum(trunc) / n,
        "time/generate": 0.0, "time/reward": 0.0, "tokens/generated": 0.0,
        "tokens/trainable": float(batch.completion_mask.sum()),
    }
    samples = [{"id": table.rows[i].get("id"), "completion": table.rows[i]["target"], "reward": None}
               for i in idx[:n_samples]]
    return StepRollouts(batch, m, samples)
