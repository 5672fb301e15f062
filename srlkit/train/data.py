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
    """Chat template with the generation prompt, as token ids (no extra BOS)."""
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True, tokenize=False)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_target(tokenizer: Any, text: str) -> list[int]:
    """An expert completion (SFT): its tokens followed by EOS, as the model should end it."""
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return ids


class PromptTable:
    """One split of a phase's table with tokenised prompts; `take(n)` advances the cursor."""

    def __init__(self, rows: list[dict[str, Any]], tokenizer: Any, *, seed: int, max_prompt_tokens: int):
        self.tokenizer = tokenizer
        self.seed = seed
        self.rows: list[dict[str, Any]] = []
        self.prompt_ids: list[list[int]] = []
        self.too_long = 0
        for r in rows:
            ids = encode_prompt(tokenizer, r["prompt"])
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

    def _order_for(self, epoch: int) -> list[int]:
        if self._order_epoch != epoch:
            order = list(range(len(self.rows)))
            random.Random(f"{self.seed}:{epoch}").shuffle(order)
            self._order, self._order_epoch = order, epoch
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
