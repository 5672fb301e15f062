"""`train(cfg) -> run folder`: the curriculum loop around the phase-blind learner.

Per phase: read its table, fresh optimizer/schedule, then per step: rollouts (or expert
targets for sft) -> `learner.update` -> metrics, samples, validation, checkpoint. At each
phase end: validation, `RUN/<phase>/final/`, a between-phase checkpoint. The policy object
(and so a LoRA adapter) carries over from phase to phase. Resume loads the newest
checkpoint and continues at the next step with the same data cursor and RNG streams.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from srlkit.config import TrainConfig, to_toml
from srlkit.errors import SrlkitError
from srlkit.train import checkpoint as ck
from srlkit.train import curriculum as cur
from srlkit.train import heldout
from srlkit.train.data import PromptTable, read_rows, shard_files
from srlkit.train.learner import Learner
from srlkit.train.metrics import MetricsLogger
from srlkit.train.model import load_policy, merged
from srlkit.train.rollouts import derive_seed, rl_rollouts, sft_rollouts


def default_out() -> Path:
    return Path("runs") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def resolve_data(data: str | None) -> Path:
    """The dataset folder; None: the bundled CHAMP decomposition (built once, cached)."""
    if data:
        p = Path(data)
        if not p.is_dir():
            raise SrlkitError(f"data folder '{data}' not found; run `srlkit decompose --out {data}` first")
        return p
    from srlkit.assets import cache_dir
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    out = cache_dir() / "data" / "champ"
    if not (out / "manifest.json").is_file():
        decompose(DecomposeConfig(), out)
    return out


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_engine(cfg: TrainConfig, policy: Any, learner: Learner) -> Any:
    from srlkit.rollout import make_engine as build

    r = cfg.rollout
    return build(r, learner.acc.unwrap_model(policy.model), policy.tokenizer, policy.path,
                 seed=cfg.seed, max_model_len=r.max_prompt_tokens + r.max_new_tokens)


class Trainer:
    """State of one `train()` call; `run()` walks the curriculum."""

    def __init__(self, cfg: TrainConfig, progress: Any = None):
        cur.validate(cfg)
        self.cfg = cfg
        self.run_dir = Path(cfg.out) if cfg.out else default_out()
        self.progress = progress
        latest = ck.latest_checkpoint(self.run_dir)
        if latest is not None and not cfg.resume:
            raise SrlkitError(f"{self.run_dir} already holds checkpoints; pass --resume to continue it, or a new --out")
        self.resume_from = latest if cfg.resume else None
        self.data_dir = resolve_data(cfg.data)
        for name in cfg.curriculum:  # fail on missing tables before the (slow) model load
            table = cfg.phases[name].table
            if not shard_files(self.data_dir, table, "train"):
                raise SrlkitError(f"no {table}/train-*.parquet under {self.data_dir} (phase '{name}'); "
                                  f"run `srlkit decompose --out {self.data_dir}` first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_toml = to_toml(cfg)
        (self.run_dir / "config.toml").write_text(self.config_toml, encoding="utf-8")
        seed_everything(cfg.seed)
        self.policy = load_policy(cfg.model, kl_beta=cfg.loss.kl_beta)
        self.learner = Learner(self.policy, cfg.loss)
        self.tok = self.policy.tokenizer
        self.state: dict[str, Any] = {"seq": 0, "global_step": 0, "phase_index": 0, "phase": cfg.curriculum[0],
                                      "step": 0, "phase_done": False, "done": [], "best": {}, "cursor": None}
        if self.resume_from is not None:
            self.state = ck.load_checkpoint(self.resume_from, model=self._unwrapped())
        self.logger = MetricsLogger(self.run_dir, cfg.report_to, config=cfg.model_dump(mode="json"),
                                    resume_step=self.state["global_step"] if self.resume_from else None)
        self.engine: Any = None
        self.summary: dict[str, Any] = {}
        summ = self.run_dir / "summary.json"
        if self.resume_from is not None and summ.is_file():
            self.summary = json.loads(summ.read_text()).get("phases", {})

    def _unwrapped(self) -> Any:
        return self.learner.acc.unwrap_model(self.policy.model)

    # ------------------------------------------------------------------ helpers

    def _engine(self) -> Any:
        if self.engine is None:
            self.engine = make_engine(self.cfg, self.policy, self.learner)
        return self.engine

    def _scorer(self, pc: Any) -> Any:
        if not pc.rewards:
            return None
        from srlkit.rewards.scorer import build_scorer

        return build_scorer(pc.rewards, self.data_dir)

    def _write_state(self, finished: bool = False) -> None:
        st = {k: self.state[k] for k in ("phase", "phase_index", "step", "done")}
        st["finished"] = finished
        tmp = self.run_dir / "state.json.tmp"
        tmp.write_text(json.dumps(st, indent=2), encoding="utf-8")
        tmp.replace(self.run_dir / "state.json")

    def _checkpoint(self, name: str, step: int, cursor: dict[str, int] | None, phase_done: bool) -> None:
        self.state.update(seq=self.state["seq"] + 1, step=step, cursor=cursor, phase_done=phase_done)
        ck.save_checkpoint(self.run_dir, f"{name}-{step:06d}", model=self._unwrapped(),
                           optimizer=None if phase_done else self.learner.optimizer,
                           scheduler=None if phase_done else self.learner.scheduler,
                           state=self.state, config_toml=self.config_toml, keep=self.cfg.keep_checkpoints)
        self._write_state()

    def _validate(self, name: str, pc: Any, step: int, val: PromptTable, scorer: Any) -> float | None:
        if scorer is not None:
            m = heldout.reward_score(self._engine(), scorer, val, self.cfg.rollout)
        else:
            m = heldout.nll_score(self.learner, self.tok, val, self.cfg.rollout)
        if not m:
            return None
        self.logger.log_eval({"phase": name, "step": step, "global_step": self.state["global_step"], **m})
        best = self.state["best"].get(name)
        if best is None or m["val/score"] > best["score"]:
            self.state["best"][name] = {"score": m["val/score"], "step": step}
            ck.save_hf(self._unwrapped(), self.tok, cur.phase_dir(self.run_dir, name) / "best")
        return m["val/score"]

    # ------------------------------------------------------------------ phases

    def run(self) -> Path:
        for index, name in enumerate(self.cfg.curriculum):
            if index in self.state["done"]:
                continue
            self._phase(index, name)
        self._finish()
        return self.run_dir

    def _phase(self, index: int, name: str) -> None:
        cfg, pc = self.cfg, self.cfg.phases[name]
        pkey = f"{index}:{name}"
        table = PromptTable(read_rows(self.data_dir, pc.table, "train"), self.tok,
                            seed=derive_seed(cfg.seed, pkey, "data"), max_prompt_tokens=cfg.rollout.max_prompt_tokens)
        val_rows = read_rows(self.data_dir, pc.table, "validation")[: pc.val_prompts]
        val = PromptTable(val_rows, self.tok, seed=0, max_prompt_tokens=cfg.rollout.max_prompt_tokens)
        total = cur.phase_steps(pc, len(table))
        self.learner.begin_phase(pc, total)
        start = 0
        resuming = self.resume_from is not None
        if resuming and self.state["phase_index"] == index and not self.state["phase_done"]:
            ck.load_optim(self.resume_from, self.learner.optimizer, self.learner.scheduler)
            table.restore(self.state["cursor"])
            start = self.state["step"]
        if resuming:
            ck.load_rng(self.resume_from)
            self.resume_from = None
        self.state.update(phase=name, phase_index=index, phase_done=False)
        scorer = self._scorer(pc)
        t_phase = time.perf_counter()
        split = self.summary.get(name, {}).get("time", {"generate": 0.0, "reward": 0.0, "update": 0.0})
        bar = self.progress.add_task(f"{name}", total=total, completed=start, info="") if self.progress else None
        for step in range(start + 1, total + 1):
            t0 = time.perf_counter()
            if name == "sft":
                roll = sft_rollouts(tokenizer=self.tok, table=table, phase=pc, rollout=cfg.rollout,
                                    pad_id=self.tok.pad_token_id)
            else:
                roll = rl_rollouts(engine=self._engine(), scorer=scorer, table=table, phase_name=pkey, phase=pc,
                                   rollout=cfg.rollout, loss=cfg.loss, seed=cfg.seed, step=step,
                                   pad_id=self.tok.pad_token_id)
            t1 = time.perf_counter()
            if self.engine is not None:
                self.engine.sleep()
            stats = self.learner.update(roll.batch)
            if self.engine is not None:
                self.engine.load_weights(self._unwrapped())
                self.engine.wake()
            t2 = time.perf_counter()
            self.state["global_step"] += 1
            tokens = float(roll.batch.completion_mask.sum()) + roll.metrics.get("tokens/generated", 0.0)
            rec = {"phase": name, "step": step, "global_step": self.state["global_step"], "time": time.time(),
                   **roll.metrics, **stats, "time/update": t2 - t1, "time/step": t2 - t0,
                   "tokens_per_s": tokens / max(t2 - t0, 1e-9)}
            for k in ("generate", "reward"):
                split[k] += roll.metrics.get(f"time/{k}", 0.0)
            split["update"] += t2 - t1
            if step % max(1, cfg.log_every) == 0 or step == total:
                self.logger.log_step(rec)
            if cfg.sample_every and (step % cfg.sample_every == 0 or step == 1):
                self.logger.log_samples(name, step, roll.samples)
            if pc.eval_every and step % pc.eval_every == 0 and step < total:
                self._validate(name, pc, step, val, scorer)
            if bar is not None:
                r = rec.get("reward/mean")
                self.progress.update(bar, completed=step, info=f"reward {r:.3f}" if r is not None else f"loss {stats['loss']:.3f}")
            if pc.save_every and step % pc.save_every == 0 and step < total:
                self._checkpoint(name, step, table.cursor.to_dict(), phase_done=False)
                cur.kill_hook(name, step)
        best = self._validate(name, pc, total, val, scorer)
        if scorer is not None and hasattr(scorer, "close"):
            scorer.close()  # e.g. the math-verify process pool
        ck.save_hf(self._unwrapped(), self.tok, cur.phase_dir(self.run_dir, name) / "final")
        prev = self.summary.get(name, {})
        self.summary[name] = {"index": index, "steps": total, "best": self.state["best"].get(name),
                              "final_val": best, "wall_s": prev.get("wall_s", 0.0) + time.perf_counter() - t_phase,
                              "time": split, "prompts": len(table), "too_long_prompts": table.too_long}
        self._write_summary()
        self.state["done"] = sorted(set(self.state["done"]) | {index})
        self._checkpoint(name, total, None, phase_done=True)
        cur.kill_hook(name, total, phase_end=True)

    def _write_summary(self) -> None:
        (self.run_dir / "summary.json").write_text(json.dumps({"phases": self.summary}, indent=2), encoding="utf-8")

    def _finish(self) -> None:
        """`RUN/final/` (merged, transformers alone) and `RUN/final/adapter/` (peft) when LoRA."""
        final = self.run_dir / "final"
        model = self._unwrapped()
        ck.save_hf(merged(model) if self.policy.lora else model, self.tok, final)
        if self.policy.lora:
            ck.save_hf(model, self.tok, final / "adapter")
        self._write_state(finished=True)
        self.logger.close()


def train(cfg: TrainConfig, progress: Any = None) -> Path:
    """Run `cfg.curriculum` and return the run folder (see `srlkit.schema` for its layout)."""
    return Trainer(cfg, progress).run()
