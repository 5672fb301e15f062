"""GRPO throughput on one GPU: srlkit against TRL's GRPOTrainer, same settings, same run.  [gpu]

    # a fresh checkout with network: installs srlkit[vllm] and trl, then runs both sides on both models
    python benchmarks/gpu_throughput.py --install
    # offline GPU box with torch/transformers/peft (no vLLM, no Hub): HF engines on a random-weight
    # Qwen2.5-0.5B shape. Prepare on a machine with PyPI access, carry .cache/gpu, then run there:
    #   pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux2014_x86_64 \
    #       -d .cache/gpu/whl pydantic pydantic-core annotated-types typing-inspection trl==1.16.0 \
    #       datasets dill multiprocess difflib-fast
    #   cp <bundled SmolLM2 folder>/{tokenizer.json,tokenizer_config.json,chat_template.jinja} .cache/gpu/tok/
    pip install --no-index --no-deps --target /tmp/site .cache/gpu/whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
    python benchmarks/gpu_throughput.py --engine hf --model random:qwen2.5-0.5b --tokenizer .cache/gpu/tok

Per model and side, in its own subprocess: `--steps` measured GRPO steps after one warm-up,
`--prompts` x `--G` samples of up to `--max-new` tokens from the same random-token chat
prompts, LoRA r=16 all-linear or `--full`, bf16, beta=0, one update per batch, a reward
that ignores meaning. Tokens are counted as generated, so unequal lengths are accounted for.
Reported per side:

- **tokens/s/GPU** (NeMo-RL's definition: every token of the step's batch, prompt and
  completion, divided by the whole step's wall time and the number of GPUs);
- **time split**: generate / update / the rest, per step (srlkit; TRL exposes only the step);
- **update MFU**: analytic model FLOPs of the update (forward 2N + backward 4N per token with
  full fine-tuning, 2N + 2N with LoRA, where base weight gradients are skipped; attention
  scores not counted) over update time, divided by the GPU's dense bf16 peak (H100/H200 SXM:
  989 TFLOP/s) and, beside it, by a bf16 matmul peak measured in the same process;
- **peak memory**: `torch.cuda.max_memory_allocated` (vLLM's KV cache is allocated outside
  PyTorch's counters and shows only in `nvidia-smi`; with `--engine vllm` the figure is the
  trainer's share, and vLLM's reserved fraction is `--gpu-memory-utilization`).

Models: Hub ids (`Qwen/Qwen2.5-0.5B-Instruct`, `Qwen/Qwen2.5-1.5B-Instruct`), a local
folder, or `random:qwen2.5-0.5b` / `random:qwen2.5-1.5b`: the architecture with random
weights and the vocabulary of `--tokenizer` (default: the bundled SmolLM2 tokenizer), for a
machine that cannot download weights. Throughput, MFU and memory depend on shapes, not on
weight values; random weights rarely emit EOS, so completions run to `--max-new`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = ["Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct"]
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "H800": 989e12, "A100": 312e12, "L40S": 362e12}
RANDOM_SHAPES = {  # Qwen2.5 configs (hidden, layers, heads, kv heads, MLP, tied embeddings)
    "qwen2.5-0.5b": dict(hidden_size=896, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                         intermediate_size=4864, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2,
                         intermediate_size=8960, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                 intermediate_size=128, tie_word_embeddings=True),  # a CPU smoke test of this script
}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def install() -> None:
    """What a fresh checkout needs: srlkit with its vLLM extra, and TRL with vLLM support."""
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    subprocess.run(pip + ["-e", f"{ROOT}[vllm]"], check=True)
    subprocess.run(pip + ["trl[vllm]==1.16.0"], check=True)


def materialise(model: str, tokenizer: str | None, work: Path) -> str:
    """A folder transformers can load: `random:SHAPE` is built here with random weights."""
    if not model.startswith("random:"):
        return model
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    shape = RANDOM_SHAPES[model.split(":", 1)[1]]
    tok_dir = tokenizer or _bundled_tokenizer()
    tok = AutoTokenizer.from_pretrained(tok_dir)
    out = work / model.replace(":", "-")
    if not (out / "config.json").is_file():
        cfg = Qwen2Config(vocab_size=len(tok), max_position_embeddings=32768, rope_theta=1e6,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                          pad_token_id=tok.pad_token_id, **shape)
        torch.manual_seed(0)
        Qwen2ForCausalLM(cfg).to(torch.bfloat16).save_pretrained(out)
        tok.save_pretrained(out)
    return str(out)


def _bundled_tokenizer() -> str:
    from srlkit.assets import smollm2_dir

    return str(smollm2_dir())


def prompt_messages(tok, a, seed: int = 0) -> list[list[dict[str, str]]]:
    """One user message of about `--prompt-len` random tokens per prompt (both sides get these)."""
    import random

    rng = random.Random(seed)
    specials = set(tok.all_special_ids)
    ids = [i for i in range(min(len(tok), 32000)) if i not in specials]
    return [[{"role": "user", "content": tok.decode([rng.choice(ids) for _ in range(a.prompt_len)])}]
            for _ in range(a.prompts * (a.steps + 1))]


def peak_flops(device_name: str) -> float | None:
    return next((v for k, v in PEAK_BF16.items() if k in device_name), None)


def measured_matmul_peak(n: int = 8192, reps: int = 10) -> float:
    import torch

    a = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t)


def update_flops(n_params: int, tokens: int, lora: bool, vocab: int, hidden: int, kept: int) -> float:
    """Analytic update FLOPs: 2N forward + 4N backward per token (2N with LoRA: no weight grads)."""
    per_token = 4 if lora else 6
    body = n_params - vocab * hidden  # the LM head is run on `kept` positions only
    return per_token * body * tokens + per_token * vocab * hidden * kept


# --------------------------------------------------------------------------- srlkit side


def run_srlkit(a, path: str) -> dict:
    import torch

    from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig, RolloutConfig, SamplingConfig
    from srlkit.rewards.base import ScoreResult
    from srlkit.rollout import make_engine
    from srlkit.train.data import PromptTable
    from srlkit.train.learner import Learner
    from srlkit.train.model import load_policy
    from srlkit.train.groups import rl_rollouts

    torch.manual_seed(0)
    lora = None if a.full else LoraConfig(r=16, alpha=32)
    opt = {"auto": "auto", "true": True, "false": False}
    policy = load_policy(ModelConfig(name_or_path=path, dtype="bfloat16" if _cuda() else "float32", lora=lora,
                                     gradient_checkpointing=opt[a.gradient_checkpointing],
                                     pack_prompts=opt[a.pack_prompts]),
                         device="cuda" if _cuda() else "cpu")
    learner = Learner(policy, LossConfig(aggregation="token_mean"))
    table = PromptTable([{"prompt": m} for m in prompt_messages(policy.tokenizer, a)], policy.tokenizer, seed=0,
                        max_prompt_tokens=10**6)
    rcfg = RolloutConfig(engine=a.engine, num_generations=a.G, max_new_tokens=a.max_new, truncation="keep",
                         generation_batch_size=a.G * a.prompts, max_prompt_tokens=max(len(x) for x in table.prompt_ids),
                         gpu_memory_utilization=a.gpu_memory_utilization)
    phase = PhaseConfig(prompts_per_step=a.prompts, micro_batch_size=a.micro_batch or a.G * a.prompts, lr=1e-6,
                        sampling=SamplingConfig(dynamic=False))
    learner.begin_phase(phase, a.steps + 1)
    engine = make_engine(rcfg, policy.model, policy.tokenizer, path)

    def scorer(texts, rows):  # any spread of rewards: the update runs on every sample
        return ScoreResult([float(len(t) % 7) for t in texts], {}, {})

    hf = policy.model.get_base_model() if hasattr(policy.model, "get_base_model") else policy.model
    n_params = sum(p.numel() for n, p in hf.named_parameters() if "lora_" not in n)
    vocab, hidden = hf.config.vocab_size, hf.config.hidden_size
    rows = []
    for step in range(a.steps + 1):
        _sync()
        t0 = time.perf_counter()
        roll = rl_rollouts(engine=engine, scorer=scorer, table=table, phase_name="bench", phase=phase,
                           rollout=rcfg, loss=LossConfig(), seed=0, step=step, pad_id=policy.tokenizer.pad_token_id)
        _sync()
        t1 = time.perf_counter()
        learner.update(roll.batch)
        _sync()
        t2 = time.perf_counter()
        if hasattr(engine, "load_weights"):
            engine.load_weights(policy.model)
        _sync()
        t3 = time.perf_counter()
        b = roll.batch
        gen_s = float(roll.metrics.get("time/generate", t1 - t0))
        rows.append({"step_s": t3 - t0, "rollout_s": t1 - t0, "generate_s": gen_s, "update_s": t2 - t1,
                     "sync_s": t3 - t2, "batch_tokens": int(b.attention_mask.sum()),
                     "padded_tokens": int(b.input_ids.numel()),
                     "flops": update_flops(n_params, int(b.input_ids.numel()), lora is not None, vocab, hidden,
                                           b.rows * (b.completion_mask.shape[1] + 1))})
    out = summarise(rows[1:], "srlkit", a)
    out["packing"] = None if learner.packing is None else f"{learner.packing.kind} ({learner.packing.mode})"
    out["gradient_checkpointing"] = bool(getattr(hf, "is_gradient_checkpointing", False))
    return out


# --------------------------------------------------------------------------- TRL side


def run_trl(a, path: str) -> dict:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(path)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            _sync()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            _sync()
            times.append(time.perf_counter() - self.t)

    def reward(completions, **kw):
        return [float(len(str(c)) % 7) for c in completions]

    prompts = prompt_messages(tok, a)
    ds = Dataset.from_list([{"prompt": p} for p in prompts])
    prompt_tokens = statistics.mean(
        len(tok(tok.apply_chat_template(p, add_generation_prompt=True, tokenize=False), add_special_tokens=False)
            ["input_ids"]) for p in prompts)
    vllm = a.engine == "vllm"
    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="trl-bench-"), bf16=_cuda(), use_cpu=not _cuda(), seed=0,
        per_device_train_batch_size=a.G * a.prompts,
        num_generations=a.G, max_completion_length=a.max_new, learning_rate=1e-6, beta=0.0, loss_type="dapo",
        num_iterations=1, max_steps=a.steps + 1, logging_steps=1, report_to=[], save_strategy="no",
        temperature=1.0, shuffle_dataset=False, disable_dropout=True, gradient_accumulation_steps=1,
        use_vllm=vllm, **({"vllm_mode": "colocate", "vllm_gpu_memory_utilization": a.gpu_memory_utilization}
                          if vllm else {}),
    )
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16 if _cuda() else torch.float32)
    peft = None if a.full else LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                          task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=model, processing_class=tok, reward_funcs=reward, args=args, train_dataset=ds,
                          peft_config=peft, callbacks=[Timer()])
    trainer.train()
    lengths = [h["completions/mean_length"] for h in trainer.state.log_history if "completions/mean_length" in h]
    rows = [{"step_s": t, "batch_tokens": a.prompts * a.G * (prompt_tokens + n)} for t, n in zip(times, lengths)]
    return summarise(rows[1:], "trl", a)


def summarise(rows: list[dict], side: str, a) -> dict:
    import torch

    import resource

    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if k != "flops"}
    name = torch.cuda.get_device_name() if _cuda() else "cpu"
    out = {"side": side, "engine": a.engine, "device": name, "steps": len(rows),
           **{k: round(v, 4) for k, v in med.items()},
           "tokens_per_s_per_gpu": round(statistics.median(r["batch_tokens"] / r["step_s"] for r in rows), 1),
           "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2) if _cuda() else None,
           "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    if "flops" in rows[0]:
        achieved = statistics.median(r["flops"] / r["update_s"] for r in rows)
        peak = peak_flops(name)
        out["update_tflops"] = round(achieved / 1e12, 1)
        out["update_mfu"] = round(achieved / peak, 3) if peak else None
        out["update_vs_measured_matmul"] = round(achieved / measured_matmul_peak(), 3) if _cuda() else None
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--install", action="store_true", help="pip install srlkit[vllm] and trl[vllm] first (network)")
    ap.add_argument("--engine", choices=["vllm", "hf"], default="vllm")
    ap.add_argument("--sides", default="srlkit,trl")
    ap.add_argument("--model", action="append", help=f"repeatable; default {DEFAULT_MODELS}")
    ap.add_argument("--tokenizer", default=None, help="for random: models (default: the bundled SmolLM2's)")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--G", type=int, default=8)
    ap.add_argument("--prompt-len", type=int, default=256)
    ap.add_argument("--max-new", type=int, default=512)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--micro-batch", type=int, default=0, help="srlkit micro-batch rows (0: the whole batch)")
    ap.add_argument("--full", action="store_true", help="full fine-tuning instead of LoRA")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.3)
    ap.add_argument("--gradient-checkpointing", default="auto", choices=["auto", "true", "false"],
                    help="srlkit side (auto: on with CUDA); TRL's GRPOConfig checkpoints by default")
    ap.add_argument("--pack-prompts", default="auto", choices=["auto", "true", "false"],
                    help="srlkit side: train.model.pack_prompts (true on CUDA: FlexAttention packing)")
    ap.add_argument("--work", default=None, help="folder for random models (default: a temp dir)")
    ap.add_argument("--side", choices=["srlkit", "trl"], help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="append each side's JSON result to this file")
    a = ap.parse_args()
    if a.side:
        path = a.model[0]
        res = run_srlkit(a, path) if a.side == "srlkit" else run_trl(a, path)
        res["model"] = path
        print("RESULT " + json.dumps(res), flush=True)
        return
    if a.install:
        install()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    work = Path(a.work or tempfile.mkdtemp(prefix="gpu-bench-"))
    results = []
    for model in a.model or DEFAULT_MODELS:
        path = materialise(model, a.tokenizer, work)
        for side in a.sides.split(","):
            cmd = [sys.executable, __file__, "--side", side, "--model", path, "--engine", a.engine,
                   "--prompts", str(a.prompts), "--G", str(a.G), "--prompt-len", str(a.prompt_len),
                   "--max-new", str(a.max_new), "--steps", str(a.steps), "--micro-batch", str(a.micro_batch),
                   "--gpu-memory-utilization", str(a.gpu_memory_utilization),
                   "--gradient-checkpointing", a.gradient_checkpointing, "--pack-prompts", a.pack_prompts] + \
                  (["--full"] if a.full else [])
            proc = subprocess.run(cmd, capture_output=True, text=True)
            line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
            if proc.returncode or not line:
                res = {"side": side, "model": model, "error": (proc.stderr or proc.stdout)[-1500:]}
            else:
                res = json.loads(line[-1][7:]) | {"model": model}
            results.append(res)
            print(json.dumps(res), flush=True)
            if a.out:
                with open(a.out, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps(res) + "\n")
    print(json.dumps({"settings": {k: v for k, v in vars(a).items() if k not in ("side",)}, "results": results}))


if __name__ == "__main__":
    main()
