"""Shared helpers for the train tests: a tiny decomposed dataset, a test reward, CLI args.

Not a test module: `conftest.py` builds the `tiny_data` fixture from `write_dataset`; the
train tests import it as `tests.helpers.training`, and so do the subprocess entry points of the
resume and multi-process tests (which put the repository root on sys.path first).
"""

from __future__ import annotations

from pathlib import Path

PROBLEMS = [
    ("What is 2 + 3?", ["Add the numbers.", "2 + 3 = 5."], "5"),
    ("Compute 4 * 6.", ["Multiply.", "4 * 6 = 24."], "24"),
    ("Solve x + 1 = 3.", ["Subtract 1.", "x = 2."], "2"),
    ("What is 10 / 2?", ["Divide.", "10 / 2 = 5."], "5"),
    ("Find 7 - 4.", ["Subtract.", "7 - 4 = 3."], "3"),
    ("What is 3^2?", ["Square 3.", "3^2 = 9."], "9"),
]


def write_dataset(out: Path) -> Path:
    """A decomposed-dataset folder in the `srlkit.schema` layout, written directly."""
    import polars as pl

    from srlkit.data.templates import rlvr_prompt, srl_prompt
    from srlkit.schema import step_hash

    from srlkit import stage

    splits: dict[str, dict[str, list[str]]] = {}
    for split, probs in (("train", PROBLEMS[:5]), ("validation", PROBLEMS[5:])):
        srl, rlvr = [], []
        for k, (prob, steps, ans) in enumerate(probs):
            tid = f"{split}{k}"
            for i, tgt in enumerate(steps):
                srl.append({
                    "id": f"{tid}/{i}", "trajectory_id": tid, "source_row": k, "step_index": i,
                    "num_steps": len(steps), "problem": prob, "context_steps": steps[:i], "target": tgt,
                    "target_title": None, "target_hash": step_hash(tgt), "answer": ans, "strategy": "numbered",
                    "prompt": srl_prompt(prob, steps[:i], i + 1),
                })
            rlvr.append({"id": tid, "source_row": k, "problem": prob, "answer": ans, "prompt": rlvr_prompt(prob)})
        for table, rows in (("srl", srl), ("rlvr", rlvr)):
            d = out / table
            d.mkdir(parents=True, exist_ok=True)
            pl.DataFrame(rows).write_parquet(d / f"{split}-00000-of-00001.parquet")
            splits.setdefault(table, {})[split] = [f"{table}/{split}-00000-of-00001.parquet"]
    # the manifest a decompose output carries: its stage, its files with sha256, its splits
    stage.finish(out, "decompose", [f for t in splits.values() for fs in t.values() for f in fs],
                 config={}, splits=splits)
    return out


def length_reward(completions, rows):
    """Test reward: varies with the text, so random-model groups are informative."""
    return [(len(c) % 17) / 16.0 for c in completions]


def _test_len_factory(**_params):
    """Test-only reward `test_len`: `(len(text) % 17) / 16`.

    >>> _test_len_factory()(["abc"], [{}])
    [0.1875]
    """
    return length_reward


def install() -> None:
    """Register the test reward (the CLI then finds it by name, like any reward)."""
    from srlkit.rewards import base

    base.make_reward("step_similarity")  # loads the built-in rewards first
    base.REGISTRY.setdefault("test_len", _test_len_factory)


def tiny_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """CLI args for a fast tiny-model run (explicit recipe values, independent of tiny-cpu.toml)."""
    sets = [
        "train.rollout.num_generations=2", "train.rollout.max_new_tokens=8", "train.rollout.truncation='keep'",
        "train.rollout.max_prompt_tokens=512", "train.report_to=['jsonl']", "train.sample_every=2",
        "train.keep_checkpoints=10", "train.model.lora.enabled=true", "train.model.lora.r=8",
        "train.model.lora.alpha=16",
    ]
    for ph, table in (("srl", "srl"), ("rlvr", "rlvr"), ("sft", "srl")):
        rewards = "[]" if ph == "sft" else "[{name='test_len'}]"
        sets += [f"train.phases.{ph}.rewards={rewards}", f"train.phases.{ph}.steps=3",
                 f"train.phases.{ph}.prompts_per_step=2", f"train.phases.{ph}.micro_batch_size=2",
                 f"train.phases.{ph}.lr=0.01", f"train.phases.{ph}.save_every=2",
                 f"train.phases.{ph}.val_prompts=1", f"train.phases.{ph}.table='{table}'",
                 f"train.phases.{ph}.sampling.max_attempts=2"]
    args = ["train", "--model", str(model), "--data", str(data), "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    return args + list(extra)
