"""The phase's prompt table: read the parquet shards, apply the chat template, iterate with a cursor.

Iteration order is a seeded shuffle per epoch, and the position is a `Cursor` saved in
every checkpoint, so a resumed run draws exactly the prompts the uninterrupted run would.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from srlkit.errors import DataError


@dataclass
class Cursor:
    epoch: int = 0
    position: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def shard_files(data_dir: Path, table: str, split: str) -> list[Path]:
    """The split's shards as the dataset's manifest lists them (never a stray file beside them);
    a folder without a manifest's split list: the shards found on disk."""
    from srlkit.stage import read

    splits = (read(data_dir) or {}).get("splits")
    if isinstance(splits, dict):
        return [Path(data_dir) / rel for rel in splits.get(table, {}).get(split, [])]
    return sorted((Path(data_dir) / table).glob(f"{split}-*.parquet"))


def read_rows(data_dir: Path, table: str, split: str) -> list[dict[str, Any]]:
    """All rows of one split of one table, as dicts (small enough for memory: prompts, not tokens)."""
    import polars as pl

    files = shard_files(data_dir, table, split)
    if not files:
        if split == "validation":
            return []
        raise DataError(
            f"no {table}/{split}-*.parquet under {data_dir}; run `srlkit decompose --out {data_dir}` first"
        )
    frame = pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed")
    if "prompt" not in frame.columns:
        raise DataError(f"{data_dir}/{table} has no 'prompt' column; re-run `srlkit decompose`")
    return frame.to_dicts()


def encode_prompt(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """Chat template with the generation prompt, as token ids (no extra BOS).

    When the last message is the assistant's, it is a partial answer to continue: the
    template leaves its turn open (`continue_final_message`) instead of starting a new one.
    """
    messages = list(messages)
    if messages and messages[-1].get("role") == "assistant":
        text = tokenizer.apply_chat_template(messages, continue_final_message=True, tokenize=False)
    else:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def continuation_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    r"""An SRL row as the whole-solution prompt with the expert steps so far as the answer's start.

    The model sees exactly what it sees when it solves the problem in one go (the RLVR/eval
    prompt), with the previous steps already written one per line, and writes the next
    step. What SRL teaches then transfers to whole solutions unchanged. Rows without
    `context_steps` (RLVR rows) keep their own prompt.

    >>> continuation_prompt({"problem": "1 + 2 + 3 =", "context_steps": ["1 + 2 = 3"], "prompt": []})[-1]
    {'role': 'assistant', 'content': '1 + 2 = 3\n'}
    """
    from srlkit.data.templates import rlvr_prompt

    if "context_steps" not in row:
        return list(row["prompt"])
    msgs = rlvr_prompt(str(row["problem"]))
    steps = [str(s) for s in (row.get("context_steps") or [])]
    if steps:
        msgs.append({"role": "assistant", "content": "".join(f"{s}\n" for s in steps)})
    return msgs


def encode_target(tokenizer: Any, text: str, eos: bool = True) -> list[int]:
    """An expert completion (SFT): its tokens followed by EOS, as the model should end it."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if eos and tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


class PromptTable:
    """One split of a phase's table with tokenised prompts; `take(n)` advances the cursor."""

    def __init__(self, rows: list[dict[str, Any]], tokenizer: Any, *, seed: int, max_prompt_tokens: int,
                 style: str = "table"):
        self.tokenizer = tokenizer
        self.seed = seed
        self.rows: list[dict[str, Any]] = []
        self.prompt_ids: list[list[int]] = []
        self.too_long = 0
        for r in rows:
            ids = encode_prompt(tokenizer, continuation_prompt(r) if style == "continuation" else r["prompt"])
            if len(ids) > max_prompt_tokens:
                self.too_long += 1  # cutting a prompt would cut the problem: skip it, count it
                continue
            self.rows.append(r)
            self.prompt_ids.append(ids)
        self.cursor = Cursor()
        self._order: list[int] = []
        self._order_epoch = -1

    def __len__(self) -> int:
        return len(self.rows)

    def shard(self, rank: int, world: int) -> PromptTable:
        """Draw only this rank's share of each epoch's shuffle (every `world`-th prompt from
        `rank`): ranks draw disjoint prompts, each with its own cursor."""
        if 0 < len(self.rows) < world:
            raise DataError(f"{len(self.rows)} prompts cannot be split over {world} processes; use fewer processes")
        self._shard = (rank, world)
        self._order_epoch = -1
        return self

    def _order_for(self, epoch: int) -> list[int]:
        if self._order_epoch != epoch:
            order = list(range(len(self.rows)))
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
            rank, world = getattr(self, "_shard", (0, 1))
            self._order, self._order_epoch = order[rank::world], epoch
        return self._order

    def take(self, n: int) -> list[int]:
        """The next `n` row indices (wrapping into the next epoch's shuffle)."""
        if not self.rows:
            raise DataError("the prompt table is empty (all prompts too long?); raise rollout.max_prompt_tokens")
        out = []
        while len(out) < n:
            order = self._order_for(self.cursor.epoch)
            out.append(order[self.cursor.position])
            self.cursor.position += 1
            if self.cursor.position >= len(order):
                self.cursor = Cursor(self.cursor.epoch + 1, 0)
        return out

    def restore(self, cursor: dict[str, int]) -> None:
        self.cursor = Cursor(**cursor)
