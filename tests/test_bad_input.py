"""Bad input and faults over every estimator: each case must raise a clear error (its type,
and a message naming the column, value, file or shape at fault) before any training
starts, and leave what the user passed unchanged.

The estimators and their tiny data come from the contract test's cases; a case here is
(estimator, how to spoil its inputs or parameters, the error's type, a regex its message
must match).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

import deepfit.learner
from tests.test_estimator_contract import CASES, Case

BY_NAME = {c.name: c for c in CASES}
TABULAR = ["TabularClassifier", "TabularRegressor"]
CLASSIFIERS = [
    "TabularClassifier",
    "TextClassifier",
    "GenerativeTextClassifier",
    "ImageClassifier",
]
TEXT = ["LanguageModel", "TextClassifier", "GenerativeTextClassifier"]
SUPERVISED = [*TABULAR, "CollabRegressor", *CLASSIFIERS[1:]]
ALL = [c.name for c in CASES]

Spoil = Callable[[Any, Any], tuple[Any, Any, dict[str, Any], dict[str, Any]]]


def inputs(f: Callable[[Any, Any], tuple[Any, Any]]) -> Spoil:
    """Spoil (X, y)."""
    return lambda X, y: (*f(X, y), {}, {})


def params(**kw: Any) -> Spoil:
    """Set a bad parameter."""
    return lambda X, y: (X, y, kw, {})


def fit_kw(f: Callable[[Any, Any], dict[str, Any]]) -> Spoil:
    """Pass bad keyword arguments to fit."""
    return lambda X, y: (X, y, {}, f(X, y))


def _with(frame: pd.DataFrame, **cols: Any) -> pd.DataFrame:
    return frame.assign(**cols)


def _labels_like(y: Any, values: Any) -> Any:
    return pd.Series(values, index=y.index) if isinstance(y, pd.Series) else values


BAD: list[tuple[str, str, Spoil, type | tuple[type, ...], str]] = []


def bad(names: list[str], label: str, spoil: Spoil, err: Any, match: str) -> None:
    BAD.extend((n, label, spoil, err, match) for n in names)


# ---- parameters (refused by the constraints, before any data is read) -----------------
bad(ALL, "epochs_zero", params(epochs=0), ValueError, r"epochs")
bad(ALL, "lr_negative", params(lr=-1.0), ValueError, r"lr")
bad(ALL, "batch_size_string", params(batch_size="big"), ValueError, r"batch_size")
bad(ALL, "schedule_unknown", params(schedule="warp"), ValueError, r"schedule")
bad(ALL, "verbose_negative", params(verbose=-3), ValueError, r"verbose")
bad(
    ALL,
    "validation_fraction_one",
    params(validation_fraction=1.0),
    ValueError,
    r"validation_fraction",
)
bad(TABULAR, "dropout_above_one", params(dropout=1.5), ValueError, r"dropout")
bad(TABULAR, "layers_zero_width", params(layers=(16, 0)), ValueError, r"layers")
bad(
    TABULAR, "min_frequency_zero", params(min_frequency=0), ValueError, r"min_frequency"
)
bad(TABULAR, "cont_bins_negative", params(cont_bins=-1), ValueError, r"cont_bins")
bad(
    TABULAR,
    "embedding_sizes_unknown_column",
    params(embedding_sizes={"nope": 3}),
    ValueError,
    r"nope",
)
bad(
    ["TabularRegressor"],
    "log_target_string",
    params(log_target="yes"),
    ValueError,
    r"log_target",
)
bad(
    ["TabularClassifier"],
    "class_weight_string",
    params(class_weight="even"),
    ValueError,
    r"class_weight",
)

# ---- targets -----------------------------------------------------------------------
bad(
    SUPERVISED,
    "y_short",
    inputs(lambda X, y: (X, y[:-1])),
    ValueError,
    r"length|rows|labels|images|texts",
)
bad(
    CLASSIFIERS,
    "y_continuous",
    inputs(lambda X, y: (X, _labels_like(y, np.linspace(0.01, 0.99, len(y))))),
    ValueError,
    r"continuous",
)
bad(
    CLASSIFIERS,
    "y_mixed_types",
    inputs(
        lambda X, y: (
            X,
            _labels_like(y, np.array([1, "a"] * (len(y) // 2), dtype=object)),
        )
    ),
    ValueError,
    r"mixes label types",
)
bad(
    CLASSIFIERS,
    "y_single_class",
    inputs(lambda X, y: (X, _labels_like(y, np.array([y[0]] * len(y), dtype=object)))),
    ValueError,
    r"single class",
)
bad(
    [
        "TabularClassifier",
        "TextClassifier",
        "GenerativeTextClassifier",
        "ImageClassifier",
    ],
    "y_missing_label",
    inputs(
        lambda X, y: (
            X,
            _labels_like(
                y, np.where(np.arange(len(y)) == 2, None, np.asarray(y, dtype=object))
            ),
        )
    ),
    ValueError,
    r"missing|NaN|None",
)
bad(
    ["TabularRegressor", "CollabRegressor"],
    "y_nan",
    inputs(lambda X, y: (X, y.where(y.index != 3, np.nan))),
    ValueError,
    r"NaN|finite",
)
bad(
    ["TabularRegressor", "CollabRegressor"],
    "y_inf",
    inputs(lambda X, y: (X, y.where(y.index != 3, np.inf))),
    ValueError,
    r"infinite|finite",
)
bad(
    ["TabularRegressor"],
    "y_strings",
    inputs(lambda X, y: (X, y.astype(str) + "x")),
    ValueError,
    r"numeric",
)
bad(
    ["TabularRegressor"],
    "y_3d",
    inputs(lambda X, y: (X, np.zeros((len(y), 2, 2)))),
    ValueError,
    r"shape",
)
bad(
    ["TabularRegressor"],
    "log_target_negative_y",
    lambda X, y: (X, -y.abs() - 2, {"log_target": True}, {}),
    ValueError,
    r"log_target=True needs y > -1",
)

# ---- tabular inputs ------------------------------------------------------------------
bad(
    TABULAR,
    "empty_frame",
    inputs(lambda X, y: (X.iloc[:0], y.iloc[:0])),
    ValueError,
    r"no rows|empty",
)
bad(
    TABULAR,
    "one_row",
    inputs(lambda X, y: (X.iloc[:1], y.iloc[:1])),
    ValueError,
    r"at least 2",
)
bad(
    TABULAR,
    "inf_in_column",
    inputs(lambda X, y: (_with(X, x=X["x"].where(X.index != 4, np.inf)), y)),
    ValueError,
    r"'x'.*infinite",
)
bad(
    TABULAR,
    "all_missing_column",
    inputs(lambda X, y: (_with(X, x=np.nan), y)),
    ValueError,
    r"'x' is missing in every row",
)
bad(
    TABULAR,
    "unhashable_category",
    inputs(lambda X, y: (_with(X, shop=[[1]] * len(X)), y)),
    ValueError,
    r"'shop'",
)
bad(
    TABULAR,
    "complex_column",
    inputs(lambda X, y: (_with(X, x=X["x"] + 1j), y)),
    ValueError,
    r"'x'",
)
bad(
    TABULAR,
    "both_cat_and_cont",
    params(cat_features=["x"], cont_features=["x"]),
    ValueError,
    r"both",
)
bad(TABULAR, "cat_features_unknown", params(cat_features=["nope"]), ValueError, r"nope")
bad(
    TABULAR,
    "sample_weight_short",
    fit_kw(lambda X, y: {"sample_weight": np.ones(len(X) - 1)}),
    ValueError,
    r"sample_weight",
)
bad(
    TABULAR,
    "sample_weight_negative",
    fit_kw(lambda X, y: {"sample_weight": -np.ones(len(X))}),
    ValueError,
    r"sample_weight",
)
bad(
    TABULAR,
    "sample_weight_nan",
    fit_kw(lambda X, y: {"sample_weight": np.full(len(X), np.nan)}),
    ValueError,
    r"sample_weight",
)
bad(
    TABULAR,
    "eval_set_missing_column",
    fit_kw(lambda X, y: {"eval_set": (X.drop(columns="x")[:5], y[:5])}),
    ValueError,
    r"'x'",
)
bad(
    ["TabularClassifier"],
    "eval_set_unseen_label",
    fit_kw(lambda X, y: {"eval_set": (X[:5], ["zzz"] * 5)}),
    ValueError,
    r"zzz|not seen",
)

# ---- collab inputs -------------------------------------------------------------------
COLLAB = ["CollabRegressor", "CollabRecommender"]
bad(
    COLLAB,
    "no_item_column",
    inputs(lambda X, y: (X.drop(columns="item"), y)),
    ValueError,
    r"item",
)
bad(
    COLLAB,
    "missing_user_id",
    inputs(lambda X, y: (_with(X, user=X["user"].where(X.index != 2)), y)),
    ValueError,
    r"user.*missing|missing.*user",
)
bad(
    COLLAB,
    "empty_log",
    inputs(lambda X, y: (X.iloc[:0], None if y is None else y.iloc[:0])),
    ValueError,
    r"empty|no rows|0 rows",
)
bad(
    COLLAB,
    "not_a_frame",
    inputs(lambda X, y: ("ratings.csv", y)),
    (ValueError, TypeError),
    r"DataFrame|frame|columns",
)

# ---- text inputs ---------------------------------------------------------------------
bad(
    TEXT,
    "no_text_column",
    inputs(lambda X, y: (X.drop(columns="review"), y)),
    (ValueError, KeyError),
    r"review",
)
bad(
    TEXT,
    "text_column_numbers",
    inputs(lambda X, y: (_with(X, review=np.arange(len(X))), y)),
    (ValueError, TypeError),
    r"review|text|str",
)
bad(
    ["LanguageModel"],
    "only_empty_texts",
    inputs(lambda X, y: (_with(X, review=""), y)),
    ValueError,
    r"no tokens|empty|nothing",
)

# ---- image inputs --------------------------------------------------------------------
IMG = ["ImageClassifier"]
bad(
    IMG,
    "five_dims",
    inputs(lambda X, y: (X[:, :, :, :, None], y)),
    ValueError,
    r"shape|dimension|ndim",
)
bad(
    IMG,
    "uint16_array",
    inputs(lambda X, y: (X.astype(np.uint16) * 300, y)),
    ValueError,
    r"uint16|range|dtype",
)
bad(
    IMG,
    "float_out_of_range",
    inputs(lambda X, y: (X.astype(np.float32) * 10, y)),
    ValueError,
    r"range|\[0, 1\]|255",
)
bad(
    IMG,
    "missing_file",
    inputs(lambda X, y: ([f"/nonexistent/{i}.png" for i in range(len(y))], y)),
    (ValueError, FileNotFoundError),
    r"nonexistent",
)
bad(
    IMG,
    "label_lists_mixed_types",
    inputs(lambda X, y: (X, [[1], ["1"]] * (len(y) // 2))),
    ValueError,
    r"mixes label types",
)


bad(
    SUPERVISED,
    "eval_set_not_a_pair",
    fit_kw(lambda X, y: {"eval_set": X}),
    ValueError,
    r"eval_set must be a pair \(X_valid, y_valid\)",
)
bad(
    SUPERVISED,
    "eval_set_of_three",
    fit_kw(lambda X, y: {"eval_set": (X, y, y)}),
    ValueError,
    r"eval_set must be a pair .* of length 3",
)

# ---- issue 40: values too large, column names, labels ----------------------------------
bad(
    TABULAR,
    "huge_in_column",
    inputs(lambda X, y: (_with(X, x=X["x"].where(X.index != 4, 1e300)), y)),
    ValueError,
    r"'x' holds values too large to standardise",
)
bad(
    ["TabularRegressor"],
    "y_huge",
    inputs(lambda X, y: (X, y * 1e300)),
    ValueError,
    r"y holds values too large to standardise",
)
bad(
    ["CollabRegressor"],
    "y_huge",
    inputs(lambda X, y: (X, y.where(y.index != 3, 1e300))),
    ValueError,
    r"ratings y hold values too large.*position 3",
)
bad(
    TABULAR,
    "duplicate_column_names",
    inputs(lambda X, y: (pd.concat([X, X[["x"]]], axis=1), y)),
    ValueError,
    r"duplicate column name\(s\) \['x'\]",
)
bad(
    TABULAR,
    "names_0_and_str_0",
    inputs(
        lambda X, y: (
            X.assign(**{"0": X["x"]})
            .set_axis([*X.columns, 0], axis=1)
            .assign(x=X["x"].where(X.index != 2, np.nan)),
            y,
        )
    ),
    ValueError,
    r"column names mix strings and other types",
)
bad(
    ["TextClassifier", "GenerativeTextClassifier"],
    "label_list_with_nan",
    inputs(lambda X, y: (X, [np.nan if i == 1 else v for i, v in enumerate(y)])),
    ValueError,
    r"missing labels.*position 1",
)


@pytest.mark.parametrize(
    ("name", "label", "spoil", "err", "match"),
    BAD,
    ids=[f"{n}-{label}" for n, label, *_ in BAD],
)
def test_bad_input_fails_before_training_and_leaves_inputs_alone(
    name: str, label: str, spoil: Spoil, err: Any, match: str, monkeypatch
) -> None:
    case: Case = BY_NAME[name]
    if case.extra:
        pytest.importorskip(case.extra, reason=f"{name} needs {case.extra}")

    def no_training(*args: Any, **kw: Any) -> None:
        raise AssertionError("training started on bad input")

    monkeypatch.setattr(deepfit.learner.Learner, "fit", no_training)
    monkeypatch.setattr(deepfit.learner.Learner, "lr_find", no_training)
    X, y = case.data()
    bad_X, bad_y, bad_params, kwargs = spoil(X, y)
    snapshot = copy.deepcopy((bad_X, bad_y, kwargs))
    est = case.make(0).set_params(**bad_params)
    with pytest.raises(err, match=match):
        if bad_y is None and name in ("LanguageModel", "CollabRecommender"):
            est.fit(bad_X, **kwargs)
        else:
            est.fit(bad_X, bad_y, **kwargs)
    _assert_unchanged((bad_X, bad_y, kwargs), snapshot)


def _assert_unchanged(now: Any, before: Any) -> None:
    if isinstance(before, pd.DataFrame):
        pd.testing.assert_frame_equal(now, before)
    elif isinstance(before, pd.Series):
        pd.testing.assert_series_equal(now, before)
    elif isinstance(before, np.ndarray):
        np.testing.assert_array_equal(now, before)
    elif isinstance(before, (tuple, list)):
        assert len(now) == len(before)
        for a, b in zip(now, before, strict=True):
            _assert_unchanged(a, b)
    elif isinstance(before, dict):
        assert now.keys() == before.keys()
        for k in before:
            _assert_unchanged(now[k], before[k])
    else:
        assert now == before or (now is not None and pd.isna(now) and pd.isna(before))


def test_there_are_at_least_sixty_cases() -> None:
    assert len(BAD) >= 60


@pytest.mark.parametrize(
    "name", ["TabularRegressor", "TabularClassifier", "CollabRegressor"]
)
def test_a_rate_too_high_to_learn_anything_says_so(name: str) -> None:
    """lr=10 ended at R^2 of -1.7e4 (tabular) and a training RMSE above the ratings'
    spread (collab), without a word."""
    case = BY_NAME[name]
    X, y = case.data()
    with pytest.warns(RuntimeWarning, match="above the .* of a constant prediction"):
        case.make(0).set_params(lr=50.0, epochs=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        case.make(0).fit(X, y)  # a sensible rate: no warning


def test_a_checkpoint_that_cannot_be_written_fails_before_the_finder(
    tmp_path, monkeypatch
) -> None:
    """The folder is checked when fit starts, not when the first epoch ends (after
    the finder's sweep, with lr=None)."""
    from deepfit import Checkpoint

    def no_training(*args: Any, **kw: Any) -> None:
        raise AssertionError("training started")

    monkeypatch.setattr(deepfit.learner.Learner, "fit", no_training)
    monkeypatch.setattr(deepfit.learner.Learner, "lr_find", no_training)
    (tmp_path / "a_file").write_text("")
    case = BY_NAME["TabularRegressor"]
    X, y = case.data()
    est = case.make(0).set_params(
        lr=None, callbacks=[Checkpoint(tmp_path / "a_file" / "best.pt")]
    )
    with pytest.raises(OSError, match=r"cannot write the checkpoint to .*best\.pt"):
        est.fit(X, y)
