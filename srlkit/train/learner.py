"""The phase-blind learner: one `update(batch)` for SRL, RLVR and SFT alike.

It receives token ids, a loss mask, advantages and (optionally) old/reference logprobs,
and never learns which phase produced them. Per rollout batch it does `mu` optimizer
steps; each step runs the batch in micro-batches with gradient accumulation, clips the
gradient norm, steps AdamW and the LR schedule.

SFT through the same code: the expert completion as tokens, advantage 1 and
`old_logprobs=None`. Then old = the current logprobs detached, the ratio is exactly 1 and
never clipped, and d/dθ[-ratio * 1] = -d/dθ log p(token): the clipped loss's gradient *is*
the NLL gradient (aggregated per token, per row, or Dr.GRPO, as configured).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch

from srlkit.config import LossConfig, PhaseConfig
from srlkit.train.batch import RolloutBatch, position_ids
from srlkit.train.loss import (
    Norm,
    batch_norm,
    policy_loss,
    token_entropy,
    token_logprobs,
)
from srlkit.train.model import Policy, eval_mode


def lr_lambda(schedule: str, total: int, warmup: int):
    """Multiplier of the base LR at optimizer step `s` (0-based)."""

    def f(s: int) -> float:
        if warmup and s < warmup:
            return (s + 1) / warmup
        if schedule == "constant" or total <= warmup:
            return 1.0
        frac = min(1.0, (s - warmup) / max(1, total - warmup))
        if schedule == "linear":
            return 1.0 - frac
        return 0.5 * (1.0 + math.cos(math.pi * frac))  # cosine

    return f


class Learner:
    """Owns the optimizer and scheduler of the current phase; the policy lives across phases."""

    def __init__(self, policy: Policy, loss: LossConfig, accelerator: Any | None = None):
        if accelerator is None:
            from accelerate import Accelerator

            bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
            accelerator = Accelerator(mixed_precision="bf16" if bf16 else "no")
        self.acc = accelerator
        self.policy = policy
        self.loss_cfg = loss
        policy.model = self.acc.prepare_model(policy.model)
        self.optimizer: Any = None
        self.scheduler: Any = None
        self.phase: PhaseConfig | None = None

    @property
    def device(self) -> torch.device:
        return self.acc.device

    @property
    def model(self) -> Any:
        return self.policy.model

    def begin_phase(self, phase: PhaseConfig, total_steps: int) -> None:
        """A fresh AdamW and schedule: each phase has its own LR (weights carry over)."""
        params = [p for _, p in self.policy.trainable()]
        opt = torch.optim.AdamW(params, lr=phase.lr, weight_decay=phase.weight_decay)
        self.optimizer = self.acc.prepare_optimizer(opt)
        total = max(1, total_steps * phase.mu)
        warm = int(phase.warmup_ratio * total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer.optimizer if hasattr(self.optimizer, "optimizer") else self.optimizer,
            lr_lambda(phase.lr_schedule, total, warm),
        )
        self.phase = phase

    # ------------------------------------------------------------------ forward passes

    def _logits(self, model: Any, mb: RolloutBatch) -> torch.Tensor:
        L = mb.completion_mask.shape[1]
        out = model(
            input_ids=mb.input_ids,
            attention_mask=mb.attention_mask,
            position_ids=position_ids(mb.attention_mask),
            logits_to_keep=L + 1,
            use_cache=False,
        )
        logits = out.logits[:, :-1, :]  # position t predicts token t+1
        return logits / mb.temperature if mb.temperature != 1.0 else logits

    @torch.no_grad()
    def logprobs(self, batch: RolloutBatch, model: Any, ctx=nullcontext) -> torch.Tensor:
        out = []
        mbs = self.phase.micro_batch_size if self.phase else 8
        with eval_mode(model), ctx(), self.acc.autocast():
            for s in range(0, batch.rows, mbs):
                mb = batch.slice(s, s + mbs)
                L = mb.completion_mask.shape[1]
                out.append(token_logprobs(self._logits(model, mb), mb.input_ids[:, -L:]))
        return torch.cat(out) if out else batch.completion_mask.clone()

    def prepare(self, batch: RolloutBatch) -> RolloutBatch:
        """Fill old/reference logprobs the batch leaves to the learner."""
        mu = self.phase.mu if self.phase else 1
        if batch.old_logprobs is None and mu > 1:
            batch.old_logprobs = self.logprobs(batch, self.model)
        beta = self.loss_cfg.kl_beta
        if beta > 0 and batch.ref_logprobs is None:
            ref = self.policy.ref_module()
            ref = self.acc.unwrap_model(ref) if self.policy.lora else ref
            batch.ref_logprobs = self.logprobs(batch, ref, self.policy.reference() if self.policy.lora else nullcontext)
        return batch

    # ------------------------------------------------------------------ the update

    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """`mu` optimizer steps on one rollout batch; returns loss/clip/KL/entropy/grad-norm/lr."""
        assert self.phase is not None, "call begin_phase() first"
        batch = self.prepare(batch.to(self.device))
        norm = batch_norm(batch.completion_mask, batch.max_new_tokens)
        live = (batch.completion_mask.sum(-1) > 0).nonzero().flatten()
        stats = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "entropy": 0.0, "grad_norm": 0.0, "lr": 0.0}
        if live.numel() == 0:  # nothing to learn from (every row masked): no step, no LR change
            stats["lr"] = self.scheduler.get_last_lr()[0]
            return stats
        batch = _take(batch, live)  # masked rows cost no compute; `norm` still counts them
        self.model.train()
        mbs = self.phase.micro_batch_size
        mu = self.phase.mu
        ent_sum = tok_sum = 0.0
        for it in range(mu):
            self.optimizer.zero_grad(set_to_none=True)
            loss_sum = clip_sum = kl_sum = 0.0
            for s in range(0, batch.rows, mbs):
                mb = batch.slice(s, s + mbs)
                L = mb.completion_mask.shape[1]
                with self.acc.autocast():
                    logits = self._logits(self.model, mb)
                    logp = token_logprobs(logits, mb.input_ids[:, -L:])
                old = mb.old_logprobs if mb.old_logprobs is not None else logp.detach()
                loss, st = policy_loss(
                    logp, old, mb.advantages, mb.completion_mask,
                    clip_low=self.loss_cfg.clip_low, clip_high=self.loss_cfg.clip_high,
                    aggregation=self.loss_cfg.aggregation, norm=norm,
                    ref_logp=mb.ref_logprobs, beta=self.loss_cfg.kl_beta,
                )
                self.acc.backward(loss)
                loss_sum += float(loss.detach())
                clip_sum += st["clipped"]
                kl_sum += st.get("kl_sum", 0.0)
                if it == 0:
                    ent = token_entropy(logits.detach())
                    ent_sum += float((ent * mb.completion_mask).sum())
                    tok_sum += st["tokens"]
                del logits, logp, loss
            max_norm = self.phase.max_grad_norm if self.phase.max_grad_norm > 0 else float("inf")
            gn = self.acc.clip_grad_norm_([p for _, p in self.policy.trainable()], max_norm)
            stats["lr"] = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            stats["loss"] += loss_sum / mu
            stats["clip_frac"] += clip_sum / norm.tokens / mu
            stats["kl"] += kl_sum / norm.tokens / mu
            stats["grad_norm"] += float(gn) / mu
        self.optimizer.zero_grad(set_to_none=True)
        stats["entropy"] = ent_sum / max(tok_sum, 1.0)
        return stats


def _take(batch: RolloutBatch, rows: torch.Tensor) -> RolloutBatch:
    if rows.numel() == batch.rows:
        return batch
    kw = {k: (v.index_select(0, rows) if isinstance(v, torch.Tensor) else v) for k, v in vars(batch).items()}
    return RolloutBatch(**kw)


__all__ = ["Learner", "Norm", "lr_lambda"]
