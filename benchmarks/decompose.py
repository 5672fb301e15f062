"""Benchmark `srlkit decompose` against a plain `datasets.map` + regex reference and the I/O bound.

    python benchmarks/decompose.py            # 100k synthetic R1-style trajectories
    python benchmarks/decompose.py --n 5000   # CI-size run

One run measures, on the same synthetic JSONL corpus (numbered solutions with bold titles):
  1. srlkit decompose (streaming, shards, rejects, manifest, card);
  2. the reference: datasets.load_dataset("json") + .map with Python regex splitting into one
     row per step with a rendered prompt, then .to_parquet (how SRL preprocessing scripts do it);
  3. the I/O bound: polars read_ndjson + write_parquet of the same bytes.
Each runs in its own subprocess so its peak RSS is its own. Ratios are printed; no thresholds.
Targets from the issue: >= 10x the reference, <= 2x the I/O bound, <= 2 GB RSS at 1M.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERBS = ["Compute", "Substitute", "Simplify", "Factor", "Expand", "Solve for x in", "Check", "Combine"]


def make_corpus(path: Path, n: int, seed: int = 0) -> int:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            k = rng.randint(3, 9)
            steps = []
            for s in range(1, k + 1):
                a, b = rng.randint(2, 999), rng.randint(2, 999)
                body = (f"We have {a} x + {b} = {a * b}, so subtracting {b} from both sides gives "
                        f"{a} x = {a * b - b} and therefore x = {(a * b - b) / a:.4f}. " * rng.randint(1, 2)).strip()
                steps.append(f"{s}. **{rng.choice(VERBS)} the expression** {body}")
            ans = rng.randint(1, 10_000)
            sol = "SOLUTION:\n" + "\n".join(steps) + f"\nThus the answer is \\boxed{{{ans}}}."
            prob = f"Problem {i}: let f(x) = {rng.randint(2, 99)}x^2 + {rng.randint(2, 99)}. " * 2
            f.write(json.dumps({"id": f"r1-{i}", "problem": prob.strip(), "solution": sol, "answer": str(ans)}) + "\n")
    return path.stat().st_size


# ----------------------------------------------------------------------------- stages (subprocesses)


def stage_srlkit(src: str, out: str) -> dict:
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    m = decompose(DecomposeConfig(source=src, val_size=0.1), Path(out), show_progress=False)
    return {"srl_rows": sum(m["files"][f]["rows"] for s in m["splits"]["srl"].values() for f in s)}


STEP = re.compile(r"\n(?=\d+\.\s)")


def stage_reference(src: str, out: str) -> dict:
    import datasets

    from srlkit.data.templates import rlvr_prompt, srl_prompt

    ds = datasets.load_dataset("json", data_files=src, split="train")

    def split(batch):
        cols = {k: [] for k in ("id", "problem", "context_steps", "target", "prompt", "answer")}
        for pid, prob, sol, ans in zip(batch["id"], batch["problem"], batch["solution"], batch["answer"]):
            body = sol.split("SOLUTION:", 1)[-1].strip()
            steps = [re.sub(r"^\d+\.\s*", "", s).strip() for s in STEP.split(body) if s.strip()]
            for k, step in enumerate(steps):
                cols["id"].append(f"{pid}/{k}")
                cols["problem"].append(prob)
                cols["context_steps"].append(steps[:k])
                cols["target"].append(step)
                cols["prompt"].append(srl_prompt(prob, steps[:k], k + 1))
                cols["answer"].append(ans)
        return cols

    srl = ds.map(split, batched=True, remove_columns=ds.column_names)
    rl = ds.map(lambda r: {"prompt": rlvr_prompt(r["problem"])}, remove_columns=["solution"])
    srl.to_parquet(os.path.join(out, "srl.parquet"))
    rl.to_parquet(os.path.join(out, "rlvr.parquet"))
    return {"srl_rows": srl.num_rows}


def stage_io(src: str, out: str) -> dict:
    import polars as pl

    df = pl.read_ndjson(src)
    df.write_parquet(os.path.join(out, "io.parquet"), compression="zstd", compression_level=3)
    return {"rows": df.height}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(stage: str, src: str, out: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(out, "_hf_cache")
    t0, c0 = time.perf_counter(), _cpu()
    info = {"srlkit": stage_srlkit, "reference": stage_reference, "io": stage_io}[stage](src, out)
    info["seconds"] = time.perf_counter() - t0  # excludes interpreter start and imports before the stage
    info["cpu_seconds"] = _cpu() - c0  # on a shared machine, CPU time is the fairer comparison
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(info))


def run_stage(stage: str, src: Path, work: Path) -> dict:
    out = work / stage
    out.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, __file__, "--_stage", stage, "--_src", str(src), "--_out", str(out)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="trajectories in the synthetic corpus")
    ap.add_argument("--skip-reference", action="store_true", help="skip the slow datasets.map reference")
    ap.add_argument("--_stage"), ap.add_argument("--_src"), ap.add_argument("--_out")
    a = ap.parse_args()
    if a._stage:
        return _child(a._stage, a._src, a._out)
    with tempfile.TemporaryDirectory(prefix="srlkit-bench-") as tmp:
        work = Path(tmp)
        src = work / "corpus.jsonl"
        size = make_corpus(src, a.n)
        print(f"corpus: {a.n} trajectories, {size / 1e6:.1f} MB JSONL")
        results = {"io": run_stage("io", src, work), "srlkit": run_stage("srlkit", src, work)}
        if not a.skip_reference:
            results["reference"] = run_stage("reference", src, work)
        for name, r in results.items():
            print(f"{name:>10}: {r['seconds']:8.2f} s wall {r['cpu_seconds']:8.2f} s CPU  "
                  f"{a.n / r['seconds']:8.0f} traj/s  "
                  f"peak RSS {r['peak_rss_mb']:7.0f} MB  {json.dumps({k: v for k, v in r.items() if k.endswith('rows')})}")
        for key, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
            s = results["srlkit"][key]
            print(f"[{label}] srlkit / I/O bound: {s / results['io'][key]:.2f}x (target <= 2x)")
            if "reference" in results:
                print(f"[{label}] srlkit speed-up over reference: {results['reference'][key] / s:.2f}x (target >= 10x)")


if __name__ == "__main__":
    main()
