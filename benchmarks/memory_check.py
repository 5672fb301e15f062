"""`srlkit train --dry-run`'s memory estimate against the measured peak, per case.

    python benchmarks/memory_check.py                                   # CPU: bundled SmolLM2, fp32
    python benchmarks/memory_check.py --model random:qwen2.5-0.5b --tokenizer TOK \
        --cases 64:280:128:16:1,64:280:128:16:0,16:512:256:16:1,16:512:256:16:0   # CUDA, bf16 LoRA

A case is micro_batch:prompt_len:completion_len:lora_r:checkpointing (lora_r 0: full fine-tuning).
All cases run in one subprocess (`tests/helpers/memory_probe.py`: two learner updates of a
padded batch, the plain layout): the peak is `torch.cuda.max_memory_allocated` on a GPU and
the CPU allocator's peak from torch.profiler's memory events on CPU. The estimate is
`srlkit.train.memory.estimate` for the same case (bf16 compute on CUDA, fp32 on CPU). Prints
one JSON line per case with both, in MiB, and est / measured (issue 22: within 0.8-1.2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder or random:qwen2.5-0.5b (default: bundled SmolLM2)")
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--cases", default="2:128:128:0:0,2:128:128:0:1,4:256:64:8:0,4:256:64:8:1")
    ap.add_argument("--out", default=None, help="append the JSON lines to this file")
    a = ap.parse_args()

    import torch

    from gpu_throughput import materialise
    from srlkit.assets import smollm2_dir
    from srlkit.train.memory import Shape, estimate

    work = Path(os.environ.get("TMPDIR", "/tmp")) / "srlkit-bench"
    path = materialise(a.model, a.tokenizer, work) if a.model else str(smollm2_dir())
    shape = Shape.from_config(json.loads((Path(path) / "config.json").read_text()))
    dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(ROOT / "tests/helpers/memory_probe.py"), path, a.cases], env=env,
                          capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    for line in proc.stdout.splitlines():
        if not line.startswith("{"):
            continue
        got = json.loads(line)
        mbs, p, c, lora, ckpt = got["case"]
        est = estimate(shape, lora_r=lora or None, compute_dtype=dtype, micro_batch=mbs, prompt_len=p,
                       completion_len=c, grad_ckpt=bool(ckpt), accumulate=False)  # one micro-batch per step
        row = {"case": got["case"], "device": got["device"], "measured_mib": round(got["peak"] / 2**20, 1),
               "estimate_mib": round(est.peak / 2**20, 1), "ratio": round(est.peak / got["peak"], 3),
               "parts_mib": {k: round(v / 2**20, 1) for k, v in est.parts.items()}}
        print(json.dumps(row), flush=True)
        if a.out:
            with open(a.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
