"""Weights an engine needs from the policy: a merged state dict, or just the LoRA adapter.

`merged_state_dict` computes base + LoRA delta *out of place*. Merging in place
(`merge_adapter()` then `unmerge_adapter()`, as some trainers do) adds and subtracts the
delta, which is not bit-exact in floating point; that would break srlkit's promise that
a resumed run ends bit-equal to an uninterrupted one. Reading never mutates the policy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from srlkit.errors import SrlkitError


def is_peft(model: Any) -> bool:
    return hasattr(model, "peft_config") and hasattr(model, "get_base_model")


def hf_key(name: str, adapter: str) -> str:
    """The plain-transformers name of a peft-injected parameter.

    >>> hf_key("model.layers.0.q_proj.base_layer.weight", "default")
    'model.layers.0.q_proj.weight'
    >>> hf_key("lm_head.modules_to_save.default.weight", "default")
    'lm_head.weight'
    """
    return name.replace(".base_layer.", ".").replace(f".modules_to_save.{adapter}.", ".")


def _is_adapter_key(name: str) -> bool:
    return ".lora_" in name or ".original_module." in name


def merged_state_dict(model: Any) -> dict[str, Any]:
    """The policy's current weights under plain transformers names (LoRA merged, detached).

    For a plain module this is its state dict. For a peft LoRA model, each adapted layer's
    weight is `base + scaling * B @ A` (via peft's own `get_delta_weight`), computed into
    new tensors. DoRA and other non-additive adapters fall back to merging a deep copy.
    """
    if not is_peft(model):
        return {k: v.detach() for k, v in model.state_dict().items()}
    import torch

    adapter = getattr(model, "active_adapter", "default")
    adapter = adapter[0] if isinstance(adapter, (list, tuple)) else adapter
    base = model.get_base_model()
    merged: dict[str, Any] = {}
    for name, module in base.named_modules():
        if not (hasattr(module, "get_delta_weight") and hasattr(module, "base_layer")):
            continue
        if getattr(module, "use_dora", {}).get(adapter, False):
            return _merged_by_copy(model)
        if adapter not in getattr(module, "lora_A", {}) or getattr(module, "merged", False):
            continue
        weight = module.get_base_layer().weight
        with torch.no_grad():
            delta = module.get_delta_weight(adapter).to(weight.dtype)
            merged[f"{name}.weight"] = (weight + delta).detach()
    out: dict[str, Any] = {}
    for name, tensor in base.state_dict().items():
        if _is_adapter_key(name) or (".modules_to_save." in name and f".modules_to_save.{adapter}." not in name):
            continue
        key = hf_key(name, adapter)
        out[key] = merged.get(key, tensor.detach())
    return out


def _merged_by_copy(model: Any) -> dict[str, Any]:
    import copy

    merged = copy.deepcopy(model).merge_and_unload()
    return {k: v.detach() for k, v in merged.state_dict().items()}


def save_adapter(model: Any, folder: str | Path | None = None) -> Path:
    """Save only the LoRA adapter (safetensors + adapter_config.json) to a folder.

    This is the adapter-only sync path: vLLM loads the folder as a LoRARequest, so the
    full weights are never merged or pushed.
    """
    if not is_peft(model):
        raise SrlkitError("adapter-only sync needs a peft LoRA model; enable train.model.lora or turn off vLLM LoRA")
    path = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="srlkit-lora-"))
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(path), safe_serialization=True)
    return path
