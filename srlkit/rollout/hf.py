"""HFEngine: rollouts with a transformers model on CPU or GPU. Used by tests, eval and the CPU default.

Design choices, each for a reason:
- The engine holds a *reference* to the trainer's policy (plain or peft), so generation
  always sees the current weights and `load_weights(policy)` is free.
- A LoRA policy generates with **merged weights**: for the call, each adapted layer's
  weight is swapped for `W + scaling * B @ A`, computed out of place (`weights.merged_state_dict`'s
  rule), and the adapters are bypassed; the original weight tensors are put back afterwards,
  untouched, so training and resume stay bit-exact. Merged decoding skips the two extra
  low-rank matmuls per linear layer per token. Adapters that cannot be merged this way
  (DoRA, `modules_to_save`) generate through the wrapper as before.
- Decoding is `decode.decode_groups`: the G samples of a prompt share one prefill, the KV
  cache is preallocated, finished rows leave the batch (see that module).
- Batches come from `common.plan_batches`: longest prompts first, at most `batch_size` rows
  and, with `max_batch_tokens`, at most that many cache positions.
- The sampling setup comes from `SamplingParams` alone, never from the checkpoint's
  `generation_config` (which may carry a repetition penalty, top-k, ...).
- Logprobs: `log_softmax(raw_logits / temperature)` at the sampled token, i.e. temperature
  applied, top-k/top-p truncation *not* applied (with temperature 0, greedy, T=1 is used).
  That is exactly what the learner recomputes from a forward pass at the same temperature,
  so the on-policy importance ratio is 1.
- With `params.seed` the draw is reproducible whatever the global RNG state, and the
  caller's global RNG is left untouched (`torch.random.fork_rng`), so a resumed run
  regenerates the same rollouts. The stream is per call: the same prompts, params, seed,
  `batch_size` and `max_batch_tokens` give the same samples.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from typing import Any

from srlkit.rollout.base import EngineStats, Sample, SamplingParams
from srlkit.rollout.common import Overflow, bound_prompts, plan_batches, validate_params, validate_prompts
from srlkit.rollout.weights import is_peft, merged_state_dict


def _hf_model(model: Any) -> Any:
    """The transformers model inside a peft wrapper (where `generation_config` lives)."""
    return model.get_base_model() if is_peft(model) else model


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    ids: set[int] = set()
    for src in (tokenizer.eos_token_id, getattr(_hf_model(model).generation_config, "eos_token_id", None)):
        if isinstance(src, int):
            ids.add(src)
        elif src:
            ids.update(int(x) for x in src)
    return ids


class HFEngine:
    """`RolloutEngine` over `model.generate`. `sleep`/`wake` are no-ops: the weights are the
    trainer's own and the KV cache is freed when each generate call returns."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 64,
        max_batch_tokens: int | None = None,
        device: Any = None,
        max_prompt_tokens: int | None = None,
        overflow: Overflow = "error",
        progress: Any = None,
    ) -> None:
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
        self.max_batch_tokens = max_batch_tokens  # rows x (prompt + max_new_tokens) per batch, None: rows only
        self.device = torch.device(device) if device is not None else next(model.parameters()).device
        self.max_prompt_tokens = max_prompt_tokens
        self.overflow: Overflow = overflow
        self.progress = progress  # optional callable(rows_done, rows_total) for the caller's bar
        self.stop_ids = _stop_ids(model, tokenizer)
        if not self.stop_ids:
            from srlkit.errors import SrlkitError

            raise SrlkitError("the tokenizer has no EOS token; set tokenizer.eos_token before training")
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad) if pad is not None else min(self.stop_ids)
        self.stats = EngineStats()
        # each speed-up can be switched off, for benchmarks/rollout_hf.py to measure it alone
        self.merge_lora = True
        self.share_prefill = True
        self.slab_cache = True
        self.share_prefix = True

    # ------------------------------------------------------------------ protocol

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Sample]]:
        import torch

        validate_params(params)
        validate_prompts(prompts, getattr(_hf_model(self.model).config, "vocab_size", None))
        prompts = bound_prompts(prompts, self.max_prompt_tokens, self.overflow)
        plan = plan_batches([len(p) for p in prompts], params.n, params.max_new_tokens, self.batch_size,
                            self.max_batch_tokens)
        start = time.perf_counter()
        groups: list[list[Sample]] = [[] for _ in prompts]
        seeded = params.seed is not None
        # manual_seed reseeds every CUDA device, so every one must be forked and restored
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        rng = torch.random.fork_rng(devices=devices) if seeded else nullcontext()
        done = 0
        with rng, self._generation_mode() as model:
            if seeded:
                torch.manual_seed(int(params.seed))
            for batch in plan:
                rows = self._generate_batch(model, [prompts[i] for i in batch], params)
                for k, i in enumerate(batch):
                    groups[i] = rows[k * params.n:(k + 1) * params.n]
                done += len(batch) * params.n
                if self.progress is not None:
                    self.progress(done, len(prompts) * params.n)
        self.stats.record(len(prompts), [s for g in groups for s in g], time.perf_counter() - start)
        return groups

    def load_weights(self, model: Any) -> None:
        """No-op for the policy this engine already holds; otherwise copy the other module's
        (merged, if peft) weights into ours."""
        if model is self.model:
            return
        import torch

        target = _hf_model(self.model) if is_peft(self.model) and not is_peft(model) else self.model
        state = merged_state_dict(model) if is_peft(model) and not is_peft(self.model) else model.state_dict()
        with torch.no_grad():
            missing, unexpected = target.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "lm_head" not in k]:
            from srlkit.errors import SrlkitError

            raise SrlkitError("load_weights: the given model's parameters do not match the engine's model "
                              f"({len(missing)} missing, {len(unexpected)} unexpected); pass the same architecture")

    def sleep(self) -> None:
        """No-op: nothing to release (the weights are shared with the trainer)."""

    def wake(self) -> None:
        """No-op, see `sleep`."""

    # ------------------------------------------------------------------ internals

    @contextmanager
    def _generation_mode(self):
        """eval mode and merged LoRA weights during generate; both undone after. Yields the
        module to call."""
        was_training = self.model.training
        self.model.eval()
        try:
            with merged_lora(self.model) if self.merge_lora else nullcontext(self.model) as model:
                yield model
        finally:
            self.model.train(was_training)

    def _generate_batch(self, model: Any, prompts: list[list[int]], params: SamplingParams) -> list[Sample]:
        from srlkit.rollout.decode import decode_groups

        rows = decode_groups(
            model, prompts, params.n, max_new_tokens=params.max_new_tokens, temperature=params.temperature,
            top_k=params.top_k, top_p=params.top_p, pad_id=self.pad_id, stop_ids=self.stop_ids, device=self.device,
            share_prefill=self.share_prefill, slab_cache=self.slab_cache, share_prefix=self.share_prefix,
        )
        out = []
        for toks, lps in rows:
            reason = "stop" if toks and toks[-1] in self.stop_ids else "length"
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
            out.append(Sample(token_ids=toks, text=text, logprobs=lps, finish_reason=reason))
        return out


