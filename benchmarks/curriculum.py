"""The curriculum comparison: base / SFT / RLVR / SRL / SRL→RLVR / SFT→RLVR from one base model.

Every arm starts from the same base model and trains on the same decomposed data with the
same settings (the recipe's `[train]` table) and the same budget of optimizer steps, split
evenly by the two-phase arms; every GRPO step uses the same rollouts (prompts x G). Each
arm is then scored on the same held-out problems: greedy accuracy and avg@k with 95%
bootstrap CIs. The table also gives, per arm, the optimizer updates made and the
dynamic-sampling filter rate: the mechanism the paper claims (RLVR starves when every
answer is wrong, SRL still gets step credit). Each two-phase arm is compared with its first
phase's one-phase arm at the same budget (SRL→RLVR against SRL) with a paired bootstrap CI on
the same problems, and with its own first phase's end (`srl_rlvr.srl_end`: what RLVR added over the
SRL it started from; `--no-phase-end` skips that eval). Every phase's learning curve is plotted:
whole-solution greedy accuracy on the validation problems every `--eval-every` steps.

Task: `gym:chain_sum` (multi-step integer arithmetic with expert steps, see
`srlkit/data/gym.py`); held-out questions come from a disjoint seed range. `--task` picks another
gym task or options (`--task 'chain_sum?terms=4-5&digits=2-3'`, `--task gsm_symbolic`). On chain
sums the table also gives the share of the greedy answers' `a ± b = c` steps that are right.

Resumable: a killed comparison picks up where it stopped (finished arms and their evals
are kept; an arm killed mid-training resumes from its last checkpoint). A result to publish is
one uninterrupted command at one commit: `stats.json` records the commit, whether the tree was
clean, and whether any arm resumed. `--jobs N` trains and scores N arms at once, each in its own
process of `--threads` torch threads (on 2 cores, 2 x 1 thread scored 1.37x the problems per second
of 1 x 2 threads); the thread count can change the last bits of a result, so a figure is reproduced
with the same `--jobs`/`--threads`. A two-phase arm's first-phase end is scored greedy only (its paired
comparison is greedy).

    python benchmarks/curriculum.py --steps 60 --eval-size 500 --k 4 --eval-every 5 --jobs 2   # the recorded run
    python benchmarks/curriculum.py --steps 2 --eval-size 8 --k 0 --train-size 40   # smoke
    python benchmarks/curriculum.py --set train.rollout.temperature=0.8 --out runs/bench-t08
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import re
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# The paper's Table 1 (Qwen2.5-7B, average of AMC23/AIME24/AIME25/Minerva).
PAPER = {"srl_rlvr": 28.3, "srl": 27.6, "base": 24.6, "rlvr": 24.5, "sft_rlvr": 17.4, "sft": 16.6}
ARMS = {"base": [], "sft": ["sft"], "rlvr": ["rlvr"], "srl": ["srl"], "srl_rlvr": ["srl", "rlvr"],
        "sft_rlvr": ["sft", "rlvr"]}


def split_steps(total: int, phases: list[str]) -> list[int]:
    """Equal optimizer steps per arm; a two-phase arm splits them (the last phase takes the rest).

    >>> split_steps(60, ["srl", "rlvr"]), split_steps(61, ["srl", "rlvr"]), split_steps(60, ["sft"])
    ([30, 30], [30, 31], [60])
    """
    per = [total // len(phases)] * len(phases)
    per[-1] += total - sum(per)
    return per


def arm_config(train_cfg, arm: str, args, data: Path, out: Path):
    """The arm's TrainConfig: the recipe's settings, this arm's curriculum, the shared budget."""
    phases = ARMS[arm]
    t = train_cfg.model_copy(deep=True)
    t.data, t.out, t.curriculum, t.seed = str(data), str(out), phases, args.seed
    if args.model:
        t.model.name_or_path = args.model
    t.report_to = ["jsonl"]
    t.allow_idle_phases = True  # an arm that starves is a result to report, not a crash
    if out.is_dir() and not (out / "checkpoints").is_dir():  # killed before its first checkpoint: start over
        import shutil

        shutil.rmtree(out)
    t.resume = (out / "checkpoints").is_dir()
    t.seed = args.seed if args.train_seed is None else args.train_seed
    for name, steps in zip(phases, split_steps(args.steps, phases)):
        p = t.phases[name]
        p.steps = steps
        p.save_every = max(1, min(args.save_every, steps)) if args.save_every else 0
        p.eval_every = args.eval_every
    return t


