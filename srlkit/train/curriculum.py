"""Curriculum bookkeeping: which phases run, how many steps each takes, the resume point.

Phases are identified by their position in `cfg.curriculum` (a name may repeat, e.g.
`sft,srl,rlvr` or `srl,rlvr,srl`); the index goes into seeds, the name into folders.
"""

from __future__ import annotations

import math
from pathlib import Path

from srlkit.config import PhaseConfig, TrainConfig
from srlkit.errors import ConfigError


def validate(cfg: TrainConfig) -> None:
    """Fail before loading anything when the curriculum cannot run."""
    if not cfg.curriculum:
        raise ConfigError("the curriculum is empty; pass e.g. --curriculum srl,rlvr")
    for name in cfg.curriculum:
        if name not in cfg.phases:
            raise ConfigError(f"phase '{name}' has no [train.phases.{name}] table")
        pc = cfg.phases[name]
        if pc.kind == "sft" and pc.table != "srl":
            raise ConfigError(f"the {name} phase is kind sft and trains on expert steps: set train.phases.{name}.table = \"srl\"")
        if pc.kind != "sft" and not pc.rewards:
            raise ConfigError(f"phase '{name}' has no rewards; add [[train.phases.{name}.rewards]]")
        if pc.prompts_per_step < 1 or pc.micro_batch_size < 1 or pc.mu < 1:
            raise ConfigError(f"phase '{name}': prompts_per_step, micro_batch_size and mu must be >= 1")
        if pc.steps is not None and pc.steps < 1:
            raise ConfigError(f"phase '{name}': steps must be >= 1 (or unset to use epochs)")
    if cfg.rollout.num_generations < 2 and any(cfg.phases[n].kind != "sft" for n in cfg.curriculum):
        raise ConfigError("GRPO needs rollout.num_generations >= 2 (group-relative advantages)")


def phase_steps(pc: PhaseConfig, n_prompts: int) -> int:
    """Optimizer steps of a phase: `steps`, else `epochs` passes over its prompts."""
    if pc.steps is not None:
        return pc.steps
    return max(1, math.ceil(pc.epochs * n_prompts / pc.prompts_per_step))


def phase_dir(run: Path, name: str) -> Path:
    return Path(run) / name


def kill_hook(phase: str, step: int, *, phase_end: bool = False) -> None:
    """Test-only: `SRLKIT_TEST_KILL_AT=phase:step` (or `phase:end`) SIGKILLs this process right
    after that checkpoint is written, to test exact resume against a real hard kill."""
    import os
    import signal

    want = os.environ.get("SRLKIT_TEST_KILL_AT")
    if not want:
        return
    p, _, s = want.partition(":")
    if p == phase and ((s == "end" and phase_end) or (s.isdigit() and int(s) == step and not phase_end)):
        os.kill(os.getpid(), signal.SIGKILL)
