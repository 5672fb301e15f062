"""Eval-shaped decoding on SmolLM2: the shared prompt head on/off, and batch rows 32/64/128.

    python benchmarks/eval_decode.py [--prompts 64] [--new 48] [--repeat 2] [--threads 1]
    python benchmarks/eval_decode.py --profile --prompts 128 --new 32   # where one batch's time goes

Prompts are chain_sum-like RLVR eval prompts (chat template + system prompt + a question),
decoded greedily with `decode.decode_groups`, the HF engine's loop. Variants alternate within
one process; each line is one timed call, then the medians and the ratio to the reference
(`share_prefix=False`, and 64 rows) are printed. Greedy outputs must be identical across variants.

`--profile` decodes one batch of `--prompts` rows under torch.profiler instead: the top
operators by self time, and the matrix multiplies' achieved GFLOP/s against a matmul peak
measured in the same process (is the batch compute-bound?).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", type=int, default=64)
    ap.add_argument("--new", type=int, default=48)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--profile", action="store_true", help="profile one batch of --prompts rows instead")
    a = ap.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srlkit.assets import smollm2_dir
    from srlkit.data.templates import Templates, rlvr_prompt
    from srlkit.rollout import decode
    from srlkit.train.data import encode_prompt

    if a.threads:
        torch.set_num_threads(a.threads)
    path = smollm2_dir()
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    questions = [f"What is {i} + {i * 7 % 13} - {i * 3 % 11} + {i % 9}?" for i in range(2 * a.prompts)]
    prompts = [encode_prompt(tok, rlvr_prompt(q, templates=Templates())) for q in questions]

    def run(ps, rows: int, share: bool):
        t, out = time.perf_counter(), []
        for i in range(0, len(ps), rows):
            out += decode.decode_groups(model, ps[i:i + rows], 1, max_new_tokens=a.new, temperature=0.0, top_k=0,
                                        top_p=1.0, pad_id=tok.pad_token_id, stop_ids={tok.eos_token_id},
                                        device="cpu", share_prefix=share)
        return time.perf_counter() - t, [o[0] for o in out]

    head = prompts[: a.prompts]
    if a.profile:
        return profile(lambda: run(head, len(head), True), len(head), a.new)
    print(json.dumps({"prompts": a.prompts, "prompt_tokens": len(head[0]), "shared_head": decode.common_prefix(head),
                      "threads": torch.get_num_threads()}), flush=True)
    times: dict[str, list[float]] = {}
    outs: dict[str, list] = {}
    variants = {"head off (64 rows)": (head, 64, False), "head shared (64 rows)": (head, 64, True),
                "2x prompts, 32 rows": (prompts, 32, True), "2x prompts, 64 rows": (prompts, 64, True),
                "2x prompts, 128 rows": (prompts, 128, True)}
    for r in range(a.repeat):
        for name, (ps, rows, share) in variants.items():
            s, out = run(ps, rows, share)
            times.setdefault(name, []).append(s)
            outs.setdefault(name, out)
            print(json.dumps({"repeat": r, "variant": name, "s": round(s, 2),
                              "load_1m": round(os.getloadavg()[0], 2)}), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    same_head = sum(x == y for x, y in zip(outs["head off (64 rows)"], outs["head shared (64 rows)"]))
    same_rows = all(outs[k] == outs["2x prompts, 64 rows"] for k in variants if k.startswith("2x"))
    print(json.dumps({"median_s": {k: round(v, 2) for k, v in med.items()},
                      "shared head speed-up": round(med["head off (64 rows)"] / med["head shared (64 rows)"], 2),
                      "128 vs 64 rows speed-up": round(med["2x prompts, 64 rows"] / med["2x prompts, 128 rows"], 2),
                      "greedy identical (head)": f"{same_head}/{len(head)}",
                      "greedy identical across row counts": same_rows}))
    return 0


def profile(call, rows: int, new: int) -> int:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from grpo_vs_trl import matmul_peak  # the same peak the update's efficiency is measured against

    call()  # warm-up
    t = time.perf_counter()
    with torch_profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        call()
    wall = time.perf_counter() - t
    ops = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in ops) / 1e6
    print(ops.table(sort_by="self_cpu_time_total", row_limit=12))
    mm = [e for e in ops if e.key in ("aten::mm", "aten::addmm", "aten::bmm")]
    mm_s = sum(e.self_cpu_time_total for e in mm) / 1e6
    mm_flops = sum(e.flops for e in mm)
    peak = matmul_peak()
    print(json.dumps({"rows": rows, "new_tokens": new, "wall_s": round(wall, 2), "tokens_per_s": round(rows * new / wall, 1),
                      "matmul_share_of_cpu_time": round(mm_s / total, 3),
                      "matmul_gflops": round(mm_flops / mm_s / 1e9, 1), "matmul_peak_gflops": round(peak / 1e9, 1),
                      "matmul_vs_peak": round(mm_flops / mm_s / peak, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
