"""`srlkit eval` greedy speed: this tree against an earlier commit, whole commands, same run.

    python benchmarks/eval_speed.py [--n 300] [--max-new-tokens 128] [--before-rev 9ce0edf] [--repeat 1]

The bench is `--n` reasoning-gym gsm_symbolic problems (seed 1) written to a jsonl; each
side runs `python -m srlkit eval base --bench FILE --k 0 --max-new-tokens N` in its own
process (the bundled SmolLM2-135M-Instruct, greedy only), alternating before/after
`--repeat` times. The "before" side is the package as of `--before-rev`, unpacked with
`git archive` into a temporary folder (the working tree and git state are untouched).
Prints wall seconds, CPU seconds and peak RSS per run, medians, the speedup, and how many
greedy completions the two sides agree on token for token.
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


def make_bench(path: Path, n: int) -> None:
    import reasoning_gym

    with path.open("w", encoding="utf-8") as fh:
        for i, item in enumerate(reasoning_gym.create_dataset("gsm_symbolic", size=n, seed=1)):
            fh.write(json.dumps({"id": f"g{i}", "question": item["question"], "answer": item["answer"]}) + "\n")


def unpack(rev: str, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "srlkit"], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_side(pythonpath: Path, bench: Path, out: Path, max_new: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath), HF_HUB_OFFLINE="1")
    cmd = [sys.executable, "-m", "srlkit", "eval", "base", "--bench", str(bench), "--k", "0",
           "--max-new-tokens", str(max_new), "--out", str(out), "--bootstrap", "100"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(pythonpath))
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{cmd} failed:\n{err[-2000:]}")
    return {"wall_s": round(wall, 1), "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
            "peak_rss_mb": round(ru.ru_maxrss / 1024)}


def greedy_texts(out: Path) -> list[str]:
    side = out.with_name(out.stem + ".samples.jsonl")
    return [json.loads(line)["greedy"] for line in side.read_text(encoding="utf-8").splitlines()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--before-rev", default="9ce0edf")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", choices=["before", "after"], default=None)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="srlkit-evalbench-"))
    bench = tmp / "gsm.jsonl"
    make_bench(bench, a.n)
    sides = {"before": unpack(a.before_rev, tmp / "before"), "after": ROOT}
    if a.only:
        sides = {a.only: sides[a.only]}
    runs: dict[str, list[dict]] = {k: [] for k in sides}
    for r in range(a.repeat):
        for name, path in sides.items():
            res = run_side(path, bench, tmp / f"{name}.json", a.max_new_tokens)
            res["load_avg_1m"] = round(os.getloadavg()[0], 2)
            runs[name].append(res)
            print(json.dumps({"run": r, "side": name, **res}), flush=True)
    summary = {"n": a.n, "max_new_tokens": a.max_new_tokens, "before_rev": a.before_rev, "runs": runs}
    for name, rs in runs.items():
        summary[f"{name}_median_wall_s"] = statistics.median(x["wall_s"] for x in rs)
    if len(sides) == 2:
        summary["speedup_wall"] = round(summary["before_median_wall_s"] / summary["after_median_wall_s"], 2)
        b, f = greedy_texts(tmp / "before.json"), greedy_texts(tmp / "after.json")
        summary["greedy_identical"] = f"{sum(x == y for x, y in zip(b, f))}/{len(b)}"
        acc = [json.loads((tmp / f"{s}.json").read_text())["results"]["base"]["gsm"]["greedy_acc"] for s in sides]
        summary["greedy_acc_before_after"] = acc
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
