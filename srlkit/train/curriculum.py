"""Curriculum bookkeeping: which phases run, how many steps each takes, the resume point.

Phases are identified by their position in `cfg.curriculum` (a name may repeat, e.g.
`sft,srl,rlvr` or `srl,rlvr,srl`); the index goes into seeds, the name into folders.
"""

from __future__ import annotations

import math
from pathlib import Path

from srlkit.config import PhaseConfig, TrainConfig, check_train


def validate(cfg: TrainConfig) -> None:
    """Fail before loading anything when the curriculum cannot run.

    The same checks run when the config is built (`srlkit.config.check_train`); this repeats
    them for a config changed in place since (e.g. `cfg.rollout.num_generations = 1`).
    """
    check_train(cfg)


def kl_beta(cfg: TrainConfig, name: str) -> float:
    """The phase's KL coefficient: its own `kl_beta`, else the run's `loss.kl_beta`."""
    beta = cfg.phases[name].kl_beta
    return cfg.loss.kl_beta if beta is None else beta


def base_copy(cfg: TrainConfig) -> bool:
    """Whether a frozen copy of the loaded weights is needed (full fine-tuning, KL to "base")."""
    return not cfg.model.lora.enabled and any(
        kl_beta(cfg, n) > 0 and cfg.phases[n].kl_reference == "base" for n in cfg.curriculum)


def kl_copy(cfg: TrainConfig) -> bool:
    """Whether any phase keeps a second copy of the weights as its KL reference (full fine-tuning)."""
    return not cfg.model.lora.enabled and any(kl_beta(cfg, n) > 0 for n in cfg.curriculum)


def phase_steps(pc: PhaseConfig, n_prompts: int) -> int:
    """Optimizer steps of a phase: `steps`, else `epochs` passes over its prompts."""
    if pc.steps is not None:
        return pc.steps
    return max(1, math.ceil(pc.epochs * n_prompts / pc.prompts_per_step))


def seed_key(curriculum: list[str], index: int) -> str:
    """The key a phase's data order and sampling seeds derive from: its name, and for a name
    that repeats, its occurrence (`srl`, `srl#2`). It does not depend on the phases before
    it, so the `rlvr` phase of `srl,rlvr` draws exactly what a separate `rlvr` run started
    from the SRL weights draws (same run seed): a curriculum equals its phases run in turn.

    >>> seed_key(["srl", "rlvr"], 1), seed_key(["rlvr"], 0), seed_key(["srl", "rlvr", "srl"], 2)
    ('rlvr', 'rlvr', 'srl#2')
    """
    name = curriculum[index]
    k = list(curriculum[:index]).count(name)
    return name if k == 0 else f"{name}#{k + 1}"


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
