"""Per-GPU memory estimate of a training config (what `srlkit train --dry-run` prints).

Static: weights, gradients and AdamW state (fp32 master weights for full fine-tuning; the
frozen base in the compute dtype with LoRA), divided over the ranks as the backend shards
them (ddp: nothing; zero2: gradients + optimizer; fsdp / zero3: everything). Dynamic, per
micro-batch: the tensors autograd saves (per layer and token, counted with saved-tensor hooks;
SDPA's float mask per layer; with gradient checkpointing only each layer's input), and the LM
head's transient (`head.py`: a few fp32 logit chunks; full logits for other heads). The peak
is the larger of backward's start (everything saved, the head's transient, no gradients yet
unless an earlier micro-batch accumulated some) and its end (every gradient, one layer in
flight). A colocated vLLM engine holds `gpu_memory_utilization` of the card while it
generates; with sleep mode it frees it for the update, so the peak is the larger of the two
phases. A packed micro-batch (`pack_prompts`) keeps one prompt per group, not one per row
(`shared_prompts` rows share one), so the prompt's activations count once per group.

No allocator slack, CUDA context or kernel workspaces are counted. `tests/train/test_memory.py`
holds the estimate within 20% of the CPU allocator's measured peak at two shapes, with and
without checkpointing; `benchmarks/memory_check.py` compares it on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GiB = 2**30
# model types whose causal-LM forward is `lm_head(hidden)` and nothing after: the learner computes
# their log-probs from the hidden states in chunks (head.py), never the full logits
FUSED_MODELS = frozenset({"llama", "qwen2", "qwen3", "mistral", "phi3", "olmo2", "smollm3"})
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Shape:
    """What the estimate needs from a model's config.json."""

    hidden: int
    layers: int
    intermediate: int
    vocab: int
    heads: int
    kv_heads: int
    tied: bool = False
    qkv_bias: bool = False
    fused_head: bool = True  # the learner's chunked LM head applies (head.FUSED_MODELS)

    @classmethod
    def from_config(cls, c: Any) -> Shape:
        get = (lambda k, d=None: c.get(k, d)) if isinstance(c, dict) else (lambda k, d=None: getattr(c, k, d))
        heads = int(get("num_attention_heads"))
        return cls(hidden=int(get("hidden_size")), layers=int(get("num_hidden_layers")),
                   intermediate=int(get("intermediate_size")), vocab=int(get("vocab_size")), heads=heads,
                   kv_heads=int(get("num_key_value_heads") or heads), tied=bool(get("tie_word_embeddings", False)),
                   qkv_bias=str(get("model_type", "")).startswith("qwen2"),
                   fused_head=str(get("model_type", "")) in FUSED_MODELS)

    def layer_params(self) -> int:
        h, kv = self.hidden, self.hidden // self.heads * self.kv_heads
        attn = 2 * h * h + 2 * h * kv + (h + 2 * kv if self.qkv_bias else 0)
        return attn + 3 * h * self.intermediate + 2 * h

    def params(self) -> int:
        emb = self.vocab * self.hidden * (1 if self.tied else 2)
        return emb + self.layers * self.layer_params() + self.hidden

    def lora_params(self, r: int) -> int:
        """All-linear LoRA: r * (in + out) per projection."""
        h, kv, i = self.hidden, self.hidden // self.heads * self.kv_heads, self.intermediate
        per_layer = r * ((h + h) * 2 + (h + kv) * 2 + (h + i) * 3)
        return self.layers * per_layer


@dataclass
class Estimate:
    parts: dict[str, float] = field(default_factory=dict)  # bytes per GPU
    peak: float = 0.0
    notes: list[str] = field(default_factory=list)

    def lines(self, card_bytes: float | None = None) -> list[str]:
        out = [f"  {k:<12} {v / GiB:8.2f} GiB" for k, v in self.parts.items()]
        out.append(f"  {'peak':<12} {self.peak / GiB:8.2f} GiB" + (f" of {card_bytes / GiB:.0f} GiB" if card_bytes else ""))
        return out + [f"  note: {n}" for n in self.notes]


