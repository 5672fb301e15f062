"""The on-disk contract between stages. Imports no torch and no polars.

A decomposed dataset folder (`srlkit decompose --out DIR`) holds:

    DIR/
      srl/train-00000-of-00003.parquet ...      SRL_COLUMNS, one row per target step
      srl/validation-00000-of-00001.parquet
      rlvr/train-00000-of-00001.parquet ...     RLVR_COLUMNS, one row per problem with a verified answer
      rlvr/validation-00000-of-00001.parquet
      rejects.parquet                            REJECT_COLUMNS, one row per rejected source row (or RLVR-only reject)
      manifest.json                              stage, counts, config, fingerprint, version, shard checksums
                                                 (every srlkit output folder has one: `srlkit.stage`)
      README.md                                  dataset card (YAML `configs:` for datasets.load_dataset)
      embeddings/<model-slug>/*.parquet          EMBED_COLUMNS (written by `srlkit embed`)

`prompt` columns are chat messages: a list of {"role": str, "content": str}.
The SRL prompt ends with the user turn; the model answers with
`<think>monologue</think>` followed by the next step (optionally in <solution></solution>).
"""

from __future__ import annotations

import hashlib

# Column name -> short description. Order is the column order on disk.
SRL_COLUMNS: dict[str, str] = {
    "id": "instance id: '<trajectory_id>/<step_index>'",
    "trajectory_id": "id of the source trajectory (source id column, else a content hash)",
    "source_row": "0-based row number in the source",
    "step_index": "0-based index of the target step",
    "num_steps": "N, the number of steps in the trajectory",
    "problem": "the problem statement (for agents: the issue / first user message)",
    "context_steps": "list[str]: the expert steps shown before the target",
    "target": "the expert's next step: the text the reward compares against (for agents: the action)",
    "target_title": "the step's title when the solution used `N. **Title** body`, else null",
    "target_hash": "step_hash(target): joins to embeddings",
    "answer": "the trajectory's final answer when known, else null",
    "strategy": "segmentation strategy used for this trajectory",
    "prompt": "list[{role, content}]: system + user messages",
}

RLVR_COLUMNS: dict[str, str] = {
    "id": "the trajectory id",
    "source_row": "0-based row number in the source",
    "problem": "the problem statement",
    "answer": "the verified final answer (from an answer column, \\boxed{} or '#### N')",
    "prompt": "list[{role, content}]: the evaluation prompt, asking for \\boxed{}",
}

REJECT_COLUMNS: dict[str, str] = {
    "source_row": "0-based row number in the source (-1 when the row could not be read at all)",
    "trajectory_id": "the id when one could be read, else null",
    "table": "'all' (row dropped from both tables) or 'rlvr' (dropped from RLVR only)",
    "reason": "a short machine-readable reason, e.g. 'missing_field:solution', 'no_steps'",
    "detail": "a human-readable detail (truncated)",
}

EMBED_COLUMNS: dict[str, str] = {
    "target_hash": "step_hash(text)",
    "embedding": "list[float]: L2-normalised vector",
}

# Column name -> on-disk type, in the same order. `srlkit.data.shards` maps these names to
# polars dtypes; "messages" is list[{role: str, content: str}].
COLUMN_TYPES: dict[str, dict[str, str]] = {
    "srl": {
        "id": "str", "trajectory_id": "str", "source_row": "int64", "step_index": "int32",
        "num_steps": "int32", "problem": "str", "context_steps": "list[str]", "target": "str",
        "target_title": "str", "target_hash": "str", "answer": "str", "strategy": "str",
        "prompt": "messages",
    },
    "rlvr": {"id": "str", "source_row": "int64", "problem": "str", "answer": "str", "prompt": "messages"},
    "rejects": {"source_row": "int64", "trajectory_id": "str", "table": "str", "reason": "str", "detail": "str"},
}
for _name, _described in (("srl", SRL_COLUMNS), ("rlvr", RLVR_COLUMNS), ("rejects", REJECT_COLUMNS)):
    assert list(COLUMN_TYPES[_name]) == list(_described), f"schema.py: {_name} columns and types disagree"

SRL_TABLE = "srl"
RLVR_TABLE = "rlvr"
SPLITS = ("train", "validation")


def step_hash(text: str) -> str:
    """Content hash of a step, the join key between SRL rows and embeddings.

    >>> len(step_hash("x = 2")), step_hash("x = 2") == step_hash("x = 2")
    (16, True)
    """
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def shard_name(split: str, index: int, total: int) -> str:
    """Hub-style shard file name.

    >>> shard_name("train", 0, 3)
    'train-00000-of-00003.parquet'
    """
    return f"{split}-{index:05d}-of-{total:05d}.parquet"


# --------------------------------------------------------------------------- run folders
# A training run folder (`srlkit train --out RUN`):
#
#   RUN/manifest.json               stage "train", config, inputs (data path + content id); "complete":
#                                   false while it runs, then every file with its sha256
#   RUN/config.toml                 the resolved TrainConfig
#   RUN/state.json                  {"phase", "phase_index", "step", "done": [phases], "finished": bool}
#   RUN/metrics.jsonl               one JSON object per optimizer step, keys in METRIC_KEYS, plus
#                                   reward/<name> per reward component and score/<count> (format failures, scoring errors)
#   RUN/eval.jsonl                  one object per validation: {"phase","step","val/reward_mean",...}
#   RUN/samples/<phase>-<step:06d>.jsonl   a few completions with their rewards
#   RUN/tb/                         TensorBoard events
#   RUN/checkpoints/<phase>-<step:06d>/    trainer state for --resume (weights/adapter, optimizer,
#                                   scheduler, RNG, data cursor, phase+step, config; checksums.json:
#                                   the sha256 of each, written last and checked on resume)
#   RUN/<phase>/best/, RUN/<phase>/final/  HF-format models (adapter folders when LoRA)
#   RUN/final/                      the curriculum's last model, merged, loads with transformers alone
#   RUN/final/adapter/              (LoRA) the adapter alone, loads with peft
#   RUN/summary.json                per phase: steps, best val, wall time, time split

METRIC_KEYS = (
    "phase", "step", "global_step", "time",
    "reward/mean", "reward/std",
    "sampling/filter_rate", "sampling/attempts", "sampling/dropped_equal",
    "loss", "clip_frac", "kl", "entropy", "grad_norm", "lr",
    "completion/len_mean", "completion/truncated_frac",
    "tokens_per_s", "time/generate", "time/reward", "time/update",
)
