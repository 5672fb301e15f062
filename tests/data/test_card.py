"""The dataset card is regenerated from manifest.json, embeddings included."""

from __future__ import annotations

import json

import polars as pl

from srlkit.config import DecomposeConfig
from srlkit.data.card import write_card
from srlkit.data.decompose import decompose
from tests.helpers import ASSETS


def test_card_front_matter_stats_and_embeddings(tmp_path):
    import datasets
    import yaml

    out = tmp_path / "d"
    decompose(DecomposeConfig(source=str(ASSETS / "gsm8k.jsonl"), preset="gsm8k", val_size=0.0), out,
              command="srlkit decompose gsm8k.jsonl --preset gsm8k", show_progress=False)
    card = (out / "README.md").read_text()
    meta = yaml.safe_load(card.split("---")[1])
    assert {c["config_name"] for c in meta["configs"]} == {"srl", "rlvr"}
    assert "srlkit decompose gsm8k.jsonl --preset gsm8k" in card
    assert "accepted + rejected = input: 6 + 0 = 6" in card and "`paragraph` | 6" in card

    # what `srlkit embed` does: write vectors, record them in the manifest, regenerate the card
    srl = pl.read_parquet(out / "srl" / "*.parquet")
    emb = out / "embeddings" / "mini"
    emb.mkdir(parents=True)
    pl.DataFrame({"target_hash": srl["target_hash"].unique().sort(),
                  "embedding": [[0.0, 1.0]] * srl["target_hash"].n_unique()}).write_parquet(emb / "embeddings-00000.parquet")
    m = json.loads((out / "manifest.json").read_text())
    m["embeddings"] = {"mini": {"model": "all-MiniLM-L6-v2", "dimension": 2, "path": "embeddings/mini"}}
    (out / "manifest.json").write_text(json.dumps(m))
    write_card(out)
    card = (out / "README.md").read_text()
    assert "## Embeddings" in card and "- dimension: `2`" in card
    vecs = datasets.load_dataset(str(out), "embeddings-mini", split="train")
    assert vecs.num_rows == srl["target_hash"].n_unique()
    assert datasets.load_dataset(str(out), "srl", split="train").num_rows == srl.height


def test_card_has_steps_histogram_png(tmp_path):
    from srlkit.config import DecomposeConfig
    from srlkit.data.decompose import decompose

    out = tmp_path / "champ"
    decompose(DecomposeConfig(limit=30), out)
    png = out / "steps_hist.png"
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![Steps per trajectory](steps_hist.png)" in (out / "README.md").read_text()


def test_histogram_counts_from_the_manifest_equal_the_shards(tmp_path):
    """The histogram's counts come from the manifest's statistics; they must be what the SRL shards hold,
    also when `--targets` leaves one-step trajectories out of the table."""
    import pytest

    from srlkit.data.card import steps_counts

    rows = [{"id": f"r{i}", "problem": f"Problem {i}?", "solution": "\n".join(
        f"{k}. **Step {k}** compute the value number {i}" for k in range(1, 2 + i % 4)) if i % 3 else
        f"Only one sentence of working for {i}."} for i in range(40)]
    src = tmp_path / "r.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cases = [(str(src), {"targets": "skip-first", "min_trajectory_steps": 1}),
             (str(src), {"targets": "all", "min_trajectory_steps": 1}),
             (str(ASSETS / "agent_turns.jsonl"), {"steps": "turns", "targets": "skip-last"})]
    for j, (source, opts) in enumerate(cases):
        out = tmp_path / f"o{j}"
        decompose(DecomposeConfig(source=source, val_size=0.0, **opts), out, show_progress=False)
        from_manifest = sorted(steps_counts(out))
        (out / "manifest.json").rename(out / "m.json")
        assert from_manifest == sorted(steps_counts(out)) and from_manifest, opts
    with pytest.raises(AssertionError):  # the check above can fail: one-step trajectories are really left out
        assert sorted(steps_counts(tmp_path / "o0")) == sorted(steps_counts(tmp_path / "o1"))
