"""Typed configuration for every srlkit stage. Imports no torch.

A recipe is a TOML file (see `pipelines/`) with one table per stage:
`[decompose]`, `[embed]`, `[train]` (with `[train.phases.srl]`, `[train.phases.rlvr]`,
`[train.phases.sft]`) and `[eval]`. Every field can be overridden from the command
line with a dotted path: `--set train.phases.srl.lr=1e-6`.
`load_recipe()` resolves a file plus overrides into a `Recipe`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from srlkit.errors import ConfigError

PhaseName = Literal["srl", "rlvr", "sft"]


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a recipe must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- decompose


class DecomposeConfig(_Strict):
    source: str | None = None  # None: the bundled CHAMP problems
    out: str | None = None
    config_name: str | None = None  # Hub dataset config (`--config`)
    split: str = "train"
    revision: str | None = None
    preset: str | None = None
    problem_col: str | None = None  # None: the preset's, else "problem"
    solution_col: str | None = None
    answer_col: str | None = None
    id_col: str | None = None
    steps: Literal["auto", "numbered", "paragraph", "sentence", "turns"] = "auto"
    history: int = 2  # `turns`: how many action/observation pairs of context
    # Which steps become targets. "all": every step (N instances; step 1 has no context).
    # "skip-first": steps 2..N (N-1 instances; the paper's worked example).
    targets: Literal["all", "skip-first", "skip-last"] = "all"
    title_hint: bool = False
    template: str | None = None  # path to a template override file
    min_step_chars: int = 8
    max_step_chars: int = 4000
    min_steps: int = 2
    max_steps: int = 64
    max_row_bytes: int = 1_000_000
    val_size: float = 0.1  # < 1: fraction of trajectories; >= 1: a count
    # A column naming each row's split ("train"/"validation"); set, it replaces the hashed
    # val_size split. gym: sources set it themselves (their splits come from disjoint seeds).
    split_col: str | None = None
    seed: int = 0
    shard_rows: int = 20_000  # trajectories per work unit / output shard
    limit: int | None = None  # read at most this many source rows
    rewrite: bool = False
    rewrite_endpoint: str | None = None  # an OpenAI-compatible server (`vllm serve`, an API)
    rewrite_model: str | None = None
    rewrite_engine: Literal["transformers", "vllm"] = "transformers"  # in-process, without an endpoint


# --------------------------------------------------------------------------- embed


class EmbedConfig(_Strict):
    enabled: bool = True
    model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    dtype: Literal["float16", "float32"] = "float32"
    batch_size: int = 64
    device: str | None = None


# --------------------------------------------------------------------------- train


class LoraConfig(_Strict):
    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: list[str] | str = "all-linear"


class ModelConfig(_Strict):
    name_or_path: str | None = None  # None: the packaged SmolLM2-135M-Instruct
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    gradient_checkpointing: bool = False
    lora: LoraConfig = Field(default_factory=LoraConfig)


class RolloutConfig(_Strict):
    engine: Literal["hf", "vllm"] = "hf"
    num_generations: int = 8  # G, rollouts per prompt
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_prompt_tokens: int = 1024
    max_new_tokens: int = 512
    # What a completion cut at max_new_tokens does: "mask" drops it from the loss,
    # "penalize" keeps it with `truncation_penalty` as its reward.
    truncation: Literal["mask", "penalize", "keep"] = "mask"
    truncation_penalty: float = -1.0
    # vLLM only
    gpu_memory_utilization: float = 0.5
    sleep_mode: bool = True
    sleep_level: int = 1  # 1: offload weights to CPU while training; 2: discard them (full fine-tuning only)
    tensor_parallel_size: int = 1
    enforce_eager: bool = False
    generation_batch_size: int = 64  # HF engine: prompts x G rows per generate call


class LossConfig(_Strict):
    clip_low: float = 0.2
    clip_high: float = 0.28
    # token_mean: DAPO; seq_mean: GRPO; dr_grpo: sum / (batch x max_new_tokens)
    aggregation: Literal["token_mean", "seq_mean", "dr_grpo"] = "token_mean"
    scale_std: bool = True  # divide advantages by the group std (off: Dr.GRPO)
    kl_beta: float = 0.0
    std_eps: float = 1e-4
    # Truncated importance sampling: each token's loss is weighted by
    # min(pi_trainer_old / pi_engine, tis_cap), correcting for the rollout engine's
    # log-probs differing from the trainer's. 0 disables the correction.
    tis_cap: float = 2.0


class RewardSpec(_Strict):
    name: str
    weight: float = 1.0
    params: dict[str, Any] = Field(default_factory=dict)


class SamplingConfig(_Strict):
    dynamic: bool = True
    epsilon: float = 1e-6  # keep groups whose reward population std > epsilon
    max_attempts: int = 8  # generate calls per step before training on what we have
    # Consecutive draws in which every group was filtered (nothing to train on) before the
    # phase gives up with a message; such a draw is not an optimizer step.
    patience: int = 5


class PhaseConfig(_Strict):
    # "grpo": generate, score, filter, group advantages. "sft": the expert target, advantage 1.
    kind: Literal["grpo", "sft"] = "grpo"
    table: Literal["srl", "rlvr"] = "srl"
    # How an SRL row is shown to the model. "table": the decomposed `prompt` column (the
    # paper's next-step instruction). "continuation": the whole-solution (RLVR) prompt with
    # the expert steps so far already written as the start of the answer.
    prompt_style: Literal["table", "continuation"] = "table"
    # Where a generated step ends. "eos": the completion is the step (the paper). "boundary":
    # the completion is cut after its first line break (after </think> when it thinks first);
    # the rest is neither scored nor trained, so SRL never teaches the model to stop after one
    # step. Only for SRL phases.
    step_end: Literal["eos", "boundary"] = "eos"
    max_new_tokens: int | None = None  # this phase's rollout cap; None: rollout.max_new_tokens
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="step_similarity")])
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    steps: int | None = None  # optimizer steps; None: derived from epochs
    epochs: float = 1.0
    prompts_per_step: int = 8  # prompt groups per rollout batch (the paper's "batch")
    micro_batch_size: int = 8  # sequences per forward/backward
    mu: int = 1  # updates per rollout batch
    lr: float = 5e-7
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_every: int = 0  # 0: only at the phase end
    save_every: int = 0  # 0: only at the phase end
    val_prompts: int = 32  # held-out prompts scored at each evaluation


def _default_phases() -> dict[str, PhaseConfig]:
    return {
        "srl": PhaseConfig(table="srl", rewards=[RewardSpec(name="step_similarity")]),
        "rlvr": PhaseConfig(table="rlvr", rewards=[RewardSpec(name="math")]),
        "sft": PhaseConfig(
            kind="sft", table="srl", rewards=[], lr=5e-6, lr_schedule="cosine", warmup_ratio=0.3,
            sampling=SamplingConfig(dynamic=False),
        ),
    }


class TrainConfig(_Strict):
    data: str | None = None  # a decomposed dataset folder; None: the recipe's/bundled one
    out: str | None = None  # None: runs/<timestamp>
    curriculum: list[PhaseName] = Field(default_factory=lambda: ["srl", "rlvr"])
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    phases: dict[str, PhaseConfig] = Field(default_factory=_default_phases)
    log_every: int = 1
    sample_every: int = 10  # write a few completions with rewards every K steps
    keep_checkpoints: int = 2
    report_to: list[Literal["jsonl", "tensorboard", "wandb", "trackio"]] = Field(
        default_factory=lambda: ["jsonl", "tensorboard"]
    )
    resume: bool = False
    # A phase that made no optimizer update at all fails the run, unless this is set.
    allow_idle_phases: bool = False
    # Whole-solution greedy accuracy on this many RLVR validation problems at every
    # validation of every phase (the curve the report plots); 0: off.
    val_solve: int = 0
    val_solve_max_new_tokens: int = 128

    @field_validator("curriculum", mode="before")
    @classmethod
    def _split_curriculum(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("phases", mode="before")
    @classmethod
    def _fill_phases(cls, v: Any) -> Any:
        """A recipe may give only some phases, or some fields: defaults fill the rest."""
        if not isinstance(v, dict):
            return v
        merged: dict[str, Any] = {k: p.model_dump() for k, p in _default_phases().items()}
        for name, given in v.items():
            given = given.model_dump() if isinstance(given, BaseModel) else given
            merged[name] = _deep_merge(merged.get(name, {}), given)
        return merged


# --------------------------------------------------------------------------- eval


class EvalConfig(_Strict):
    models: list[str] = Field(default_factory=list)  # empty in a recipe: the run's model(s)
    bench: list[str] = Field(default_factory=lambda: ["validation"])
    k: int = 4  # samples per problem for avg@k / pass@k
    temperature: float = 1.0
    max_new_tokens: int = 512
    limit: int | None = None
    bootstrap: int = 1000
    seed: int = 0
    engine: Literal["hf", "vllm"] = "hf"


# --------------------------------------------------------------------------- recipe


class Recipe(_Strict):
    name: str = "recipe"
    out: str | None = None  # the pipeline's root folder
    decompose: DecomposeConfig = Field(default_factory=DecomposeConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)


def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_value(text: str) -> Any:
    """Parse an override value as TOML/JSON when it parses, else keep the string.

    >>> parse_value("1e-6"), parse_value("true"), parse_value("[1, 2]"), parse_value("srl,rlvr")
    (1e-06, True, [1, 2], 'srl,rlvr')
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides to a nested dict (returns a new dict)."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not KEY=VALUE, e.g. train.phases.srl.lr=1e-6")
        key, _, raw = item.partition("=")
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"override '{item}' has an empty key")
        node = data
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{p}' is not a table")
        node[parts[-1]] = parse_value(raw.strip())
    return data


def _format_validation(e: ValidationError) -> str:
    errs = []
    for err in e.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"])
        errs.append(f"{loc}: {err['msg']}")
    more = f" (+{len(e.errors()) - 3} more)" if len(e.errors()) > 3 else ""
    return "; ".join(errs) + more


def build(model_cls: type[BaseModel], data: dict[str, Any], where: str = "config"):
    """Validate `data` into `model_cls`, raising a one-line ConfigError."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid {where}: {_format_validation(e)}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"recipe '{path}' not found; see pipelines/ for examples")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"recipe '{path}' is not valid TOML: {e}") from None


def load_recipe(path: str | Path | None = None, overrides: list[str] | None = None) -> Recipe:
    """Read a recipe file (or the defaults) and apply dotted overrides."""
    data = read_toml(path) if path else {}
    data = apply_overrides(data, overrides or [])
    return build(Recipe, data, where=f"recipe {path}" if path else "config")


def to_toml(model: BaseModel) -> str:
    """The resolved config as TOML (None fields are left out: TOML has no null)."""
    import tomli_w

    return tomli_w.dumps(model.model_dump(mode="json", exclude_none=True))
