"""Tabular estimators on parquet data streamed from disk: the one-pass preprocessing
equals an in-memory fit where it is exact, predictions on a dataset equal predictions on
the same rows as a DataFrame, and bad input fails before training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from sklearn.utils.class_weight import compute_sample_weight

from deepfit.data import arrow_to_pandas
from deepfit.stream import RowSample, open_dataset, read_frames
from tabular import TabularClassifier, TabularPreprocessor, TabularRegressor
from tests.tabular.test_estimator import FAST

FEATURES = ["shop", "size", "kind", "n", "x", "when"]


def make_table(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Strings with missing values, a dictionary column, an integer column with few
    levels, continuous values with missing ones, dates; a label and a skewed price."""
    rng = np.random.default_rng(seed)
    shop = rng.choice([f"s{i}" for i in range(40)] + [None], n)
    size = pd.Categorical(rng.choice(["S", "M", "L"], n))
    x = rng.normal(3, 2, n)
    x[rng.random(n) < 0.1] = np.nan
    n_items = rng.integers(0, 6, n)
    score = np.nan_to_num(x, nan=3.0) - 3 + (size == "L") * 1.5 + (n_items > 3)
    return pd.DataFrame(
        {
            "shop": shop,
            "size": size,
            "kind": rng.choice([True, False], n),
            "n": n_items,
            "x": x,
            "when": pd.Timestamp("2021-01-01")
            + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
            "label": np.where(score > 0.5, "yes", "no"),
            "price": np.exp(score / 2 + rng.normal(0, 0.3, n)),
        }
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[str, pd.DataFrame]:
    """The table as two parquet files of several row groups each."""
    folder = tmp_path_factory.mktemp("stream") / "table"
    folder.mkdir()
    df = make_table()
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table.slice(0, 2500), folder / "a.parquet", row_group_size=600)
    pq.write_table(table.slice(2500), folder / "b.parquet", row_group_size=600)
    # What a reader of the files gets in memory (Arrow-backed columns).
    frame = arrow_to_pandas(pq.read_table(folder))
    return str(folder), frame


def test_streamed_preprocessing_equals_in_memory_where_exact(data):
    path, frame = data
    frags = open_dataset(path).fragments
    pre = TabularPreprocessor(int_levels=10, min_frequency=20)
    pre.fit_frames(
        read_frames(frags, list(frame.columns)), RowSample(10**6, 0), FEATURES
    )
    ref = TabularPreprocessor(int_levels=10, min_frequency=20).fit(frame[FEATURES])
    for name in (
        "cat_features_",
        "cont_features_",
        "date_features_",
        "int_cat_features_",
        "cat_names_",
        "cont_names_",
        "cardinalities_",
        "na_sources_",
        "has_na_",
    ):
        assert getattr(pre, name) == getattr(ref, name), name
    assert pre.int_cat_features_ == ["n"] and pre.has_na_["shop"]
    for col in pre.cat_names_:
        pd.testing.assert_index_equal(pre.categories_[col], ref.categories_[col])
    np.testing.assert_allclose(pre.means_, ref.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pre.scales_, ref.scales_, rtol=1e-9)
    np.testing.assert_array_equal(pre.lows_, ref.lows_)
    np.testing.assert_array_equal(pre.highs_, ref.highs_)
    np.testing.assert_array_equal(pre.held_, ref.held_)
    assert pre.held_.any() and not pre.held_.all()
    # A sample of every row: the medians are exact too.
    assert pre.medians_ == ref.medians_
    codes, cont = pre.transform_arrays(frame)
    codes_ref, cont_ref = ref.transform_arrays(frame)
    np.testing.assert_array_equal(codes, codes_ref)
    np.testing.assert_allclose(cont, cont_ref, atol=1e-5)


