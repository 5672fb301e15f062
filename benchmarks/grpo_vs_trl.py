"""One GRPO step of srlkit against TRL's GRPOTrainer, same run, same settings, on CPU.

    python benchmarks/grpo_vs_trl.py [--steps 3] [--prompts 2] [--G 4] [--max-new 32]

Both sides: the bundled SmolLM2-135M-Instruct (float32), G rollouts per prompt, the same
prompts (bundled CHAMP RLVR prompts), max new tokens, LoRA (r=8, alpha=16, all-linear), the
same reward function, beta=0, one update per rollout batch, no dynamic sampling (TRL has
none). TRL's GRPOConfig turns gradient checkpointing on by default; srlkit's is off unless
`--gradient-checkpointing`, so compare memory with it on. Each side runs in its own
subprocess for a clean peak RSS, and reports its RSS peak per stretch (load, warm-up,
generate, update). srlkit's learner packs each group's shared prompt once in the update
(its default; `--no-pack-prompts` for one row per completion, as TRL runs). Step time = median over
`--steps` measured steps after one warm-up step.

Also, on the srlkit side: the update phase's achieved FLOP/s (forward+backward, counted
analytically) against a matmul peak measured in the same process.
Needs `pip install trl` (the `bench` extra); it must not replace the installed torch.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def reward_texts(texts: list[str]) -> list[float]:
    """The shared reward: distinct-word ratio (deterministic, varies across samples)."""
    out = []
    for t in texts:
        words = t.split()
        out.append(len(set(words)) / (1 + len(words)))
    return out


def prompts(n: int) -> list[list[dict[str, str]]]:
    from srlkit.train.data import read_rows
    from srlkit.pipeline import bundled_data

    rows = read_rows(bundled_data(), "rlvr", "train")
    return [list(r["prompt"]) for r in rows[:n]]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class RssSampler:
    """Peak resident memory per labelled stretch of a run (a thread polls RSS every 5 ms).

    `peak_rss_mb` (ru_maxrss) says how high a process went; this says during what: loading,
    generating or updating. `mark(label)` starts a stretch; `peaks()` gives MB per label.
    """

    def __init__(self, interval: float = 0.005):
        import threading

        import psutil

        self.proc, self.interval, self.label = psutil.Process(), interval, "start"
        self.peak: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            time.sleep(self.interval)

    def sample(self) -> None:
        mb = self.proc.memory_info().rss / 2**20
        self.peak[self.label] = max(self.peak.get(self.label, 0.0), mb)

    def mark(self, label: str) -> None:
        self.sample()
        self.label = label
        self.sample()

    def peaks(self) -> dict[str, float]:
        self.sample()
        self._stop.set()
        return {k: round(v) for k, v in self.peak.items()}


def matmul_peak(n: int = 1024, reps: int = 5) -> float:
    """Best-of-`reps` fp32 matmul FLOP/s: the CPU's practical peak in this process."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


# --------------------------------------------------------------------------- srlkit side


def processed_tokens(learner, b, mbs: int) -> int:
    """Padded tokens the update's forward runs: one row per completion, or, where the learner
    packs a micro-batch's shared prompts (`srlkit/train/pack_policy.py` decides), one prompt per group."""
    from srlkit.train import packing

    total = 0
    for s in range(0, b.rows, mbs):
        mb = b.slice(s, s + mbs)
        plan = packing.plan(mb.input_ids, mb.attention_mask, mb.prompt_len) if learner.packing else None
        if plan is None or not learner.packing.use(plan, mb):
            total += int(mb.input_ids.numel())
        else:
            total += len(plan.first_row) * (mb.prompt_len + plan.slots * mb.completion_mask.shape[1])
    return total


def run_srlkit(a) -> dict:
    import torch

    from srlkit.config import (
        LoraConfig,
        LossConfig,
        ModelConfig,
        PhaseConfig,
        RolloutConfig,
        SamplingConfig,
    )
    from srlkit.rewards.base import ScoreResult
    from srlkit.rollout import make_engine
    from srlkit.train.data import PromptTable
    from srlkit.train.learner import Learner
    from srlkit.train.model import load_policy
    from srlkit.train.groups import rl_rollouts

    rss = RssSampler()
    rss.mark("imports")
    torch.manual_seed(0)
    mcfg = ModelConfig(dtype="float32", lora=LoraConfig(r=8, alpha=16), gradient_checkpointing=a.gradient_checkpointing,
                       pack_prompts=not a.no_pack_prompts)
    policy = load_policy(mcfg)
    learner = Learner(policy, LossConfig(aggregation="token_mean"))
    rcfg = RolloutConfig(num_generations=a.G, max_new_tokens=a.max_new, truncation="keep",
                         generation_batch_size=a.G * a.prompts)
    phase = PhaseConfig(prompts_per_step=a.prompts, micro_batch_size=a.G * a.prompts, lr=1e-5,
                        sampling=SamplingConfig(dynamic=False))
    learner.begin_phase(phase, a.steps + 1)
    engine = make_engine(rcfg, policy.model, policy.tokenizer, policy.path)
    rows = [{"prompt": p} for p in prompts(a.prompts * (a.steps + 1))]
    table = PromptTable(rows, policy.tokenizer, seed=0, max_prompt_tokens=4096)

    def scorer(texts, rows):
        return ScoreResult(reward_texts(list(texts)), {}, {})

    n_block = sum(p.numel() for n, p in policy.model.named_parameters() if "embed_tokens" not in n and "lm_head" not in n)
    hf = policy.model.get_base_model()
    vocab, hidden = hf.config.vocab_size, hf.config.hidden_size
    times, upd, flops = [], [], []
    rss.mark("model + learner + engine")
    for step in range(a.steps + 1):
        t0 = time.perf_counter()
        rss.mark("generate" if step else "warm-up generate")
        roll = rl_rollouts(engine=engine, scorer=scorer, table=table, phase_name="bench", phase=phase,
                           rollout=rcfg, loss=LossConfig(), seed=0, step=step, pad_id=policy.tokenizer.pad_token_id)
        t1 = time.perf_counter()
        rss.mark("update" if step else "warm-up update")
        learner.update(roll.batch)
        t2 = time.perf_counter()
        if step == 0:
            continue  # warm-up
        times.append(t2 - t0)
        upd.append(t2 - t1)
        b = roll.batch
        tokens = processed_tokens(learner, b, phase.micro_batch_size)  # what the matmuls actually process
        kept = b.rows * (b.completion_mask.shape[1] + 1)  # logits_to_keep positions
        # fwd 2 + bwd 2 (activation grads) per param-token; base weight grads are skipped under LoRA
        flops.append(4 * n_block * tokens + 4 * vocab * hidden * kept)
    peak = matmul_peak()
    achieved = statistics.median(f / t for f, t in zip(flops, upd))
    return {"side": "srlkit", "step_s": statistics.median(times), "update_s": statistics.median(upd),
            "step_times": times, "peak_rss_mb": peak_rss_mb(), "rss_mb": rss.peaks(), "update_flops_per_s": achieved,
            "matmul_peak_flops_per_s": peak, "update_efficiency": achieved / peak}