def estimate(shape: Shape, *, lora_r: int | None, compute_dtype: str, micro_batch: int, prompt_len: int,
             completion_len: int, world_size: int = 1, backend: str = "ddp", grad_ckpt: bool = False,
             kl_copy: bool = False, vllm_fraction: float = 0.0, card_bytes: float | None = None,
             sleep: bool = True, chunk_bytes: int | None = None, shared_prompts: int = 1, flex: bool = False,
             fused_head: bool | None = None, accumulate: bool = True) -> Estimate:
    """Bytes per GPU of one training process (see the module docstring).

    `flex`: packed rows use FlexAttention (no dense mask); `fused_head`: the chunked LM head of
    `head.py` (default: when the model type has it); `accumulate`: a step has several
    micro-batches, so gradients are already there when a later micro-batch's backward starts."""
    from srlkit.train.logprobs import CHUNK_BYTES

    if fused_head is None:
        fused_head = shape.fused_head

    w, cb = max(1, world_size), _BYTES[compute_dtype]
    n = shape.params()
    full = lora_r is None
    trainable = n if full else shape.lora_params(lora_r)
    shard_w = w if backend in ("fsdp", "zero3") else 1
    shard_opt = w if backend in ("fsdp", "zero2", "zero3") else 1
    weights = (n * 4 if full else n * cb + trainable * 4) / shard_w
    if backend in ("zero2", "zero3") and full and cb == 2:  # DeepSpeed: bf16 module + fp32 master in the optimizer
        weights = n * cb / shard_w + n * 4 / shard_opt
    parts = {"weights": weights, "grads": trainable * 4 / shard_opt, "optimizer": trainable * 8 / shard_opt}
    if kl_copy and full:
        parts["kl_ref"] = n * cb
    if full and cb == 2 and backend == "ddp":  # autocast keeps a bf16 copy of each fp32 weight it used
        parts["cast_cache"] = n * cb
    b, h, i = micro_batch, shape.hidden, shape.intermediate
    # tokens per micro-batch: one row per completion, or one prompt per group when packed
    groups = -(-b // max(1, min(shared_prompts, b)))
    if groups == b:
        tokens, rows, width = b * (prompt_len + completion_len), b, prompt_len + completion_len
    else:
        k = -(-b // groups)
        tokens, rows, width = groups * prompt_len + b * completion_len, groups, prompt_len + k * completion_len
    # saved per layer and token (counted with saved-tensor hooks on Llama, attention under a mask,
    # so k and v are repeated to all heads): residual, norm, q, k, v, attention out and its copy,
    # gate/up/act/product; full fine-tuning also keeps the norms' outputs for their weights' grads
    per_token = (8 * h + 4 * i + (2.5 * h if full else 0.0)) * cb
    if cb == 2:  # under bf16 autocast the two RMSNorms run in fp32 and keep fp32 input and output
        per_token += 16 * h
    # SDPA turns the boolean mask into a float one per layer and keeps it (FlexAttention: no such mask)
    mask = 0.0 if flex else rows * width * width * cb
    per_layer = tokens * per_token + mask
    outside = 3 * tokens * h * cb  # the embedding output and the final norm's saved tensors
    if grad_ckpt:  # each layer's input; backward recomputes one layer at a time
        parts["activations"] = shape.layers * tokens * h * cb + outside
    else:
        parts["activations"] = shape.layers * per_layer + outside
    kept = b * (completion_len + 1)  # positions the LM head runs on
    if fused_head:  # head.py: the kept hidden states (and their gradient), ~4.5 fp32 logit chunks in backward
        from srlkit.train.head import tokens_per_chunk

        chunk = min(kept, tokens_per_chunk(shape.vocab, chunk_bytes)) * shape.vocab * 4
        parts["logits"] = 2 * kept * h * cb + (4.5 if cb == 4 else 5.0) * chunk
    else:  # full logits in the compute dtype, their gradient, and logprobs.py's fp32 chunks
        chunk = chunk_bytes or CHUNK_BYTES
        parts["logits"] = 2 * kept * shape.vocab * cb + min(3 * chunk, 3 * b * completion_len * shape.vocab * 4)
    # backward starts at the head with every saved tensor alive and no gradient yet (unless an
    # earlier micro-batch of the step left its accumulated gradients); as it proceeds, saved
    # tensors are freed while gradients fill in, so the other candidate peak is at its end:
    # every gradient plus the layer in flight (recomputed under checkpointing)
    head_grad = shape.vocab * h * 4 / shard_opt if full else 0.0  # the head's (or tied embedding's) gradient comes first
    start = parts["activations"] + max(parts["logits"], per_layer) + (parts["grads"] if accumulate else head_grad)
    end = parts["grads"] + per_layer
    static = parts["weights"] + parts["grads"] + parts["optimizer"] + parts.get("kl_ref", 0.0) + parts.get("cast_cache", 0.0)
    train_peak = static - parts["grads"] + max(start, end)
    est = Estimate(parts)
    if vllm_fraction > 0 and card_bytes:
        parts["vllm"] = vllm_fraction * card_bytes
        gen_peak = static - parts["grads"] + parts["vllm"]  # grads are freed between updates
        est.peak = max(train_peak, gen_peak) if sleep else train_peak + parts["vllm"]
        if not sleep:
            est.notes.append("rollout.sleep_mode is off: vLLM keeps its share during the update")
    else:
        est.peak = train_peak
        if vllm_fraction > 0:
            est.notes.append("vLLM share not counted: the card size is unknown (pass --gpu-gib)")
    if card_bytes and est.peak > card_bytes:
        est.notes.append(f"WARNING: the estimate ({est.peak / GiB:.1f} GiB) exceeds the card ({card_bytes / GiB:.0f} GiB); "
                         "use more processes with fsdp/zero3, gradient checkpointing, a smaller micro_batch_size, "
                         "LoRA, or a lower rollout.gpu_memory_utilization")
    return est


def checkpointing(setting: bool | str, device_type: str) -> bool:
    """`model.gradient_checkpointing` resolved: "auto" is on for a CUDA run, off on CPU."""
    return device_type == "cuda" if setting == "auto" else bool(setting)


def estimate_for(cfg: Any, shape: Shape, *, world_size: int, backend: str, card_bytes: float | None) -> Estimate:
    """`estimate` for a TrainConfig: the largest micro-batch of its phases.

    A known card size (`--gpu-gib`, or a visible GPU) means a CUDA run: "auto" checkpointing is on,
    and packed rows would use FlexAttention. `pack_prompts = "auto"` decides per micro-batch, so
    the estimate is the larger of the plain and the packed layout."""
    from srlkit.config import group_size
    from srlkit.train import curriculum
    from srlkit.train.model import pick_dtype

    dtype = str(pick_dtype(cfg.model.dtype)).replace("torch.", "") if cfg.model.dtype == "auto" else cfg.model.dtype
    mbs = max(cfg.phases[p].micro_batch_size for p in cfg.curriculum)
    r = cfg.rollout
    cuda = card_bytes is not None
    sft = any(cfg.phases[p].kind == "sft" for p in cfg.curriculum)  # SFT rows have distinct prompts
    rows = max(-(-cfg.phases[p].prompts_per_step // max(1, world_size)) * (group_size(cfg.phases[p], r) if cfg.phases[p].kind == "grpo"
                                                                          else 1) for p in cfg.curriculum)
    layouts = [1] if cfg.model.pack_prompts is False or sft else [max(group_size(cfg.phases[p], r) for p in cfg.curriculum)]
    if cfg.model.pack_prompts == "auto" and not sft:
        layouts.append(1)

    def one(shared: int) -> Estimate:
        return estimate(shape, lora_r=cfg.model.lora.r if cfg.model.lora.enabled else None, compute_dtype=dtype,
                        micro_batch=mbs, prompt_len=r.max_prompt_tokens, completion_len=r.max_new_tokens,
                        world_size=world_size, backend=backend,
                        grad_ckpt=checkpointing(cfg.model.gradient_checkpointing, "cuda" if cuda else "cpu"),
                        kl_copy=curriculum.kl_copy(cfg), vllm_fraction=r.gpu_memory_utilization if r.engine == "vllm" else 0.0,
                        card_bytes=card_bytes, sleep=r.sleep_mode, shared_prompts=shared, flex=cuda,
                        accumulate=rows > mbs)

    return max((one(k) for k in layouts), key=lambda e: e.peak)