def finished(run: Path) -> bool:
    state = run / "state.json"
    return state.is_file() and bool(json.loads(state.read_text()).get("finished"))


def arm_stats(run: Path) -> dict:
    """Updates made / asked, filter rate per GRPO phase and train seconds, from the run's summary."""
    p = run / "summary.json"
    if not p.is_file():
        return {"updates": 0, "asked": 0, "filter_rate": None, "train_s": 0.0}
    ph = json.loads(p.read_text())["phases"]
    return {"updates": sum(v.get("updates", 0) for v in ph.values()),
            "asked": sum(v.get("steps", 0) for v in ph.values()),
            "filter_rate": {k: v.get("filter_rate", 0.0) for k, v in ph.items() if v.get("kind") != "sft"} or None,
            "prompts": sum(v.get("prompts_consumed", 0) for v in ph.values()),
            "train_s": sum(v.get("wall_s", 0.0) for v in ph.values())}


def git_state() -> dict:
    """The commit the comparison ran at, and whether the tree had uncommitted changes."""
    import subprocess

    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or "unknown",
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def machine_line(m: dict) -> str:
    """One line for the table's head: where and with what the figures were measured
    (`srlkit.provenance.machine()`; the same block is in stats.json and in each run's summary.json)."""
    libs = ", ".join(f"{k} {v}" for k, v in m["libs"].items() if v and k in ("torch", "transformers"))
    return f"machine {m['cpu']} ({m['simd']}); {libs}"


def paired(out: Path, first: str, second: str, n_boot: int = 1000, seed: int = 0) -> dict | None:
    """`second` against `first` on the same held-out problems: greedy accuracy change and its
    paired 95% bootstrap CI (from the two evals' per-problem samples)."""
    from srlkit.eval.metrics import paired_bootstrap_ci

    def greedy(arm: str) -> dict[str, float]:
        f = out / "eval" / f"{arm}.full.samples.jsonl"
        if not f.is_file():
            return {}
        rows = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        return {str(r["id"]): float(bool(r["greedy_correct"])) for r in rows}

    a, b = greedy(first), greedy(second)
    ids = sorted(set(a) & set(b))
    if not ids:
        return None
    xa, xb = [a[i] for i in ids], [b[i] for i in ids]
    lo, hi = paired_bootstrap_ci(xa, xb, n_boot=n_boot, seed=seed)
    return {"first": first, "second": second, "n": len(ids), "delta": (sum(xb) - sum(xa)) / len(ids),
            "ci": [lo, hi], "acc": [sum(xa) / len(ids), sum(xb) / len(ids)]}


def phase_end_arm(arm: str) -> str | None:
    """The eval name of a two-phase arm's first phase end (`srl_rlvr` -> `srl_rlvr.srl_end`), else None.

    >>> phase_end_arm("srl_rlvr"), phase_end_arm("srl")
    ('srl_rlvr.srl_end', None)
    """
    return f"{arm}.{ARMS[arm][0]}_end" if len(ARMS.get(arm, [])) == 2 else None


def cfg_for(args, bench: str, recipe, k: int | None = None):
    """The one eval setting every arm (and, greedy, every phase end) is scored with."""
    from srlkit.config import EvalConfig

    return EvalConfig(bench=[bench], k=args.k if k is None else k, temperature=1.0, max_new_tokens=args.eval_max_new_tokens,
                      engine=recipe.train.rollout.engine, seed=args.seed, bootstrap=1000, limit=args.eval_size)


