"""Benchmark `srlkit decompose` against a plain `datasets.map` + regex reference and the I/O bound.

    python benchmarks/decompose.py            # 100k synthetic R1-style trajectories
    python benchmarks/decompose.py --n 5000   # CI-size run
    python benchmarks/decompose.py --n 1000000 --only srlkit   # peak RSS at 1M (the memory target)

One run measures, on the same synthetic JSONL corpus (numbered solutions with bold titles):
  1. srlkit decompose (streaming, shards, rejects, manifest, card);
  2. the reference: datasets.load_dataset("json") + .map with Python regex splitting into one
     row per step with a rendered prompt, then .to_parquet (how SRL preprocessing scripts do it);
  3. the I/O bound: polars read_ndjson of the input plus a write of exactly the tables decompose
     wrote (read back first, untimed) with the same parquet settings, i.e. the same output bytes.
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
    """Read the input with polars, then write exactly the tables decompose wrote, same settings.

    The output tables are read back from the srlkit stage's folder first; that read-back is
    timed separately and left out of the bound (decompose never reads its output).
    """
    import polars as pl

    from srlkit.data.shards import write_parquet

    done = Path(out).parent / "srlkit"
    files = sorted(p for p in done.rglob("*.parquet"))
    t0, c0 = time.perf_counter(), _cpu()
    tables = [(p.relative_to(done), pl.read_parquet(p)) for p in files]
    skip = {"seconds": time.perf_counter() - t0, "cpu_seconds": _cpu() - c0}
    df = pl.read_ndjson(src)  # the input, as decompose reads it (all columns)
    out_rows = 0
    for rel, t in tables:
        write_parquet(t, Path(out) / rel)  # the same zstd level, row groups and statistics
        out_rows += t.height
    return {"rows": df.height, "out_rows": out_rows, "out_mb": sum(p.stat().st_size for p in files) / 1e6,
            "_exclude": skip}


def stage_parts(src: str, out: str) -> dict:
    """The parts of decompose that no polars kernel does, timed one by one (CPU seconds): importing
    srlkit beyond what the I/O bound imports (polars, the shard writer), `json.loads` of every input
    line (the row reader: Python dicts are what presets and rejects work on), sha256 of every target
    step (`target_hash`, the join key with embeddings) and the card with its matplotlib histogram.
    Measured on srlkit's own output (read back untimed)."""
    import shutil

    import polars as pl  # the I/O bound imports these too: not counted

    import srlkit.data.shards

    res: dict[str, float] = {}
    c0 = _cpu()
    import srlkit.data.card
    import srlkit.data.decompose

    res["import"] = _cpu() - c0

    done = Path(out).parent / "srlkit"
    targets = pl.concat([pl.read_parquet(p, columns=["target"]) for p in sorted((done / "srl").glob("*.parquet"))])
    targets = targets.get_column("target").to_list()
    c0 = _cpu()
    with open(src, "rb") as fh:
        for line in fh:
            json.loads(line)
    res["json"] = _cpu() - c0
    c0 = _cpu()
    from srlkit.schema import step_hash

    for t in targets:
        step_hash(t)
    res["sha256"] = _cpu() - c0
    card_dir = Path(out) / "card"
    shutil.copytree(done, card_dir)
    c0 = _cpu()
    srlkit.data.card.write_card(card_dir)
    res["card"] = _cpu() - c0
    return {"parts_cpu_s": {k: round(v, 2) for k, v in res.items()}, "_exclude": {"seconds": 0.0, "cpu_seconds": 0.0}}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _child(stage: str, src: str, out: str) -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ["HF_DATASETS_CACHE"] = os.path.join(out, "_hf_cache")
    t0, c0 = time.perf_counter(), _cpu()
    info = {"srlkit": stage_srlkit, "reference": stage_reference, "io": stage_io, "parts": stage_parts}[stage](src, out)
    skip = info.pop("_exclude", {"seconds": 0.0, "cpu_seconds": 0.0})
    info["seconds"] = time.perf_counter() - t0 - skip["seconds"]  # excludes interpreter start
    info["cpu_seconds"] = _cpu() - c0 - skip["cpu_seconds"]  # on a shared machine, CPU time is fairer
    info["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(info))


def run_stage(stage: str, src: Path, work: Path) -> dict:
    out = work / stage
    out.mkdir(parents=True, exist_ok=True)
    res = subprocess.run([sys.executable, __file__, "--_stage", stage, "--_src", str(src), "--_out", str(out)],
                         capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise SystemExit(f"{stage} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="trajectories in the synthetic corpus")
    ap.add_argument("--skip-reference", action="store_true", help="skip the slow datasets.map reference")
    ap.add_argument("--parts", action="store_true",
                    help="also time what decompose cannot avoid (imports, JSON decoding, sha256 of the targets, "
                         "the card) against the I/O bound")
    ap.add_argument("--only", choices=["srlkit", "io", "reference"], action="append",
                    help="run only these stages (e.g. `--n 1000000 --only srlkit` for the RSS target); "
                         "io needs srlkit's output, so it implies srlkit")
    ap.add_argument("--corpus", type=Path, help="reuse (or create) the corpus at this path")
    ap.add_argument("--_stage"), ap.add_argument("--_src"), ap.add_argument("--_out")
    a = ap.parse_args()
    if a._stage:
        return _child(a._stage, a._src, a._out)
    stages = set(a.only or ["srlkit", "io"] + ([] if a.skip_reference else ["reference"]))
    if a.parts:
        stages |= {"parts", "io"}
    if "io" in stages:
        stages.add("srlkit")
    with tempfile.TemporaryDirectory(prefix="srlkit-bench-") as tmp:
        work = Path(tmp)
        src = a.corpus or work / "corpus.jsonl"
        if not src.is_file():
            make_corpus(src, a.n)
        size = src.stat().st_size
        print(f"corpus: {a.n} trajectories, {size / 1e6:.1f} MB JSONL")
        results = {}
        for stage in ("srlkit", "io", "parts", "reference"):  # io and parts read srlkit's output: srlkit first
            if stage in stages:
                results[stage] = run_stage(stage, src, work)
        parts = results.pop("parts", None)
        for name, r in results.items():
            rows = {k: v for k, v in r.items() if k.endswith("rows") or k == "out_mb"}
            print(f"{name:>10}: {r['seconds']:8.2f} s wall {r['cpu_seconds']:8.2f} s CPU  "
                  f"{a.n / r['seconds']:8.0f} traj/s  peak RSS {r['peak_rss_mb']:7.0f} MB  {json.dumps(rows)}")
        if "srlkit" not in results:
            return
        for key, label in (("seconds", "wall"), ("cpu_seconds", "CPU")):
            s = results["srlkit"][key]
            if "io" in results:
                print(f"[{label}] srlkit / I/O bound: {s / results['io'][key]:.2f}x (target <= 2x)")
            if "reference" in results:
                print(f"[{label}] srlkit speed-up over reference: {results['reference'][key] / s:.2f}x (target >= 10x)")
        if parts and "io" in results:
            p, io = parts["parts_cpu_s"], results["io"]["cpu_seconds"]
            fixed = sum(p.values())
            print(f"parts without a polars kernel, CPU s: {json.dumps(p)}; sum {fixed:.2f} s = {fixed / io:.2f}x the "
                  f"I/O bound's CPU: bound + these = {(io + fixed) / io:.2f}x, before any segmentation or expansion")


if __name__ == "__main__":
    main()
