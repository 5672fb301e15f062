"""Shared helpers for the train tests: a tiny decomposed dataset, a test reward, and
stand-ins for sibling modules that have not landed yet (used only when they are missing).

Imported by the other test_train_* files and by the subprocess wrapper of the resume test.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
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
    (out / "manifest.json").write_text("{}")
    return out


def length_reward(completions, rows):
    """Test reward: varies with the text, so random-model groups are informative."""
    return [(len(c) % 17) / 16.0 for c in completions]


def install() -> None:
    """Register the test reward; stand in for sibling modules only while they are missing."""
    from srlkit.rewards import base

    if "test_len" not in base.REGISTRY:
        base.REGISTRY["test_len"] = lambda **kw: length_reward
    try:
        import srlkit.rewards.scorer  # noqa: F401
    except ImportError:
        mod = types.ModuleType("srlkit.rewards.scorer")

        def build_scorer(specs, data_dir=None):
            fns = [(s.name, s.weight, base.make_reward(s.name, **s.params)) for s in specs]

            def score(completions, rows):
                comps = {n: list(f(completions, rows)) for n, _, f in fns}
                total = [sum(w * comps[n][i] for n, w, _ in fns) for i in range(len(completions))]
                return base.ScoreResult(total, comps, {})

            return score

        mod.build_scorer = build_scorer
        sys.modules["srlkit.rewards.scorer"] = mod
    try:
        from srlkit.sampling.dynamic import informative_mask
    except ImportError:
        mod = types.ModuleType("srlkit.sampling.dynamic")

        def informative_mask(rewards, group_size, epsilon):
            from srlkit.train.advantages import group_std

            return [s > epsilon for s in group_std(rewards, group_size)]

        mod.informative_mask = informative_mask
        sys.modules["srlkit.sampling.dynamic"] = mod
    from srlkit import rollout

    if not hasattr(rollout, "make_engine"):
        def make_engine(cfg, model, tokenizer, model_path=None):
            from srlkit.rollout.hf import HFEngine

            return HFEngine(model, tokenizer, batch_size=cfg.generation_batch_size,
                            max_prompt_tokens=cfg.max_prompt_tokens)

        rollout.make_engine = make_engine


def tiny_args(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    """CLI args for a fast tiny-model run (explicit recipe values, independent of tiny-cpu.toml)."""
    sets = [
        "train.rollout.num_generations=2", "train.rollout.max_new_tokens=8", "train.rollout.truncation='keep'",
        "train.rollout.max_prompt_tokens=512", "train.report_to=['jsonl']", "train.sample_every=2",
        "train.keep_checkpoints=10",
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


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("data") / "ds")


def test_dataset_layout(tiny_data):
    """The fixture writes the schema's layout (guards the other tests' input)."""
    import polars as pl

    from srlkit.schema import RLVR_COLUMNS, SRL_COLUMNS

    srl = pl.read_parquet(tiny_data / "srl" / "train-00000-of-00001.parquet")
    rlvr = pl.read_parquet(tiny_data / "rlvr" / "validation-00000-of-00001.parquet")
    assert list(srl.columns) == list(SRL_COLUMNS) and list(rlvr.columns) == list(RLVR_COLUMNS)