def pairings(out: Path, arms: list[str], started_from_model: bool = False) -> list[dict]:
    """The paired comparisons the command prints: a chain against its one-phase arms and against its own
    first phase's end; with --model, every trained arm against "base", which is then that model (so
    `--model RUN/srl/final --arms base,rlvr` states what RLVR added to those weights)."""
    todo = [(one, two) for two, one in (("srl_rlvr", "srl"), ("sft_rlvr", "sft"), ("srl_rlvr", "rlvr"))
            if two in arms and one in arms]
    todo += [(phase_end_arm(two), two) for two in arms if phase_end_arm(two)]
    if started_from_model and "base" in arms:
        todo += [("base", two) for two in arms if two != "base"]
    return [p for one, two in todo for p in [paired(out, one, two)] if p]


def paired_lines(pairs: list[dict], started_from_model: bool = False) -> str:
    out = []
    for p in pairs:
        lo, hi, d = (100 * x for x in (*p["ci"], p["delta"]))
        verdict = "better" if lo > 0 else "worse" if hi < 0 else "no difference shown (the CI includes 0)"
        first = p["first"]
        if first == phase_end_arm(p["second"]):
            first = f"its own end of {ARMS[p['second']][0]}"
        elif first == "base" and started_from_model:
            first = "its starting model (--model)"
        out.append(f"- {p['second']} vs {first}: {d:+.1f} points [{lo:+.1f}, {hi:+.1f}] "
                   f"(paired 95% CI, n={p['n']}; {100 * p['acc'][0]:.1f}% -> {100 * p['acc'][1]:.1f}%): {verdict}")
    return "\n".join(out)


def plot_curves(out: Path, arms: list[str], path: Path, key: str = "val/solve_accuracy") -> bool:
    """Validation accuracy against the arm's optimizer step, every phase; phase boundaries dashed."""
    rows = {}
    for a in arms:
        f = out / "runs" / a / "eval.jsonl"
        if a != "base" and f.is_file():
            rows[a] = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
    rows = {a: [r for r in rs if key in r] for a, rs in rows.items()}
    rows = {a: rs for a, rs in rows.items() if rs}
    if not rows:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.8), dpi=110)
    for a, rs in rows.items():
        offset, seen, xs, ys = 0, [], [], []
        for r in rs:
            if r["phase"] not in seen:
                if seen:
                    offset = xs[-1]
                    ax.axvline(offset, color="grey", lw=0.6, ls="--")
                seen.append(r["phase"])
            xs.append(offset + r["step"])
            ys.append(100 * r[key])
        ax.plot(xs, ys, marker="o", ms=3, label=a)
    ax.set_xlabel("optimizer step of the arm (dashed: the next phase starts)")
    ax.set_ylabel(f"{key} %")
    ax.set_title("validation whole-solution greedy accuracy during training")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return True


_STEP = re.compile(r"^(-?\d+) ([+-]) (-?\d+) = (-?\d+)$")


def step_arithmetic(out: Path, arm: str) -> tuple[int, int]:
    """Chain sums: of the `a op b = c` lines in an arm's greedy answers, how many have c right.

    Whole-solution accuracy needs every step right; on long sums it can tie at zero while one arm
    still does far better arithmetic than another. This says which.
    """
    right = total = 0
    for line in (out / "eval" / f"{arm}.full.samples.jsonl").read_text().splitlines():
        for step in json.loads(line).get("greedy", "").splitlines():
            m = _STEP.match(step.strip())
            if m:
                a, op, b, c = m.groups()
                total += 1
                right += (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)
    return right, total