def test_streamed_medians_come_from_the_documented_sample(data):
    path, frame = data
    frags = open_dataset(path).fragments
    pre = TabularPreprocessor()
    pre.fit_frames(read_frames(frags, FEATURES), RowSample(400, 0))
    x = frame["x"].dropna().to_numpy(np.float64)
    rank = (x < pre.medians_["x"]).mean()
    # RowSample: the rank's standard error is about 0.5 / sqrt(400) = 0.025.
    assert abs(rank - 0.5) < 4 * 0.025


@pytest.mark.parametrize("source", ["folder", "files", "dataset"])
def test_predictions_on_a_dataset_equal_those_on_the_frame(data, source, tmp_path):
    path, frame = data
    X = {
        "folder": path,
        "files": sorted(str(p) for p in __import__("pathlib").Path(path).glob("*")),
        "dataset": ds.dataset(path),
    }[source]
    clf = TabularClassifier(**{**FAST, "n_members": 2}).fit(
        X, "label", sample_weight=None
    )
    assert list(clf.feature_names_in_) == [*FEATURES, "price"]
    rows = frame.drop(columns="label")
    np.testing.assert_allclose(clf.predict_proba(X), clf.predict_proba(rows), atol=1e-6)
    assert set(clf.classes_) == {"yes", "no"}
    assert clf.score(rows, frame["label"]) > 0.8
    out = clf.predict_proba(X, out=tmp_path / "p.parquet")
    written = pd.read_parquet(out)
    assert list(written.columns) == ["no", "yes"]
    np.testing.assert_allclose(written.to_numpy(), clf.predict_proba(rows), atol=1e-6)
    labels = pd.read_parquet(clf.predict(X, out=tmp_path / "l.parquet"))["prediction"]
    np.testing.assert_array_equal(labels.to_numpy(), clf.predict(rows))
    emb = clf.transform(X)
    pd.testing.assert_frame_equal(emb, clf.transform(rows).reset_index(drop=True))
    pd.testing.assert_frame_equal(
        pd.read_parquet(clf.transform(X, out=tmp_path / "t.parquet")), emb
    )


def test_streamed_regressor_reads_exact_target_scaling(data):
    path, frame = data
    reg = TabularRegressor(**FAST, log_target="auto").fit(path, "price")
    y = frame["price"].to_numpy(np.float64)
    assert reg.log_target_.tolist() == [True]
    np.testing.assert_allclose(reg.y_mean_, [np.log1p(y).mean()], rtol=1e-12)
    np.testing.assert_allclose(reg.y_scale_, [np.log1p(y).std()], rtol=1e-9)
    rows = frame.drop(columns="price")
    np.testing.assert_allclose(reg.predict(path), reg.predict(rows), rtol=1e-5)
    assert reg.score(rows, y) > 0.3


def test_streamed_regressor_with_several_targets_writes_a_column_each(data, tmp_path):
    path, frame = data
    reg = TabularRegressor(**FAST).fit(path, ["price", "n"])
    rows = frame.drop(columns=["price", "n"])
    assert reg.predict(path).shape == (len(frame), 2)
    written = pd.read_parquet(reg.predict(path, out=tmp_path / "p.parquet"))
    assert list(written.columns) == ["price", "n"]
    np.testing.assert_allclose(written.to_numpy(), reg.predict(rows), rtol=1e-5)


def test_streamed_fit_is_reproducible_and_holds_out_rows(data):
    path, _frame = data
    a = TabularClassifier(**{**FAST, "early_stopping": 2, "epochs": 3}).fit(
        path, "label"
    )
    b = TabularClassifier(**{**FAST, "early_stopping": 2, "epochs": 3}).fit(
        path, "label"
    )
    np.testing.assert_array_equal(a.predict_proba(path), b.predict_proba(path))
    assert a.history_["valid_loss"].notna().all()  # the hash split's rows


def test_streamed_class_weights_match_compute_sample_weight(data):
    path, frame = data
    clf = TabularClassifier(**FAST, class_weight="balanced").fit(path, "label")
    y = frame["label"].to_numpy()
    np.testing.assert_allclose(
        clf._stream_weights(y), compute_sample_weight("balanced", y), rtol=1e-12
    )


