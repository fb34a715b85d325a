"""Tables from other libraries (polars, pyarrow, a ColumnTransformer's numpy output) and
scikit-learn's ``set_output``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from tabular import TabularClassifier
from tests.tabular.test_estimator import FAST, make_data


@pytest.fixture(scope="module")
def fitted():
    X, y = make_data()
    return TabularClassifier(**FAST).fit(X, y), X, y


def test_polars_frames_keep_their_column_names(fitted):
    pl = pytest.importorskip("polars")
    clf, X, y = fitted
    expected = clf.predict_proba(X)
    frame = pl.from_pandas(X)
    on_polars = TabularClassifier(**FAST).fit(frame, y)
    assert list(on_polars.feature_names_in_) == ["shop", "colour", "x"]
    assert on_polars.preprocessor_.cat_features_ == ["shop", "colour"]
    np.testing.assert_allclose(on_polars.predict_proba(frame), expected, atol=1e-6)
    # Columns are taken by name, as from pandas: a reordered frame, the same answer.
    reordered = frame.select(["x", "colour", "shop"])
    np.testing.assert_allclose(clf.predict_proba(reordered), expected, atol=1e-6)
    with pytest.raises(ValueError, match="missing column"):
        clf.predict_proba(frame.drop("shop"))


def test_pyarrow_tables(fitted):
    clf, X, y = fitted
    table = pa.Table.from_pandas(X, preserve_index=False)
    np.testing.assert_allclose(
        clf.predict_proba(table), clf.predict_proba(X), atol=1e-6
    )
    assert list(TabularClassifier(**FAST).fit(table, y).feature_names_in_) == list(
        X.columns
    )


def test_column_transformer_numpy_output_with_strings_is_categorical():
    X, y = make_data()
    scale = ColumnTransformer(
        [("num", StandardScaler(), ["x"])], remainder="passthrough"
    )
    pipe = make_pipeline(scale, TabularClassifier(**FAST)).fit(X, y)
    net = pipe[-1]
    assert net.preprocessor_.cat_features_ == ["x1", "x2"]  # shop, colour
    assert net.preprocessor_.cont_features_ == ["x0"]
    assert pipe.score(X, y) > 0.85


@pytest.mark.parametrize("how", ["pandas", "polars"])
def test_set_output_in_a_pipeline(how):
    if how == "polars":
        pytest.importorskip("polars")
    X, y = make_data()
    pipe = Pipeline(
        [("net", TabularClassifier(**FAST)), ("lr", LogisticRegression(max_iter=500))]
    ).set_output(transform=how)
    pipe.fit(X, y)
    out = pipe[0].transform(X)
    assert type(out).__module__.split(".")[0] == how
    assert list(out.columns) == list(pipe[0].get_feature_names_out())
    assert pipe.score(X, y) > 0.85


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_every_pandas_dtype_backend_gives_the_same_answer(fitted, backend):
    clf, X, y = fitted
    converted = X.convert_dtypes(dtype_backend=backend)
    np.testing.assert_allclose(
        clf.predict_proba(converted), clf.predict_proba(X), atol=1e-6
    )
    refit = TabularClassifier(**FAST).fit(converted, y)
    np.testing.assert_allclose(refit.predict_proba(X), clf.predict_proba(X), atol=1e-6)
