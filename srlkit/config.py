"""Typed configuration for every srlkit stage. Imports no torch.

A recipe is a TOML file (see `pipelines/`) with one table per stage:
`[decompose]`, `[embed]`, `[train]` (with one `[train.phases.NAME]` per phase; `srl`, `rlvr`
and `sft` have defaults, any other name is a phase of its own) and `[eval]`. Every field can
be overridden from the command line with a dotted path: `--set train.phases.srl.lr=1e-6`.
`load_recipe()` resolves a file plus overrides into a `Recipe`.

Everything is checked when the recipe loads, before any model does: unknown keys, phases and
reward parameters (with "did you mean"), value ranges, and the paths a run reads.
"""

from __future__ import annotations

import json
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from srlkit.errors import ConfigError, did_you_mean

# A phase is named freely (the name becomes its run folder); `kind` decides what it does.
PhaseName = str
_PHASE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")  # no ".": `--set train.phases.NAME.lr=...` splits on dots
_RESERVED = ("final", "checkpoints", "samples", "tb")  # run-folder entries a phase folder would clash with


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a recipe must not be silently ignored."""

    # inf / nan pass every `ge=` / `gt=` bound, so no float field accepts them
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


# --------------------------------------------------------------------------- decompose


class DecomposeConfig(_Strict):
    source: str | None = None  # None: the bundled CHAMP problems
    out: str | None = None
    subset: str | None = None  # Hub dataset config, shown as 'subset' on the Hub (`--subset`)
    split: str = "train"
    revision: str | None = None
    preset: str | None = None
    problem_col: str | None = None  # None: the preset's, else "problem"
    solution_col: str | None = None
    answer_col: str | None = None
    id_col: str | None = None
    steps: Literal["auto", "numbered", "paragraph", "sentence", "turns"] = "auto"
    history: int = Field(2, ge=0)  # `turns`: how many action/observation pairs of context
    # Which steps become targets. "all": every step (N instances; step 1 has no context).
    # "skip-first": steps 2..N (N-1 instances; the paper's worked example).
    targets: Literal["all", "skip-first", "skip-last"] = "all"
    title_hint: bool = False
    template: str | None = None  # path to a template override file
    min_step_chars: int = Field(8, ge=0)
    max_step_chars: int = Field(4000, ge=1)
    min_trajectory_steps: int = Field(2, ge=1)
    max_trajectory_steps: int = Field(64, ge=1)
    max_row_bytes: int = Field(1_000_000, ge=1)
    val_size: float = Field(0.1, ge=0)  # < 1: fraction of trajectories; >= 1: a count
    # A column naming each row's split ("train"/"validation"); set, it replaces the hashed
    # val_size split. gym: sources set it themselves (their splits come from disjoint seeds).
    split_col: str | None = None
    seed: int = 0
    shard_rows: int = Field(20_000, ge=1)  # trajectories per work unit / output shard
    limit: int | None = Field(None, ge=1)  # read at most this many source rows
    rewrite: bool = False
    rewrite_endpoint: str | None = None  # an OpenAI-compatible server (`vllm serve`, an API)
    rewrite_model: str | None = None
    rewrite_engine: Literal["transformers", "vllm"] = "transformers"  # in-process, without an endpoint

    @field_validator("template")
    @classmethod
    def _template_exists(cls, v: str | None) -> str | None:
        if v is not None and not Path(v).expanduser().is_file():
            state = "is a folder" if Path(v).expanduser().is_dir() else "not found"
            raise ValueError(f"template file '{v}' {state}; give the path of a template override file")
        return v

    @model_validator(mode="after")
    def _bounds_ordered(self) -> DecomposeConfig:
        for lo, hi in (("min_trajectory_steps", "max_trajectory_steps"), ("min_step_chars", "max_step_chars")):
            if getattr(self, lo) > getattr(self, hi):
                raise ValueError(f"{lo} = {getattr(self, lo)} is above {hi} = {getattr(self, hi)}; lower it or raise {hi}")
        return self


# --------------------------------------------------------------------------- embed


class EmbedConfig(_Strict):
    enabled: bool = True
    model: str | None = None  # None: the packaged all-MiniLM-L6-v2
    dtype: Literal["float16", "float32"] = "float32"
    batch_size: int = Field(64, ge=1)
    device: str | None = None


# --------------------------------------------------------------------------- train


class LoraConfig(_Strict):
    enabled: bool = True
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] | str = "all-linear"


class ModelConfig(_Strict):
    name_or_path: str | None = None  # None: the packaged SmolLM2-135M-Instruct
    revision: str | None = None
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    # recompute each layer's activations in backward: "auto" turns it on when training on CUDA
    # (activations dominate a GPU update's memory) and leaves it off on CPU (it costs ~30% time)
    gradient_checkpointing: bool | Literal["auto"] = "auto"
    # the learner's forward runs each group's prompt once, its G completions packed behind it
    # (same logits and gradients; srlkit/train/packing.py): "auto" where a cost rule fitted to
    # measurements says it is faster on this device (srlkit/train/pack_policy.py), true whenever
    # it saves a quarter of the tokens, false never (one row per completion).
    pack_prompts: bool | Literal["auto"] = "auto"
    lora: LoraConfig = Field(default_factory=LoraConfig)

    @field_validator("name_or_path")
    @classmethod
    def _local_model_exists(cls, v: str | None) -> str | None:
        # A Hub id is "org/name"; anything else that looks like a path must be on disk now.
        if v is not None and _looks_local(v) and not Path(v).expanduser().exists():
            raise ValueError(f"model folder '{v}' not found; give an existing folder or a Hub id (org/name)")
        return v


class RolloutConfig(_Strict):
    engine: Literal["hf", "vllm"] = "hf"
    num_generations: int = Field(8, ge=1)  # G, rollouts per prompt (GRPO phases need >= 2)
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(-1, ge=-1)  # -1: off
    max_prompt_tokens: int = Field(1024, ge=1)
    max_new_tokens: int = Field(512, ge=1)
    # What a completion cut at max_new_tokens does: "mask" drops it from the loss,
    # "penalize" keeps it with `truncation_penalty` as its reward.
    truncation: Literal["mask", "penalize", "keep"] = "mask"
    truncation_penalty: float = -1.0
    # vLLM only
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1)
    sleep_mode: bool = True
    sleep_level: int = Field(1, ge=1, le=2)  # 1: offload weights to CPU while training; 2: discard them (full fine-tuning only)
    tensor_parallel_size: int = Field(1, ge=1)
    enforce_eager: bool = False
    generation_batch_size: int = Field(64, ge=1)  # HF engine: prompts x G rows per generate call

    @field_validator("top_k")
    @classmethod
    def _top_k(cls, v: int) -> int:
        if v == 0:
            raise ValueError("top_k = 0: use -1 to disable, or a positive count")
        return v


class LossConfig(_Strict):
    clip_low: float = Field(0.2, ge=0)
    clip_high: float = Field(0.28, ge=0)
    # token_mean: DAPO; seq_mean: GRPO; dr_grpo: sum / (batch x max_new_tokens)
    aggregation: Literal["token_mean", "seq_mean", "dr_grpo"] = "token_mean"
    scale_std: bool = True  # divide advantages by the group std (off: Dr.GRPO)
    kl_beta: float = Field(0.0, ge=0)
    std_eps: float = Field(1e-4, gt=0)
    # Truncated importance sampling: each token's loss is weighted by
    # min(pi_trainer_old / pi_engine, tis_cap), correcting for the rollout engine's
    # log-probs differing from the trainer's. 0 disables the correction.
    tis_cap: float = Field(2.0, ge=0)
    # How that correction applies (srlkit/train/mismatch.py): per token or per sequence (the
    # product of the token ratios), truncated at tis_cap or masked outside [1/tis_cap, tis_cap].
    tis_mode: Literal["token_truncate", "token_mask", "sequence_truncate", "sequence_mask"] = "token_truncate"
    # The surrogate (srlkit/train/loss.py): clip (PPO/GRPO: per-token clipped ratio), gspo (one
    # ratio per sequence, the geometric mean, clipped per sequence; the paper's clip range is
    # 3e-4/4e-4 with seq_mean), cispo (the ratio clipped to [1-clip_low, 1+clip_high] as a
    # stop-gradient weight on log pi: clipping never zeroes a token's gradient).
    objective: Literal["clip", "gspo", "cispo"] = "clip"


class RewardSpec(_Strict):
    name: str
    weight: float = 1.0
    # Checked against the reward's typed params model (`srlkit.rewards.base.PARAMS`) on load.
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_reward(self) -> RewardSpec:
        from srlkit.rewards.base import validate_params  # the registry; imports no torch

        try:
            validate_params(self.name, self.params)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self


class SamplingConfig(_Strict):
    dynamic: bool = True
    epsilon: float = Field(1e-6, ge=0)  # keep groups whose reward population std > epsilon
    max_attempts: int = Field(8, ge=1)  # generate calls per step before training on what we have
    # Consecutive draws in which every group was filtered (nothing to train on) before the
    # phase gives up with a message; such a draw is not an optimizer step.
    patience: int = Field(5, ge=1)


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
    max_new_tokens: int | None = Field(None, ge=1)  # this phase's rollout cap; None: rollout.max_new_tokens
    # G, this phase's rollouts per prompt; None: rollout.num_generations. RLVR with a rare success
    # keeps a group only when one of its G samples is right, so larger groups keep more of them.
    num_generations: int | None = Field(None, ge=1)
    # Off-policy expert guidance (SRL rows only): one of each group's G completions is the
    # expert's own next step instead of a sample, scored by the same rewards (as LUFFY does
    # with whole expert traces). Not in the paper; it gives a weak model that never samples
    # the right step a positive example in every group. Off: the paper's SRL.
    expert_in_group: bool = False
    rewards: list[RewardSpec] = Field(default_factory=lambda: [RewardSpec(name="step_similarity")])
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    steps: int | None = Field(None, ge=1)  # optimizer steps; None: derived from epochs
    epochs: float = Field(1.0, gt=0)
    prompts_per_step: int = Field(8, ge=1)  # prompt groups per rollout batch (the paper's "batch")
    micro_batch_size: int = Field(8, ge=1)  # sequences per forward/backward
    mu: int = Field(1, ge=1)  # updates per rollout batch
    lr: float = Field(5e-7, ge=0)
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    warmup_steps: int = Field(0, ge=0)  # linear warm-up over this many optimizer steps (overrides warmup_ratio)
    # KL to a reference, per phase. None: train.loss.kl_beta. The reference: "phase_start",
    # the weights this phase began with (in `srl,rlvr`, RLVR stays near the SRL result, as a
    # separate `rlvr` run from the SRL weights would), or "base": the model the run loaded
    # (with LoRA, the adapter-free model).
    kl_beta: float | None = Field(None, ge=0)
    kl_reference: Literal["phase_start", "base"] = "phase_start"
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)  # 0: no clipping
    eval_every: int = Field(0, ge=0)  # 0: only at the phase end
    save_every: int = Field(0, ge=0)  # 0: only at the phase end
    val_prompts: int = Field(32, ge=0)  # held-out prompts scored at each evaluation

    @model_validator(mode="after")
    def _one_warmup(self) -> PhaseConfig:
        if self.warmup_steps and self.warmup_ratio:
            raise ValueError("set warmup_steps or warmup_ratio, not both")
        return self


DEFAULT_PHASES = ("srl", "rlvr", "sft")


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
    # Phase names in order; each is a `phases` table (srl, rlvr and sft have defaults).
    curriculum: list[PhaseName] = Field(default_factory=lambda: ["srl", "rlvr"])
    seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    phases: dict[str, PhaseConfig] = Field(default_factory=_default_phases)
    log_every: int = Field(1, ge=1)
    sample_every: int = Field(10, ge=0)  # write a few completions with rewards every K steps
    keep_checkpoints: int = Field(2, ge=1)
    report_to: list[Literal["jsonl", "tensorboard", "wandb", "trackio"]] = Field(
        default_factory=lambda: ["jsonl", "tensorboard"]
    )
    resume: bool = False
    # A phase that made no optimizer update at all fails the run, unless this is set.
    allow_idle_phases: bool = False
    # Whole-solution greedy accuracy on this many RLVR validation problems at every
    # validation of every phase (the curve the report plots); 0: off.
    val_solve: int = Field(0, ge=0)
    val_solve_max_new_tokens: int = Field(128, ge=1)

    @field_validator("curriculum", mode="before")
    @classmethod
    def _split_curriculum(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("data")
    @classmethod
    def _data_exists(cls, v: str | None) -> str | None:
        if v is not None and Path(v).expanduser().is_file():
            raise ValueError(f"data '{v}' is a file; training reads a `srlkit decompose` output folder: run "
                             f"`srlkit decompose {v} --out DIR`, then pass --data DIR")
        if v is not None and not Path(v).expanduser().is_dir():
            raise ValueError(f"data folder '{v}' not found; pass a `srlkit decompose` output folder (--data DIR)")
        return v

    @field_validator("phases", mode="before")
    @classmethod
    def _fill_phases(cls, v: Any) -> Any:
        """A recipe may give only some phases, or some fields: defaults fill the rest.

        srl, rlvr and sft start from their own defaults. A phase of another name starts from
        the defaults of its kind and table: sft's for `kind = "sft"`, rlvr's for
        `table = "rlvr"`, else srl's (so it never inherits a reward for the other table).
        """
        if not isinstance(v, dict):
            return v
        defaults = {k: p.model_dump() for k, p in _default_phases().items()}
        merged = dict(defaults)
        for name, given in v.items():
            given = given.model_dump() if isinstance(given, BaseModel) else given
            if name not in defaults and isinstance(given, dict):
                base = "sft" if given.get("kind") == "sft" else "rlvr" if given.get("table") == "rlvr" else "srl"
                merged[name] = _deep_merge(defaults[base], given)
            else:
                merged[name] = _deep_merge(merged.get(name, {}), given) if isinstance(given, dict) else given
        return merged

    @model_validator(mode="after")
    def _consistent(self) -> TrainConfig:
        try:
            check_train(self)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return self


def group_size(phase: PhaseConfig, rollout: RolloutConfig) -> int:
    """G for a phase: its own num_generations, else the rollout's."""
    return phase.num_generations or rollout.num_generations


