"""VLLMEngine: colocated vLLM rollouts (optional extra: `pip install 'srlkit[vllm]'`).

Colocated means vLLM lives in the trainer's process and shares its device, so the engine
runs vLLM's engine core in-process (`VLLM_ENABLE_V1_MULTIPROCESSING=0` unless the user set
it): weight pushes are then plain in-memory calls, never pickled tensors.

Mostly vLLM's public API; the exceptions are named below (`llm_engine.model_config` for the
vocabulary size, `vllm.platforms` and `EngineArgs` to probe features, and the old-vLLM
fallback that passes a callable to `apply_model`):
- generation: `LLM.generate` with `TokensPrompt` token-id prompts and one
  `vllm.SamplingParams` per prompt (`logprobs=0`: the sampled token's logprob). Each
  prompt gets seed `seed + i * n`; vLLM gives its n children `+0..n-1`, so every sample
  has its own stream and the whole call is reproducible.
- logprobs: the engine asks for `logprobs_mode="processed_logprobs"` (where vLLM has it),
  i.e. after temperature and after top-k/top-p. With top-k/top-p off (the RL default) that
  equals the HF engine's `log_softmax(logits / T)`, which is what the learner recomputes.
- full fine-tuning sync: `LLM.collective_rpc("reload_weights", kwargs={"weights_iterator":
  merged_state_dict, "is_checkpoint_format": True})`, the worker's in-place reload (a named
  RPC, so no callable is pickled on this route; tensors travel by vLLM's own serializer if the
  core is ever out of process). It re-runs each layer's post-load processing, which plain
  `model.load_weights` skips: on the CPU backend, whose linear weights are repacked after
  loading, the plain route fails. vLLM builds without `reload_weights` (before ~0.11) fall
  back to `LLM.apply_model(lambda m: m.load_weights(...))`, TRL's colocate route (that
  callable is pickled when the engine core runs out of process). Then
  `LLM.reset_prefix_cache()`, so no KV block computed under the old weights is reused.
- LoRA sync, adapter-only: the peft adapter is saved to a fresh folder after each update
  and passed as a new `LoRARequest(name, int_id, path)` on the next generate; the full
  weights are never merged or pushed.
- memory: `LLM.sleep(level=1)` (weights offloaded to CPU) or `level=2` (weights discarded:
  the next full push restores them, so level 2 needs full fine-tuning) and `LLM.wake_up()`
  when sleep mode is on and the platform supports it (CUDA/ROCm/XPU; vLLM refuses it on CPU,
  so there sleep/wake are no-ops). After level 2 the weights wake first (`tags=["weights"]`),
  are pushed, and the KV cache wakes last, so the two never peak together.
- several trainer processes (`accelerate launch`): one colocated engine per rank with
  `distributed_executor_backend="external_launcher"`, so each engine joins the trainer's own
  torch.distributed world and sits on its rank's GPU. With `tensor_parallel_size` = T > 1,
  each T consecutive ranks form one engine: they all_gather their prompts (and sampling
  params) inside the group, generate the same union with the same seeds, and each keeps its
  own slice.
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
        sleep_level: int = 1,
        rank: int = 0,
        world_size: int = 1,
        **llm_kwargs: Any,
    ) -> None:
        if sleep_level not in (1, 2):
            raise SrlkitError(f"rollout.sleep_level must be 1 or 2, not {sleep_level}")
        if sleep_level == 2 and enable_lora:
            raise SrlkitError("rollout.sleep_level=2 discards vLLM's base weights, which LoRA sync never "
                              "re-sends; use sleep_level=1 with LoRA")
        tp = int(tensor_parallel_size)
        if world_size > 1 and world_size % tp:
            raise SrlkitError(f"rollout.tensor_parallel_size={tp} does not divide the {world_size} processes; "
                              "pick a divisor of the process count")
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
        self.sleep_level = sleep_level
        self._weights_asleep = False
        self.tp_group, self.tp_index = _tp_group(rank, world_size, tp)
        kwargs: dict[str, Any] = dict(
            model=str(model_name_or_path),
            gpu_memory_utilization=gpu_memory_utilization,
            enable_sleep_mode=self.sleep_mode,
            max_model_len=max_model_len,
            seed=seed + rank // tp if world_size > 1 else seed,  # one seed per engine (TP group)
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            enforce_eager=enforce_eager,
        )
        if world_size > 1:  # join the trainer's torch.distributed world; the device is LOCAL_RANK's
            kwargs["distributed_executor_backend"] = "external_launcher"
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
        parts = self._tp_gather(prompts, params)  # [(prompts, params)] of each rank of this engine
        inputs = [self.vllm.TokensPrompt(prompt_token_ids=list(p)) for ps, _ in parts for p in ps]
        per_prompt = [self._sampling(pa, i) for ps, pa in parts for i in range(len(ps))]
        start = time.perf_counter()
        kwargs = {"use_tqdm": False}
        if self._lora is not None:
            kwargs["lora_request"] = self._lora
        outputs = self.llm.generate(inputs, per_prompt, **kwargs)
        first = sum(len(ps) for ps, _ in parts[: self.tp_index])
        result = [self._to_samples(o, params) for o in outputs[first : first + len(prompts)]]
        self.stats.record(len(prompts), [s for g in result for s in g], time.perf_counter() - start)
        return result

    def load_weights(self, model: Any) -> None:
        """Sync the policy: its LoRA adapter only (LoRA on), else its merged full weights."""
        if self._asleep and self.sleep_level == 2:  # only the weights wake; the KV cache after the push
            if self._weights_asleep:
                self.llm.wake_up(tags=["weights"])
                self._weights_asleep = False
        elif self._asleep:
            self.wake()
        if self.enable_lora:
            self._sync_adapter(model)
        else:
            self._push_full(model)

    def sleep(self) -> None:
        """Free the KV cache and offload (level 1) or discard (level 2) the weights before the update;
        no-op without sleep mode."""
        if self.sleep_mode and not self._asleep:
            self.llm.sleep(level=self.sleep_level)
            self._asleep = True
            self._weights_asleep = True

    def wake(self) -> None:
        if self.sleep_mode and self._asleep:
            if self._weights_asleep:
                self.llm.wake_up()
            else:  # level 2 after a push: the weights are awake already
                self.llm.wake_up(tags=["kv_cache"])
        self._asleep = False
        self._weights_asleep = False

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

    def _tp_gather(self, prompts: list[list[int]], params: SamplingParams) -> list[tuple[list[list[int]], Any]]:
        """Each rank's (prompts, params) in this engine's TP group, in rank order (one rank: itself)."""
        if self.tp_group is None:
            return [(prompts, params)]
        import torch.distributed as td

        out: list[Any] = [None] * td.get_world_size(self.tp_group)
        td.all_gather_object(out, (prompts, params), group=self.tp_group)
        return out

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


def _tp_group(rank: int, world_size: int, tp: int) -> tuple[Any, int]:
    """The process group of the T consecutive ranks that share one engine, and this rank's index
    in it; (None, 0) without tensor parallelism across trainer ranks. Every rank must call it."""
    if world_size <= 1 or tp <= 1:
        return None, 0
    import torch.distributed as td

    group, _ = td.new_subgroups_by_enumeration([list(range(i, i + tp)) for i in range(0, world_size, tp)])
    return group, rank % tp
