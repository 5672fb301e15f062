"""The rollout-engine protocol: everything the trainer and eval need from a generator.

Two implementations: `HFEngine` (transformers `generate`, CPU or GPU) and `VLLMEngine`
(colocated vLLM, optional extra). Both take already-tokenised prompts, so the trainer
owns tokenisation and the chat template, and both engines see identical inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1  # samples per prompt (G)
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = -1
    max_new_tokens: int = 512
    seed: int | None = None  # per-call seed; engines derive per-sample streams from it


@dataclass
class Sample:
    token_ids: list[int]  # completion tokens only, without padding; includes EOS when it stopped
    text: str  # decoded completion, special tokens skipped
    logprobs: list[float]  # per completion token, under the sampling policy (len == len(token_ids))
    finish_reason: FinishReason


@runtime_checkable
class RolloutEngine(Protocol):
    """generate G samples per prompt; take new weights; free memory between phases."""

    def generate(self, prompts: list[list[int]], params: SamplingParams) -> list[list[Sample]]:
        """Returns one list of `params.n` samples per prompt, in prompt order."""
        ...

    def load_weights(self, model: Any) -> None:
        """Sync the policy's current weights (a torch module, possibly a peft model)."""
        ...

    def sleep(self) -> None:
        """Release generation memory (KV cache, weights where supported) before the update."""
        ...

    def wake(self) -> None:
        """Undo `sleep()` before the next generate."""
        ...


@dataclass
class EngineStats:
    calls: int = 0
    prompts: int = 0
    samples: int = 0
    tokens: int = 0
    seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def record(self, n_prompts: int, samples: list[Sample], seconds: float) -> None:
        """Add one generate call's counts (both engines keep the same stats)."""
        self.calls += 1
        self.prompts += n_prompts
        self.samples += len(samples)
        self.tokens += sum(len(x.token_ids) for x in samples)
        self.seconds += seconds
        truncated = sum(x.finish_reason == "length" for x in samples)
        self.extra["truncated"] = self.extra.get("truncated", 0.0) + truncated
