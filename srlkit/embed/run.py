"""`srlkit embed`: encode every distinct expert step of a decomposed dataset, once.

Stages: collect the SRL targets -> dedup by `target_hash` -> sort by length (batches of
similar length waste little padding) -> plan fixed shards -> encode each missing shard ->
write it atomically -> record the model in the manifest -> regenerate the card.
The plan (the ordered hashes, the model, the dtype) is fingerprinted in `_plan.json`, so a
rerun after an interruption skips finished shards. A changed dataset or model gets
a fresh folder's worth of shards, never a mix.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from srlkit.config import EmbedConfig
from srlkit.embed.store import EmbedModel, embeddings_dir, read_manifest, resolve_model
from srlkit import stage
from srlkit.errors import DataError, StageError
from srlkit.fileio import atomic_path, write_json
from srlkit.schema import SRL_TABLE, step_hash

SHARD_SIZE = 20_000  # steps per shard: the unit of resume
PLAN_FILE = "_plan.json"


@dataclass
class EmbedStats:
    steps: int = 0  # SRL rows read
    distinct: int = 0  # after dedup by hash
    shards: int = 0
    shards_done_before: int = 0  # found finished from an earlier run
    dim: int = 0


def collect_steps(data_dir: Path, files: list[Path] | None = None) -> tuple[dict[str, str], int]:
    """(target_hash -> target text, rows read) over every SRL split (`files`: the shards the
    manifest lists), deduplicated."""
    import polars as pl

    files = sorted((Path(data_dir) / SRL_TABLE).glob("*.parquet")) if files is None else files
    if not files:
        raise DataError(f"no SRL table under {data_dir}/{SRL_TABLE}/; run `srlkit decompose --out {data_dir}` first")
    steps: dict[str, str] = {}
    rows = 0
    for f in files:
        names = pl.read_parquet_schema(f)
        if "target" not in names:
            raise DataError(f"{f} has no 'target' column; is {data_dir} a `srlkit decompose` folder?")
        cols = ["target", "target_hash"] if "target_hash" in names else ["target"]
        df = pl.read_parquet(f, columns=cols)
        rows += df.height
        hashes = df["target_hash"].to_list() if "target_hash" in cols else [step_hash(t) for t in df["target"]]
        for h, t in zip(hashes, df["target"].to_list(), strict=True):
            steps.setdefault(h, t)
    return steps, rows


def plan_shards(steps: dict[str, str], shard_size: int) -> list[list[str]]:
    """Hashes ordered by (text length, hash), cut into shards: deterministic for the same data."""
    order = sorted(steps, key=lambda h: (len(steps[h]), h))
    return [order[i:i + shard_size] for i in range(0, len(order), shard_size)] or [[]]


def shard_file(index: int, total: int) -> str:
    return f"embeddings-{index:05d}-of-{total:05d}.parquet"


def _fingerprint(em: EmbedModel, cfg: EmbedConfig, plan: list[list[str]]) -> str:
    h = hashlib.sha256(json.dumps([em.name, em.revision, cfg.dtype, [len(s) for s in plan]]).encode())
    for shard in plan:
        h.update("\n".join(shard).encode())
    return h.hexdigest()


def _ours(name: str) -> bool:
    return name == PLAN_FILE or bool(_SHARD.fullmatch(name))


_SHARD = re.compile(r"embeddings-\d{5}-of-\d{5}\.parquet")


def _prepare_folder(out: Path, fingerprint: str) -> None:
    """Keep finished shards only when they belong to the same plan; else remove the shards of the
    old plan (only files srlkit names: anything else in the folder is refused, never deleted)."""
    plan_path = out / PLAN_FILE
    if out.exists():
        stage.check_path(out, "embeddings folder")
        foreign = sorted(n for n in os.listdir(out) if not _ours(n))
        if foreign:
            raise StageError(f"{out} holds files srlkit did not write ({', '.join(foreign[:3])}); move them away "
                             "and run `srlkit embed` again")
        try:
            old = json.loads(plan_path.read_text()) if plan_path.is_file() else {}
        except ValueError:  # a damaged plan: its shards are of no known plan
            old = {}
        if old.get("fingerprint") != fingerprint:
            stage.clear(out, {"complete": False, "files": {}})
    out.mkdir(parents=True, exist_ok=True)
    write_json(plan_path, {"fingerprint": fingerprint}, ensure_ascii=True)


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def load_encoder(em: EmbedModel, cfg: EmbedConfig):
    """The SentenceTransformer, in half precision on GPU when `--dtype float16`.

    Kept for the process (at most two models), so `embed` then the `embedding` reward,
    or a second `embed`, do not load the same weights again.
    """
    return _cached_encoder(em.load, em.name, cfg.device, cfg.dtype == "float16")


@functools.lru_cache(maxsize=2)
def _cached_encoder(load: str, name: str, device: str | None, half_on_gpu: bool):
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own bar is the one the user watches
    try:
        model = SentenceTransformer(load, device=device)
    except OSError as e:
        raise DataError(f"cannot load embedding model '{name}': {str(e).splitlines()[0]}") from None
    if half_on_gpu and model.device.type == "cuda":
        model.half()
    return model


def encode(model, texts: list[str], batch_size: int):
    """L2-normalised float32 vectors, [len(texts) x D]. `texts` arrive length-sorted."""
    import numpy as np

    vecs = model.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
                        show_progress_bar=False)
    return np.asarray(vecs, dtype=np.float32)


def embed_dataset(
    data_dir: Path, cfg: EmbedConfig, *, shard_size: int = SHARD_SIZE,
    on_shard: Callable[[int, int], None] | None = None,
) -> Path:
    """Write `DIR/embeddings/<slug>/` for `cfg.model`; returns that folder.

    `on_shard(done, total)` is called after each shard is written (progress, tests).
    """
    return embed_with_stats(data_dir, cfg, shard_size=shard_size, on_shard=on_shard)[0]


def embed_with_stats(
    data_dir: Path, cfg: EmbedConfig, *, shard_size: int = SHARD_SIZE,
    on_shard: Callable[[int, int], None] | None = None,
) -> tuple[Path, EmbedStats]:
    """`embed_dataset`, also returning what was done (for the CLI summary)."""
    import numpy as np

    from srlkit.progress import progress

    data_dir = Path(data_dir)
    if cfg.batch_size < 1 or shard_size < 1:
        raise DataError("--batch-size and the shard size must be at least 1")
    srl = stage.require(data_dir, "decompose", flag="DIR", select=lambda r: r.startswith(f"{SRL_TABLE}/"))
    steps, rows = collect_steps(data_dir, [data_dir / r for r in sorted(srl["files"]) if r.startswith(f"{SRL_TABLE}/")])
    em = resolve_model(cfg.model)
    out = embeddings_dir(data_dir, em.slug)
    plan = plan_shards(steps, shard_size)
    _prepare_folder(out, _fingerprint(em, cfg, plan))
    stats = EmbedStats(steps=rows, distinct=len(steps), shards=len(plan))
    todo = [i for i in range(len(plan)) if not (out / shard_file(i, len(plan))).is_file()]
    stats.shards_done_before = len(plan) - len(todo)
    model = load_encoder(em, cfg) if todo else None
    np_dtype = np.float16 if cfg.dtype == "float16" else np.float32
    chunk = cfg.batch_size * 16  # progress granularity; the encoder still batches by batch_size
    with progress() as bar:
        task = bar.add_task("embed", total=sum(len(plan[i]) for i in todo), info=em.slug)
        for n, i in enumerate(todo):
            hashes = plan[i]
            parts = []
            for part in _batches(hashes, chunk):
                parts.append(encode(model, [steps[h] for h in part], cfg.batch_size))
                bar.advance(task, len(part))
            vecs = np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)
            _write_shard(out / shard_file(i, len(plan)), hashes, vecs.astype(np_dtype))
            if on_shard:
                on_shard(n + 1, len(todo))
    stats.dim = _dimension(out, model)
    _record(data_dir, em, cfg, stats, out)
    return out, stats


def _write_shard(path: Path, hashes: list[str], vecs) -> None:
    import polars as pl

    df = pl.DataFrame({"target_hash": pl.Series(hashes, dtype=pl.String), "embedding": pl.Series(vecs)})
    with atomic_path(path) as tmp:
        df.write_parquet(tmp, compression="zstd", statistics=True)


def _dimension(out: Path, model) -> int:
    if model is not None:
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())
    import polars as pl

    first = sorted(out.glob("embeddings-*.parquet"))[0]
    shape = pl.read_parquet_schema(first)["embedding"]
    return int(getattr(shape, "size", 0) or 0)


def _record(data_dir: Path, em: EmbedModel, cfg: EmbedConfig, stats: EmbedStats, out: Path) -> None:
    """manifest.json["embeddings"][slug], then the dataset card (written by `srlkit.data.card`)."""
    manifest = read_manifest(data_dir)
    manifest.setdefault("embeddings", {})[em.slug] = {
        "model": em.name,
        "revision": em.revision,
        "dimension": stats.dim,
        "dtype": cfg.dtype,
        "normalized": True,
        "path": str(out.relative_to(data_dir)),
        "vectors": stats.distinct,
        "srl_rows": stats.steps,
        "shards": stats.shards,
        "join": "srl.target_hash = embeddings.target_hash",
        # the files are the dataset's too: push uploads them, a new decompose clears them
        "files": {(out / f).relative_to(data_dir).as_posix(): stage.file_info(out / f)
                  for f in sorted(os.listdir(out)) if _ours(f)},
        "command": f"srlkit embed {data_dir}" + (f" --model {cfg.model}" if cfg.model else "")
        + f" --dtype {cfg.dtype}",
    }
    write_json(data_dir / "manifest.json", manifest)
    if "counts" not in manifest:  # not a `srlkit decompose` folder: no card to regenerate
        return
    try:
        from srlkit.data.card import write_card
    except ImportError:  # pragma: no cover - the card module ships with srlkit.data
        return
    write_card(data_dir)
