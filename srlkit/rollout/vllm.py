"""VLLMEngine: colocated vLLM rollouts (optional extra: `pip install 'srlkit[vllm]'`).

Colocated means vLLM lives in the trainer's process and shares its device, so the engine
runs vLLM's engine core in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0` unless the user set
it): weight pushes are then plain in-memory calls, never pickled tensors.

Only vLLM's public API is used:
- generation: `LLM.generate` with `TokensPrompt` token-id prompts and one
  `vllm.SamplingParams` per prompt (`logprobs=0`: the sampled token's logprob). Each
  prompt gets seed `seed + i * n`; vLLM gives its n children `+0..n-1`, so every sample
  has its own stream and the whole call is reproducible.
- logprobs: the engine asks for `logprobs_mode="processed_logprobs"` (where vLLM has it),
  i.e. after temperature and after top-k/top-p. With top-k/top-p off (the RL default) that
  equals the HF engine's `log_softmax(logits / T)`, which is what the learner recomputes.
- full fine-tuning sync: `LLM.collective_rpc("reload_weights", kwargs={"weights_iterator":
  merged_state_dict, "is_checkpoint_format": True})`, the worker's in-place reload (a named
  RPC: no pickled callables, tensors travel by vLLM's own serializer if the core is ever
  out of process). It re-runs each layer's post-load processing, which plain
  `model.load_weights` skips: on the CPU backend, whose linear weights are repacked after
  loading, the plain route fails. vLLM builds without `reload_weights` (before ~0.11) fall
  back to `LLM.apply_model(lambda m: m.load_weights(...))`, TRL's colocate route. Then
  `LLM.reset_prefix_cache()`, so no KV block computed under the old weights is reused.
- LoRA sync, adapter-only: the peft adapter is saved to a fresh folder after each update
  and passed as a new `LoRARequest(name, int_id, path)` on the next generate; the full
  weights are never merged or pushed.
- memory: `LLM.sleep(level=1)` / `LLM.wake_up()` when sleep mode is on and the platform
  supports it (CUDA/ROCm/XPU; vLLM refuses it on CPU, so there sleep/wake are no-ops).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import weakref
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from srlkit.errors import SrlkitError
from srlkit.rollout.base import EngineStats, Sample, SamplingParams
from srlkit.rollout.common import Overflow, bound_prompts, validate_params, validate_prompts
from srlkit.rollout.weights import is_peft, merged_state_dict, save_adapter

log = logging.getLogger(__name__)


def import_vllm() -> SimpleNamespace:
    """The pieces of vLLM's public API the engine uses, or a one-line error saying how to install it."""
    try:
        import vllm
        from vllm.inputs import TokensPrompt
        from vllm.lora.request import LoRARequest
    except ImportError as e:
        raise SrlkitError(
            f"the vLLM engine needs vllm ({e}); install with pip install 'srlkit[vllm]' "
            "or use rollout.engine=hf"
        ) from None
    return SimpleNamespace(LLM=vllm.LLM, SamplingParams=vllm.SamplingParams,
                           TokensPrompt=TokensPrompt, LoRARequest=LoRARequest)


def _load_into(weights: list[tuple[str, Any]], model: Any) -> int:
    """Runs on each vLLM worker: load HF-named tensors into vLLM's model (it fuses qkv etc.)."""
    loaded = model.load_weights(iter(weights))
    return len(loaded) if loaded is not None else len(weights)


