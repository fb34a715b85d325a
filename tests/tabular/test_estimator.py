from __future__ import annotations

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from deepfit import SparseAdamW
from tabular import TabularClassifier, TabularModel, TabularRegressor

# Mechanics, not the defaults' accuracy: a few epochs of one small network (the batch
# ensemble has tests of its own).
FAST = dict(
    n_members=1,
    epochs=4,
    lr=1e-2,
    batch_size=64,
    verbose=0,
    random_state=0,
    layers=(32, 16),
    early_stopping=False,
)


def make_data(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two categorical columns with known effects, one continuous; y = sign of the sum."""
    rng = np.random.default_rng(seed)
    shop = rng.choice(list("abcdefgh"), n)
    colour = rng.choice(["red", "green", "blue"], n)
    x = rng.normal(size=n)
    effect = dict(zip("abcdefgh", np.linspace(-2, 2, 8), strict=True))
    score = pd.Series(shop).map(effect).to_numpy() + (colour == "red") * 1.0 + x
    X = pd.DataFrame({"shop": shop, "colour": colour, "x": x})
    return X, pd.Series((score > 0.3).astype(int), name="y")


@pytest.fixture(scope="module")
def fitted() -> tuple[TabularClassifier, pd.DataFrame, pd.Series]:
    X, y = make_data()
    return TabularClassifier(**FAST).fit(X, y), X, y


def test_fit_learns_and_predicts(fitted):
    clf, X, y = fitted
    assert clf.score(X, y) > 0.85
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(1), 1)
    assert list(clf.classes_) == [0, 1]
    assert isinstance(clf.module_, TabularModel)
    assert list(clf.feature_names_in_) == ["shop", "colour", "x"]


def test_clone_params_and_not_fitted():
    est = TabularClassifier(layers=(8,), dropout=0.2, embedding_sizes={"shop": 3})
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    with pytest.raises(NotFittedError):
        est.predict(make_data(10)[0])


@pytest.mark.parametrize("dumper", ["pickle", "joblib"])
def test_pickle_round_trip_predicts_the_same(fitted, dumper, tmp_path):
    clf, X, _ = fitted
    if dumper == "pickle":
        back = pickle.loads(pickle.dumps(clf))
    else:
        joblib.dump(clf, tmp_path / "m.joblib")
        back = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.predict_proba(X[:1]), clf.predict_proba(X[:1]))


def test_same_random_state_same_predictions():
    X, y = make_data(300)
    a = TabularClassifier(**FAST).fit(X, y).predict_proba(X)
    b = TabularClassifier(**FAST).fit(X, y).predict_proba(X)
    c = TabularClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_column_order_and_extra_columns_do_not_matter(fitted):
    clf, X, _ = fitted
    reordered = X[["x", "colour", "shop"]].assign(unused="zzz")
    np.testing.assert_array_equal(clf.predict_proba(reordered), clf.predict_proba(X))


def test_missing_column_at_predict_is_named(fitted):
    clf, X, _ = fitted
    with pytest.raises(
        ValueError, match=r"missing column\(s\) seen in fit: \['colour'\]"
    ):
        clf.predict(X.drop(columns="colour"))


def test_single_row_path_matches_the_batch_path(fitted):
    clf, X, _ = fitted
    whole = clf.predict_proba(X[:50])
    rows = np.vstack([clf.predict_proba(X.iloc[[i]]) for i in range(50)])
    np.testing.assert_allclose(rows, whole, rtol=1e-5, atol=1e-6)


def test_bad_targets_fail_before_training():
    X, y = make_data(50)
    clf = TabularClassifier(**FAST)
    with pytest.raises(ValueError, match="y has 49 rows but X has 50"):
        clf.fit(X, y[:49])
    with pytest.raises(ValueError, match="single class"):
        clf.fit(X, np.zeros(50, dtype=int))
    with pytest.raises(ValueError, match="missing values"):
        clf.fit(X, y.astype(float).where(y.index != 3))
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        clf.fit(X, np.linspace(0, 1, 50))
    reg = TabularRegressor(**FAST)
    for bad, msg in ((np.nan, "NaN"), (np.inf, "infinite")):
        target = np.ones(50)
        target[7] = bad
        with pytest.raises(ValueError, match=msg):
            reg.fit(X, target)
    with pytest.raises(ValueError, match="no rows"):
        reg.fit(X.iloc[:0], np.ones(0))
    assert not hasattr(clf, "module_") and not hasattr(reg, "module_")


def test_bad_inputs_name_the_column_and_leave_the_frame_alone():
    X, y = make_data(60)
    before = X.copy(deep=True)
    clf = TabularClassifier(**FAST)
    with pytest.raises(ValueError, match=r"duplicate column name\(s\) \['x'\]"):
        clf.fit(pd.concat([X, X[["x"]]], axis=1), y)
    with pytest.raises(ValueError, match="'x' is missing in every row"):
        clf.fit(X.assign(x=np.nan), y)
    bad = X.astype({"x": object})
    bad.loc[5, "x"] = "twelve"
    with pytest.raises(ValueError, match=r"'x' is continuous .* 'twelve'"):
        clf.fit(bad, y, eval_set=None) if False else TabularClassifier(
            **FAST, cont_features=["x"]
        ).fit(bad, y)
    clf.fit(X, y)
    with pytest.raises(ValueError, match=r"'x' is continuous .* 'twelve'"):
        clf.predict(bad)
    pd.testing.assert_frame_equal(X, before)


def test_unseen_category_predicts_like_an_average_member():
    """Regression on a single categorical column: the prediction for an unseen level
    should be near the frequency-weighted mean of the known levels' predictions, not an
    arbitrary value."""
    rng = np.random.default_rng(0)
    levels = [f"l{i}" for i in range(40)]
    effect = dict(zip(levels, rng.uniform(10, 30, 40), strict=True))
    shop = rng.choice(levels, 4000)
    X = pd.DataFrame({"shop": shop, "x": rng.normal(size=4000)})
    y = pd.Series(shop).map(effect).to_numpy() + 0.5 * X["x"].to_numpy()
    reg = TabularRegressor(**{**FAST, "epochs": 6}, unknown_rate=0.05).fit(X, y)
    per_level = reg.predict(pd.DataFrame({"shop": levels, "x": 0.0}))
    assert np.corrcoef(per_level, [effect[v] for v in levels])[0, 1] > 0.98
    weights = pd.Series(shop).value_counts().reindex(levels).to_numpy()
    average = np.average(per_level, weights=weights)
    unseen = reg.predict(pd.DataFrame({"shop": ["never seen", None], "x": 0.0}))
    spread = per_level.std()
    assert np.abs(unseen - average).max() < 0.25 * spread, (unseen, average, spread)


def test_category_dtype_with_new_categories_at_predict(fitted):
    clf, X, _ = fitted
    as_cat = X.astype({"shop": pd.CategoricalDtype(list("hgfedcbaz"))})
    np.testing.assert_allclose(clf.predict_proba(as_cat), clf.predict_proba(X))


def test_class_weight_balanced_and_sample_weight_shift_predictions():
    X, y = make_data(800)
    y = pd.Series(np.where(np.random.default_rng(1).random(800) < 0.12, 1, 0))
    plain = TabularClassifier(**FAST).fit(X, y).predict_proba(X)[:, 1].mean()
    balanced = (
        TabularClassifier(**FAST, class_weight="balanced").fit(X, y).predict_proba(X)
    )[:, 1].mean()
    w = np.where(y == 1, 5.0, 1.0)
    weighted = TabularClassifier(**FAST).fit(X, y, sample_weight=w).predict_proba(X)
    assert plain < 0.25 and balanced > 0.35 and weighted[:, 1].mean() > 0.3
    with pytest.raises(ValueError, match="sample_weight has shape"):
        TabularClassifier(**FAST).fit(X, y, sample_weight=w[:5])


def test_multiclass_and_string_labels():
    X, _ = make_data(600)
    y = (
        X["colour"]
        .map({"red": "warm", "green": "cool", "blue": "cool"})
        .where(X["x"] < 1, "hot")
    )
    clf = TabularClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == ["cool", "hot", "warm"]
    assert clf.predict_proba(X).shape == (600, 3)
    assert clf.score(X, y) > 0.9


def test_multilabel_from_an_indicator_frame():
    X, y = make_data(600)
    Y = pd.DataFrame({"pos": y, "red": (X["colour"] == "red").astype(int)})
    clf = TabularClassifier(**FAST).fit(X, Y)
    assert clf.multilabel_ and list(clf.classes_) == ["pos", "red"]
    pred = clf.predict(X)
    assert pred.shape == (600, 2) and set(np.unique(pred)) <= {0, 1}
    assert (pred == Y.to_numpy()).mean() > 0.9
    assert clf.predict_proba(X).shape == (600, 2)
    rare = Y.assign(rare=(X["x"] > 1.5).astype(int))
    weighted = TabularClassifier(**FAST, class_weight="balanced").fit(X, rare)
    assert weighted.pos_weight_[2] > 5 * weighted.pos_weight_[0]
    plain = TabularClassifier(**FAST).fit(X, rare)
    # Balanced positives weigh more: the rare label's probabilities rise.
    assert (
        weighted.predict_proba(X)[:, 2].mean()
        > 1.2 * plain.predict_proba(X)[:, 2].mean()
    )


def test_regressor_multi_target_y_range_and_log_target():
    rng = np.random.default_rng(0)
    X, _ = make_data(800)
    base = X["x"].to_numpy() + (X["colour"] == "red")
    Y = np.column_stack([base, 100 + 10 * base])
    reg = TabularRegressor(**FAST).fit(X, Y)
    assert reg.predict(X).shape == (800, 2) and reg.score(X, Y) > 0.9
    bounded = TabularRegressor(**FAST, y_range=(0.0, 2.0)).fit(X, base.clip(0, 2))
    far = bounded.predict(X.assign(x=X["x"] * 100))
    assert far.min() >= 0.0 and far.max() <= 2.0
    prices = np.exp(2 + base + 0.05 * rng.normal(size=800))
    logged = TabularRegressor(**FAST, log_target=True).fit(X, prices)
    assert np.corrcoef(np.log(logged.predict(X)), np.log(prices))[0, 1] > 0.95
    with pytest.raises(ValueError, match="log_target=True needs y > -1"):
        TabularRegressor(**FAST, log_target=True).fit(X, -prices)


def test_log_target_auto_logs_skewed_positive_targets_only():
    rng = np.random.default_rng(0)
    X, _ = make_data(800)
    base = X["x"].to_numpy() + (X["colour"] == "red")
    prices = np.exp(2 + base + 0.05 * rng.normal(size=800))  # skewness above 1
    Y = np.column_stack([prices, base, -prices])
    reg = TabularRegressor(**FAST).fit(X, Y)
    assert reg.log_target_.tolist() == [True, False, False]
    assert np.corrcoef(np.log(reg.predict(X)[:, 0]), np.log(prices))[0, 1] > 0.95
    assert TabularRegressor(**FAST, log_target=False).fit(X, prices).log_target_ == [
        False
    ]
    assert TabularRegressor(**FAST).fit(X, base + 10).log_target_.tolist() == [False]


def test_transform_returns_named_embeddings_and_scaled_columns(fitted):
    clf, X, _ = fitted
    emb = clf.transform(X)
    assert list(emb.columns[:5]) == [
        "shop_emb0",
        "shop_emb1",
        "shop_emb2",
        "shop_emb3",
        "shop_emb4",
    ]
    assert emb.columns[-1] == "x" and emb.index.equals(X.index)
    assert list(emb.columns) == list(clf.get_feature_names_out())
    w = clf.module_.embeds[0].weight.detach().numpy()
    code = clf.preprocessor_.transform(X.iloc[:1])["shop"].iloc[0]
    np.testing.assert_allclose(emb.iloc[0, :5].to_numpy(), w[code])


def test_transform_names_are_unique_when_a_column_reads_like_an_embedding():
    X, y = make_data(200)
    X = X.assign(shop_emb0=X["x"] * 2)  # a real column named like shop's embedding
    clf = TabularClassifier(**{**FAST, "epochs": 1}).fit(X, y)
    out = clf.transform(X)
    assert not out.columns.has_duplicates and "shop_emb0_1" in out.columns
    np.testing.assert_allclose(
        out["shop_emb0"], clf.preprocessor_.transform(X)["shop_emb0"], rtol=1e-6
    )


def test_embedding_widths_rule_and_override():
    X, y = make_data(100)
    clf = TabularClassifier(
        **{**FAST, "epochs": 1}, embedding_sizes={"colour": 7}, min_frequency=1
    )
    clf.fit(X, y)
    # shop: 8 values + unknown = 9 codes -> 5; colour: overridden.
    assert [e.embedding_dim for e in clf.module_.embeds] == [5, 7]
    with pytest.raises(ValueError, match="not categorical"):
        TabularClassifier(**FAST, embedding_sizes={"x": 2}).fit(X, y)


def test_sparse_embeddings_auto_for_big_tables_only():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "big": rng.integers(0, 3000, 2000).astype(str),
            "small": rng.choice(list("abc"), 2000),
        }
    )
    y = rng.integers(0, 2, 2000)
    params = {**FAST, "epochs": 1, "batch_size": 256, "min_frequency": 1}
    clf = TabularClassifier(**params).fit(X, y)
    assert [e.sparse for e in clf.module_.embeds] == [True, False]
    learn = clf._make_learner()
    learn.create_opt()
    assert isinstance(learn.opt, SparseAdamW)
    assert [g["layer_group"] for g in learn.opt.param_groups] == [0, 1]


def test_numpy_input_with_categorical_indices():
    X, y = make_data(600)
    arr = X.to_numpy()  # object array
    clf = TabularClassifier(**FAST, cat_features=[0, 1]).fit(arr, y)
    assert clf.preprocessor_.cat_features_ == ["x0", "x1"]
    assert not hasattr(clf, "feature_names_in_")
    assert clf.score(arr, y) > 0.8
    numeric = np.random.default_rng(0).normal(size=(600, 3))
    reg = TabularRegressor(**{**FAST, "epochs": 8}).fit(numeric, numeric[:, 0] * 2)
    assert reg.preprocessor_.cont_features_ == ["x0", "x1", "x2"]
    assert reg.score(numeric, numeric[:, 0] * 2) > 0.8


def test_pipeline_with_column_transformer_upstream():
    X, y = make_data(600)
    ct = ColumnTransformer(
        [("num", StandardScaler(), ["x"]), ("cat", "passthrough", ["shop", "colour"])],
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    pipe = make_pipeline(ct, TabularClassifier(**FAST)).fit(X, y)
    assert pipe.score(X, y) > 0.8
    assert pipe[-1].preprocessor_.cat_features_ == ["shop", "colour"]
    # Without pandas output the columns arrive as an object array: name the indices.
    ct_np = ColumnTransformer(
        [("num", StandardScaler(), ["x"]), ("cat", "passthrough", ["shop", "colour"])]
    )
    pipe = make_pipeline(ct_np, TabularClassifier(**FAST, cat_features=[1, 2])).fit(
        X, y
    )
    assert pipe.score(X, y) > 0.8


def test_grid_search_over_layers_and_dropout():
    X, y = make_data(300)
    grid = GridSearchCV(
        TabularClassifier(**{**FAST, "epochs": 2}),
        {"layers": [(16,), (32, 16)], "dropout": [0.0, 0.3]},
        cv=2,
    ).fit(X, y)
    assert grid.best_params_["layers"] in [(16,), (32, 16)]
    assert len(grid.cv_results_["params"]) == 4


def test_lr_find_eval_set_and_early_stopping():
    X, y = make_data(600)
    result = TabularClassifier(**FAST).lr_find(X, y)
    assert result.suggestion > 0 and len(result.lrs) > 10
    clf = TabularClassifier(**{**FAST, "epochs": 20, "early_stopping": 2})
    clf.fit(X[:500], y[:500], eval_set=(X[500:], y[500:]))
    assert {"valid_loss", "accuracy"} <= set(clf.history_.columns)
    assert clf.n_epochs_ < 20
    auto = TabularClassifier(**FAST, validation_fraction=0.2).fit(X, y)
    assert "valid_loss" in auto.history_.columns
    found = TabularClassifier(**{**FAST, "lr": None}).fit(X, y)
    assert found.lr_ == found.lr_find_.suggestion and found.score(X, y) > 0.8


def test_warm_start_keeps_preprocessing_and_continues():
    X, y = make_data(300)
    clf = TabularClassifier(**{**FAST, "epochs": 1}, warm_start=True).fit(X, y)
    pre, module = clf.preprocessor_, clf.module_
    clf.fit(X, y)
    assert clf.preprocessor_ is pre and clf.module_ is module
    assert clf.history_["epoch"].tolist() == [0, 1]


def test_bad_parameters_fail_before_training():
    X, y = make_data(50)
    for params, msg in (
        ({"layers": ()}, "layers must be"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\), got 1.5"),
        ({"sparse_embeddings": "yes"}, "sparse_embeddings"),
        ({"class_weight": "equal"}, "class_weight"),
        ({"min_frequency": 0}, "min_frequency"),
    ):
        with pytest.raises(ValueError, match=msg):
            TabularClassifier(**{**FAST, **params}).fit(X, y)


def test_int_levels_adds_embeddings_for_small_integer_columns():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {"n": rng.integers(0, 5, 500), "wide": rng.integers(0, 10_000, 500)}
    )
    y = (X["n"] == 3).astype(int)
    clf = TabularClassifier(**{**FAST, "epochs": 10}, int_levels=10).fit(X, y)
    assert clf.preprocessor_.cat_names_ == ["n_cat"]
    assert clf.preprocessor_.cont_names_ == ["n", "wide"]
    assert clf.score(X, y) > 0.95


@pytest.mark.parametrize(
    "sparse",
    [True, pytest.param(False, marks=pytest.mark.slow)],  # dense: ~10 s
)
def test_high_cardinality_categorical_trains_with_bounded_memory(sparse):
    rng = np.random.default_rng(0)
    n, levels = 120_000, 100_000
    ids = np.array([f"id{i}" for i in range(levels)])
    X = pd.DataFrame({"id": ids[rng.integers(0, levels, n)], "x": rng.normal(size=n)})
    y = (X["x"] > 0).astype(int)
    clf = TabularClassifier(
        **{**FAST, "epochs": 1, "batch_size": 1024},
        sparse_embeddings=sparse,
        min_frequency=1,
    ).fit(X, y)
    table = clf.module_.embeds[0]
    assert table.num_embeddings > 60_000 and table.embedding_dim == 50  # ~70% drawn
    params = sum(p.numel() for p in clf.module_.parameters())
    assert params < 5_000_000  # the table, not rows x levels
    assert clf.score(X[:2000], y[:2000]) > 0.9
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize("module", ["tabular.preprocessing", "tabular.estimator"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(
        importlib.import_module(module), optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_with_sparse_tables_and_amp_predicts_on_cpu_after_pickle():
    X, y = make_data(2000)
    X = X.assign(big=np.arange(2000).astype(str))  # a table bigger than 4 * batch_size
    clf = TabularClassifier(**FAST, device="cuda", amp=True).fit(X, y)
    assert clf.module_.embeds[-1].sparse
    back = pickle.loads(pickle.dumps(clf))
    back.device = "cpu"
    np.testing.assert_allclose(
        back.predict_proba(X), clf.predict_proba(X), rtol=1e-2, atol=1e-2
    )


def test_batch_ensemble_fits_reproducibly_pickles_and_predicts_one_row():
    X, y = make_data(600)
    params = {**FAST, "n_members": 4}
    a = TabularClassifier(**params).fit(X, y)
    b = TabularClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    loaded = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(loaded.predict_proba(X), a.predict_proba(X))
    np.testing.assert_allclose(
        a.predict_proba(X.iloc[:1]), a.predict_proba(X)[:1], rtol=1e-5, atol=1e-6
    )
    assert a.score(X, y) > 0.85
    reg = TabularRegressor(**params).fit(X, X["x"] * 2.0)
    assert reg.predict(X).shape == (len(X),)


def test_the_finders_choice_is_logged(caplog):
    X, y = make_data(300)
    with caplog.at_level("INFO", logger="deepfit"):
        clf = TabularClassifier(**{**FAST, "lr": None, "epochs": 1}).fit(X, y)
    found = [r.getMessage() for r in caplog.records if "finder" in r.getMessage()]
    assert len(found) == 1 and f"lr={clf.lr_:.3g}" in found[0]


def test_holdout_latest_keeps_the_most_recent_rows_for_early_stopping():
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=300, freq="D", tz="Europe/Paris")
    X = pd.DataFrame({"when": days[rng.permutation(300)], "a": rng.normal(size=300)})
    y = X["when"].dt.day_of_year + X["a"]
    est = TabularRegressor(**{**FAST, "holdout": "latest", "early_stopping": 3}).fit(
        X, y
    )
    train, valid = est._holdout_split(X, y.to_numpy())
    assert (
        len(valid) == 30 and X["when"].iloc[valid].min() > X["when"].iloc[train].max()
    )
    with pytest.raises(ValueError, match="needs a datetime column"):
        TabularRegressor(**{**FAST, "holdout": "latest", "early_stopping": 3}).fit(
            X[["a"]], y
        )
