"""HFEngine: rollouts with transformers `generate`, on CPU or GPU. Used by tests and the CPU default.

Design choices, each for a reason:
- The engine holds a *reference* to the trainer's policy (plain or peft), so generation
  always sees the current weights and `load_weights(policy)` is free.
- Rows are prompt x n, repeated (not `num_return_sequences`), and generated in chunks of
  `batch_size` rows, left-padded, with the KV cache on.
- The sampling setup comes from `SamplingParams` alone: during generate the model's own
  `generation_config` (which may carry a repetition penalty, top-k, ...) is swapped for a
  clean one, so a checkpoint's defaults never change the RL sampling distribution.
- Logprobs: `log_softmax(raw_logits / temperature)` at the sampled token, i.e. temperature
  applied, top-k/top-p truncation *not* applied (with temperature 0, greedy, T=1 is used).
  That is exactly what the learner recomputes from a forward pass at the same temperature,
  so the on-policy importance ratio is 1. They are taken by a logits processor that sees the
  raw logits before the warpers, keeping one [rows, vocab] step in memory instead of the
  [steps, rows, vocab] that `output_logits=True` would hold.
- With `params.seed` the draw is reproducible whatever the global RNG state, and the
  caller's global RNG is left untouched (`torch.random.fork_rng`), so a resumed run
  regenerates the same rollouts. The stream is per call: the same prompts, params, seed
  and `batch_size` give the same samples.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from typing import Any

from srlkit.rollout.base import EngineStats, Sample, SamplingParams
from srlkit.rollout.common import Overflow, bound_prompts, chunks, cut_at_stop, validate_params, validate_prompts
from srlkit.rollout.weights import is_peft, merged_state_dict


class _ChosenLogprobs:
    """A logits processor that records log p(sampled token) under temperature T.

    Step t's distribution is kept until step t+1, whose `input_ids` end with the token
    drawn at step t; the last step is resolved by `finish()` from the final sequences.
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature if temperature > 0 else 1.0
        self.pending = None
        self.chosen: list[Any] = []

    def __call__(self, input_ids, scores):
        self._resolve(input_ids[:, -1])
        self.pending = (scores.float() / self.temperature).log_softmax(-1)
        return scores

    def _resolve(self, tokens) -> None:
        if self.pending is not None:
            self.chosen.append(self.pending.gather(-1, tokens[:, None].to(self.pending.device))[:, 0])
            self.pending = None

    def finish(self, sequences):
        import torch

        self._resolve(sequences[:, -1])
        if not self.chosen:
            return torch.zeros(sequences.shape[0], 0)
        return torch.stack(self.chosen, dim=1).cpu()


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
        device: Any = None,
        max_prompt_tokens: int | None = None,
        overflow: Overflow = "error",
        progress: Any = None,
    ) -> None:
        import torch

        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = max(1, int(batch_size))
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

    # ------------------------------------------------------------------ protocol

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Sample]]:
        import torch

        validate_params(params)
        validate_prompts(prompts, getattr(_hf_model(self.model).config, "vocab_size", None))
        prompts = bound_prompts(prompts, self.max_prompt_tokens, self.overflow)
        rows = [p for p in prompts for _ in range(params.n)]
        start = time.perf_counter()
        samples: list[Sample] = []
        seeded = params.seed is not None
        # manual_seed reseeds every CUDA device, so every one must be forked and restored
        devices = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
        rng = torch.random.fork_rng(devices=devices) if seeded else nullcontext()
        with rng, self._generation_mode():
            if seeded:
                torch.manual_seed(int(params.seed))
            for part in chunks(len(rows), self.batch_size):
                samples.extend(self._generate_rows([rows[i] for i in part], params))
                if self.progress is not None:
                    self.progress(part.stop, len(rows))
        self.stats.record(len(prompts), samples, time.perf_counter() - start)
        return [samples[i * params.n:(i + 1) * params.n] for i in range(len(prompts))]

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
        """eval mode and a clean generation config during generate; both restored after."""
        from transformers import GenerationConfig

        hf = _hf_model(self.model)
        was_training, saved = self.model.training, hf.generation_config
        hf.generation_config = GenerationConfig(
            bos_token_id=getattr(saved, "bos_token_id", None),
            eos_token_id=sorted(self.stop_ids),
            pad_token_id=self.pad_id,
        )
        self.model.eval()
        try:
            yield
        finally:
            hf.generation_config = saved
            self.model.train(was_training)

    def _generate_rows(self, rows: list[list[int]], params: SamplingParams) -> list[Sample]:
        import torch
        from transformers import LogitsProcessorList

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):  # left padding: the last prompt token sits at the same column
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        greedy = params.temperature == 0
        recorder = _ChosenLogprobs(params.temperature)
        sampling = {} if greedy else {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": params.top_k if params.top_k > 0 else 0,
        }
        with torch.no_grad():
            out = self.model.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                do_sample=not greedy,
                max_new_tokens=params.max_new_tokens,
                use_cache=True,  # gradient checkpointing turns it off for training; generation needs it
                logits_processor=LogitsProcessorList([recorder]),
                **sampling,
            )
        completions = out[:, width:].cpu()
        logprobs = recorder.finish(out)
        result = []
        for i in range(len(rows)):
            toks, reason = cut_at_stop(completions[i].tolist(), self.stop_ids, params.max_new_tokens)
            lps = logprobs[i, :len(toks)].tolist()
            text = self.tokenizer.decode(toks, skip_special_tokens=True)
            result.append(Sample(token_ids=toks, text=text, logprobs=lps, finish_reason=reason))
        return result
