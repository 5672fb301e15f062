"""Entry script for the learner equivalence test: one fixed rollout batch, split over the ranks.

    python tests/helpers/dist_learner_entry.py MODEL OUT                      (1 process: the whole batch)
    accelerate launch --multi_gpu --num_processes 2 tests/helpers/dist_learner_entry.py MODEL OUT

Scenarios (each from a fresh policy): "split" gives each rank half the groups; "skewed" gives
rank 0 every group and the other ranks none (as when all their groups were filtered). With one
process both are the whole batch. The main process saves the trainable weights after two
`update` calls (mu=2) and the stats of each, per scenario.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

ROWS = [  # 4 groups of G=2, with different prompt/completion lengths (token normalisers matter)
    ([11, 12, 13], [5, 6, 7], 0.9), ([11, 12, 13], [8, 9], 0.1),
    ([21, 22], [30, 31], 0.6), ([21, 22], [32, 33, 34, 35], 0.2),
    ([40, 41, 42, 43], [50], 1.0), ([40, 41, 42, 43], [51, 52, 53], 0.0),
    ([60], [70, 71, 72, 73, 74], 0.3), ([60], [75, 76], 0.7),
]


def rows_for(scenario: str, rank: int, world: int) -> list[tuple]:
    groups = [ROWS[i : i + 2] for i in range(0, len(ROWS), 2)]
    if scenario == "split":
        mine = groups[rank * len(groups) // world : (rank + 1) * len(groups) // world]
    else:  # skewed
        mine = groups if rank == 0 else []
    return [r for g in mine for r in g]


def main(model_dir: str, out: str) -> None:
    from srlkit.config import LoraConfig, LossConfig, ModelConfig, PhaseConfig
    from srlkit.train import dist
    from srlkit.train.advantages import group_advantages
    from srlkit.train.batch import collate
    from srlkit.train.learner import Learner
    from srlkit.train.model import load_policy

    result = {}
    for scenario in ("split", "skewed"):
        acc = dist.make_accelerator(torch.float32)  # one model per Accelerator, as in the trainer
        torch.manual_seed(0)
        policy = load_policy(ModelConfig(name_or_path=model_dir, lora=LoraConfig(enabled=False)))
        learner = Learner(policy, LossConfig(), acc)
        learner.begin_phase(PhaseConfig(lr=1e-3, micro_batch_size=2, mu=2, max_grad_norm=0.5), total_steps=2)
        rows = rows_for(scenario, dist.rank(acc), dist.world_size(acc))
        adv = group_advantages([r[2] for r in rows], 2) if rows else []
        batch = collate([r[0] for r in rows], [r[1] for r in rows], adv, pad_id=0, max_new_tokens=5)
        stats = [learner.update(batch) for _ in range(2)]
        result[scenario] = stats
        full = acc.get_state_dict(policy.model)  # every rank: FSDP gathers its shards here
        if dist.is_main(acc):
            from safetensors.torch import save_file

            weights = {n: t.detach().float().cpu().clone().contiguous() for n, t in full.items()}
            save_file(weights, str(Path(out) / f"{scenario}.safetensors"))
        dist.barrier(acc)
    if dist.is_main(acc):
        (Path(out) / "stats.json").write_text(json.dumps(result), encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