def _mergeable_lora_layers(model: Any) -> list | None:
    """The LoRA layers whose weight `merged_lora` can swap, or None when the adapter setup
    cannot be merged that way (DoRA, `modules_to_save`, several active adapters)."""
    adapter = getattr(model, "active_adapter", "default")
    if isinstance(adapter, (list, tuple)):
        if len(adapter) != 1:
            return None
        adapter = adapter[0]
    cfg = model.peft_config.get(adapter)
    if cfg is None or getattr(cfg, "modules_to_save", None) or getattr(cfg, "peft_type", None) != "LORA":
        return None
    layers = []
    for module in model.get_base_model().modules():
        if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
            continue
        if getattr(module, "use_dora", {}).get(adapter, False) or getattr(module, "merged", False):
            return None
        if adapter in getattr(module, "lora_A", {}):
            if not hasattr(module.get_base_layer(), "weight"):
                return None
            layers.append(module)
    return layers


@contextmanager
def merged_lora(model: Any):
    """Yield a module that computes what `model` computes, with LoRA merged into the weights.

    Each adapted layer's base `weight` Parameter is replaced, for the duration, by a new one
    holding `W + delta` (computed out of place), and adapters are disabled; on exit the
    *original* Parameter objects go back, so no weight ever changes by rounding.
    """
    if not is_peft(model):
        yield model
        return
    layers = _mergeable_lora_layers(model)
    if not layers:
        yield model
        return
    import torch

    adapter = model.active_adapter
    adapter = adapter[0] if isinstance(adapter, (list, tuple)) else adapter
    saved = []
    try:
        with torch.no_grad():
            for m in layers:
                base = m.get_base_layer()
                w = base.weight
                merged = torch.nn.Parameter(w + m.get_delta_weight(adapter).to(w.dtype), requires_grad=False)
                saved.append((base, w))
                base._parameters["weight"] = merged
        with model.disable_adapter():  # every LoRA layer now calls its (swapped) base layer only
            yield model.get_base_model()
    finally:
        for base, w in saved:
            base._parameters["weight"] = w
