"""Embedding-similarity reward: cosine(encoded action, precomputed expert vector), mapped to [0, 1].

Expert vectors come from `srlkit embed DIR --model M` and are joined on `row["target_hash"]`.
The action encoder is loaded once, on the first batch, and encodes the whole batch in one
call. Both sides are L2-normalised, so the cosine is a dot product; `(cos + 1) / 2` maps it
to [0, 1], on the same scale as step similarity. Format failures get `penalty`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from srlkit.embed.store import embed_command, load_vectors, resolve_model
from srlkit.errors import ConfigError, DataError
from pydantic import Field

from srlkit.rewards.base import Reward, RewardParams, register
from srlkit.rewards.parse import parse_completion
from srlkit.schema import step_hash


class EmbeddingSimilarity(Reward):
    def __init__(self, data_dir: Path, model: str | None, penalty: float, batch_size: int,
                 device: str | None, prefilled_think: bool) -> None:
        super().__init__()
        self.data_dir, self.model_name = Path(data_dir), model
        self.penalty, self.batch_size, self.device = float(penalty), int(batch_size), device
        self.prefilled_think = prefilled_think
        self.index, self.matrix = load_vectors(self.data_dir, model)  # fails early, with the fix
        self._encoder = None

    def encoder(self):
        if self._encoder is None:  # loaded once, on the first batch (shared with `srlkit embed`)
            from srlkit.config import EmbedConfig
            from srlkit.embed.run import load_encoder

            self._encoder = load_encoder(resolve_model(self.model_name), EmbedConfig(device=self.device))
        return self._encoder

    def _expert_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[int]:
        out = []
        for row in rows:
            h = row.get("target_hash") or step_hash(str(row["target"]))
            if h not in self.index:
                raise DataError(
                    f"no expert vector for step {h} in {self.data_dir}/embeddings; the embeddings are "
                    f"older than the data: run `{embed_command(self.data_dir, self.model_name)}`"
                )
            out.append(self.index[h])
        return out

    def __call__(self, completions: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> list[float]:
        import numpy as np

        values = [self.penalty] * len(completions)
        reasons: Counter[str] = Counter()
        actions, where = [], []
        for i, text in enumerate(completions):
            parsed = parse_completion(text, prefilled_think=self.prefilled_think)
            if parsed.failure:
                reasons[parsed.failure] += 1
            else:
                actions.append(parsed.action)
                where.append(i)
        experts = self._expert_rows([rows[i] for i in where])
        if actions:
            vecs = self.encoder().encode(actions, batch_size=self.batch_size, normalize_embeddings=True,
                                         convert_to_numpy=True, show_progress_bar=False)
            cos = np.einsum("ij,ij->i", np.asarray(vecs, np.float32), self.matrix[experts])
            for i, c in zip(where, np.clip((cos + 1.0) / 2.0, 0.0, 1.0).tolist(), strict=True):
                values[i] = float(c)
        self.last_stats = {"format_failures": float(sum(reasons.values()))}
        self.last_stats.update({f"format/{k}": float(n) for k, n in sorted(reasons.items())})
        return values

    def close(self) -> None:
        self._encoder = None


class EmbeddingParams(RewardParams):
    data_dir: str | Path | None = None  # filled in by build_scorer from train.data
    model: str | None = None
    penalty: float = -1.0
    batch_size: int = Field(64, ge=1)
    device: str | None = None
    prefilled_think: bool = False


@register("embedding", params=EmbeddingParams)
def embedding(
    data_dir: str | Path | None = None,
    model: str | None = None,
    penalty: float = -1.0,
    batch_size: int = 64,
    device: str | None = None,
    prefilled_think: bool = False,
) -> EmbeddingSimilarity:
    """Cosine of action vs expert step in [0, 1]; needs `srlkit embed DIR [--model M]` first.

    `data_dir` is filled in by `build_scorer(specs, data_dir)`; `model` must match the
    `--model` given to `srlkit embed` (default: the packaged all-MiniLM-L6-v2).

    >>> import tempfile
    >>> embedding(data_dir=tempfile.mkdtemp())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    srlkit.errors.DataError: no expert embeddings for model ... run `srlkit embed ...`
    """
    if data_dir is None:
        raise ConfigError("the embedding reward needs the dataset folder (train.data) holding its embeddings")
    return EmbeddingSimilarity(Path(data_dir), model, penalty, batch_size, device, prefilled_think)
