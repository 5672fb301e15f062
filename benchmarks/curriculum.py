"""The curriculum comparison: base / SFT / RLVR / SRL / SRL→RLVR (/ SFT→RLVR) from one base model.

Every arm starts from the same base model, trains on the same decomposed data with the same
budget of optimizer steps (a two-phase arm splits it in half), and is scored by `evaluate()`
on the same held-out problems. The table prints next to the paper's Table 1 ordering.

Task: `reasoning_gym` `gsm_symbolic` (bundled, procedural grade-school word problems whose
`answer_cot` is a worked solution, one step per line, ending in `#### N`). Why not CHAMP:
SmolLM2-135M solves ~0% of CHAMP's competition problems, so every arm would score 0 and
nothing could be compared; on gsm_symbolic its success rate is low but not zero, which is the
regime the paper targets (RLVR's rewards are mostly 0, SRL still gets dense step credit).
The generator also gives an unlimited, truly held-out eval split (another seed, deduplicated).

    python benchmarks/curriculum.py                        # CPU defaults, ~15 min on 2 cores
    python benchmarks/curriculum.py --steps 2 --eval-size 8 --k 1   # smoke: every arm end to end
    python benchmarks/curriculum.py --engine vllm --steps 200 --train-size 2000 --eval-size 500 --k 8
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The paper's Table 1 (Qwen2.5-7B, average of AMC23/AIME24/AIME25/Minerva), best first.
PAPER = {"srl_rlvr": 28.3, "srl": 27.6, "base": 24.6, "rlvr": 24.5, "sft_rlvr": 17.4, "sft": 16.6}
ARMS = {  # arm -> curriculum
    "base": [],
    "sft": ["sft"],
    "rlvr": ["rlvr"],
    "srl": ["srl"],
    "srl_rlvr": ["srl", "rlvr"],
    "sft_rlvr": ["sft", "rlvr"],
}


def write_task(out: Path, train_size: int, eval_size: int, seed: int) -> tuple[Path, Path]:
    """gsm_symbolic train jsonl (question + worked answer) and a disjoint held-out bench jsonl."""
    import reasoning_gym as rg

    out.mkdir(parents=True, exist_ok=True)
    train = list(rg.create_dataset("gsm_symbolic", size=train_size, seed=seed))
    seen = {x["question"] for x in train}
    held = [x for x in rg.create_dataset("gsm_symbolic", size=eval_size * 2, seed=seed + 10_007)
            if x["question"] not in seen][:eval_size]
    tp, hp = out / "train.jsonl", out / "heldout.jsonl"
    tp.write_text("".join(json.dumps({"question": x["question"], "answer": x["metadata"]["answer_cot"]}) + "\n"
                          for x in train))
    hp.write_text("".join(json.dumps({"id": f"h{i}", "problem": x["question"], "answer": str(x["answer"])}) + "\n"
                          for i, x in enumerate(held)))
    return tp, hp


def arm_config(base_recipe, arm: str, args, data: Path, out: Path):
    """The arm's TrainConfig: the recipe's settings, this arm's curriculum, the shared budget."""
    phases = ARMS[arm]
    per_phase = [args.steps // len(phases)] * len(phases)
    per_phase[-1] += args.steps - sum(per_phase)  # odd budgets: the last phase takes the rest
    t = base_recipe.train.model_copy(deep=True)
    t.data, t.out, t.curriculum, t.seed = str(data), str(out), phases, args.seed
    t.model.name_or_path = args.model
    t.rollout.engine = args.engine
    t.rollout.num_generations = args.generations
    t.rollout.max_new_tokens = args.max_new_tokens
    t.report_to = ["jsonl"]
    for name, steps in zip(phases, per_phase):
        p = t.phases[name]
        p.steps, p.prompts_per_step, p.val_prompts = steps, args.prompts_per_step, args.val_prompts
        p.save_every = 0
    return t


def rank(values: dict[str, float]) -> dict[str, int]:
    """Competition ranks (ties share a rank): 1 + how many arms are strictly better."""
    return {a: 1 + sum(v > values[a] + 1e-12 for v in values.values()) for a in values}


def train_seconds(run: Path) -> float:
    p = run / "summary.json"
    if not p.is_file():
        return 0.0
    return sum(ph.get("wall_s", 0.0) for ph in json.loads(p.read_text())["phases"].values())


def print_table(summary: dict, arms: list[str], args, timings: dict[str, float]) -> None:
    """The comparison table (Markdown), ordered like the paper's Table 1."""
    res = {arm: summary["results"][arm]["heldout"] for arm in arms}
    key = f"avg@{args.k}" if args.k else "greedy_acc"
    ours = rank({a: res[a][key] for a in arms})
    paper = rank({a: PAPER[a] for a in arms})
    print(f"\nCurriculum comparison: gsm_symbolic held-out n={res[arms[0]]['n']}, "
          f"{args.steps} optimizer steps per arm, base {args.model or 'SmolLM2-135M-Instruct (bundled)'}")
    head = (f"| arm | greedy % [95% CI] | {key} % [95% CI] | pass@{args.k} % | mean len | truncated % "
            "| train s | our rank | paper avg | paper rank |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for a in sorted(arms, key=lambda x: paper[x]):
        r = res[a]
        g = f"{100 * r['greedy_acc']:.1f} [{100 * r['greedy_ci'][0]:.1f}, {100 * r['greedy_ci'][1]:.1f}]"
        if args.k:
            s_ = f"{100 * r[key]:.1f} [{100 * r['avg_ci'][0]:.1f}, {100 * r['avg_ci'][1]:.1f}]"
            p_, ln = f"{100 * r['pass@'][str(args.k)]:.1f}", f"{r['mean_len']:.0f}"
        else:
            s_, p_, ln = g, "–", f"{r['greedy_len']:.0f}"
        print(f"| {a} | {g} | {s_} | {p_} | {ln} | {100 * r['truncated_frac']:.0f} | {timings.get(a, 0):.0f} "
              f"| {ours[a]} | {PAPER[a]} | {paper[a]} |")
    agree = sum(ours[a] == paper[a] for a in arms)
    print(f"\nranks equal to the paper's: {agree}/{len(arms)} (ties share a rank)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-curriculum")
    ap.add_argument("--model", default=None, help="base model (default: the bundled SmolLM2-135M-Instruct)")
    ap.add_argument("--arms", default="base,sft,rlvr,srl,srl_rlvr", help=f"comma list of {', '.join(ARMS)}")
    ap.add_argument("--steps", type=int, default=8, help="optimizer steps per arm (the compute budget)")
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--generations", type=int, default=4, help="G rollouts per prompt")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="rollout length cap")
    ap.add_argument("--val-prompts", type=int, default=4)
    ap.add_argument("--train-size", type=int, default=200, help="gsm_symbolic problems to decompose")
    ap.add_argument("--eval-size", type=int, default=32, help="held-out problems")
    ap.add_argument("--k", type=int, default=2, help="samples per problem for avg@k / pass@k")
    ap.add_argument("--eval-max-new-tokens", type=int, default=160)
    ap.add_argument("--engine", choices=["hf", "vllm"], default="hf")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--table-only", action="store_true", help="reprint the table from OUT/eval/results.json")
    args = ap.parse_args(argv)

    from srlkit.config import DecomposeConfig, EvalConfig, load_recipe
    from srlkit.data.decompose import decompose
    from srlkit.eval.run import evaluate
    from srlkit.train.run import train

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        ap.error(f"unknown arm(s) {bad}; known: {', '.join(ARMS)}")
    if args.table_only:
        summary = json.loads((args.out / "eval" / "results.json").read_text())
        print_table(summary, arms, args, {a: train_seconds(args.out / "runs" / a) for a in arms})
        return 0
    t0 = time.perf_counter()
    task_dir = args.out / "task"
    train_jsonl, heldout = write_task(task_dir, args.train_size, args.eval_size, args.seed)
    data = args.out / "data"
    if not (data / "manifest.json").is_file():
        decompose(DecomposeConfig(source=str(train_jsonl), preset="gsm8k", val_size=8, seed=args.seed), data)
    recipe = load_recipe(ROOT / "pipelines" / "tiny-cpu.toml")
    models, timings = [], {}
    for arm in arms:
        if arm == "base":
            models.append(f"base={args.model or 'base'}")
            continue
        run = args.out / "runs" / arm
        if not (run / "final").is_dir():
            if run.exists():
                import shutil

                shutil.rmtree(run)
            train(arm_config(recipe, arm, args, data, run))
        timings[arm] = train_seconds(run)
        models.append(f"{arm}={run}")
    s = time.perf_counter()
    cfg = EvalConfig(bench=[str(heldout)], k=args.k, temperature=1.0, max_new_tokens=args.eval_max_new_tokens,
                     engine=args.engine, seed=args.seed, bootstrap=1000)
    summary = evaluate(models, cfg, args.out / "eval" / "results.json", show=False)
    eval_s = time.perf_counter() - s

    print_table(summary, arms, args, timings)
    print(f"eval {eval_s:.0f} s; total {time.perf_counter() - t0:.0f} s; results: {args.out / 'eval' / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