def check_train(cfg: TrainConfig) -> None:
    """Checks across fields: the curriculum's phases exist and can run. One-line ConfigError.

    Runs when a config is built (so `--dry-run` catches it) and again before training starts.
    """
    if not cfg.curriculum:
        raise ConfigError("train.curriculum is empty; give phases in order, e.g. --curriculum srl,rlvr")
    for name in [*cfg.curriculum, *cfg.phases]:
        if name in _RESERVED:
            raise ConfigError(f"phase name '{name}' is not allowed: RUN/{name} is taken in the run folder; rename the phase")
        if not _PHASE_NAME.fullmatch(name):
            raise ConfigError(f"phase name '{name}' is not allowed: use letters, digits, '_' and '-' (it names a folder)")
    for name in cfg.curriculum:
        if name not in cfg.phases:
            raise ConfigError(f"train.curriculum names phase '{name}', which has no table: add [train.phases.{name}] "
                              f"(kind, table, rewards, ...) or fix the name{did_you_mean(name, list(cfg.phases))}")
    for name in cfg.phases:
        if name not in cfg.curriculum and name not in DEFAULT_PHASES:
            raise ConfigError(f"[train.phases.{name}] is not in train.curriculum ({', '.join(cfg.curriculum)}): add "
                              f"'{name}' there to run it, or fix the name{did_you_mean(name, list(cfg.curriculum))}")
    for name in dict.fromkeys(cfg.curriculum):
        pc = cfg.phases[name]
        if pc.kind == "sft" and pc.table != "srl":
            raise ConfigError(f"phase '{name}' is kind sft and trains on expert steps: set train.phases.{name}.table = \"srl\"")
        if pc.kind == "grpo" and not pc.rewards:
            raise ConfigError(f"phase '{name}' has no rewards; add [[train.phases.{name}.rewards]] with a name")
    for name in dict.fromkeys(cfg.curriculum):
        pc = cfg.phases[name]
        if pc.kind == "grpo" and (g := group_size(pc, cfg.rollout)) < 2:
            key = f"train.phases.{name}.num_generations" if pc.num_generations else "train.rollout.num_generations"
            raise ConfigError(f"{key} = {g}, but GRPO phase '{name}' needs at least 2 samples "
                              "per group (advantages are group-relative); set it to 2 or more")


