"""HFEngine throughput against plain per-prompt `generate(output_logits=True)`, same process.

    python benchmarks/rollout_hf.py [--model DIR] [--prompts 4] [--g 4] [--new 32] [--batch 16]

Both produce G samples per prompt with per-token logprobs. The reference is what a naive
trainer does: one `generate(num_return_sequences=G, output_logits=True)` per prompt, then a
log-softmax over every stored step. Prints seconds, completion tokens/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def reference(model, tok, prompts, g, new, seed):
    import torch

    torch.manual_seed(seed)
    tokens = 0
    for p in prompts:
        ids = torch.tensor([p])
        with torch.no_grad():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                 top_k=0, top_p=1.0, max_new_tokens=new, num_return_sequences=g,
                                 output_logits=True, return_dict_in_generate=True,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
        comp = out.sequences[:, len(p):]
        logits = torch.stack(out.logits, dim=1).float().log_softmax(-1)
        _ = logits.gather(-1, comp[:, :, None])
        tokens += int((comp != tok.pad_token_id).sum())
    return tokens


def main() -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srlkit.assets import smollm2_dir
    from srlkit.rollout import SamplingParams
    from srlkit.rollout.hf import HFEngine

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--g", type=int, default=4)
    ap.add_argument("--new", type=int, default=32)
    ap.add_argument("--batch", type=int, default=16)
    a = ap.parse_args()
    path = a.model or str(smollm2_dir())
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    questions = [f"Compute {i} + {2 * i} and explain each step." for i in range(1, a.prompts + 1)]
    prompts = []
    for q in questions:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    eng = HFEngine(model, tok, batch_size=a.batch)
    sp = SamplingParams(n=a.g, temperature=1.0, max_new_tokens=a.new, seed=0)
    eng.generate(prompts[:1], SamplingParams(n=1, max_new_tokens=2, seed=0))  # warm-up
    t0 = time.perf_counter()
    groups = eng.generate(prompts, sp)
    t_eng = time.perf_counter() - t0
    tok_eng = sum(len(s.token_ids) for g in groups for s in g)
    t0 = time.perf_counter()
    tok_ref = reference(model, tok, prompts, a.g, a.new, 0)
    t_ref = time.perf_counter() - t0
    print(json.dumps({
        "model": os.path.basename(path.rstrip("/")), "prompts": a.prompts, "G": a.g, "max_new_tokens": a.new,
        "batch_rows": a.batch, "threads": torch.get_num_threads(),
        "hf_engine_s": round(t_eng, 2), "hf_engine_tok_per_s": round(tok_eng / t_eng, 1),
        "reference_s": round(t_ref, 2), "reference_tok_per_s": round(tok_ref / t_ref, 1),
        "time_ratio_engine_over_reference": round(t_eng / t_ref, 3),
    }))


if __name__ == "__main__":
    main()