def table(results: dict, stats: dict, arms: list[str], args, bench: str) -> str:
    key = f"avg@{args.k}"
    steps = args.task.startswith("chain_sum") and not args.heldout
    head = ["arm", "greedy % [95% CI]"] + ([f"{key} % [95% CI]"] if args.k else []) + (
        ["arithmetic steps right"] if steps else []) + [
        "updates / asked", "filter rate (GRPO phases)", "train s", "paper avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a in arms:
        r = results[a][bench]
        cells = [a, f"{100 * r['greedy_acc']:.1f} [{100 * r['greedy_ci'][0]:.1f}, {100 * r['greedy_ci'][1]:.1f}]"]
        if args.k:
            cells.append(f"{100 * r[key]:.1f} [{100 * r['avg_ci'][0]:.1f}, {100 * r['avg_ci'][1]:.1f}]")
        if steps:
            right, total = step_arithmetic(args.out, a)
            cells.append(f"{100 * right / total:.1f}% of {total}" if total else "no `a ± b = c` lines")
        s = stats.get(a, {})
        fr = s.get("filter_rate")
        cells += [f"{s.get('updates', 0)} / {s.get('asked', 0)}",
                  ", ".join(f"{k} {v:.2f}" for k, v in fr.items()) if fr else "–",
                  f"{s.get('train_s', 0.0):.0f}", str(PAPER.get(a, "–"))]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: dict, arms: list[str], args, bench: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    width = 0.38 if args.k else 0.6
    for j, (key, ci, label) in enumerate([("greedy_acc", "greedy_ci", "greedy")]
                                         + ([(f"avg@{args.k}", "avg_ci", f"avg@{args.k}")] if args.k else [])):
        xs = [i + j * width for i in range(len(arms))]
        vals = [100 * results[a][bench][key] for a in arms]
        lo = [v - 100 * results[a][bench][ci][0] for v, a in zip(vals, arms)]
        hi = [100 * results[a][bench][ci][1] - v for v, a in zip(vals, arms)]
        ax.bar(xs, vals, width, yerr=[lo, hi], capsize=3, label=label)
    ax.set_xticks([i + (width / 2 if args.k else 0) for i in range(len(arms))], arms)
    ax.set_ylabel("held-out accuracy %")
    n = results[arms[0]][bench]["n"]
    ax.set_title(f"{args.task}, {n} held-out problems, {args.steps} optimizer steps per arm (95% CI)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


# Rough single-thread cost of each arm (minutes at 60 steps, this recipe, 500 held-out, k = 4), only to
# start the longest arms first when arms run in parallel.
COST = {"srl": 40, "srl_rlvr": 40, "sft_rlvr": 30, "sft": 20, "rlvr": 15, "base": 10}


def _threads(n: int) -> None:
    """A parallel worker's torch threads (set before torch is imported here, and after)."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(n)


class Labelled:
    r"""A stream that starts every line with `[arm] ` (unless it already does), so the trainer's step
    lines of arms running side by side (--jobs) say which arm they belong to.

    >>> import io
    >>> buf = io.StringIO(); out = Labelled(buf, "srl")
    >>> _ = out.write("srl step 1/3 | loss 0.1\n[srl] done"); _ = out.write(" in 5 s\nnext")
    >>> buf.getvalue()
    '[srl] srl step 1/3 | loss 0.1\n[srl] done in 5 s\n[srl] next'
    """

    def __init__(self, stream, arm: str):
        self.stream, self.prefix, self.at_start = stream, f"[{arm}] ", True

    def write(self, text: str) -> int:
        for piece in text.splitlines(keepends=True):
            if self.at_start and not piece.startswith(self.prefix):
                self.stream.write(self.prefix)
            self.stream.write(piece)
            self.at_start = piece.endswith("\n")
        return len(text)

    def __getattr__(self, name):  # flush, isatty, fileno, encoding: the wrapped stream's
        return getattr(self.stream, name)


def run_arm(arm: str, args, recipe, data: Path, bench: str) -> dict:
    """`_run_arm`, its stderr lines labelled with the arm's name when arms run side by side (--jobs)."""
    with contextlib.redirect_stderr(Labelled(sys.stderr, arm)) if args.jobs > 1 else contextlib.nullcontext():
        return _run_arm(arm, args, recipe, data, bench)


def _run_arm(arm: str, args, recipe, data: Path, bench: str) -> dict:
    """Train one arm (unless finished), score it on the held-out problems, and score a two-phase arm's
    first phase end (greedy: the paired comparison is greedy). Every result is a file under --out, so a
    killed comparison keeps what finished. Runs in the main process or in a parallel worker."""
    from srlkit.eval.run import evaluate

    t0 = time.perf_counter()
    run = args.out / "runs" / arm
    resumed = arm != "base" and (run / "checkpoints").is_dir() and not finished(run)
    if arm != "base" and not finished(run):
        from srlkit.train.run import train

        print(f"[{arm}] training {ARMS[arm]} for {args.steps} steps", file=sys.stderr, flush=True)
        train(arm_config(recipe.train, arm, args, data, run))
    stats = arm_stats(run) if arm != "base" else {"updates": 0, "asked": 0}
    cached = args.out / "eval" / f"{arm}.json"
    if not cached.is_file():
        print(f"[{arm}] eval on {args.eval_size} held-out problems", file=sys.stderr, flush=True)
        ref = f"{arm}={args.model or recipe.train.model.name_or_path or 'base'}" if arm == "base" else f"{arm}={run}"
        res = evaluate([ref], cfg_for(args, bench, recipe), cached.with_suffix(".full.json"), data_dir=data)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(res["results"][arm], indent=1))
    end = phase_end_arm(arm)
    if end and args.phase_end and not (run / ARMS[arm][0] / "final").is_dir():
        print(f"[{arm}] NOTE: {run / ARMS[arm][0] / 'final'} is missing, so what {ARMS[arm][1]} added over "
              f"{ARMS[arm][0]} is not measured", file=sys.stderr, flush=True)
    elif end and args.phase_end and not (args.out / "eval" / f"{end}.json").is_file():
        # the two-phase arm's first phase, scored on the same problems: what the second phase added
        print(f"[{arm}] eval of its end of {ARMS[arm][0]} ({run / ARMS[arm][0] / 'final'})", file=sys.stderr, flush=True)
        res = evaluate([f"{end}={run / ARMS[arm][0] / 'final'}"], cfg_for(args, bench, recipe, k=0),
                       args.out / "eval" / f"{end}.full.json", data_dir=data)
        (args.out / "eval" / f"{end}.json").write_text(json.dumps(res["results"][end], indent=1))
    print(f"[{arm}] done in {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return {"stats": stats, "result": json.loads(cached.read_text()), "resumed": resumed}


def gym_specs(task: str, train_size: int, eval_size: int, seed: int) -> tuple[str, str]:
    """The training and held-out sources of a `--task`, which may carry the task's own options.

    >>> gym_specs("chain_sum?terms=5-6&digits=2-3", 2000, 500, 0)[1]
    'gym:chain_sum?terms=5-6&digits=2-3&test=500&seed=0'
    """
    name, _, options = task.partition("?")
    head = f"gym:{name}?" + (f"{options}&" if options else "")  # the task's own options, then ours
    return f"{head}train={train_size}&validation=100&seed={seed}", f"{head}test={eval_size}&seed={seed}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-curriculum")
    ap.add_argument("--recipe", type=Path, default=ROOT / "pipelines" / "tiny-cpu.toml",
                    help="the [train] settings every arm shares")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="recipe override KEY=VALUE")
    ap.add_argument("--model", default=None, help="base model (default: the recipe's, else bundled SmolLM2)")
    ap.add_argument("--arms", default="base,sft,rlvr,srl,srl_rlvr,sft_rlvr", help=f"comma list of {', '.join(ARMS)}")
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps per arm (the compute budget)")
    ap.add_argument("--task", default="chain_sum",
                    help="the gym task: chain_sum or gsm_symbolic, with its options if any, e.g. "
                         "'chain_sum?terms=5-6&digits=2-3' (srlkit/data/gym.py)")
    ap.add_argument("--train-size", type=int, default=2000, help="training problems")
    ap.add_argument("--eval-size", type=int, default=500, help="held-out problems")
    ap.add_argument("--k", type=int, default=4, help="samples per problem for avg@k (0: greedy only)")
    ap.add_argument("--eval-max-new-tokens", type=int, default=96)
    ap.add_argument("--heldout", type=Path, default=None,
                    help="a held-out .jsonl (id, problem, answer) instead of generating gym:chain_sum's test split")
    ap.add_argument("--save-every", type=int, default=10,
                    help="checkpoint every N steps, so a killed arm resumes (0: phase ends only)")
    ap.add_argument("--seed", type=int, default=0, help="data, held-out and (unless --train-seed) training seed")
    ap.add_argument("--train-seed", type=int, default=None, help="training seed alone (data and held-out fixed)")
    ap.add_argument("--eval-every", type=int, default=5,
                    help="validate every N steps of every phase (the learning curves; 0: phase ends only)")
    ap.add_argument("--no-phase-end", dest="phase_end", action="store_false",
                    help="skip scoring a two-phase arm's first phase end (on by default: the table then says what "
                         "the second phase added over it, paired on the same problems)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="arms trained and scored at once, each in its own process (arms are independent; "
                         "the results are files, the table is made when all are done)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process with --jobs > 1")
    args = ap.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        ap.error("--jobs and --threads must be at least 1")

    from srlkit.config import DecomposeConfig, load_recipe

    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    bad = [a for a in arms if a not in ARMS]
    if bad:
        ap.error(f"unknown arm(s) {bad}; known: {', '.join(ARMS)}")
    recipe = load_recipe(args.recipe, args.overrides)
    t0 = time.perf_counter()
    task, bench = gym_specs(args.task, args.train_size, args.eval_size, args.seed)
    bench = str(args.heldout) if args.heldout else bench
    data = args.out / "data"
    if not (data / "manifest.json").is_file():  # a rerun (or a copied folder) skips this
        from srlkit.data.decompose import decompose

        decompose(DecomposeConfig(source=task, seed=args.seed), data, show_progress=False)
    from srlkit import provenance

    state, machine = git_state(), provenance.machine()
    todo = sorted(arms, key=lambda a: -COST.get(a, 0)) if args.jobs > 1 else arms  # longest first
    one = functools.partial(run_arm, args=args, recipe=recipe, data=data, bench=bench)
    if args.jobs > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        from srlkit.assets import resolve_model

        # the bundled model is converted (once, then cached) here, not by every worker at once, whose
        # progress bars would interleave in the log
        resolve_model(args.model or recipe.train.model.name_or_path)
        print(f"running {len(todo)} arms in {args.jobs} processes of {args.threads} thread(s) each; each arm "
              "logs with its [name]", file=sys.stderr, flush=True)
        with ProcessPoolExecutor(args.jobs, mp_context=mp.get_context("spawn"), initializer=_threads,
                                 initargs=(args.threads,)) as pool:
            done = dict(zip(todo, pool.map(one, todo)))
    else:
        done = {a: one(a) for a in todo}
    stats = {a: done[a]["stats"] for a in arms}
    results = {a: done[a]["result"] for a in arms}
    resumed = [a for a in arms if done[a]["resumed"]]
    name = next(iter(results[arms[0]]))
    md = table(results, stats, arms, args, name)
    pairs = pairings(args.out, arms, started_from_model=bool(args.model))
    if pairs:
        md += "\n\n" + paired_lines(pairs, started_from_model=bool(args.model))
    head = f"commit {state['commit'][:12]}{' (uncommitted changes)' if state['dirty'] else ''}; {machine_line(machine)}"
    if resumed:
        head += f"; RESUMED arms: {', '.join(resumed)} (not one uninterrupted command)"
    md = head + "\n\n" + md
    plot(results, arms, args, name, args.out / "curriculum.png")
    curves = plot_curves(args.out, arms, args.out / "curves.png")
    (args.out / "table.md").write_text(md + "\n")
    (args.out / "stats.json").write_text(json.dumps({"stats": stats, "paired": pairs, "git": state, "machine": machine,
                                                     "resumed": resumed,
                                                     "seconds": time.perf_counter() - t0,
                                                     "args": vars(args) | {"out": str(args.out),
                                                     "recipe": str(args.recipe)}}, indent=1, default=str))
    print(md)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; plots {args.out / 'curriculum.png'}"
          + (f", {args.out / 'curves.png'}" if curves else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
