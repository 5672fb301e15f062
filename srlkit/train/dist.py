"""Rank helpers for the trainer: one Accelerator, who writes, per-rank seeds, reductions.

Every helper here that talks to other ranks (`all_sum`, `all_max`, `gather`, `barrier`) must be
called by every rank in the same order; with one process they are plain local operations, so
single-process runs (and their exact-resume tests) never touch torch.distributed.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import torch

from srlkit.errors import ConfigError

_MIXED = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "no"}

# Reductions of the per-step rollout metrics over ranks (everything else is a rank mean).
SUM_KEYS = ("tokens/generated", "tokens/trainable", "sampling/kept", "sampling/dropped_equal", "sampling/dropped_invalid",
            "sampling/generated", "sampling/prompts", "sampling/expert_rows")
MAX_PREFIX = ("time/",)


def make_accelerator(compute_dtype: torch.dtype, **kwargs: Any) -> Any:
    """The process's Accelerator: mixed precision from the compute dtype (fp32 master weights stay
    in the model; autocast computes in bf16/fp16). `accelerate launch` settings decide the backend
    (DDP, FSDP, DeepSpeed); the recipe's dtype decides the precision.

    A single process may build learners of different precisions one after another (tests,
    in-process CLI calls), so a stale single-process state is reset; a distributed one never is.
    """
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedDataParallelKwargs

    mp = _MIXED.get(compute_dtype, "no")
    if AcceleratorState._shared_state and PartialState().num_processes == 1:
        if AcceleratorState().mixed_precision != mp:
            AcceleratorState._reset_state()
    # Rotary caches are the only buffers and are identical on every rank: broadcasting them on
    # each forward would add a collective to no-grad passes, whose counts differ per rank.
    ddp = DistributedDataParallelKwargs(broadcast_buffers=False)
    # Without a GPU, accelerate only builds a gloo world (MULTI_CPU) when told cpu=True, and
    # there it never selects FSDP or DeepSpeed: it would silently run DDP instead.
    if not torch.cuda.is_available():
        import os

        for flag, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
            if os.environ.get(flag, "false").lower() == "true":
                raise ConfigError(f"{name} needs CUDA GPUs (accelerate builds it only on a GPU world); on CPU "
                                  "launch with `accelerate launch --multi_gpu --num_processes N` (DDP over gloo)")
        kwargs.setdefault("cpu", True)
    acc = Accelerator(mixed_precision=mp, step_scheduler_with_optimizer=False, kwargs_handlers=[ddp], **kwargs)
    return acc


def rank(acc: Any) -> int:
    return int(acc.process_index)


def world_size(acc: Any) -> int:
    return int(acc.num_processes)


def is_main(acc: Any) -> bool:
    return bool(acc.is_main_process)


def barrier(acc: Any) -> None:
    if world_size(acc) > 1:
        acc.wait_for_everyone()


def _reduce(acc: Any, values: list[float], op: str) -> list[float]:
    if world_size(acc) == 1:
        return [float(v) for v in values]
    import torch.distributed as td

    t = torch.tensor(values, dtype=torch.float64, device=acc.device)
    td.all_reduce(t, op=td.ReduceOp.SUM if op == "sum" else td.ReduceOp.MAX)
    return [float(v) for v in t.tolist()]


def all_sum(acc: Any, values: list[float]) -> list[float]:
    """Element-wise sum over ranks (float64, so token counts stay exact)."""
    return _reduce(acc, values, "sum")


def all_max(acc: Any, values: list[float]) -> list[float]:
    return _reduce(acc, values, "max")


def gather(acc: Any, obj: Any) -> list[Any]:
    """Every rank's (picklable) object, in rank order, on every rank."""
    if world_size(acc) == 1:
        return [obj]
    import torch.distributed as td

    out: list[Any] = [None] * world_size(acc)
    td.all_gather_object(out, obj)
    return out


def reduce_metrics(acc: Any, metrics: dict[str, float]) -> dict[str, float]:
    """One step's rollout metrics over ranks: counts summed, times maxed, the rest averaged.

    Keys missing on a rank (e.g. a score counter that never fired) average over the ranks that
    have them.
    """
    per_rank = gather(acc, {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
    if len(per_rank) == 1:
        return dict(metrics)
    out: dict[str, float] = {}
    for key in sorted({k for m in per_rank for k in m}):
        vals = [m[key] for m in per_rank if key in m]
        if key in SUM_KEYS or key.startswith("score/"):
            out[key] = sum(vals)
        elif key.startswith(MAX_PREFIX):
            out[key] = max(vals)
        else:
            out[key] = sum(vals) / len(vals)
    return out


def local_quota(global_n: int, acc: Any, what: str = "prompts_per_step") -> int:
    """This rank's share of a global count (groups stay whole on one rank)."""
    w = world_size(acc)
    if global_n % w:
        raise ConfigError(f"{what}={global_n} is not a multiple of the {w} processes; "
                          f"set it to a multiple of {w} or launch {w} processes that divide it")
    return global_n // w


def rank_seed(seed: int, acc: Any) -> int:
    """The run seed on a single process; a distinct derived seed per rank otherwise."""
    if world_size(acc) == 1:
        return seed
    from srlkit.train.groups import derive_seed

    return derive_seed(seed, "rank", rank(acc))


@contextmanager
def main_first(acc: Any):
    """The main process runs the block first (e.g. builds a cached dataset), then the others."""
    if world_size(acc) == 1:
        yield
        return
    with acc.main_process_first():
        yield


@contextmanager
def launch_main_first():
    """Before the trainer exists (e.g. building the recipe's dataset): under `accelerate launch`
    the main process runs the block first, the others after it."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        yield
        return
    from accelerate import PartialState

    with PartialState(cpu=not torch.cuda.is_available()).main_process_first():
        yield
