"""The reward registry: rewards are pure functions over a batch, looked up by name.

A reward *factory* is registered under a name. The trainer calls it once with the
spec's params to get a reward function, then calls that function per batch:

    fn = make_reward("step_similarity", penalty=-1.0)
    values = fn(completions, rows)   # -> list[float], one per completion

`completions[i]` is the model's text; `rows[i]` is the dataset row (a dict of the SRL or
RLVR table's columns) the completion answers. Rows repeat G times for a group.
`build_scorer(specs)` combines weighted rewards and keeps each component for logging.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from srlkit.errors import ConfigError

RewardFn = Callable[[Sequence[str], Sequence[Mapping[str, Any]]], list[float]]
RewardFactory = Callable[..., RewardFn]

REGISTRY: dict[str, RewardFactory] = {}


def register(name: str) -> Callable[[RewardFactory], RewardFactory]:
    def deco(factory: RewardFactory) -> RewardFactory:
        if name in REGISTRY:
            raise ValueError(f"reward '{name}' registered twice")
        REGISTRY[name] = factory
        return factory

    return deco


def make_reward(name: str, **params: Any) -> RewardFn:
    _load_builtin()
    if name not in REGISTRY:
        raise ConfigError(f"unknown reward '{name}'; known: {', '.join(sorted(REGISTRY))}")
    try:
        return REGISTRY[name](**params)
    except TypeError as e:
        raise ConfigError(f"bad params for reward '{name}': {e}") from None


@dataclass
class ScoreResult:
    total: list[float]
    components: dict[str, list[float]] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)  # e.g. format failures, scoring errors


class Reward:
    """Optional base class for rewards that report per-batch stats or own resources.

    A plain function is a valid reward. Subclass this when the reward must say more
    than its values: `last_stats` (e.g. ``{"format_failures": 3}``) is read by the
    scorer after each call, and `close()` releases worker processes or models.
    """

    def __init__(self) -> None:
        self.last_stats: dict[str, float] = {}

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float]:
        raise NotImplementedError

    def close(self) -> None:
        """Release resources (worker pools, models). Safe to call twice."""


def _load_builtin() -> None:
    # Importing the package imports every built-in reward module, which registers them.
    import srlkit.rewards  # noqa: F401
