"""HF rollout throughput, one change at a time, against the engine of an earlier commit, same process.

    python benchmarks/rollout_hf.py [--prompts 4] [--g 8] [--new 64] [--repeat 3] [--before-rev 9ce0edf]

The policy is the bundled SmolLM2-135M-Instruct (fp32) with a LoRA adapter (r=8, alpha=16,
all-linear, lora_B perturbed so the adapter matters), the trainer's shape. Prompts are real
SRL prompts (CHAMP problem + expert steps so far, the chat template applied). Variants, each
generating `--prompts` x G samples at T=1 with logprobs, interleaved `--repeat` times:

- `before`: `HFEngine` as of `--before-rev` (transformers `generate`, LoRA wrapper, a logits
  processor for logprobs), loaded from that commit with `git show`;
- `loop`: this tree's decode loop with every speed-up off (unmerged LoRA, a prefill per
  sample, transformers' `DynamicCache`);
- `+slab`: the preallocated KV cache;
- `+merged`: generation with merged LoRA weights;
- `+prefill`: the group's samples share one prefill (everything on: what training runs).

Prints completion tokens/s per variant (median over repeats) and the ratios to `before`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]


def old_engine_class(rev: str):
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:srlkit/rollout/hf.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="srlkit-oldhf-")) / "old_hf.py"
    path.write_text(src, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("old_hf", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.HFEngine


def srl_prompts(tok, n: int) -> list[list[int]]:
    from srlkit.data.templates import srl_prompt
    from srlkit.eval.benches import champ_problems
    from srlkit.train.data import encode_prompt

    out = []
    for row in champ_problems()[:n]:
        steps = [s.strip() for s in row.problem.split(".") if s.strip()][:2]  # stand-in context
        out.append(encode_prompt(tok, srl_prompt(row.problem, steps, len(steps) + 1)))
    return out


def lora_policy(path: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    policy = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear"))
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in policy.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.01)
    return policy


def main() -> None:
    import torch
    from transformers import AutoTokenizer

    from srlkit.assets import smollm2_dir
    from srlkit.rollout import SamplingParams
    from srlkit.rollout.hf import HFEngine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--g", type=int, default=8)
    ap.add_argument("--new", type=int, default=64)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--before-rev", default="9ce0edf")
    ap.add_argument("--variants", default="before,loop,+slab,+merged,+prefill,+prefix")
    a = ap.parse_args()
    path = a.model or str(smollm2_dir())
    tok = AutoTokenizer.from_pretrained(path)
    policy = lora_policy(path)
    prompts = srl_prompts(tok, a.prompts)
    flags = {  # (slab, merged, shared prefill per group, shared prompt head across prompts)
        "loop": (False, False, False, False), "+slab": (True, False, False, False),
        "+merged": (True, True, False, False), "+prefill": (True, True, True, False),
        "+prefix": (True, True, True, True),
    }
    engines = {}
    for name in a.variants.split(","):
        if name == "before":
            engines[name] = old_engine_class(a.before_rev)(policy, tok, batch_size=a.batch)
        else:
            eng = HFEngine(policy, tok, batch_size=a.batch)
            eng.slab_cache, eng.merge_lora, eng.share_prefill, eng.share_prefix = flags[name]
            engines[name] = eng
    times: dict[str, list[float]] = {k: [] for k in engines}
    tokens: dict[str, list[int]] = {k: [] for k in engines}
    sp = SamplingParams(n=a.g, temperature=1.0, max_new_tokens=a.new, seed=0)
    for eng in engines.values():  # warm-up
        eng.generate(prompts[:1], SamplingParams(n=2, max_new_tokens=2, seed=0))
    for r in range(a.repeat):
        for name, eng in engines.items():
            t0 = time.perf_counter()
            groups = eng.generate(prompts, sp)
            times[name].append(time.perf_counter() - t0)
            tokens[name].append(sum(len(s.token_ids) for g in groups for s in g))
            print(json.dumps({"repeat": r, "variant": name, "s": round(times[name][-1], 2),
                              "tokens": tokens[name][-1], "load_1m": round(os.getloadavg()[0], 2)}), flush=True)
    res = {"model": os.path.basename(path.rstrip("/")), "prompts": a.prompts, "G": a.g, "max_new_tokens": a.new,
           "prompt_tokens": [len(p) for p in prompts], "threads": torch.get_num_threads(), "variants": {}}
    base = None
    for name in engines:
        med_s = statistics.median(times[name])
        tps = statistics.median(t / s for t, s in zip(tokens[name], times[name]))
        base = base or tps
        res["variants"][name] = {"median_s": round(med_s, 2), "tok_per_s": round(tps, 1),
                                 "vs_first": round(tps / base, 2)}
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