class VLLMEngine:
    """`RolloutEngine` on a colocated `vllm.LLM`. See the module docstring for the API used."""

    def __init__(
        self,
        model_name_or_path: str,
        *,
        tokenizer: Any = None,
        gpu_memory_utilization: float = 0.5,
        sleep_mode: bool = True,
        enable_lora: bool = False,
        lora_rank: int = 16,
        max_model_len: int = 2048,
        seed: int = 0,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        enforce_eager: bool = False,
        max_prompt_tokens: int | None = None,
        overflow: Overflow = "error",
        adapter_dir: str | Path | None = None,
        **llm_kwargs: Any,
    ) -> None:
        self.vllm = import_vllm()
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # colocated: in-process core
        self.sleep_mode = bool(sleep_mode) and self._sleep_supported()
        if sleep_mode and not self.sleep_mode:
            log.warning("vLLM sleep mode is not supported on this platform; sleep()/wake() are no-ops")
        self.enable_lora = enable_lora
        self.max_model_len = max_model_len
        self.max_prompt_tokens = max_prompt_tokens
        self.overflow: Overflow = overflow
        self.tokenizer = tokenizer
        kwargs: dict[str, Any] = dict(
            model=str(model_name_or_path),
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=self.sleep_mode,
            max_model_len=max_model_len,
            seed=seed,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager,
        )
        if isinstance(tokenizer, (str, Path)):
            kwargs["tokenizer"] = str(tokenizer)
        if enable_lora:
            kwargs.update(enable_lora=True, max_lora_rank=lora_rank, max_loras=1)
        if self._has_engine_arg("logprobs_mode"):
            kwargs["logprobs_mode"] = "processed_logprobs"
        kwargs.update(llm_kwargs)
        try:
            self.llm = self.vllm.LLM(**kwargs)
        except (ValueError, RuntimeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise SrlkitError(f"vLLM could not start ({first}); check rollout.gpu_memory_utilization, "
                              "max_model_len and the model path, or use rollout.engine=hf") from None
        self.vocab_size = self._vocab_size()
        self._adapter_root = Path(adapter_dir) if adapter_dir else None
        self._lora: Any = None  # the LoRARequest of the latest synced adapter
        self._lora_version = 0
        self._asleep = False
        self.stats = EngineStats()

    # ------------------------------------------------------------------ protocol

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Sample]]:
        validate_params(params)
        validate_prompts(prompts, self.vocab_size)
        prompts = bound_prompts(prompts, self.max_prompt_tokens, self.overflow)
        too_long = [i for i, p in enumerate(prompts) if len(p) >= self.max_model_len]
        if too_long:
            raise SrlkitError(f"{len(too_long)} prompt(s) do not fit max_model_len={self.max_model_len}; "
                              "raise it or lower rollout.max_prompt_tokens")
        if self._asleep:
            self.wake()
        if self.enable_lora and self._lora is None:
            raise SrlkitError("vLLM LoRA is on but no adapter was synced; call load_weights(policy) first")
        inputs = [self.vllm.TokensPrompt(prompt_token_ids=list(p)) for p in prompts]
        per_prompt = [self._sampling(params, i) for i in range(len(prompts))]
        start = time.perf_counter()
        kwargs = {"use_tqdm": False}
        if self._lora is not None:
            kwargs["lora_request"] = self._lora
        outputs = self.llm.generate(inputs, per_prompt, **kwargs)
        result = [self._to_samples(o, params) for o in outputs]
        self.stats.record(len(prompts), [s for g in result for s in g], time.perf_counter() - start)
        return result

    def load_weights(self, model: Any) -> None:
        """Sync the policy: its LoRA adapter only (LoRA on), else its merged full weights."""
        if self._asleep:
            self.wake()
        if self.enable_lora:
            self._sync_adapter(model)
        else:
            self._push_full(model)

    def sleep(self) -> None:
        """Free the KV cache and offload weights (level 1) before the update; no-op without sleep mode."""
        if self.sleep_mode and not self._asleep:
            self.llm.sleep(level=1)
            self._asleep = True

    def wake(self) -> None:
        if self.sleep_mode and self._asleep:
            self.llm.wake_up()
        self._asleep = False

    # ------------------------------------------------------------------ weight sync

    def _push_full(self, model: Any) -> None:
        start = time.perf_counter()
        weights = list(merged_state_dict(model).items())
        try:
            # vLLM >= 0.11: the worker's in-place reload, which re-runs each layer's
            # post-load processing (CPU/oneDNN repacking, quantisation), so it is the
            # correct path wherever loaded weights are transformed.
            self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights,
                                                              "is_checkpoint_format": True})
        except (AttributeError, NotImplementedError) as e:
            if "reload_weights" not in str(e):
                raise
            # older vLLM: load straight into the worker's model (TRL's colocate route)
            fn = partial(_load_into, weights)
            if hasattr(self.llm, "apply_model"):
                self.llm.apply_model(fn)
            else:
                self.llm.collective_rpc(lambda worker: fn(worker.model_runner.model))
        self.llm.reset_prefix_cache()  # cached prompt KV was computed with the old weights
        self.stats.extra["sync_seconds"] = self.stats.extra.get("sync_seconds", 0.0) + time.perf_counter() - start
        self.stats.extra["syncs"] = self.stats.extra.get("syncs", 0.0) + 1

    def _sync_adapter(self, model: Any) -> None:
        if not is_peft(model):
            raise SrlkitError("vLLM LoRA sync needs a peft model; enable train.model.lora or set enable_lora=False")
        start = time.perf_counter()
        self._lora_version += 1
        if self._adapter_root is None:  # our own temp folder, removed with the engine
            self._adapter_root = Path(tempfile.mkdtemp(prefix="srlkit-vllm-lora-"))
            weakref.finalize(self, shutil.rmtree, str(self._adapter_root), True)
        folder = save_adapter(model, self._adapter_root / f"v{self._lora_version}")
        previous, self._lora = self._lora, self.vllm.LoRARequest(
            f"policy-v{self._lora_version}", self._lora_version, str(folder)
        )
        if previous is not None:  # a new int id makes vLLM load the new folder; the old one is done
            shutil.rmtree(previous.lora_path, ignore_errors=True)
        self.stats.extra["sync_seconds"] = self.stats.extra.get("sync_seconds", 0.0) + time.perf_counter() - start
        self.stats.extra["syncs"] = self.stats.extra.get("syncs", 0.0) + 1

    # ------------------------------------------------------------------ internals

    def _sampling(self, params: SamplingParams, index: int) -> Any:
        # skip_special_tokens stays at vLLM's default (True), matching the HF engine's text.
        return self.vllm.SamplingParams(
            n=params.n, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
            max_tokens=params.max_new_tokens, logprobs=0,
            seed=None if params.seed is None else int(params.seed) + index * params.n,
        )

    def _to_samples(self, output: Any, params: SamplingParams) -> list[Sample]:
        samples = []
        for c in sorted(output.outputs, key=lambda c: getattr(c, "index", 0)):
            toks = [int(t) for t in c.token_ids]
            if c.finish_reason not in ("stop", "length"):
                raise SrlkitError(f"vLLM finished a request with '{c.finish_reason}'; "
                                  "lower rollout.gpu_memory_utilization pressure or max_new_tokens and retry")
            if c.logprobs is None or len(c.logprobs) != len(toks):
                raise SrlkitError("vLLM returned no per-token logprobs; this vLLM build is not supported")
            lps = [float(step[t].logprob) for step, t in zip(c.logprobs, toks)]
            samples.append(Sample(token_ids=toks, text=c.text, logprobs=lps, finish_reason=c.finish_reason))
        return samples

    def _sleep_supported(self) -> bool:
        try:
            from vllm.platforms import current_platform

            return bool(current_platform.is_sleep_mode_available())
        except Exception:  # very old vLLM: assume CUDA semantics
            return True

    def _has_engine_arg(self, name: str) -> bool:
        try:
            import dataclasses

            from vllm.engine.arg_utils import EngineArgs

            return name in {f.name for f in dataclasses.fields(EngineArgs)}
        except Exception:
            return False

    def _vocab_size(self) -> int | None:
        try:
            return int(self.llm.llm_engine.model_config.get_vocab_size())
        except Exception:
            return None
