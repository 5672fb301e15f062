"""The one object the trainer calls: weighted rewards from config -> `ScoreResult`.

    scorer = build_scorer(phase.rewards, data_dir)
    res = scorer(completions, rows)    # res.total, res.components[name], res.stats
    scorer.close()                     # worker pools, encoders

`stats` holds `format_failures` (the most any one reward saw: each reward parses the same
completions), `scoring_errors` (summed: each is a check that reached no verdict), and every
reward's own counters as `<name>/<key>`.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from srlkit.config import RewardSpec
from srlkit.errors import ConfigError
from srlkit.rewards.base import (
    REGISTRY, Reward, RewardFn, RewardParams, ScoreResult, _load_builtin, make_reward, register,
)


def _make(name: str, params: Mapping[str, Any], data_dir: Path | None) -> RewardFn:
    """`make_reward`, passing the dataset folder to the factories that take one."""
    _load_builtin()
    params = dict(params)
    factory = REGISTRY.get(name)
    if factory is not None and data_dir is not None and "data_dir" not in params:
        if "data_dir" in inspect.signature(factory).parameters:
            params["data_dir"] = data_dir
    return make_reward(name, **params)


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


class Scorer:
    """Weighted sum of rewards; keeps each component's values and counters for logging."""

    def __init__(self, parts: list[tuple[str, float, RewardFn]]) -> None:
        if not parts:
            raise ConfigError("no rewards configured; add [[train.phases.<phase>.rewards]] with a name")
        names = _unique([n for n, _, _ in parts])
        self.parts = [(n, w, fn) for n, (_, w, fn) in zip(names, parts, strict=True)]

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> ScoreResult:
        if len(completions) != len(rows):
            raise ValueError(f"{len(completions)} completions but {len(rows)} rows")
        total = [0.0] * len(completions)
        components: dict[str, list[float]] = {}
        stats: dict[str, float] = {"format_failures": 0.0, "scoring_errors": 0.0}
        for name, weight, fn in self.parts:
            t0 = time.perf_counter()
            values = [float(v) for v in fn(completions, rows)]
            stats[f"time/{name}"] = time.perf_counter() - t0
            if len(values) != len(completions):
                raise RuntimeError(f"reward '{name}' returned {len(values)} values for {len(completions)} completions")
            components[name] = values
            for sub, sub_values in getattr(fn, "last_components", {}).items():
                components[f"{name}/{sub}"] = list(sub_values)
            own = dict(getattr(fn, "last_stats", {}) or {})
            stats["format_failures"] = max(stats["format_failures"], own.get("format_failures", 0.0))
            stats["scoring_errors"] += own.get("scoring_errors", 0.0)
            stats.update({f"{name}/{k}": float(v) for k, v in own.items()})
            total = [t + weight * v for t, v in zip(total, values, strict=True)]
        return ScoreResult(total=total, components=components, stats=stats)

    def close(self) -> None:
        for _, _, fn in self.parts:
            close = getattr(fn, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_scorer(specs: Sequence[RewardSpec | Mapping[str, Any]], data_dir: Path | None = None) -> Scorer:
    """A `Scorer` from `[[...rewards]]` specs (name, weight, params)."""
    parts = []
    for spec in specs:
        try:
            spec = spec if isinstance(spec, RewardSpec) else RewardSpec.model_validate(dict(spec))
        except ValidationError as e:  # unknown reward or params: the first problem, on one line
            raise ConfigError(str(e.errors()[0]["msg"]).removeprefix("Value error, ")) from None
        parts.append((spec.name, spec.weight, _make(spec.name, spec.params, data_dir)))
    return Scorer(parts)


class Mixed(Reward):
    """A reward made of weighted rewards; `last_components` keeps each one's values."""

    def __init__(self, scorer: Scorer) -> None:
        super().__init__()
        self.scorer = scorer
        self.last_components: dict[str, list[float]] = {}

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float]:
        res = self.scorer(completions, rows)
        self.last_components = {k: v for k, v in res.components.items() if "/" not in k}
        self.last_stats = {k: v for k, v in res.stats.items() if not k.startswith("time/")}
        return res.total

    def close(self) -> None:
        self.scorer.close()


class MixedParams(RewardParams):
    components: list[RewardSpec] = Field(default_factory=list)  # each checked like a phase's rewards
    data_dir: str | Path | None = None

    @field_validator("components")
    @classmethod
    def _flat(cls, v: list[RewardSpec]) -> list[RewardSpec]:
        if not v:
            raise ValueError("the mixed reward needs params.components = [{name=..., weight=...}, ...]")
        if any(c.name == "mixed" for c in v):
            raise ValueError("a mixed reward cannot contain another mixed reward; list the components directly")
        return v


@register("mixed", params=MixedParams)
def mixed(components: Sequence[Mapping[str, Any]] = (), data_dir: str | Path | None = None) -> Mixed:
    """Weighted sum of registered rewards: `components = [{name, weight, params}, ...]`.

    >>> fn = mixed([{"name": "step_similarity", "weight": 0.5}, {"name": "step_similarity",
    ...             "weight": 0.5, "params": {"autojunk": True}}])
    >>> fn(["<think>t</think>x = 2"], [{"target": "x = 3"}]), fn.last_components
    ([0.8], {'step_similarity': [0.8], 'step_similarity#2': [0.8]})
    """
    if not components:
        raise ConfigError("the mixed reward needs params.components = [{name=..., weight=...}, ...]")
    if any(dict(c).get("name") == "mixed" for c in components):
        raise ConfigError("a mixed reward cannot contain another mixed reward; list the components directly")
    return Mixed(build_scorer(list(components), Path(data_dir) if data_dir else None))
