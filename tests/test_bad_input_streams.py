"""Bad input on streamed parquet (issue 40): files that disagree on their columns or
types, pandas' index columns, weights that are zero in one file or name the target.
Each case either gives the answer the user meant or fails before training, naming the
file and the column; never another model built quietly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from collab import CollabRegressor
from tabular import TabularClassifier, TabularRegressor
from tests.tabular.test_estimator import FAST, make_data

COLLAB = dict(n_factors=4, epochs=1, verbose=0, random_state=0)


def table(n: int = 400, seed: int = 0) -> pd.DataFrame:
    X, y = make_data(n, seed)
    rng = np.random.default_rng(seed)
    return X.assign(code=rng.integers(0, 50, n), label=np.asarray(y))


def write(folder, *frames, **kwargs):
    folder.mkdir()
    for k, df in enumerate(frames):
        df.to_parquet(folder / f"part-{k}.parquet", **kwargs)
    return folder


def test_a_column_missing_from_one_file_is_refused_naming_file_and_column(tmp_path):
    df = table()
    folder = write(tmp_path / "d", df[:200].drop(columns="x"), df[200:])
    with pytest.raises(ValueError, match=r"'x' is in .*part-1.* but not in .*part-0"):
        TabularClassifier(**FAST).fit(folder, "label")
    # The same for a later file, and for a file that lacks the target.
    folder = write(tmp_path / "e", df[:200], df[200:].drop(columns="x"))
    with pytest.raises(ValueError, match=r"'x' is in .*part-0.* but not in .*part-1"):
        TabularClassifier(**FAST).fit(folder, "label")
    folder = write(tmp_path / "f", df[:200], df[200:].drop(columns="label"))
    with pytest.raises(ValueError, match=r"y: column 'label' is in .* not in .*part-1"):
        TabularClassifier(**FAST).fit(folder, "label")
    # At prediction: a file without a fitted feature column.
    est = TabularClassifier(**FAST).fit(write(tmp_path / "g", df), "label")
    folder = write(tmp_path / "h", df[:200], df[200:].drop(columns="colour"))
    with pytest.raises(ValueError, match=r"'colour' is in .*part-0.* not in .*part-1"):
        est.predict(folder)


def test_digit_strings_in_one_file_and_integers_in_another_are_refused(tmp_path):
    """Read one batch at a time, '5' and 5 would be two categories."""
    df = table()
    folder = write(tmp_path / "d", df[:200].astype({"code": str}), df[200:])
    with pytest.raises(
        ValueError,
        match=r"'code' is (large_)?string in .*part-0.* but int64 in .*part-1",
    ):
        TabularClassifier(**FAST).fit(folder, "label")
    ratings = pd.DataFrame(
        {"user": np.arange(300) % 30, "item": np.arange(300) % 17, "r": 3.0}
    )
    folder = write(tmp_path / "r", ratings[:100].astype({"user": str}), ratings[100:])
    with pytest.raises(ValueError, match=r"'user' is (large_)?string in .*part-0"):
        CollabRegressor(**COLLAB).fit(folder, "r")


def test_types_that_convert_are_read_as_one(tmp_path):
    """Integers of two widths, integers and floats, a categorical and its strings:
    one column, as if one file held it all."""
    df = table()
    first = df[:200].astype({"code": "int32", "shop": "category"})
    second = df[200:].astype({"x": "float32"})
    folder = write(tmp_path / "d", first, second)
    est = TabularClassifier(**FAST, int_levels=100).fit(folder, "label")
    same = TabularClassifier(**FAST, int_levels=100).fit(
        write(tmp_path / "e", df), "label"
    )
    pre, ref = est.preprocessor_, same.preprocessor_
    assert pre.cat_names_ == ref.cat_names_
    for col in pre.cat_names_:
        assert list(pre.categories_[col]) == list(ref.categories_[col])
    assert len(pre.categories_["code_cat"]) <= df["code"].nunique()  # no 5 and 5.0


def test_pandas_index_columns_are_the_index_not_features(tmp_path):
    df = table()
    for index in (df.index + 1000, pd.Index(df.index + 5, name="row")):
        folder = tmp_path / str(index.name)
        write(folder, df.set_axis(index))  # pandas writes the index as a column
        est = TabularClassifier(**FAST).fit(folder, "label")
        assert list(est.feature_names_in_) == ["shop", "colour", "x", "code"]
        np.testing.assert_allclose(
            est.predict_proba(folder), est.predict_proba(df.drop(columns="label"))
        )


def test_weights_zero_in_one_file_are_valid_and_may_not_name_the_target(tmp_path):
    df = table().assign(w=1.0, price=lambda d: d["x"] * 2)
    df.loc[:199, "w"] = 0.0
    folder = write(tmp_path / "d", df[:200], df[200:])
    TabularRegressor(**FAST).fit(folder, "price", sample_weight="w")
    zero = write(tmp_path / "z", df.assign(w=0.0))
    with pytest.raises(ValueError, match="'w' is zero in every row"):
        TabularRegressor(**FAST).fit(zero, "price", sample_weight="w")
    with pytest.raises(ValueError, match=r"sample_weight names 'price'.*target"):
        TabularRegressor(**FAST).fit(folder, "price", sample_weight="price")
    ratings = pd.DataFrame(
        {"user": np.arange(300) % 30, "item": np.arange(300) % 17, "r": 3.0, "w": 1.0}
    )
    ratings.loc[:99, "w"] = 0.0
    folder = write(tmp_path / "r", ratings[:100], ratings[100:])
    CollabRegressor(**COLLAB).fit(folder, "r", sample_weight="w")