def _looks_local(name: str) -> bool:
    """A model name that can only be a path: a Hub id is "name" or "org/name"."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or "\\" in name


# --------------------------------------------------------------------------- eval


class EvalConfig(_Strict):
    models: list[str] = Field(default_factory=list)  # empty in a recipe: the run's model(s)
    bench: list[str] = Field(default_factory=lambda: ["validation"])
    k: int = Field(4, ge=0)  # samples per problem for avg@k / pass@k
    temperature: float = Field(1.0, ge=0)
    max_new_tokens: int = Field(512, ge=1)
    limit: int | None = Field(None, ge=1)
    bootstrap: int = Field(1000, ge=0)
    seed: int = 0
    engine: Literal["hf", "vllm"] = "hf"
    gpu_memory_utilization: float = Field(0.85, gt=0, le=1)  # vLLM: nothing else is on the GPU while evaluating

    @model_validator(mode="after")
    def _samples_differ(self) -> EvalConfig:
        if self.k > 1 and self.temperature == 0:
            raise ValueError(f"k = {self.k} samples at temperature 0 are {self.k} copies of the greedy answer, so "
                             "avg@k and pass@k would mean nothing; set temperature > 0, or k = 0 (greedy only)")
        return self


# --------------------------------------------------------------------------- recipe


class Recipe(_Strict):
    name: str = "recipe"  # names the pipeline folder runs/<name>: a plain name
    out: str | None = None  # the pipeline's root folder
    decompose: DecomposeConfig = Field(default_factory=DecomposeConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        if not _RECIPE_NAME.fullmatch(v):
            raise ValueError(f"'{v}' is not a plain name: use letters, digits, '.', '_' and '-', no path "
                             "separators (it names the folder runs/<name>); set `out` for another place")
        return v


_RECIPE_NAME = re.compile(r"(?![.]+$)[A-Za-z0-9._-]{1,100}")


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


def _fields_at(model_cls: Any, loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at `loc` inside `model_cls` ([] when there is none)."""
    tp: Any = model_cls
    for part in loc:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = tp.model_fields.get(str(part))
            if field is None:
                return []
            tp = field.annotation
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) is list:
            tp = typing.get_args(tp)[0]
        else:
            return []
        if typing.get_origin(tp) in (typing.Union, types.UnionType):  # X | None: the model member
            models = [a for a in typing.get_args(tp) if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else tp
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []


def _format_validation(e: ValidationError, model_cls: Any = None) -> str:
    errs = []
    for err in e.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden" and err["loc"]:
            msg = "unknown key" + did_you_mean(str(err["loc"][-1]), _fields_at(model_cls, err["loc"][:-1]))
        errs.append(msg if not loc or f"{loc}." in msg else f"{loc}: {msg}")  # no "train: train.x ..."
    more = f" (+{len(e.errors()) - 3} more)" if len(e.errors()) > 3 else ""
    return "; ".join(errs) + more


def build(model_cls: type[BaseModel], data: dict[str, Any], where: str = "config"):
    """Validate `data` into `model_cls`, raising a one-line ConfigError."""
    try:
        return model_cls.model_validate(data)
    except ValidationError as e:
        raise ConfigError(f"invalid {where}: {_format_validation(e, model_cls)}") from None


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"recipe '{path}' is a folder; give a TOML recipe file (see pipelines/)")
    if not p.is_file():
        raise ConfigError(f"recipe '{path}' not found; see pipelines/ for examples")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"recipe '{path}' is not UTF-8 text; give a TOML recipe file (see pipelines/)") from None
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
