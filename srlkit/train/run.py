"""`train(cfg) -> run folder`: the curriculum loop around the phase-blind learner.

Per phase: read its table, fresh optimizer/schedule, then per step: rollouts (or expert
targets for sft) -> `learner.update` -> metrics, samples, validation, checkpoint. At each
phase end: validation, `RUN/<phase>/final/`, a between-phase checkpoint. The policy object
(and so a LoRA adapter) carries over from phase to phase. Resume loads the newest
checkpoint and continues at the next step with the same data cursor and RNG streams.

Under `accelerate launch` (see `dist`): `prompts_per_step` is the global batch, each rank
draws its own disjoint share of the prompts (whole groups) with its own seeds, rollout
metrics are reduced over ranks so every rank takes the same decisions, and only the main
process writes (metrics, state, samples, checkpoints, HF folders), with barriers around saves.
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

from srlkit import provenance
from srlkit.config import TrainConfig, to_toml
from srlkit.errors import ConfigError, SrlkitError
from srlkit.fileio import write_json
from srlkit.progress import warn
from srlkit.train import checkpoint
from srlkit.train import curriculum
from srlkit.train import dist, heldout, runfolder
from srlkit.train.console import StepReporter
from srlkit.train.data import PromptTable, read_rows, shard_files
from srlkit.train.learner import Learner
from srlkit.train.metrics import MetricsLogger
from srlkit.train.model import load_policy, merged, pick_dtype
from srlkit.train.groups import derive_seed, empty_draw, rl_rollouts, sft_rollouts


def default_out() -> Path:
    return Path("runs") / _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def resolve_data(data: str | None) -> Path:
    """The dataset folder. Training never decomposes on its own: the CLI and `srlkit run`
    build a missing dataset first (`srlkit.pipeline.bundled_data`, `prepare_data`)."""
    if not data:
        raise ConfigError("train.data is not set; pass --data DIR (a `srlkit decompose` folder)")
    p = Path(data)
    if not p.is_dir():
        raise SrlkitError(f"data folder '{data}' not found; run `srlkit decompose --out {data}` first")
    return p


def dead_cause(draws: list[dict[str, Any]], max_new_tokens: int) -> str:
    """Why draws kept nothing, from their metrics: the reward values and the truncation.

    >>> dead_cause([{"reward/min": 0.0, "reward/max": 0.0, "completion/truncated_frac": 1.0}], 64)
    'all 0; 100% truncated at max_new_tokens=64'
    """
    lo = min(d.get("reward/min", 0.0) for d in draws)
    hi = max(d.get("reward/max", 0.0) for d in draws)
    trunc = sum(d.get("completion/truncated_frac", 0.0) for d in draws) / max(1, len(draws))
    values = f"all {lo:g}" if lo == hi else f"rewards {lo:g}..{hi:g}, equal within each group"
    return f"{values}; {trunc:.0%} truncated at max_new_tokens={max_new_tokens}"


def dead_advice(draws: list[dict[str, Any]]) -> str:
    trunc = sum(d.get("completion/truncated_frac", 0.0) for d in draws) / max(1, len(draws))
    if trunc > 0.5:
        return "raise max_new_tokens (rollout or phase), or num_generations (rollout or phase)"
    return "raise num_generations (rollout or phase) or temperature, or start from a model that sometimes succeeds (e.g. SRL first)"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_engine(cfg: TrainConfig, policy: Any, learner: Learner, seed: int | None = None) -> Any:
    from srlkit.rollout import make_engine as build

    r = cfg.rollout
    acc = learner.acc
    return build(r, acc.unwrap_model(policy.model), policy.tokenizer, policy.path,
                 seed=cfg.seed if seed is None else seed, max_model_len=r.max_prompt_tokens + r.max_new_tokens,
                 dtype=str(policy.compute_dtype).replace("torch.", ""),
                 rank=dist.rank(acc), world_size=dist.world_size(acc))


class Trainer:
    """State of one `train()` call; `run()` walks the curriculum."""

    def __init__(self, cfg: TrainConfig, progress: Any = None):
        curriculum.validate(cfg)
        self.cfg = cfg
        self.acc = dist.make_accelerator(pick_dtype(cfg.model.dtype))
        self.main = dist.is_main(self.acc)
        self.rank, self.world = dist.rank(self.acc), dist.world_size(self.acc)
        self.seed = dist.rank_seed(cfg.seed, self.acc)  # sampling seeds: distinct per rank
        starts = [n for n in cfg.curriculum if curriculum.kl_beta(cfg, n) > 0 and cfg.phases[n].kl_reference == "phase_start"]
        if starts and self._sharded():
            raise ConfigError(f"phase '{starts[0]}': kl_reference = \"phase_start\" is not supported with FSDP or "
                              "ZeRO-3 (the snapshot would be a shard); set it to \"base\" or use DDP")
        for name in cfg.curriculum:
            dist.local_quota(cfg.phases[name].prompts_per_step, self.acc, f"train.phases.{name}.prompts_per_step")
        self.run_dir = Path(cfg.out) if cfg.out else default_out()
        self.progress = progress if self.main else None
        # --out is this run's (or, with --resume, the same run): checked before anything is written
        self.resume_from = runfolder.open_run(cfg, self.run_dir, self.world, main=self.main)
        dist.barrier(self.acc)  # every rank has read the run folder before the main one writes to it
        with dist.main_first(self.acc):  # the main process builds a cached dataset once
            self.data_dir = resolve_data(cfg.data)
        for name in cfg.curriculum:  # fail on missing tables before the (slow) model load
            table = cfg.phases[name].table
            if not shard_files(self.data_dir, table, "train"):
                raise SrlkitError(f"no {table}/train-*.parquet under {self.data_dir} (phase '{name}'); "
                                  f"run `srlkit decompose --out {self.data_dir}` first")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.config_toml = to_toml(cfg)
        if self.main:
            runfolder.begin_run(self.run_dir, cfg, self.config_toml)  # config.toml + the unfinished manifest
        seed_everything(cfg.seed)  # the same initialisation (e.g. LoRA) on every rank
        self.policy = load_policy(cfg.model, base_copy=curriculum.base_copy(cfg))
        self.learner = Learner(self.policy, cfg.loss, self.acc)
        if self.seed != cfg.seed:
            seed_everything(self.seed)
        self.tok = self.policy.tokenizer
        self.state: dict[str, Any] = {"seq": 0, "global_step": 0, "phase_index": 0, "phase": cfg.curriculum[0],
                                      "step": 0, "phase_done": False, "done": [], "best": {}, "cursor": None}
        if self.resume_from is not None:
            self.state = checkpoint.load_checkpoint(self.resume_from, model=self._unwrapped())
        self.logger = MetricsLogger(self.run_dir, cfg.report_to, config=cfg.model_dump(mode="json"),
                                    resume_step=self.state["global_step"] if self.resume_from else None,
                                    enabled=self.main)
        self.engine: Any = None
        self.reporter = StepReporter(self.progress, enabled=self.main)
        self._solve: Any = None  # (table, math scorer) for val_solve, built on first use
        self.summary: dict[str, Any] = {}
        self.machine = provenance.machine()
        summ = self.run_dir / "summary.json"
        if self.resume_from is not None and summ.is_file():
            before = json.loads(summ.read_text())
            self.summary = before.get("phases", {})
            recorded = before.get("machine")
            moved = provenance.differences(recorded, self.machine) if isinstance(recorded, dict) else []
            if moved and self.main:
                warn(f"resuming on another machine or library set ({'; '.join(moved)}): the run goes on, but it "
                     "will not match an uninterrupted run bit for bit")

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
        if not self.main:
            return
        st = {k: self.state[k] for k in ("phase", "phase_index", "step", "done")}
        st["finished"] = finished
        write_json(self.run_dir / "state.json", st, sort_keys=False, ensure_ascii=True)

    def _checkpoint(self, name: str, step: int, cursor: dict[str, int] | None, phase_done: bool) -> None:
        """Every rank calls this: the data cursors and RNG states of all ranks go into it."""
        cursors = dist.gather(self.acc, cursor)
        self.state.update(seq=self.state["seq"] + 1, step=step, cursor=cursors[0], phase_done=phase_done)
        if self.world > 1:
            self.state["cursors"] = cursors
        sharded = self._sharded()
        opt_sharded = sharded or str(self.acc.distributed_type).endswith("DEEPSPEED")  # ZeRO partitions it
        checkpoint.save_checkpoint(self.run_dir, f"{name}-{step:06d}", model=self._unwrapped(),
                           optimizer=None if phase_done else self.learner.optimizer,
                           scheduler=None if phase_done else self.learner.scheduler,
                           state=self.state, config_toml=self.config_toml, keep=self.cfg.keep_checkpoints,
                           acc=self.acc, weights=self._full_trainable() if sharded else None,
                           sharded_optimizer=opt_sharded,
                           reference=None if phase_done else self.learner.ref_snapshot)
        self._write_state()

    def _sharded(self) -> bool:
        """FSDP or ZeRO-3: the module holds parameter shards (saves gather them first)."""
        kind = str(self.acc.distributed_type)
        if kind.endswith("DEEPSPEED"):
            return getattr(self.acc.state.deepspeed_plugin, "zero_stage", 0) == 3
        return kind.endswith("FSDP")

    def _full_state(self) -> dict[str, Any] | None:
        """The gathered full state dict under FSDP (a collective: every rank calls it), else None."""
        return self.acc.get_state_dict(self.learner.model) if self._sharded() else None

    def _full_trainable(self) -> dict[str, Any]:
        full = self._full_state() or {}
        names = [n for n, p in self._unwrapped().named_parameters() if p.requires_grad]
        return {n: full[n].contiguous() for n in names if n in full}

    def _save_hf(self, out: Path, merge: bool = False) -> None:
        """An HF folder written by the main process (all ranks call: FSDP gathers first)."""
        state = self._full_state()
        if self.main:
            model = self._unwrapped()
            checkpoint.save_hf(merged(model) if merge else model, self.tok, out, state_dict=state)
        dist.barrier(self.acc)

    def _gather_samples(self, samples: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every rank's sample completions, each tagged with the rank that generated it."""
        return [{**s, "rank": r} for r, part in enumerate(dist.gather(self.acc, samples)) for s in part]

    def _solve_metrics(self) -> dict[str, float]:
        """`val/solve_accuracy` on the first `val_solve` RLVR validation problems (every phase)."""
        if not self.cfg.val_solve:
            return {}
        if self._solve is None:
            from srlkit.config import RewardSpec
            from srlkit.rewards.scorer import build_scorer

            rows = read_rows(self.data_dir, "rlvr", "validation")[: self.cfg.val_solve]
            table = PromptTable(rows, self.tok, seed=0, max_prompt_tokens=self.cfg.rollout.max_prompt_tokens)
            self._solve = (table, build_scorer([RewardSpec(name="math")], self.data_dir))
        table, scorer = self._solve
        return heldout.solve_accuracy(self._engine(), scorer, table, self.cfg.rollout,
                                      self.cfg.val_solve_max_new_tokens)

    def _validate(self, name: str, pc: Any, step: int, val: PromptTable, scorer: Any, key: str) -> float | None:
        """Score the validation prompts at `step` and log them; kept in the state (checkpointed) so the
        phase end does not score the same weights twice when the phase gave up on a validation step."""
        last = self.state.setdefault("last_val", {}).get(key)
        if last is not None and last["step"] == step:
            return last["score"]
        score = self._score_validation(name, pc, step, val, scorer)
        self.state["last_val"][key] = {"step": step, "score": score}
        return score

    def _score_validation(self, name: str, pc: Any, step: int, val: PromptTable, scorer: Any) -> float | None:
        if scorer is not None:
            m = heldout.reward_score(self._engine(), scorer, val, self.cfg.rollout, step_end=pc.step_end,
                                     max_new_tokens=pc.max_new_tokens)
        else:
            m = heldout.nll_score(self.learner, self.tok, val, self.cfg.rollout)
        m = dist.gather(self.acc, m)[0]  # the main process's scores decide "best" on every rank
        if not m:
            return None
        m.update(self._solve_metrics())
        self.logger.log_eval({"phase": name, "step": step, "global_step": self.state["global_step"], **m})
        best = self.state["best"].get(name)
        if best is None or m["val/score"] > best["score"]:
            self.state["best"][name] = {"score": m["val/score"], "step": step}
            self._save_hf(curriculum.phase_dir(self.run_dir, name) / "best")
        return m["val/score"]

    # ------------------------------------------------------------------ phases

    def run(self) -> Path:
        if self.resume_from is not None and all(i in self.state["done"] for i in range(len(self.cfg.curriculum))):
            self.reporter.warn(f"--resume: every phase of {self.run_dir} ({', '.join(self.cfg.curriculum)}) is "
                               "finished, so there is nothing left to train (more steps extend only an unfinished phase); to "
                               f"train further, start a new --out with --model {self.run_dir}/final")
        for index, name in enumerate(self.cfg.curriculum):
            if index in self.state["done"]:
                continue
            self._phase(index, name)
        self._finish()
        return self.run_dir

    def _phase(self, index: int, name: str) -> None:
        cfg, pc = self.cfg, self.cfg.phases[name]
        pkey = f"{index}:{name}"  # the phase's bookkeeping key (its position in the curriculum)
        skey = curriculum.seed_key(cfg.curriculum, index)  # its seeds: independent of the phases before
        table = PromptTable(read_rows(self.data_dir, pc.table, "train"), self.tok,
                            seed=derive_seed(cfg.seed, skey, "data"), max_prompt_tokens=cfg.rollout.max_prompt_tokens,
                            style=pc.prompt_style).shard(self.rank, self.world)
        lpc = pc.model_copy(update={"prompts_per_step": pc.prompts_per_step // self.world})  # this rank's share
        val_rows = read_rows(self.data_dir, pc.table, "validation")[: pc.val_prompts]
        val = PromptTable(val_rows, self.tok, seed=0, max_prompt_tokens=cfg.rollout.max_prompt_tokens,
                          style=pc.prompt_style)
        total = curriculum.phase_steps(pc, len(table))
        self.learner.begin_phase(pc, total)
        start = 0
        resuming = self.resume_from is not None
        if resuming and self.state["phase_index"] == index and not self.state["phase_done"]:
            checkpoint.load_optim(self.resume_from, self.learner.optimizer, self.learner.scheduler, rank=self.rank)
            saved_ref = checkpoint.load_reference(self.resume_from)
            if saved_ref is not None:  # the phase-start KL reference is not the resumed weights
                self.learner.load_reference(saved_ref)
            table.restore((self.state.get("cursors") or [self.state["cursor"]])[self.rank])
            start = self.state["step"]
        if resuming:
            checkpoint.load_rng(self.resume_from, rank=self.rank)
            self.resume_from = None
        self.state.update(phase=name, phase_index=index, phase_done=False)
        scorer = self._scorer(pc)
        t_phase = time.perf_counter()
        split = self.summary.get(name, {}).get("time", {"generate": 0.0, "reward": 0.0, "update": 0.0})
        counts = self.state.setdefault("phase_counts", {}).setdefault(
            pkey, {"updates": 0, "draws": 0, "empty_draws": 0, "prompts": 0, "groups": 0, "dropped": 0})
        self.reporter.begin(name, total, start)
        if pc.eval_every and start == 0:  # the curve's starting point: the weights the phase starts from
            self._validate(name, pc, 0, val, scorer, pkey)
        gave_up: str | None = None
        cap = pc.max_new_tokens or cfg.rollout.max_new_tokens
        empty_run: list[dict[str, Any]] = []  # metrics of consecutive draws that kept nothing
        step = start
        while step < total:
            t0 = time.perf_counter()
            if pc.kind == "sft":
                roll = sft_rollouts(tokenizer=self.tok, table=table, phase=lpc, rollout=cfg.rollout,
                                    pad_id=self.tok.pad_token_id)
            else:
                roll = rl_rollouts(engine=self._engine(), scorer=scorer, table=table, phase_name=skey, phase=lpc,
                                   rollout=cfg.rollout, loss=cfg.loss, seed=self.seed, step=step + 1,
                                   pad_id=self.tok.pad_token_id, draw=len(empty_run))
            t1 = time.perf_counter()
            m = dist.reduce_metrics(self.acc, roll.metrics)  # global: every rank takes the same decisions
            counts["draws"] += 1
            counts["prompts"] += int(m.get("sampling/prompts", 0))
            counts["groups"] += int(m.get("sampling/kept", 0) + m.get("sampling/dropped_equal", 0)
                                    + m.get("sampling/dropped_invalid", 0) + m.get("sampling/surplus", 0))
            counts["dropped"] += int(m.get("sampling/dropped_equal", 0) + m.get("sampling/dropped_invalid", 0))
            for k in ("generate", "reward"):
                split[k] += m.get(f"time/{k}", 0.0)
            empty = empty_draw(m)  # every group filtered, or no token to train on: not a step
            if empty:
                counts["empty_draws"] += 1
                empty_run.append(m)
                self.reporter.warn(f"{name} step {step + 1}: draw {len(empty_run)} {empty[0]} "
                                   f"({dead_cause(empty_run[-1:], cap)})")
                if len(empty_run) >= pc.sampling.patience:
                    gave_up = (f"{name}: {len(empty_run)} draws in a row with {empty[1]} "
                               f"({dead_cause(empty_run, cap)}): {dead_advice(empty_run)}")
                    break
                continue
            empty_run = []
            step += 1
            if self.engine is not None:
                self.engine.sleep()
            stats = self.learner.update(roll.batch)
            if self.engine is not None:
                self.engine.load_weights(self._unwrapped())
                self.engine.wake()
            t2 = time.perf_counter()
            counts["updates"] += 1
            self.state["global_step"] += 1
            tokens = float(roll.batch.completion_mask.sum()) + m.get("tokens/generated", 0.0)
            rec = {"phase": name, "step": step, "global_step": self.state["global_step"], "time": time.time(),
                   **m, **stats, "time/update": t2 - t1, "time/step": t2 - t0,
                   "tokens_per_s": tokens / max(t2 - t0, 1e-9)}
            split["update"] += t2 - t1
            if step % max(1, cfg.log_every) == 0 or step == total:
                self.logger.log_step(rec)
            if cfg.sample_every and (step % cfg.sample_every == 0 or step == 1):
                self.logger.log_samples(name, step, self._gather_samples(roll.samples))
            if pc.eval_every and step % pc.eval_every == 0 and step < total:
                self._validate(name, pc, step, val, scorer, pkey)
            self.reporter.step(step, {**rec, "prompts_per_step": pc.prompts_per_step})
            if pc.save_every and step % pc.save_every == 0 and step < total:
                self._checkpoint(name, step, table.cursor.to_dict(), phase_done=False)
                curriculum.kill_hook(name, step)
        if gave_up:
            self.reporter.warn(f"{gave_up}; phase ended after {counts['updates']} of {total} optimizer updates")
        # at the step the phase reached: a phase that gave up early is not drawn as if it had trained to the end
        best = self._validate(name, pc, step, val, scorer, pkey)
        if scorer is not None and hasattr(scorer, "close"):
            scorer.close()  # e.g. the math-verify process pool
        self._save_hf(curriculum.phase_dir(self.run_dir, name) / "final")
        prev = self.summary.get(name, {})
        self.summary[name] = {"index": index, "kind": pc.kind, "steps": total, "updates": counts["updates"],
                              "draws": counts["draws"], "empty_draws": counts["empty_draws"],
                              "filter_rate": counts["dropped"] / counts["groups"] if counts["groups"] else 0.0,
                              "prompts_consumed": counts["prompts"], "gave_up": gave_up,
                              "best": self.state["best"].get(name),
                              "final_val": best, "wall_s": prev.get("wall_s", 0.0) + time.perf_counter() - t_phase,
                              "time": split, "prompts": len(table), "too_long_prompts": table.too_long}
        self._write_summary()
        if counts["updates"] == 0 and not cfg.allow_idle_phases:
            self.logger.close()
            self.reporter.close()
            raise SrlkitError(f"{gave_up or name + ': no optimizer update'}; the phase made no update, so the run "
                              "failed (set train.allow_idle_phases=true to let it continue)")
        self.state["done"] = sorted(set(self.state["done"]) | {index})
        self._checkpoint(name, total, None, phase_done=True)
        curriculum.kill_hook(name, total, phase_end=True)

    def _write_summary(self) -> None:
        if self.main:
            body = {"world_size": self.world, "machine": self.machine, "phases": self.summary}
            (self.run_dir / "summary.json").write_text(json.dumps(body, indent=2), encoding="utf-8")

    def _finish(self) -> None:
        """`RUN/final/` (merged, transformers alone) and `RUN/final/adapter/` (peft) when LoRA."""
        final = self.run_dir / "final"
        # FSDP + LoRA: the merge needs the full module, which only the gathered state holds;
        # there `final/` keeps the adapter format (known gap) and `final/adapter/` is the same.
        self._save_hf(final, merge=self.policy.lora and not self._sharded())
        if self.policy.lora:
            self._save_hf(final / "adapter")
        self._write_state(finished=True)
        self.logger.close()
        if self.main:
            runfolder.finish_run(self.run_dir)  # the manifest lists every file, with sha256
        self.reporter.close()
        if self._solve is not None and hasattr(self._solve[1], "close"):
            self._solve[1].close()


def train(cfg: TrainConfig, progress: Any = None) -> Path:
    """Run `cfg.curriculum` and return the run folder (see `srlkit.schema` for its layout)."""
    return Trainer(cfg, progress).run()
