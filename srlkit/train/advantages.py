"""Group-normalised advantages (GRPO), pure functions over plain lists."""

from __future__ import annotations

from collections.abc import Sequence

from srlkit.sampling.dynamic import population_std


def group_advantages(
    rewards: Sequence[float], num_generations: int, *, scale_std: bool = True, eps: float = 1e-4
) -> list[float]:
    """A_i = (r_i - mean(group)) / (std(group) + eps), groups of `num_generations` consecutive rows.

    The std is the population std (as in the dynamic-sampling filter). With
    `scale_std=False` (Dr.GRPO) only the mean is removed: dividing by a small std inflates
    the advantages of nearly-solved or nearly-failed groups.

    >>> group_advantages([1.0, 0.0, 1.0, 1.0], 2, eps=0.0)
    [1.0, -1.0, 0.0, 0.0]
    >>> group_advantages([3.0, 1.0], 2, scale_std=False)
    [1.0, -1.0]
    """
    if num_generations <= 0 or len(rewards) % num_generations:
        raise ValueError(f"{len(rewards)} rewards do not split into groups of {num_generations}")
    out: list[float] = []
    for g in range(0, len(rewards), num_generations):
        grp = [float(r) for r in rewards[g : g + num_generations]]
        mean = sum(grp) / len(grp)
        centred = [r - mean for r in grp]
        if scale_std:
            std = population_std(grp)
            if std + eps > 0:  # a constant group is all zeros already
                centred = [c / (std + eps) for c in centred]
        out.extend(centred)
    return out


def group_std(rewards: Sequence[float], num_generations: int) -> list[float]:
    """Population std of each group (one value per group)."""
    return [population_std([float(r) for r in rewards[g : g + num_generations]])
            for g in range(0, len(rewards), num_generations)]
