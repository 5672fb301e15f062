"""Dynamic sampling: keep only prompt groups whose rewards differ, and sample until the batch is full.

A GRPO group whose G rewards are all equal has zero advantage everywhere: it costs a
forward/backward and teaches nothing. The filter keeps a group when its *population* std
is greater than `eps`. This is a threshold, never an `== 0` test: rewards such as 0.1
summed in a mixture, or a mean subtracted back out, leave ~1e-17 noise that an exact test
would count as signal. (DAPO's "neither all right nor all wrong" is the 0/1 special case.)

Two pieces, usable on their own:

- `informative_mask(rewards, num_generations, eps)`: flat rewards (G per prompt, prompt-major,
  the layout the trainer scores in) -> one bool per group.
- `sample_until_full(generate, target_groups, max_attempts, eps)`: calls `generate(attempt)`
  until `target_groups` informative groups are kept or `max_attempts` calls were made.
  `generate` returns a list of groups; a group is *any* object with a `.rewards` sequence
  (see `Group`), so the trainer keeps its own group type (completions, token ids, the
  prompt row...) and this loop never needs to know what is inside. SRL and RLVR call it the same way.

    groups, report = sample_until_full(lambda attempt: my_rollouts(attempt), 8, 4, 1e-6)
    metrics.update(report.as_metrics())   # sampling/filter_rate, sampling/attempts, ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar


class HasRewards(Protocol):
    """What the loop needs from a group: its G rewards (already summed over reward components)."""

    @property
    def rewards(self) -> Sequence[float]: ...


GroupT = TypeVar("GroupT", bound=HasRewards)


@dataclass
class Group:
    """A ready-made group type: the rewards plus whatever payload the caller wants to carry."""

    rewards: list[float]
    payload: Any = None


def population_std(values: Sequence[float]) -> float:
    """Population std (divide by n), the same statistic GRPO's advantage uses; NaN if any NaN.

    >>> population_std([1.0, 0.0, 1.0, 0.0]), population_std([0.3] * 8) < 1e-12
    (0.5, True)
    """
    n = len(values)
    if n == 0:
        return 0.0
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / n)


def is_informative(rewards: Sequence[float], eps: float) -> bool:
    """True when the group's reward std is greater than `eps` (a NaN reward makes it False)."""
    std = population_std([float(r) for r in rewards])
    return std > eps  # NaN > eps is False


def informative_mask(rewards: Sequence[float], num_generations: int, eps: float) -> list[bool]:
    """One flag per group of `num_generations` consecutive rewards: population std > `eps`.

    >>> informative_mask([1, 0, 1, 1,  0.1 + 0.2, 0.3, 0.3, 0.3], num_generations=4, eps=1e-6)
    [True, False]
    """
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    if len(rewards) % num_generations:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {num_generations}")
    if eps < 0 or math.isnan(eps):
        raise ValueError(f"eps must be >= 0, got {eps}")
    return [is_informative(rewards[i:i + num_generations], eps) for i in range(0, len(rewards), num_generations)]


@dataclass
class SamplingReport:
    """What one `sample_until_full` call did, for metrics (METRIC_KEYS `sampling/*`)."""

    target_groups: int
    attempts: int = 0  # generate() calls made
    generated: int = 0  # groups generated over all attempts
    kept: int = 0  # informative groups returned (<= target_groups)
    dropped_equal: int = 0  # groups dropped because their rewards were (numerically) all equal
    dropped_invalid: int = 0  # groups dropped for a NaN reward
    surplus: int = 0  # informative groups generated beyond target_groups (discarded)
    per_attempt: list[int] = field(default_factory=list)  # informative groups found per attempt

    @property
    def filter_rate(self) -> float:
        """Fraction of generated groups dropped as uninformative (0 when nothing was generated)."""
        return (self.dropped_equal + self.dropped_invalid) / self.generated if self.generated else 0.0

    @property
    def full(self) -> bool:
        return self.kept >= self.target_groups

    def as_metrics(self) -> dict[str, float]:
        return {
            "sampling/filter_rate": self.filter_rate,
            "sampling/attempts": float(self.attempts),
            "sampling/dropped_equal": float(self.dropped_equal),
            "sampling/dropped_invalid": float(self.dropped_invalid),
            "sampling/kept": float(self.kept),
            "sampling/full": float(self.full),
        }


def sample_until_full(
    generate: Callable[[int], Sequence[GroupT]],
    target_groups: int,
    max_attempts: int,
    eps: float,
    *,
    enabled: bool = True,
) -> tuple[list[GroupT], SamplingReport]:
    """Call `generate(attempt)` (attempt = 0, 1, ...) until `target_groups` informative groups are kept.

    Informative groups are kept in generation order; the surplus from the last attempt is
    dropped (and counted). After `max_attempts` calls the loop stops with what it has
    (`report.full` is False), so a phase where every group is flat cannot spin forever.
    With `enabled=False` (dynamic sampling off) it makes exactly one call and keeps
    every group, though the report still counts the flat ones.

    >>> batches = [[Group([1, 1]), Group([0, 1])], [Group([0, 0]), Group([1, 0])]]
    >>> kept, rep = sample_until_full(lambda a: batches[a], target_groups=2, max_attempts=5, eps=1e-6)
    >>> [g.rewards for g in kept], rep.attempts, rep.dropped_equal, rep.filter_rate
    ([[0, 1], [1, 0]], 2, 2, 0.5)
    """
    if target_groups < 1 or max_attempts < 1:
        raise ValueError("target_groups and max_attempts must be >= 1")
    report = SamplingReport(target_groups=target_groups)
    kept: list[GroupT] = []
    while report.attempts < (max_attempts if enabled else 1) and len(kept) < target_groups:
        groups = list(generate(report.attempts))
        report.attempts += 1
        report.generated += len(groups)
        found = 0
        for g in groups:
            rewards = [float(r) for r in g.rewards]
            good = is_informative(rewards, eps)
            if not good:
                if any(math.isnan(r) for r in rewards):
                    report.dropped_invalid += 1
                else:
                    report.dropped_equal += 1
            if good or not enabled:
                found += good
                if len(kept) < target_groups:
                    kept.append(g)
                else:
                    report.surplus += 1
        report.per_attempt.append(found)
    report.kept = len(kept)
    return kept, report
