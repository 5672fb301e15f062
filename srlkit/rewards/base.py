"""The reward registry: rewards are callables over a batch, looked up by name.

A reward *factory* is registered under a name. The trainer calls it once with the
spec's params to get a reward function, then calls that function per batch:

    fn = make_reward("step_similarity", penalty=-1.0)
    values = fn(completions, rows)   # -> list[float], one per completion

`completions[i]` is the model's text; `rows[i]` is the dataset row (a dict of the SRL or
RLVR table's columns) the completion answers. Rows repeat G times for a group.
`build_scorer(specs)` combines weighted rewards and keeps each component for logging.
A reward's values depend only on its inputs, but it is not a pure function: after each call
it leaves counts for logging in its `last_stats` attribute (format failures, timeouts).
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from srlkit.errors import ConfigError, did_you_mean

RewardFn = Callable[[Sequence[str], Sequence[Mapping[str, Any]]], list[float]]
RewardFactory = Callable[..., RewardFn]

REGISTRY: dict[str, RewardFactory] = {}
PARAMS: dict[str, type[RewardParams]] = {}  # name -> the typed `params` of that reward


class RewardParams(BaseModel):
    """A reward's typed `params`: unknown names are errors when the recipe loads.

    `renamed` maps an old parameter name to its new one, for a clear error on old recipes.
    """

    model_config = ConfigDict(extra="forbid")
    renamed: ClassVar[dict[str, str]] = {}


def register(name: str, params: type[RewardParams] | None = None) -> Callable[[RewardFactory], RewardFactory]:
    """Register a reward factory; `params` types its keyword arguments (else read from its signature)."""

    def deco(factory: RewardFactory) -> RewardFactory:
        if name in REGISTRY:
            raise ValueError(f"reward '{name}' registered twice")
        REGISTRY[name] = factory
        if params is not None:
            PARAMS[name] = params
        return factory

    return deco


def _from_signature(name: str, factory: RewardFactory) -> type[RewardParams]:
    """A params model for a factory registered without one (plugins, test rewards)."""
    try:
        hints = typing.get_type_hints(factory)
    except Exception:  # unresolvable annotations: check the names only
        hints = {}
    fields: dict[str, Any] = {}
    extra = "forbid"
    for p in inspect.signature(factory).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            extra = "allow"
        elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            default = ... if p.default is p.empty else p.default
            fields[p.name] = (hints.get(p.name, Any), default)
    cfg = ConfigDict(extra=extra, arbitrary_types_allowed=True)
    return create_model(f"{name}_params", __config__=cfg, **fields)  # type: ignore[call-overload]


def params_model(name: str) -> type[BaseModel]:
    """The typed params of reward `name`; a one-line ConfigError (with did-you-mean) when unknown."""
    _load_builtin()
    if name not in REGISTRY:
        raise ConfigError(f"unknown reward '{name}'{did_you_mean(name, list(REGISTRY))}")
    if name not in PARAMS:
        PARAMS[name] = _from_signature(name, REGISTRY[name])  # type: ignore[assignment]
    return PARAMS[name]


def validate_params(name: str, params: Mapping[str, Any]) -> BaseModel:
    """Check a reward's params against its typed model, raising a one-line ConfigError.

    >>> validate_params("step_similarity", {"penalti": -1})
    Traceback (most recent call last):
    srlkit.errors.ConfigError: reward 'step_similarity' has no parameter 'penalti'; did you mean 'penalty'?
    """
    model = params_model(name)
    fields = list(model.model_fields)
    for key in params:
        new = getattr(model, "renamed", {}).get(key)
        if new:
            raise ConfigError(f"reward '{name}': parameter '{key}' is now called '{new}'; rename it in params")
        if key not in fields and model.model_config.get("extra") == "forbid":
            raise ConfigError(f"reward '{name}' has no parameter '{key}'{did_you_mean(key, fields)}")
    try:
        return model.model_validate(dict(params))
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"reward '{name}': params.{loc}: {msg}") from None


def make_reward(name: str, **params: Any) -> RewardFn:
    """The reward function of `name`, its params checked against the reward's typed model first."""
    checked = validate_params(name, params)
    kwargs = {k: getattr(checked, k) for k in checked.model_fields_set if k in type(checked).model_fields}
    kwargs.update({k: v for k, v in params.items() if k not in type(checked).model_fields})  # **kwargs factories
    try:
        return REGISTRY[name](**kwargs)
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
