"""What a person watching a training run sees: one line per optimizer step, or a bar.

On a terminal: a rich progress bar per phase (the CLI may pass its own `Progress`).
Elsewhere (nohup, CI, SLURM logs): one plain line per optimizer step on stderr, flushed,
with phase, step/total, reward, filter rate, kept groups, loss, seconds per step and ETA.
Warnings (a draw that kept nothing, a phase that gave up) are always printed.
"""

from __future__ import annotations

import sys
import time
from typing import Any


def fmt_duration(seconds: float) -> str:
    """
    >>> fmt_duration(5), fmt_duration(125), fmt_duration(3725)
    ('5s', '2m05s', '1h02m')
    """
    s = int(round(max(0.0, seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def step_line(phase: str, step: int, total: int, rec: dict[str, Any], sec_per_step: float) -> str:
    """One log line for an optimizer step (missing metrics are left out).

    >>> step_line("srl", 3, 10, {"reward/mean": 0.5, "sampling/filter_rate": 0.25,
    ...           "sampling/kept": 3, "prompts_per_step": 4, "loss": -0.01}, 2.0)
    'srl step 3/10 | reward 0.500 | filter 0.25 | kept 3/4 | loss -0.0100 | 2.0 s/step | ETA 14s'
    """
    parts = [f"{phase} step {step}/{total}"]
    if rec.get("reward/mean") is not None:
        parts.append(f"reward {rec['reward/mean']:.3f}")
    if rec.get("sampling/filter_rate") is not None:
        parts.append(f"filter {rec['sampling/filter_rate']:.2f}")
    if rec.get("sampling/kept") is not None:
        want = rec.get("prompts_per_step")
        parts.append(f"kept {int(rec['sampling/kept'])}" + (f"/{int(want)}" if want else ""))
    parts.append(_loss_part(rec, 4))
    parts.append(f"{sec_per_step:.1f} s/step")
    parts.append(f"ETA {fmt_duration(sec_per_step * (total - step))}")
    return " | ".join(p for p in parts if p)


def _loss_part(rec: dict[str, Any], digits: int) -> str:
    """`loss` for GRPO phases; `nll` (cross-entropy) for SFT, whose surrogate loss is constant.

    >>> _loss_part({"reward/mean": 0.5, "loss": -0.01, "nll": 2.0}, 3), _loss_part({"loss": -1.0, "nll": 0.25}, 3)
    ('loss -0.010', 'nll 0.250')
    """
    if rec.get("reward/mean") is None and rec.get("nll") is not None:
        return f"nll {rec['nll']:.{digits}f}"
    return f"loss {rec['loss']:.{digits}f}" if rec.get("loss") is not None else ""


class StepReporter:
    """Per-phase progress: a bar on a terminal, plain lines elsewhere; quiet off the main rank."""

    def __init__(self, progress: Any = None, *, enabled: bool = True, stream: Any = None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.own = None
        if enabled and progress is None and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"),
                                console=Console(file=self.stream, highlight=False))
            progress.start()
            self.own = progress
        self.progress = progress if (enabled and self.tty) else None
        self.task = None
        self.phase = ""
        self.total = 0
        self.t_last = 0.0
        self.times: list[float] = []

    def begin(self, phase: str, total: int, start: int) -> None:
        self.phase, self.total, self.times = phase, total, []
        self.t_last = time.perf_counter()
        if self.progress is not None:
            self.task = self.progress.add_task(phase, total=total, completed=start, info="")

    def step(self, step: int, rec: dict[str, Any]) -> None:
        now = time.perf_counter()
        self.times.append(now - self.t_last)
        self.t_last = now
        recent = self.times[-5:]
        sps = sum(recent) / len(recent)
        if not self.enabled:
            return
        if self.progress is not None:
            r = rec.get("reward/mean")
            info = f"reward {r:.3f}" if r is not None else _loss_part(rec, 3)
            self.progress.update(self.task, completed=step, info=info)
        else:
            print(step_line(self.phase, step, self.total, rec, sps), file=self.stream, flush=True)

    def warn(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.progress is not None:
            self.progress.console.print(f"[yellow]warning:[/] {msg}")
        else:
            print(f"warning: {msg}", file=self.stream, flush=True)

    def close(self) -> None:
        if self.own is not None:
            self.own.stop()
            self.own = None
