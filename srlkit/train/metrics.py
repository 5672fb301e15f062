"""Per-step metrics to JSONL and TensorBoard (wandb / trackio when installed and asked for),
sample completions every K steps, and validation records.

Only the main process writes: the logger of any other rank is built with `enabled=False`
and does nothing (no files, no TensorBoard/wandb/trackio runs).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from srlkit.errors import ConfigError


def _trim_jsonl(path: Path, keep_through: int) -> None:
    """Drop lines past `global_step == keep_through`: a killed run may have logged steps
    after its last checkpoint, and the resumed run logs them again."""
    if not path.is_file():
        return
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            if json.loads(line).get("global_step", 0) <= keep_through:
                lines.append(line)
        except json.JSONDecodeError:
            continue  # a torn last line
    path.write_text("".join(x + "\n" for x in lines), encoding="utf-8")


class MetricsLogger:
    def __init__(self, run: Path, report_to: list[str], *, config: dict[str, Any], resume_step: int | None = None,
                 enabled: bool = True):
        self.run = Path(run)
        self.enabled = enabled
        self.report_to = set(report_to) if enabled else set()
        self.jsonl = self.run / "metrics.jsonl"
        self.eval_jsonl = self.run / "eval.jsonl"
        for name in ("wandb", "trackio"):
            if name in self.report_to and importlib.util.find_spec(name) is None:
                raise ConfigError(f"report_to includes '{name}' but it is not installed; `pip install {name}` or drop it")
        if resume_step is not None and enabled:
            _trim_jsonl(self.jsonl, resume_step)
            _trim_jsonl(self.eval_jsonl, resume_step)
        self.tb = None
        if "tensorboard" in self.report_to:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run / "tb"))
        self.trackers: list[Any] = []
        if "wandb" in self.report_to:
            import wandb

            self.trackers.append(wandb.init(project="srlkit", dir=str(self.run), config=config, resume="allow"))
        if "trackio" in self.report_to:
            import trackio

            trackio.init(project="srlkit", config=config)
            self.trackers.append(trackio)

    def _append(self, path: Path, rec: dict[str, Any]) -> None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(rec) + "\n")

    def _scalars(self, rec: dict[str, Any], prefix: str = "") -> None:
        g = int(rec["global_step"])
        nums = {prefix + k: float(v) for k, v in rec.items() if isinstance(v, (int, float)) and k != "global_step"}
        if self.tb is not None:
            for k, v in nums.items():
                self.tb.add_scalar(f"{rec['phase']}/{k}", v, g)
        for t in self.trackers:
            t.log({f"{rec['phase']}/{k}": v for k, v in nums.items()}, step=g)

    def log_step(self, rec: dict[str, Any]) -> None:
        if "jsonl" in self.report_to:
            self._append(self.jsonl, rec)
        self._scalars(rec)

    def log_eval(self, rec: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._append(self.eval_jsonl, rec)
        self._scalars(rec)

    def log_samples(self, phase: str, step: int, samples: list[dict[str, Any]]) -> None:
        if not self.enabled:
            return
        d = self.run / "samples"
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{phase}-{step:06d}.jsonl"
        path.write_text("".join(json.dumps(s, default=str) + "\n" for s in samples), encoding="utf-8")

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        for t in self.trackers:
            if hasattr(t, "finish"):
                t.finish()
