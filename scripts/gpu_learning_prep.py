"""Inputs of scripts/gpu_learning.sh and scripts/gpu_chain.sh, made here so the GPU machine needs no
reasoning-gym: the decomposed gym:chain_sum and gym:gsm_symbolic data (as benchmarks/curriculum.py
makes them) and held-out jsonl files.

    python scripts/gpu_learning_prep.py .gpu/c
"""

import json
import sys
from pathlib import Path

from srlkit.config import DecomposeConfig
from srlkit.data import gym
from srlkit.data.decompose import decompose

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".gpu/c")
    decompose(DecomposeConfig(source="gym:chain_sum?train=2000&validation=100&seed=0", seed=0), out / "data",
              show_progress=False)
    decompose(DecomposeConfig(source="gym:gsm_symbolic?train=2000&validation=100&seed=0", seed=0), out / "gsm",
              show_progress=False)
    for task, n, name in (("chain_sum", 500, "heldout.jsonl"), ("chain_sum", 300, "heldout300.jsonl"),
                          ("gsm_symbolic", 300, "heldout_gsm.jsonl")):
        rows = gym.heldout_rows(gym.parse_spec(f"gym:{task}?test={n}&seed=0"))
        (out / name).write_text("".join(json.dumps({"id": r["id"], "problem": r["problem"], "answer": r["answer"]})
                                        + "\n" for r in rows))
    print(out)
