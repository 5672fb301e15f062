"""The learner's update forward+backward per layout: plain rows against packed prompts, per kernel.

    python benchmarks/packing.py                                   # CPU: SmolLM2 + LoRA, sdpa packing
    python benchmarks/packing.py --model random:qwen2.5-0.5b --tokenizer TOK --kinds sdpa,flex_attention \
        --rows 64 --shapes 8:256:128,8:64:256,4:512:64          # CUDA (bf16, checkpointing "auto": on)

One micro-batch of `--rows` rows per shape G:P:L (rows / G prompts of P tokens, each with G
completions of up to L tokens; random token ids), run through the learner's own forward
(`srlkit.train.forward.completion_logprobs`) and backward, in each layout: `plain` (one row per
completion) and packed with each kernel of `--kinds`. Layouts alternate in order repeat by
repeat (the machine may be shared), and the medians are printed with the load average.

Then the cost rule of `srlkit/train/pack_policy.py` is fitted: time = a * matmul FLOPs +
b_kernel * attention FLOPs over all runs (least squares), and W_kernel = b_kernel / a is what
`pack_policy.MEASURED_W` holds for this device. Each shape's measured winner is printed beside
the rule's choice with the fitted W. Output: one JSON line per shape, then a `FIT` line.
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
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def batch_for(G: int, P: int, L: int, rows: int, seed: int = 0):
    """rows / G prompts of P tokens (the k-th a few shorter), G completions each of L down to ~0.8 L."""
    import torch

    from srlkit.train.batch import collate

    g = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(100, 20000, (max(1, P - 3 * u),), generator=g).tolist() for u in range(rows // G)]
    comps = [torch.randint(100, 20000, (max(1, L - (r % 5) * L // 20),), generator=g).tolist() for r in range(rows)]
    return collate([prompts[r // G] for r in range(rows)], comps, [0.1 * (r % 3 - 1) for r in range(rows)], pad_id=0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model folder, or random:qwen2.5-0.5b (default: the bundled SmolLM2)")
    ap.add_argument("--tokenizer", default=None, help="for random: models (default: the bundled SmolLM2's)")
    ap.add_argument("--shapes", default="4:250:64,8:256:64,2:300:48,4:128:128,8:64:256,8:32:320",
                    help="G:P:L, comma-separated")
    ap.add_argument("--rows", type=int, default=8, help="rows per micro-batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--kinds", default="sdpa", help="packed kernels to time beside plain: sdpa, eager, flex_attention")
    ap.add_argument("--full", action="store_true", help="full fine-tuning (default: LoRA r=8 all-linear)")
    ap.add_argument("--gradient-checkpointing", default="auto", choices=["auto", "true", "false"])
    ap.add_argument("--out", default=None, help="append the JSON lines to this file")
    ap.add_argument("--fit", default=None, help="only fit W to the shape lines of this file (earlier --out runs)")
    a = ap.parse_args()
    if a.fit:
        return refit(a.fit)

    import torch

    from gpu_throughput import materialise
    from srlkit.assets import smollm2_dir
    from srlkit.config import LoraConfig, LossConfig, ModelConfig
    from srlkit.train import forward, pack_policy, packing
    from srlkit.train.learner import Learner
    from srlkit.train.memory import Shape
    from srlkit.train.model import load_policy

    packing.MIN_SAVED = -1.0  # time every shape packed, even where the plan would not pack it
    work = Path(os.environ.get("TMPDIR", "/tmp")) / "srlkit-bench"
    path = materialise(a.model, a.tokenizer, work) if a.model else str(smollm2_dir())
    ckpt = {"auto": "auto", "true": True, "false": False}[a.gradient_checkpointing]
    torch.manual_seed(0)
    policy = load_policy(ModelConfig(name_or_path=path, gradient_checkpointing=ckpt, pack_prompts=False,
                                     lora=LoraConfig(enabled=not a.full, r=8, alpha=16)))
    learner = Learner(policy, LossConfig())
    unwrapped = learner.acc.unwrap_model(learner.model)
    own = packing.attention_kind(unwrapped)
    dev = learner.device.type
    shape = Shape.from_config(unwrapped.get_base_model().config if not a.full else unwrapped.config)
    layouts = {"plain": None} | {k: pack_policy.Packer(kind=k, own=own, mode="always", device=dev, shape=shape)
                                 for k in a.kinds.split(",")}

    def step(mb, packer) -> float:
        _sync()
        t = time.perf_counter()
        with learner.acc.autocast():
            lp, _ = forward.completion_logprobs(learner.model, unwrapped, mb, packer)
        (lp * mb.completion_mask).sum().backward()
        _sync()
        dt = time.perf_counter() - t
        learner.model.zero_grad(set_to_none=True)
        packing.set_attention(unwrapped, own)
        return dt

    load0 = os.getloadavg()
    runs = []  # (layout, matmul flops, attention flops, seconds)
    for spec in a.shapes.split(","):
        G, P, L = (int(x) for x in spec.split(":"))
        mb = batch_for(G, P, L, a.rows).to(learner.device)
        Lc, Pc = mb.completion_mask.shape[1], mb.prompt_len
        plan = packing.plan(mb.input_ids, mb.attention_mask, Pc)
        times: dict[str, list[float]] = {k: [] for k in layouts}
        for k, packer in layouts.items():  # warm-up (compiles flex on CUDA)
            step(mb, packer)
        for r in range(a.repeats):
            for k in (list(layouts) if r % 2 == 0 else list(layouts)[::-1]):
                times[k].append(step(mb, layouts[k]))
        row = {"shape": spec, "rows": a.rows, "device": dev, "model": a.model or "smollm2", "load": os.getloadavg()[0]}
        for k, ts in times.items():
            rows, kk, kind = (mb.rows, 1, own) if k == "plain" else (len(plan.first_row), plan.slots, k)
            tok = rows * (Pc + kk * Lc) * 2.0 * shape.layer_params() * shape.layers
            att = pack_policy.scores(rows, Pc, Lc, kk, kind) * 4.0 * shape.hidden * shape.layers
            row[k] = {"median_s": round(statistics.median(ts), 4), "all_s": [round(x, 3) for x in ts],
                      "tokens": rows * (Pc + kk * Lc), "kernel": kind, "matmul_flops": tok, "attention_flops": att}
            runs.append((kind, tok, att, statistics.median(ts), spec, k))
        row["fastest"] = min(times, key=lambda k: statistics.median(times[k]))
        print(json.dumps(row), flush=True)
        if a.out:
            with open(a.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
    report_fit(runs, dev, load0, a.out)


def report_fit(runs: list, dev: str, load0: tuple, out: str | None) -> None:
    """Print the fitted W per kernel, and per shape the measured winner beside the rule's choice
    with the fitted W (packed when its predicted cost is under 1 - MARGIN of plain's)."""
    from srlkit.train import pack_policy

    fit = fit_w(runs)
    shapes: dict[str, dict] = {}
    for kind, tok, att, t, spec, layout in runs:
        shapes.setdefault(spec, {})[layout] = (kind, tok, att, t)
    decisions = {}
    for spec, lay in shapes.items():
        plain = lay.pop("plain")
        cost = lambda r: r[1] + fit.get(f"W_{r[0]}", 0.0) * r[2]  # noqa: E731
        decisions[spec] = {k: {"measured_faster": r[3] < plain[3],
                               "rule_packs": cost(r) <= (1 - pack_policy.MARGIN) * cost(plain)} for k, r in lay.items()}
    line = {"fit": fit, "decisions": decisions, "device": dev, "load_start": load0, "load_end": os.getloadavg(),
            "current_rule": {f"{d}/{k}": w for (d, k), w in pack_policy.MEASURED_W.items()}}
    print("FIT " + json.dumps(line), flush=True)
    if out:
        with open(out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def refit(path: str) -> None:
    """The fit of every shape line in a JSON-lines file of earlier runs (`--fit FILE`)."""
    runs, dev = [], "cpu"
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        if "shape" not in row:
            continue
        dev = row["device"]
        for k, v in row.items():
            if isinstance(v, dict) and "matmul_flops" in v:
                runs.append((v["kernel"], v["matmul_flops"], v["attention_flops"], v["median_s"], row["shape"], k))
    report_fit(runs, dev, os.getloadavg(), None)


def fit_w(runs: list[tuple[str, float, float, float]]) -> dict:
    """Least squares of seconds = c + a * matmul FLOPs + b_kind * attention FLOPs; W_kind = b_kind / a.

    The constant c is the per-op overhead both layouts pay alike (they run the same kernels)."""
    import torch

    kinds = sorted({k for k, *_ in runs})
    X = torch.zeros(len(runs), 2 + len(kinds), dtype=torch.float64)
    y = torch.tensor([r[3] for r in runs], dtype=torch.float64)
    for i, (k, tok, att, *_) in enumerate(runs):
        X[i, 0], X[i, 1] = 1.0, tok
        X[i, 2 + kinds.index(k)] = att
    scale = X.abs().max(0).values.clamp(min=1.0)
    coef = torch.linalg.lstsq(X / scale, y[:, None]).solution[:, 0] / scale
    a = float(coef[1])
    return {"overhead_s": round(float(coef[0]), 4), "s_per_matmul_gflop": round(a * 1e9, 5),
            **{f"W_{k}": round(float(coef[2 + i]) / a, 2) for i, k in enumerate(kinds)}}


if __name__ == "__main__":
    main()
