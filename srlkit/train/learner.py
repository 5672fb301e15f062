"""The phase-blind learner: one `update(batch)` for SRL, RLVR and SFT alike.

It receives token ids, a loss mask, advantages and (optionally) old/reference logprobs,
and never learns which phase produced them. Per rollout batch it does `mu` optimizer
steps; each step runs the batch in micro-batches with gradient accumulation, clips the
gradient norm, steps AdamW and the LR schedule.

Distributed (DDP, FSDP2, DeepSpeed through `accelerate launch`): the policy, one AdamW and
one LR schedule go through a single `accelerator.prepare`, at construction; `begin_phase`
resets that optimizer's state and the schedule instead of building a new one. The loss
normalisers are sums over *all* ranks and each rank's loss is scaled by the world size, so
the backend's gradient mean equals the single-process gradient of the whole global batch.
Ranks agree on the number of micro-batches (a rank that ran out runs a zero-weight dummy), so
no collective is left waiting when one rank's groups were all filtered. Accumulation
micro-batches run under `no_sync`.

Shared prompts (`model.pack_prompts`): when the rows of a micro-batch share a prompt, as a GRPO
group's do, the prompt can run once with the completions packed behind it (`packing.py`; same
logits and gradients, a G-th of the prompt's compute and activations); `pack_policy.py` decides
per micro-batch. The forward (`forward.py`) returns per-token log-probs from the hidden states
in chunks (`head.py`), never the micro-batch's full [n, L, V] logits.

SFT through the same code: the expert completion as tokens, advantage 1 and
`old_logprobs=None`. Then old = the current logprobs detached, the ratio is exactly 1 and
never clipped, and d/dθ[-ratio * 1] = -d/dθ log p(token): the clipped loss's gradient *is*
the NLL gradient (aggregated per token, per row, or Dr.GRPO, as configured).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch

from srlkit.config import LossConfig, PhaseConfig
from srlkit.train import dist, forward, pack_policy, reference
from srlkit.train.batch import RolloutBatch
from srlkit.train.loss import Norm, policy_loss
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
        self.acc = accelerator if accelerator is not None else dist.make_accelerator(policy.compute_dtype)
        self.policy = policy
        self.loss_cfg = loss
        self._lr_fn = lr_lambda("constant", 1, 0)
        opt = torch.optim.AdamW([p for _, p in policy.trainable()], lr=0.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: self._lr_fn(s))
        _deepspeed_micro_batch(self.acc, 1)
        policy.model, self.optimizer, self.scheduler = self.acc.prepare(policy.model, opt, sched)
        _low_precision_logits(self.acc, self.acc.unwrap_model(policy.model))
        if policy.ref_model is not None:  # the frozen KL reference lives where the policy does
            policy.ref_model.to(self.device)
        self.phase: PhaseConfig | None = None
        self.kl_beta = loss.kl_beta  # the current phase's (begin_phase)
        self.ref_snapshot: dict[str, torch.Tensor] | None = None  # kl_reference = "phase_start"
        self.packing = pack_policy.packer(policy.pack_prompts, self.acc.unwrap_model(policy.model), self.device)

    @property
    def device(self) -> torch.device:
        return self.acc.device

    @property
    def model(self) -> Any:
        return self.policy.model

    def begin_phase(self, phase: PhaseConfig, total_steps: int) -> None:
        """Fresh AdamW moments and a restarted schedule at this phase's LR (weights carry over),
        and the phase's KL reference (see `reference.py`).

        The prepared optimizer is reused: its state is cleared (exactly a new AdamW's), so no
        optimizer per phase is left behind in the accelerator's list.
        """
        base = _base_optimizer(self.optimizer)
        base.state.clear()
        for g in base.param_groups:
            g.update(lr=phase.lr, initial_lr=phase.lr, weight_decay=phase.weight_decay)
        total = max(1, total_steps * phase.mu)
        warmup = phase.warmup_steps * phase.mu if phase.warmup_steps else int(phase.warmup_ratio * total)
        self._lr_fn = lr_lambda(phase.lr_schedule, total, warmup)
        sched = getattr(self.scheduler, "scheduler", self.scheduler)
        sched.base_lrs = [phase.lr] * len(base.param_groups)
        sched.last_epoch, sched._step_count = 0, 1  # what a new LambdaLR holds after __init__
        sched._last_lr = [phase.lr * self._lr_fn(0)] * len(base.param_groups)
        for g, lr in zip(base.param_groups, sched._last_lr):
            g["lr"] = lr
        self.phase = phase
        self.kl_beta = phase.kl_beta if phase.kl_beta is not None else self.loss_cfg.kl_beta
        self.ref_snapshot = None
        if self.kl_beta > 0 and phase.kl_reference == "phase_start":
            self.ref_snapshot = reference.snapshot(self.acc.unwrap_model(self.model))
        elif self.kl_beta > 0 and not self.policy.lora and self.policy.ref_model is None:
            from srlkit.errors import ConfigError

            raise ConfigError("kl_reference = \"base\" with full fine-tuning needs the base copy made at load "
                              "(load_policy(..., base_copy=True)); the trainer does this when a phase asks for it")

    def load_reference(self, tensors: dict[str, torch.Tensor]) -> None:
        """Put back a phase-start snapshot saved in a checkpoint (resume mid-phase)."""
        if self.ref_snapshot is not None:
            self.ref_snapshot = {n: t.to(self.ref_snapshot[n].device, self.ref_snapshot[n].dtype)
                                 for n, t in tensors.items()}

    # ------------------------------------------------------------------ forward passes

    def _logits(self, model: Any, mb: RolloutBatch) -> torch.Tensor:
        """Raw logits [n, L, V] in the compute dtype (tests and models whose head is not chunked)."""
        return forward.completion_logits(model, self.acc.unwrap_model(model), mb, self.packing)

    def _logprobs(self, model: Any, mb: RolloutBatch, entropy: bool = False) -> tuple[torch.Tensor, Any]:
        """log p(token) [n, L] fp32 at the batch's temperature, and the entropy [n, L] when asked."""
        return forward.completion_logprobs(model, self.acc.unwrap_model(model), mb, self.packing, entropy)

    def _micro_batches(self, batch: RolloutBatch, mbs: int) -> list[RolloutBatch | None]:
        """This rank's micro-batches, padded with None (a dummy) to the most any rank has."""
        n = -(-batch.rows // mbs)
        n_all = int(dist.all_max(self.acc, [float(n)])[0])
        return [batch.slice(s, s + mbs) for s in range(0, batch.rows, mbs)] + [None] * (n_all - n)

    def _dummy(self, like: RolloutBatch) -> RolloutBatch:
        """One pad token with an empty loss mask: a forward/backward that moves nothing."""
        pad = self.policy.tokenizer.pad_token_id or 0
        ids = torch.full((1, 2), pad, dtype=torch.long, device=self.device)
        return RolloutBatch(input_ids=ids, attention_mask=torch.ones_like(ids),
                            completion_mask=torch.zeros((1, 1), device=self.device),
                            advantages=torch.zeros(1, device=self.device), temperature=like.temperature,
                            max_new_tokens=like.max_new_tokens)

    @torch.no_grad()
    @forward.restore_attention
    def logprobs(self, batch: RolloutBatch, model: Any, ctx=nullcontext) -> torch.Tensor:
        batch = batch.to(self.device)
        out = []
        mbs = self.phase.micro_batch_size if self.phase else 8
        with eval_mode(model), ctx(), self.acc.autocast():
            for mb in self._micro_batches(batch, mbs):
                real = mb is not None
                mb = mb if real else self._dummy(batch)
                lp, _ = self._logprobs(model, mb)
                if real:
                    out.append(lp)
        return torch.cat(out) if out else batch.completion_mask.clone()

    def prepare(self, batch: RolloutBatch) -> RolloutBatch:
        """Fill the reference logprobs the batch leaves to the learner.

        Old logprobs (pi_old) left as None are taken from the first of the `mu` passes:
        the weights do not change before its optimizer step, so its detached logprobs *are*
        pi_old, and no extra forward pass is needed.
        """
        beta = self.kl_beta
        if beta > 0 and batch.ref_logprobs is None:
            if self.ref_snapshot is not None:  # the weights this phase started from, swapped in
                ref = self.acc.unwrap_model(self.model)
                batch.ref_logprobs = self.logprobs(batch, ref, partial(reference.swapped, ref, self.ref_snapshot))
            elif self.policy.lora:  # the adapter-disabled policy: disable_adapter lives on the peft model
                ref = self.acc.unwrap_model(self.model)
                batch.ref_logprobs = self.logprobs(batch, ref, self.policy.reference(ref))
            else:
                batch.ref_logprobs = self.logprobs(batch, self.policy.ref_model)
        return batch

    # ------------------------------------------------------------------ the update

    @forward.restore_attention
    def update(self, batch: RolloutBatch) -> dict[str, float]:
        """`mu` optimizer steps on one rollout batch; returns loss/clip/KL/entropy/grad-norm/lr.

        Every rank must call it once per step (its batch may be empty); the stats are global.
        """
        assert self.phase is not None, "call begin_phase() first"
        batch = self.prepare(batch.to(self.device))
        norm = self._global_norm(batch)
        live = (batch.completion_mask.sum(-1) > 0).nonzero().flatten()
        stats = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "entropy": 0.0, "nll": 0.0, "grad_norm": 0.0, "lr": 0.0}
        if norm.tokens == 0:  # nothing to learn from on any rank: no step, no LR change
            stats["lr"] = self.scheduler.get_last_lr()[0]
            return stats
        batch = _take(batch, live)  # masked rows cost no compute; `norm` still counts them
        has_behav = dist.all_max(self.acc, [float(batch.behavior_logprobs is not None)])[0] > 0
        self.model.train()
        mu, world = self.phase.mu, dist.world_size(self.acc)
        # local sums: loss, clipped, kl, entropy, entropy tokens, |old-behav|, tis-clipped, -logp
        acc_sums = [0.0] * 8
        mismatch_max = 0.0
        grad_norm = 0.0
        old_cache: dict[int, torch.Tensor] = {}
        mbs_list = self._micro_batches(batch, self.phase.micro_batch_size)
        ds = getattr(self.acc, "deepspeed_engine_wrapped", None) is not None
        for it in range(mu):
            self.optimizer.zero_grad(set_to_none=True)
            for i, mb in enumerate(mbs_list):
                real = mb is not None
                mb = mb if real else self._dummy(batch)
                sync = i == len(mbs_list) - 1
                if ds:  # DeepSpeed steps inside backward at a boundary: only the last micro-batch is one
                    self.model.set_gradient_accumulation_boundary(sync)
                    self.acc.gradient_state._set_sync_gradients(sync)
                with (nullcontext() if sync else self.acc.no_sync(self.model)):
                    with self.acc.autocast():
                        logp, ent = self._logprobs(self.model, mb, entropy=it == 0)
                    if mb.old_logprobs is not None:
                        old = mb.old_logprobs
                    elif it == 0:
                        old = old_cache[i] = logp.detach()
                    else:
                        old = old_cache[i]
                    loss, st = policy_loss(
                        logp, old, mb.advantages, mb.completion_mask,
                        clip_low=self.loss_cfg.clip_low, clip_high=self.loss_cfg.clip_high,
                        aggregation=self.loss_cfg.aggregation, norm=norm,
                        ref_logp=mb.ref_logprobs, beta=self.kl_beta,
                        behav_logp=mb.behavior_logprobs, tis_cap=self.loss_cfg.tis_cap,
                        objective=self.loss_cfg.objective, tis_mode=self.loss_cfg.tis_mode,
                    )
                    # the backend averages gradients over ranks; the normalisers are global sums
                    self.acc.backward(loss * world if world > 1 else loss)
                if not real:
                    del logp, ent, loss
                    continue
                acc_sums[0] += float(loss.detach()) / mu
                acc_sums[1] += st["clipped"] / mu
                acc_sums[2] += st.get("kl_sum", 0.0) / mu
                if it == 0:
                    acc_sums[3] += float((ent * mb.completion_mask).sum())
                    acc_sums[4] += st["tokens"]
                    acc_sums[7] -= float((logp.detach() * mb.completion_mask).sum())
                    if "mismatch_sum" in st:
                        acc_sums[5] += st["mismatch_sum"]
                        acc_sums[6] += st.get("tis_clipped", 0.0)
                        mismatch_max = max(mismatch_max, st["mismatch_max"])
                del logp, ent, loss
            max_norm = self.phase.max_grad_norm if self.phase.max_grad_norm > 0 else float("inf")
            gn = self.acc.clip_grad_norm_(self.model.parameters(), max_norm)
            stats["lr"] = self.scheduler.get_last_lr()[0]
            self.optimizer.step()
            self.scheduler.step()
            if gn is None and hasattr(self.model, "get_global_grad_norm"):  # DeepSpeed: known after step
                gn = self.model.get_global_grad_norm()
            grad_norm += float(gn if gn is not None else float("nan")) / mu
        self.optimizer.zero_grad(set_to_none=True)
        loss_s, clip_s, kl_s, ent_s, tok_s, mis_s, tis_s, nll_s = dist.all_sum(self.acc, acc_sums)
        # nll: the completions' mean negative log-likelihood per token before the update (for SFT,
        # the cross-entropy it minimises; its surrogate `loss` is the constant -1 there)
        stats.update(loss=loss_s, clip_frac=clip_s / norm.tokens, kl=kl_s / norm.tokens,
                     entropy=ent_s / max(tok_s, 1.0), nll=nll_s / max(tok_s, 1.0), grad_norm=grad_norm)
        if has_behav:  # engine vs trainer log-prob mismatch (first pass)
            stats["mismatch/mean"] = mis_s / norm.tokens
            stats["mismatch/max"] = dist.all_max(self.acc, [mismatch_max])[0]
            stats["mismatch/tis_clipped_frac"] = tis_s / norm.tokens
        return stats

    def _global_norm(self, batch: RolloutBatch) -> Norm:
        """`loss.batch_norm` over every rank's batch (tokens, live rows, rows; max_new_tokens)."""
        lens = batch.completion_mask.sum(-1)
        tokens, rows, all_rows = dist.all_sum(self.acc, [float(lens.sum()), float((lens > 0).sum()),
                                                          float(batch.rows)])
        mnt = dist.all_max(self.acc, [float(batch.max_new_tokens or batch.completion_mask.shape[1])])[0]
        return Norm(tokens=tokens, rows=max(rows, 1.0), all_rows=max(all_rows, 1.0), max_new_tokens=mnt)


def _take(batch: RolloutBatch, rows: torch.Tensor) -> RolloutBatch:
    if rows.numel() == batch.rows:
        return batch
    kw = {k: (v.index_select(0, rows) if isinstance(v, torch.Tensor) else v) for k, v in vars(batch).items()}
    return RolloutBatch(**kw)


def _base_optimizer(opt: Any) -> Any:
    """The torch optimizer inside accelerate's (and DeepSpeed's) wrappers."""
    while hasattr(opt, "optimizer") and not isinstance(opt, torch.optim.Optimizer):
        opt = opt.optimizer
    return opt


def _low_precision_logits(acc: Any, module: Any) -> None:
    """Keep autocast but drop accelerate's fp32 conversion of the outputs: it would turn the
    [n, L, V] logits into a full fp32 copy, which `logprobs` avoids by working in chunks."""
    original = getattr(module, "_original_forward", None)
    if original is None:
        return

    def forward(*args: Any, **kwargs: Any) -> Any:
        with acc.autocast():
            return original(*args, **kwargs)

    forward.__wrapped__ = original  # type: ignore[attr-defined]  # lets unwrap_model restore it
    module.forward = forward


def _deepspeed_micro_batch(acc: Any, n: int) -> None:
    """DeepSpeed wants a micro-batch size when no dataloader is prepared; the learner's own
    accumulation decides the real one, so any value is only bookkeeping."""
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    if plugin is not None and plugin.deepspeed_config.get("train_micro_batch_size_per_gpu") in (None, "auto"):
        plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = n


__all__ = ["Learner", "Norm", "lr_lambda"]
