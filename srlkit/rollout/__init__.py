"""Rollout engines behind one protocol (`base.RolloutEngine`), and `make_engine` to pick one.

Importing this package imports no torch and no vLLM; each engine imports its library
when it is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from srlkit.rollout.base import EngineStats, FinishReason, RolloutEngine, Sample, SamplingParams

if TYPE_CHECKING:
    from srlkit.config import RolloutConfig

__all__ = ["EngineStats", "FinishReason", "RolloutEngine", "Sample", "SamplingParams", "make_engine",
           "sampling_params"]


def sampling_params(cfg: RolloutConfig, seed: int | None = None, **override: Any) -> SamplingParams:
    """The `SamplingParams` a rollout config describes (fields in `override` win)."""
    fields = dict(n=cfg.num_generations, temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                  max_new_tokens=cfg.max_new_tokens, seed=seed)
    fields.update(override)
    return SamplingParams(**fields)


def _dtype_name(model: Any) -> str:
    dtype = getattr(model, "dtype", None)
    return str(dtype).replace("torch.", "") if dtype is not None else "auto"


def make_engine(
    cfg: RolloutConfig,
    model: Any,
    tokenizer: Any,
    model_path: str | None,
    *,
    seed: int = 0,
    max_model_len: int | None = None,
    progress: Any = None,
    dtype: str | None = None,
    rank: int = 0,
    world_size: int = 1,
) -> RolloutEngine:
    """Build the engine `cfg.engine` names.

    - "hf": generation on the trainer's own module (shared weights, nothing to sync).
    - "vllm": a colocated `vllm.LLM` on `model_path` (the *base* weights). LoRA adapter-only
      sync is switched on when `model` is a peft model, with its rank; otherwise full
      weights are pushed. `model=None` (evaluation): the engine serves `model_path` as it is,
      with nothing to sync. dtype is `dtype` (the trainer's compute dtype: its fp32 master
      weights are cast on push) or the policy's; with `world_size` > 1 every rank builds its
      own colocated engine (`external_launcher`, see `VLLMEngine`); `max_model_len` defaults to
      `max_prompt_tokens + max_new_tokens`. The engine is synced with `model` before it is
      returned, so a resumed run or an existing adapter is what the first generate sees.
    """
    if cfg.engine == "hf":
        from srlkit.rollout.hf import HFEngine

        return HFEngine(model, tokenizer, batch_size=cfg.generation_batch_size,
                        max_prompt_tokens=cfg.max_prompt_tokens, progress=progress)
    if cfg.engine == "vllm":
        from srlkit.errors import SrlkitError
        from srlkit.rollout.vllm import VLLMEngine
        from srlkit.rollout.weights import is_peft

        if not model_path:
            raise SrlkitError("the vLLM engine needs the model's folder or Hub id (train.model.name_or_path)")
        lora = is_peft(model)
        lora_rank = 16
        if lora:
            peft_cfg = model.peft_config[getattr(model, "active_adapter", "default")]
            lora_rank = int(getattr(peft_cfg, "r", lora_rank))
        engine = VLLMEngine(
            model_path,
            tokenizer=getattr(tokenizer, "name_or_path", None) or model_path,
            gpu_memory_utilization=cfg.gpu_memory_utilization,
            sleep_mode=cfg.sleep_mode,
            enable_lora=lora,
            lora_rank=lora_rank,
            max_model_len=max_model_len or cfg.max_prompt_tokens + cfg.max_new_tokens,
            seed=seed,
            dtype=dtype or _dtype_name(model),
            tensor_parallel_size=cfg.tensor_parallel_size,
            enforce_eager=cfg.enforce_eager,
            max_prompt_tokens=cfg.max_prompt_tokens,
            sleep_level=cfg.sleep_level,
            rank=rank,
            world_size=world_size,
        )
        if model is not None:
            engine.load_weights(model)  # start in sync: a resumed policy or the initial LoRA adapter
        return engine
    from srlkit.errors import ConfigError

    raise ConfigError(f"unknown rollout.engine '{cfg.engine}'; use 'hf' or 'vllm'")
