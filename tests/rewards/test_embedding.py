"""The embedding reward: joins expert vectors by target_hash; clear errors when they are missing."""

from __future__ import annotations

import polars as pl
import pytest

from srlkit.config import EmbedConfig, RewardSpec
from srlkit.errors import DataError
from srlkit.rewards import make_reward
from srlkit.rewards.scorer import build_scorer
from tests.helpers.data import make_dataset


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    from srlkit.embed.run import embed_dataset

    d = make_dataset(tmp_path_factory.mktemp("emb-reward") / "data")
    embed_dataset(d, EmbedConfig())
    return d


@pytest.fixture(scope="module")
def rows(embedded) -> list[dict]:
    df = pl.read_parquet(sorted((embedded / "srl").glob("train-*.parquet"))[0])
    return df.head(3).to_dicts()


def test_reward_joins_expert_vectors(embedded, rows):
    fn = make_reward("embedding", data_dir=embedded)
    comps = [f"<think>copy</think>{rows[0]['target']}",  # the expert step itself
             "<think>x</think>The weather in Paris is mild in spring.",
             "no think block"]
    vals = fn(comps, rows[:1] * 3)
    assert vals[0] == pytest.approx(1.0, abs=1e-5)  # cos 1 -> 1.0
    assert 0.0 <= vals[1] < 0.8
    assert vals[2] == -1.0 and fn.last_stats["format/missing_think"] == 1.0
    # mapped to [0, 1]: (cos + 1) / 2, against the stored vector of each row's own step
    other = fn([f"<think>t</think>{rows[1]['target']}"], [rows[1]])
    assert other == [pytest.approx(1.0, abs=1e-5)]
    # the encoder is loaded once and reused
    enc = fn.encoder()
    fn(comps, rows[:1] * 3)
    assert fn.encoder() is enc


def test_missing_vector_names_the_fix(embedded, rows):
    fn = make_reward("embedding", data_dir=embedded)
    bad = dict(rows[0], target="a step that was never embedded", target_hash="0123456789abcdef")
    with pytest.raises(DataError, match=f"srlkit embed {embedded}"):
        fn(["<think>t</think>x"], [bad])


def test_missing_embeddings_folder_names_the_fix(tmp_path):
    with pytest.raises(DataError, match=r"run `srlkit embed .* --model other/model`"):
        make_reward("embedding", data_dir=tmp_path, model="other/model")


def test_scorer_passes_data_dir_and_mixes(embedded, rows):
    specs = [RewardSpec(name="mixed", params={"components": [
        {"name": "step_similarity", "weight": 0.5},
        {"name": "embedding", "weight": 0.5},
    ]})]
    with build_scorer(specs, embedded) as scorer:
        res = scorer([f"<think>t</think>{rows[0]['target']}", "broken"], rows[:1] * 2)
    assert res.total[0] == pytest.approx(1.0, abs=1e-5)
    assert res.total[1] == -1.0  # -1 from both components, halved and summed
    assert res.components["mixed/step_similarity"] == [1.0, -1.0]
    assert res.components["mixed/embedding"][1] == -1.0
    assert res.stats["format_failures"] == 1.0
