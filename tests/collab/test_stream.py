"""CollabRegressor on ratings streamed from parquet: vocabularies, mean and seen pairs
as an in-memory fit on the same training rows finds them, predictions on a dataset as
on a frame, bad input named before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collab import CollabRegressor
from deepfit.stream import open_dataset, row_hash
from tests.collab.test_estimator import low_rank_ratings

FAST = dict(n_factors=8, epochs=3, verbose=0, random_state=0)


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    X, y, _ = low_rank_ratings(60, 40, density=0.5, seed=3)
    frame = X.assign(user="u" + X["user"].astype(str), rating=y)
    folder = tmp_path_factory.mktemp("ratings") / "r"
    folder.mkdir()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.slice(0, 700), folder / "a.parquet", row_group_size=300)
    pq.write_table(table.slice(700), folder / "b.parquet", row_group_size=300)
    return str(folder), pq.read_table(folder).to_pandas()


def training_rows(path: str, frame: pd.DataFrame, frac: float, seed: int) -> np.ndarray:
    """Which rows of ``frame`` (the files' rows in order) a streamed fit trains on."""
    frags = open_dataset(path).fragments
    return np.concatenate([row_hash(f.index, 0, f.n_rows, seed) >= frac for f in frags])


def test_streamed_fit_finds_what_an_in_memory_fit_of_its_training_rows_finds(ratings):
    path, frame = ratings
    est = CollabRegressor(**FAST, validation_fraction=0.2).fit(path, "rating")
    train = training_rows(path, frame, 0.2, est._seed)
    assert 0.7 < train.mean() < 0.9
    rows = frame[train]
    np.testing.assert_array_equal(est.users_, np.sort(rows["user"].unique()))
    np.testing.assert_array_equal(est.items_, np.sort(rows["item"].unique()))
    assert est.global_mean_ == pytest.approx(rows["rating"].mean(), rel=1e-12)
    assert est.seen_.nnz == len(rows)  # each pair once
    u = est.users_.get_indexer(rows["user"])
    i = est.items_.get_indexer(rows["item"])
    assert est.seen_[u, i].all()
    assert est.history_["valid_loss"].notna().all()  # the hash split's other rows
    np.testing.assert_allclose(
        est.predict(path), est.predict(frame[["user", "item"]]), rtol=1e-6
    )
    assert np.sqrt(np.mean((est.predict(path) - frame["rating"]) ** 2)) < 1.0


def test_streamed_collab_fit_is_reproducible_and_takes_weights(ratings, tmp_path):
    path, frame = ratings
    a = CollabRegressor(**FAST).fit(path, "rating")
    b = CollabRegressor(**FAST).fit(path, "rating")
    np.testing.assert_array_equal(a.predict(path), b.predict(path))
    weighted = frame.assign(w=np.where(frame["item"] < 20, 1.0, 0.0))
    pq.write_table(
        pa.Table.from_pandas(weighted, preserve_index=False), tmp_path / "w.parquet"
    )
    est = CollabRegressor(**FAST, validation_fraction=0.0).fit(
        tmp_path / "w.parquet", "rating", sample_weight="w"
    )
    kept = weighted["w"] > 0
    assert est.global_mean_ == pytest.approx(frame["rating"][kept].mean(), rel=1e-9)


def test_streamed_collab_bad_input_is_named_before_training(ratings, tmp_path):
    path, frame = ratings
    est = CollabRegressor(**FAST)
    with pytest.raises(ValueError, match="'stars'"):
        est.fit(path, "stars")
    with pytest.raises(ValueError, match="names the target column"):
        est.fit(path, frame["rating"])
    bad = frame.copy()
    bad.loc[900, "rating"] = np.inf
    pq.write_table(
        pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "b.parquet"
    )
    with pytest.raises(ValueError, match="'rating' holds NaN or infinite"):
        est.fit(tmp_path / "b.parquet", "rating")
    bad = frame.astype({"user": object})
    bad.loc[3, "user"] = None
    pq.write_table(
        pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "c.parquet"
    )
    with pytest.raises(ValueError, match="missing ids"):
        est.fit(tmp_path / "c.parquet", "rating")
    assert not hasattr(est, "module_")


def test_the_recommender_refuses_a_stream_naming_what_streams(ratings):
    from collab import CollabRecommender

    path, _ = ratings
    with pytest.raises(ValueError, match="CollabRegressor"):
        CollabRecommender().fit(path)