def test_streamed_bad_input_fails_before_training(data, tmp_path):
    path, frame = data
    clf = TabularClassifier(**FAST)
    with pytest.raises(ValueError, match="'nope'"):
        clf.fit(path, "nope")
    with pytest.raises(ValueError, match="names the target column"):
        clf.fit(path, frame["label"])
    with pytest.raises(FileNotFoundError, match=r"missing\.parquet"):
        clf.fit(tmp_path / "missing.parquet", "label")
    with pytest.raises(ValueError, match="eval_set"):
        clf.fit(path, "label", eval_set=(frame, frame["label"]))
    bad = frame.copy()
    bad.loc[3000, "price"] = np.nan  # in the second file only
    pq.write_table(
        pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "b.parquet"
    )
    with pytest.raises(ValueError, match="'price' holds NaN"):
        TabularRegressor(**FAST).fit(tmp_path / "b.parquet", "price")
    assert not hasattr(clf, "module_")
    fitted = TabularClassifier(**FAST).fit(path, "label")
    before = fitted.predict_proba(path)
    with pytest.raises(ValueError, match="holds missing values"):
        bad.loc[5, "label"] = None
        pq.write_table(
            pa.Table.from_pandas(bad, preserve_index=False), tmp_path / "c.parquet"
        )
        fitted.fit(tmp_path / "c.parquet", "label")
    np.testing.assert_array_equal(fitted.predict_proba(path), before)  # intact
    with pytest.raises(ValueError, match=r"seen in fit|does not have"):
        fitted.predict(ds.dataset(path).to_table(columns=["shop"]))


def test_a_streamed_fit_round_trips_through_save_load_and_pickle(data, tmp_path):
    import pickle

    import deepfit

    path, _frame = data
    clf = TabularClassifier(**FAST, class_weight="balanced").fit(path, "label")
    clf.save(tmp_path / "m.deepfit")
    for other in (
        deepfit.load(tmp_path / "m.deepfit"),
        pickle.loads(pickle.dumps(clf)),
    ):
        np.testing.assert_array_equal(
            other.predict_proba(path), clf.predict_proba(path)
        )


def test_out_never_overwrites_the_input_and_is_written_whole(data, tmp_path):
    """``out=`` naming an input file, or any file inside an input folder, is refused
    before anything is written (naming both paths); a prediction that fails half-way
    leaves the previous output file as it was, and no temporary file."""
    import shutil
    from pathlib import Path

    folder = tmp_path / "in"
    shutil.copytree(data[0], folder)
    files = sorted(folder.glob("*.parquet"))
    before = {p: p.read_bytes() for p in files}
    reg = TabularRegressor(**FAST).fit(folder, "price")
    for X, out in (
        (folder, files[0]),
        (folder, folder / "predictions.parquet"),  # the next read would take it in
        (str(files[0]), files[0]),
        ([str(p) for p in files], str(files[1])),
        (ds.dataset(folder), files[1]),
    ):
        with pytest.raises(ValueError, match=rf"{Path(out).name}'.*the input"):
            reg.predict(X, out=out)
        with pytest.raises(ValueError, match="input"):
            reg.transform(X, out=out)
    assert sorted(folder.iterdir()) == files
    assert {p: p.read_bytes() for p in files} == before

    out = tmp_path / "p.parquet"
    reg.predict(folder, out=out)
    written = out.read_bytes()
    calls = {"n": 0}
    real = reg._frame_outputs

    def fails_on_the_second_chunk(df):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the machine went away")
        return real(df)

    reg._frame_outputs = fails_on_the_second_chunk
    with pytest.raises(RuntimeError, match="went away"):
        reg.predict(folder, out=out)
    assert calls["n"] == 2
    assert out.read_bytes() == written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "p.parquet"]