# --------------------------------------------------------------------------- TRL side


def run_trl(a) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from srlkit.assets import smollm2_dir

    rss = RssSampler()
    rss.mark("imports")
    torch.manual_seed(0)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            rss.mark("steps" if times else "warm-up step")
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            times.append(time.perf_counter() - self.t)

    def reward(completions, **kw):
        texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
        return reward_texts(texts)

    ds = Dataset.from_list([{"prompt": p} for p in prompts(a.prompts * (a.steps + 1))])
    args = GRPOConfig(
        output_dir=str(Path(a.tmp) / "trl"), use_cpu=True, bf16=False, seed=0,
        per_device_train_batch_size=a.G * a.prompts, num_generations=a.G, max_completion_length=a.max_new,
        learning_rate=1e-5, beta=0.0, loss_type="dapo", num_iterations=1, max_steps=a.steps + 1,
        logging_steps=1, report_to=[], save_strategy="no", temperature=1.0, shuffle_dataset=False,
        dataloader_num_workers=0, disable_dropout=True,
    )
    rss.mark("model + trainer")
    trainer = GRPOTrainer(
        model=str(smollm2_dir()), reward_funcs=reward, args=args, train_dataset=ds,
        peft_config=LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM"),
        callbacks=[Timer()],
    )
    rss.mark("model + trainer")
    trainer.train()
    measured = times[1:]
    return {"side": "trl", "step_s": statistics.median(measured), "step_times": measured, "peak_rss_mb": peak_rss_mb(),
            "rss_mb": rss.peaks()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", choices=["srlkit", "trl"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--prompts", type=int, default=2)
    p.add_argument("--G", type=int, default=4)
    p.add_argument("--max-new", type=int, default=32)
    p.add_argument("--tmp", default="/tmp/srlkit-bench")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="srlkit side recomputes activations in backward, as TRL's GRPOConfig does by default")
    p.add_argument("--no-pack-prompts", action="store_true",
                   help="srlkit side runs one row per completion in the update (its default packs each group's prompt once)")
    a = p.parse_args()
    if a.side:
        res = run_srlkit(a) if a.side == "srlkit" else run_trl(a)
        print("RESULT " + json.dumps(res))
        return
    out = {}
    for side in ("srlkit", "trl"):
        cmd = [sys.executable, __file__, "--side", side, "--steps", str(a.steps), "--prompts", str(a.prompts),
               "--G", str(a.G), "--max-new", str(a.max_new), "--tmp", a.tmp,
               *(["--gradient-checkpointing"] if a.gradient_checkpointing else []),
               *(["--no-pack-prompts"] if a.no_pack_prompts else [])]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
        if proc.returncode or not line:
            sys.exit(f"{side} failed:\n{proc.stderr[-3000:]}")
        out[side] = json.loads(line[-1][7:])
    s, t = out["srlkit"], out["trl"]
    print(f"settings: SmolLM2-135M fp32, G={a.G}, prompts/step={a.prompts}, max_new_tokens={a.max_new}, "
          f"LoRA r=8 all-linear, {a.steps} measured steps after 1 warm-up, CPU threads={os.cpu_count()}; "
          f"gradient checkpointing: srlkit {'on' if a.gradient_checkpointing else 'off'}, TRL on (its default); "
          f"srlkit prompt packing {'off' if a.no_pack_prompts else 'on'}")
    print(f"step time  srlkit {s['step_s']:.2f} s  TRL {t['step_s']:.2f} s  ratio {s['step_s'] / t['step_s']:.2f}x (issue 13: <= 0.5x)")
    print(f"peak RSS   srlkit {s['peak_rss_mb']:.0f} MB  TRL {t['peak_rss_mb']:.0f} MB  ratio {s['peak_rss_mb'] / t['peak_rss_mb']:.2f}x")
    print(f"update     {s['update_s']:.2f} s, {s['update_flops_per_s'] / 1e9:.1f} GFLOP/s vs matmul peak "
          f"{s['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s = {100 * s['update_efficiency']:.0f}% (target >= 50%)")
    print(f"RSS peaks by stretch (MB)  srlkit {s['rss_mb']}  TRL {t['rss_mb']}")
    print("raw " + json.dumps(out))


if __name__ == "__main__":
    main()
