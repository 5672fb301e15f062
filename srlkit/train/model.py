"""Load the policy (and tokenizer), wrap it with LoRA, and give a KL reference.

With LoRA the reference is the same module with its adapter disabled, so there is never a
second copy of the base weights. Without LoRA a frozen copy is made only when beta > 0.

Precision: `model.dtype` names the *compute* dtype. Full fine-tuning loads the weights in
fp32 (the master copy AdamW updates) and computes in bf16/fp16 under the learner's mixed
precision; plain bf16 weights would lose most updates at RL learning rates (a 5e-7 step is
below bf16's resolution for most weights). With LoRA the frozen base stays in the compute
dtype and only the (fp32) adapter is trained.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from srlkit.assets import resolve_model
from srlkit.config import ModelConfig
from srlkit.errors import SrlkitError
from srlkit.train.memory import checkpointing

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Policy:
    model: Any  # a transformers causal LM, or a peft model around one
    tokenizer: Any
    path: str  # where the base weights came from (engines may reload from it)
    lora: bool
    ref_model: Any | None = None  # frozen copy (full fine-tuning with beta > 0 only)
    compute_dtype: torch.dtype = torch.float32  # what the forward runs in (mixed precision)
    pack_prompts: bool | str = "auto"  # the learner may run a group's shared prompt once (pack_policy.py)

    def reference(self, module: Any | None = None) -> Callable[[], Any]:
        """A context factory under which the peft model (`module`: the policy unwrapped from
        DDP/FSDP, default `self.model`) or the frozen copy is the KL reference."""
        if self.lora:
            return (module if module is not None else self.model).disable_adapter
        return nullcontext

    def ref_module(self) -> Any:
        return self.model if self.lora else self.ref_model

    def trainable(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        return ((n, p) for n, p in self.model.named_parameters() if p.requires_grad)


def pick_dtype(name: str) -> torch.dtype:
    """"auto": bf16 on a GPU that supports it, else float32 (exact and fast enough on CPU)."""
    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return _DTYPES[name]


def load_dtype(cfg: ModelConfig) -> torch.dtype:
    """Full fine-tuning: fp32 master weights; LoRA: the frozen base in the compute dtype."""
    return pick_dtype(cfg.dtype) if cfg.lora.enabled else torch.float32


def load_tokenizer(path: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, revision=revision)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token  # a pad id is needed for batching; it is always masked
    return tok


def load_policy(cfg: ModelConfig, *, kl_beta: float = 0.0, base_copy: bool | None = None,
                device: str | torch.device = "cpu") -> Policy:
    """Model + tokenizer from `cfg` (None: the bundled SmolLM2), with LoRA when enabled.

    `base_copy`: keep a frozen copy of the loaded weights as the KL reference "base" (full
    fine-tuning only; LoRA disables its adapter instead). None: when `kl_beta` > 0.
    """
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar reports progress; keep stderr for errors
    path = resolve_model(cfg.name_or_path)
    adapter = adapter_base(path)
    try:
        tok = load_tokenizer(path, cfg.revision)
        model = AutoModelForCausalLM.from_pretrained(adapter or path, revision=cfg.revision, dtype=load_dtype(cfg))
    except (OSError, ValueError, KeyError) as e:  # missing, damaged or foreign files (no tokenizer, no model_type)
        first = " ".join(str(e).split())[:200] or type(e).__name__
        hint = ("pass a local folder with --model or set HF_HUB_OFFLINE=0 to download" if isinstance(e, OSError)
                else "check the model folder (config.json, tokenizer files, weights)")
        raise SrlkitError(f"cannot load model '{path}': {first}; {hint}") from None
    model.to(device)
    if adapter and not cfg.lora.enabled:  # full fine-tuning of base + adapter, merged
        model = _with_adapter(model, path, trainable=False).merge_and_unload()
    ckpt = checkpointing(cfg.gradient_checkpointing, "cuda" if torch.cuda.is_available() else "cpu")
    if ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    ref = None
    if adapter and cfg.lora.enabled:  # continue the adapter (its own r, alpha and targets)
        model = _with_adapter(model, path, trainable=True)
        if ckpt:
            model.enable_input_require_grads()
        path = adapter
    elif cfg.lora.enabled:
        from peft import LoraConfig, get_peft_model

        lcfg = LoraConfig(
            r=cfg.lora.r,
            lora_alpha=cfg.lora.alpha,
            lora_dropout=cfg.lora.dropout,
            target_modules=cfg.lora.target_modules,
            task_type="CAUSAL_LM",
        )
        with warnings.catch_warnings():  # peft probes a deprecated transformers attribute
            warnings.simplefilter("ignore", FutureWarning)
            model = get_peft_model(model, lcfg)
        if ckpt:
            model.enable_input_require_grads()  # checkpointed blocks need a grad-carrying input
    elif (kl_beta > 0) if base_copy is None else base_copy:  # inference only: kept in the compute dtype (the learner moves it to its device)
        ref = copy.deepcopy(model).to(pick_dtype(cfg.dtype)).eval()
        ref.requires_grad_(False)
    return Policy(model=model, tokenizer=tok, path=path, lora=cfg.lora.enabled, ref_model=ref,
                  compute_dtype=pick_dtype(cfg.dtype), pack_prompts=cfg.pack_prompts)


def adapter_base(path: str) -> str | None:
    """The base model of a peft adapter folder (`RUN/<phase>/final` of a LoRA run), else None."""
    import json
    from pathlib import Path

    cfg = Path(path) / "adapter_config.json"
    if not cfg.is_file():
        return None
    try:
        base = json.loads(cfg.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError):
        base = None
    if not base:
        raise SrlkitError(f"{cfg} names no base_model_name_or_path; pass the base model with --model "
                          "and the adapter's folder is not loadable on its own")
    return str(base)


def _with_adapter(model: Any, folder: str, *, trainable: bool) -> Any:
    from peft import PeftModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return PeftModel.from_pretrained(model, folder, is_trainable=trainable)


@contextmanager
def eval_mode(model: Any) -> Iterator[None]:
    """Temporarily eval() (no dropout) for generation and reference passes."""
    was = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was)


def merged(model: Any) -> Any:
    """A plain transformers model with the adapter merged into a *copy* (the policy is untouched)."""
    return copy.deepcopy(model).merge_and_unload()
