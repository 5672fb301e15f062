"""Whether the learner packs a micro-batch, and with which attention kernel: a cost rule from measurements.

Packing (`packing.py`) runs a group's prompt once and puts its k completions behind it in one row
of S = P + kL positions. The linear layers' work shrinks from n(P+L) tokens to U(P+kL); the
attention's work changes from n(P+L)^2 scores to U*S^2 for a dense kernel (sdpa, eager: every
score is computed, masked or not), or to the visible blocks only for FlexAttention. So packing
pays for long prompts and short completions, and costs for short prompts and long completions.
Per micro-batch:

    cost = tokens * 2 * block_params  +  scores * 4 * width * layers * W[device, kernel]

(matmul FLOPs per token, attention FLOPs per score; `width` = heads x head_dim). W is how much
more an attention FLOP costs than a matmul FLOP with that kernel on that device, fitted to
paired timings of both layouts by `benchmarks/packing.py` (it prints the fit). A micro-batch is
packed when its packed cost is below (1 - MARGIN) of its plain cost. A (device, kernel) pair
with no measured W is never packed under `pack_prompts = "auto"`: never pack where it may be
slower. FlexAttention has no backward on CPU (torch 2.13), so CPU packs with the model's own
sdpa/eager kernel; CUDA packs with flex where torch has it.

`pack_prompts = true` packs whenever the plan saves a quarter of the tokens (the rule is not
asked); `false` never packs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from srlkit.train import packing
from srlkit.train.batch import RolloutBatch
from srlkit.train.memory import Shape

# (device type, kernel) -> W, fitted by benchmarks/packing.py. CPU: SmolLM2 + LoRA, 8-row
# micro-batches at six shapes G:P:L (4:250:64, 8:256:64, 2:300:48, 4:128:128 packed faster;
# 8:64:256, 8:32:320 plain faster), medians of 3 paired repeats, 2 threads, idle machine
# (2026-12-04): W = 1.92, and the rule picks the measured winner at all six (any W in
# [0.16, 5] would; a one-thread run under load gave 0.78). CUDA (FlexAttention, SDPA): not
# measured yet, so not packed under "auto"; benchmarks/gpu_issue22.sh prints the fit.
MEASURED_W: dict[tuple[str, str], float] = {
    ("cpu", "sdpa"): 1.92,
}
MARGIN = 0.1  # pack only when the rule predicts at least this saving (the fit's scatter)
FLEX_BLOCK = 128  # FlexAttention's default block: a block with one visible score is computed whole


@dataclass
class Packer:
    """How this learner packs: the kernel of packed forwards, the model's own, and the rule."""

    kind: str  # attention kernel of a packed forward
    own: str  # the model's kernel (plain forwards)
    mode: str  # "auto": the cost rule decides per micro-batch; "always": whenever `packing.plan` packs
    device: str
    shape: Shape | None = None

    def use(self, plan: packing.Packing, mb: RolloutBatch) -> bool:
        if self.mode == "always":
            return True
        w_packed, w_plain = MEASURED_W.get((self.device, self.kind)), MEASURED_W.get((self.device, self.own))
        if w_packed is None or w_plain is None or self.shape is None:
            return False
        L, P = mb.completion_mask.shape[1], mb.prompt_len
        packed = cost(self.shape, len(plan.first_row), P, L, plan.slots, self.kind, w_packed)
        plain = cost(self.shape, mb.rows, P, L, 1, self.own, w_plain)
        return packed <= (1.0 - MARGIN) * plain


def scores(rows: int, P: int, L: int, k: int, kind: str) -> float:
    """Attention scores a kernel computes for `rows` rows of a prompt and k slots of L (k = 1: plain)."""
    S = P + k * L
    if kind != "flex_attention":
        return float(rows * S * S)
    seg = torch.cat([torch.zeros(P, dtype=torch.long), torch.arange(1, k + 1).repeat_interleave(L)])
    nb = -(-S // FLEX_BLOCK)
    seg = torch.nn.functional.pad(seg, (0, nb * FLEX_BLOCK - S), value=-1).view(nb, FLEX_BLOCK)
    lo, hi = seg.clamp(min=0).min(-1).values, seg.max(-1).values  # slot range per block (0: holds prompt)
    q, kv = torch.arange(nb)[:, None], torch.arange(nb)[None, :]
    visible = (kv <= q) & ((lo[None, :] == 0) | ((lo[None, :] <= hi[:, None]) & (hi[None, :] >= lo[:, None])))
    return float(rows * int(visible.sum()) * FLEX_BLOCK * FLEX_BLOCK)


def cost(shape: Shape, rows: int, P: int, L: int, k: int, kind: str, w: float) -> float:
    """Relative cost of one forward + backward of the layout (`scores` for the attention)."""
    width = shape.hidden  # heads x head_dim (the query width) in the models srlkit loads
    tokens = rows * (P + k * L)
    return shape.layers * (tokens * 2.0 * shape.layer_params() + scores(rows, P, L, k, kind) * 4.0 * width * w)


def packer(pack_prompts: bool | str, model: Any, device: torch.device | str) -> Packer | None:
    """The learner's packing for `pack_prompts` (true / false / "auto") on this model and device."""
    if pack_prompts is False or pack_prompts == "false":
        return None
    own = packing.attention_kind(model)
    dev = torch.device(device).type
    kind = own
    if dev == "cuda" and _has_flex():
        kind = "flex_attention"
    if kind not in packing.MASKED_ATTENTION:
        return None
    cfg = getattr(model.get_base_model() if hasattr(model, "get_base_model") else model, "config", None)
    try:
        shape = Shape.from_config(cfg) if cfg is not None else None
    except (TypeError, ValueError):
        shape = None
    return Packer(kind=kind, own=own, mode="auto" if pack_prompts == "auto" else "always", device=dev, shape=shape)


def _has_flex() -> bool:
    try:
        from torch.nn.attention.flex_attention import create_block_mask  # noqa: F401
        from transformers.integrations import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True
