"""Reward throughput: step similarity (fast path vs plain difflib), math reward, adversarial worst case.

    python benchmarks/rewards.py [--pairs 10000] [--math 2000] [--timeout 5] [--only similarity]

Step pairs are real: CHAMP expert steps as targets, and per target G = 8 rollout-like
actions (edited copies, truncations, other steps of CHAMP), the layout the trainer
scores in. Plain difflib runs over the same pairs in the same run, and the values must be
identical. Math completions are GSM-style problems from reasoning-gym with right and
wrong boxed answers, 8 per problem.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

from srlkit.assets import champ_path
from srlkit.rewards import make_reward
from srlkit.rewards.similarity import StepSimilarity, batch_ratios

G = 8


def champ_steps() -> list[str]:
    probs = json.loads(champ_path().read_text(encoding="utf-8"))["problems"]
    return [s["_text"] for p in probs.values() for s in p["solution"]["steps"]]


def rollout_like(target: str, steps: list[str], rng: random.Random) -> str:
    words = target.split()
    kind = rng.randrange(4)
    if kind == 0 and words:  # an edited copy: a few words replaced or dropped
        for _ in range(max(1, len(words) // 6)):
            words[rng.randrange(len(words))] = rng.choice(["x", "the", "=", "2", "so"])
        return " ".join(words)
    if kind == 1:  # a prefix, then drifting into another step
        return target[: rng.randrange(len(target) + 1)] + " " + rng.choice(steps)[:80]
    if kind == 2:  # an unrelated step
        return rng.choice(steps)
    return target  # an exact copy (late training)


def make_pairs(n: int, steps: list[str], rng: random.Random, long: bool) -> list[tuple[str, str]]:
    pairs = []
    while len(pairs) < n:
        target = rng.choice(steps)
        if long:  # s1K-like steps: several CHAMP steps joined, 300-900 characters
            while len(target) < rng.randrange(300, 900):
                target += " " + rng.choice(steps)
        pairs += [(rollout_like(target, steps, rng), target) for _ in range(G)]
    return pairs[:n]


def _timed(fn, *args):
    """(result, wall seconds, this process's CPU seconds): CPU time resists load from other users."""
    w, c = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - w, time.process_time() - c


def bench_similarity(pairs: list[tuple[str, str]], autojunk: bool, rounds: int = 5) -> dict:
    """Plain difflib vs the fast path, interleaved in `rounds` slices so load swings hit both."""
    import difflib

    def plain(chunk):
        return [difflib.SequenceMatcher(None, a, b, autojunk=autojunk).ratio() for a, b in chunk]

    size = -(-len(pairs) // rounds)
    ref, fast = [], []
    t = {"ref_wall": 0.0, "ref_cpu": 0.0, "fast_wall": 0.0, "fast_cpu": 0.0}
    for i in range(0, len(pairs), size):
        chunk = pairs[i:i + size]
        r, w, c = _timed(plain, chunk)
        ref += r
        t["ref_wall"] += w
        t["ref_cpu"] += c
        f, w, c = _timed(lambda ch: batch_ratios(ch, autojunk=autojunk), chunk)
        fast += f
        t["fast_wall"] += w
        t["fast_cpu"] += c
    fn = StepSimilarity(-1.0, "action_target", autojunk, True, False, workers=2)
    comps = [f"<think>t</think>{a}" for a, _ in pairs]
    rows = [{"target": b} for _, b in pairs]
    fn(comps[:300], rows[:300])  # start the workers outside the timing
    pooled, t_pool, _ = _timed(fn, comps, rows)
    fn.close()
    # the reward scores the stripped action; compare with difflib on exactly that
    ref_scored = [difflib.SequenceMatcher(None, a.strip(), b, autojunk=autojunk).ratio() if a.strip() else -1.0
                  for a, b in pairs]
    return {
        "pairs": len(pairs), "autojunk": autojunk,
        "mean_chars": round(statistics.mean(len(a) + len(b) for a, b in pairs) / 2),
        "difflib_pairs_per_s": round(len(pairs) / t["ref_wall"]), "fast_pairs_per_s": round(len(pairs) / t["fast_wall"]),
        "speedup_wall": round(t["ref_wall"] / t["fast_wall"], 2), "speedup_cpu": round(t["ref_cpu"] / t["fast_cpu"], 2),
        "identical": [x.hex() for x in ref] == [x.hex() for x in fast],
        "pool2_pairs_per_s": round(len(pairs) / t_pool), "pool2_speedup_wall": round(t["ref_wall"] / t_pool, 2),
        "pool2_identical": pooled == ref_scored,
    }


def math_items(n: int, rng: random.Random) -> tuple[list[str], list[dict]]:
    import reasoning_gym

    data = list(reasoning_gym.create_dataset("gsm_symbolic", size=max(1, n // G), seed=0))
    comps, rows = [], []
    for item in data:
        gold = str(item["answer"])
        for _ in range(G):
            r = rng.random()
            ans = gold if r < 0.5 else (str(int(gold) + rng.randrange(1, 5)) if gold.lstrip("-").isdigit() else "0")
            comps.append(f"<think>compute</think>Working... so the total is \\boxed{{{ans}}}." if r < 0.9
                         else "I am not sure.")
            rows.append({"answer": gold})
    return comps[:n], rows[:n]


def bench_math(n: int, workers: int, timeout: float, rng: random.Random) -> dict:
    comps, rows = math_items(n, rng)
    fn = make_reward("math", workers=workers, timeout=timeout)
    try:
        t0 = time.perf_counter()
        fn(comps[:1], rows[:1])
        startup = time.perf_counter() - t0
        fn._cache.clear()
        t0 = time.perf_counter()
        fn(comps, rows)
        dt = time.perf_counter() - t0
        distinct = len({(r["answer"], c) for c, r in zip(comps, rows)})
        return {"completions": n, "workers": workers, "distinct_checks": distinct, "startup_s": round(startup, 2),
                "completions_per_s": round(n / dt), "checks_per_s": round(distinct / dt),
                "stats": fn.last_stats}
    finally:
        fn.close()


ADVERSARIAL = {
    "megabytes_of_latex": "\\boxed{" + "x+" * 1_000_000 + "1}",
    "1000_chars_of_sums": "\\boxed{" + "x+" * 500 + "1}",
    "nested_frac_300": "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
    "nested_parens_400": "\\boxed{" + "(" * 400 + "1" + ")" * 400 + "}",
    "power_tower": "\\boxed{9^{9^{9^{9}}}}",
    "factorial_tower": "\\boxed{(10^{10})!!}",
    "unclosed_boxes_1mb": "\\boxed{" * 150_000,
    "think_tags_1mb": "<think>" * 150_000,
}


def bench_adversarial(timeout: float) -> dict:
    fn = make_reward("math", timeout=timeout)
    out = {}
    try:
        fn(["\\boxed{1}"], [{"answer": "1"}])
        for name, text in ADVERSARIAL.items():
            t0 = time.perf_counter()
            value = fn([text], [{"answer": "1"}])[0]
            out[name] = {"seconds": round(time.perf_counter() - t0, 2), "value": value,
                         "errors": fn.last_stats.get("scoring_errors", 0.0),
                         "format_failures": fn.last_stats.get("format_failures", 0.0)}
        t0 = time.perf_counter()
        fn(list(ADVERSARIAL.values()), [{"answer": "1"}] * len(ADVERSARIAL))
        out["whole_set_one_batch_s"] = round(time.perf_counter() - t0, 2)
    finally:
        fn.close()
    out["worst_item_s"] = max(v["seconds"] for v in out.values() if isinstance(v, dict))
    out["timeout_s"] = timeout
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=10_000)
    ap.add_argument("--math", type=int, default=2_000)
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--only", choices=["similarity"], default=None, help="skip the math and adversarial parts")
    args = ap.parse_args()
    rng = random.Random(0)
    steps = champ_steps()
    results: dict = {"similarity": []}
    for long in (False, True):
        pairs = make_pairs(args.pairs, steps, rng, long)
        for autojunk in (False, True):
            row = bench_similarity(pairs, autojunk) | {"steps": "s1K-like (joined)" if long else "CHAMP"}
            results["similarity"].append(row)
            print(json.dumps(row), flush=True)
    if args.only == "similarity":
        return
    results["math"] = [bench_math(args.math, w, args.timeout, rng) for w in args.workers]
    for r in results["math"]:
        print(json.dumps(r), flush=True)
    results["adversarial"] = bench_adversarial(args.timeout)
    print(json.dumps(results["adversarial"], indent=1), flush=True)


if __name__ == "__main__":
    main()
