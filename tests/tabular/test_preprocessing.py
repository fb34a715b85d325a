from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.base import clone

from tabular import TabularPreprocessor, embedding_width
from tabular.preprocessing import DATE_PARTS


def mixed_frame(n: int = 6) -> pd.DataFrame:
    base = pd.DataFrame(
        {
            "obj": pd.Series(["a", "b", None, "a", "c", "b"], dtype=object),
            "str": ["x", "y", "x", None, "y", "x"],  # pandas 3: dtype "str"
            "cat": pd.Categorical(["lo", "hi", "lo", "hi", None, "lo"]),
            "flag": [True, False, True, True, False, True],
            "spa": pd.Series(["p", "q", "p", "q", "p", "q"], dtype="string[pyarrow]"),
            "arw": pd.Series(
                ["u", "v", None, "u", "v", "u"], dtype=pd.ArrowDtype(pa.string())
            ),
            "abool": pd.Series(
                [True, False, True, None, True, False], dtype=pd.ArrowDtype(pa.bool_())
            ),
            "int": [1, 2, 3, 4, 5, 6],
            "flt": [1.0, np.nan, 3.0, 4.0, 5.0, 6.0],
            "nint": pd.array([1, None, 3, 4, 5, 6], dtype="Int64"),
            "aint": pd.Series([1, 2, 3, 4, 5, 6], dtype=pd.ArrowDtype(pa.int64())),
            "when": pd.to_datetime(
                [
                    "2020-01-01",
                    "2021-06-30",
                    None,
                    "2022-12-31",
                    "2023-03-31",
                    "2024-02-29",
                ]
            ),
            "whenz": pd.to_datetime(
                [
                    "2020-01-01",
                    "2021-06-30",
                    "2021-07-01",
                    "2022-12-31",
                    "2023-03-31",
                    "2024-02-29",
                ]
            ).tz_localize("Europe/Paris"),
            "dur": pd.to_timedelta([1, 2, 3, 4, 5, 6], unit="h"),
        }
    )
    return base.iloc[:n]


def test_dtype_detection_covers_pandas3_arrow_and_extension_dtypes():
    pre = TabularPreprocessor().fit(mixed_frame())
    assert pre.cat_features_ == ["obj", "str", "cat", "flag", "spa", "arw", "abool"]
    assert pre.cont_features_ == ["int", "flt", "nint", "aint", "dur"]
    assert pre.date_features_ == ["when", "whenz"]
    assert pd.api.types.is_string_dtype(mixed_frame()["str"].dtype)


def test_overrides_make_integers_categorical_and_strings_are_refused_as_continuous():
    df = mixed_frame()
    pre = TabularPreprocessor(cat_features=["int"], cont_features=["flag"]).fit(df)
    assert "int" in pre.cat_features_ and "flag" in pre.cont_features_
    with pytest.raises(
        ValueError, match=r"'str' is continuous .* non-numeric value 'x'"
    ):
        TabularPreprocessor(cont_features=["str"]).fit(df)
    with pytest.raises(ValueError, match="both cat_features and cont_features"):
        TabularPreprocessor(cat_features=["int"], cont_features=["int"]).fit(df)
    with pytest.raises(ValueError, match="names column 'nope'"):
        TabularPreprocessor(cat_features=["nope"]).fit(df)


def test_codes_reserve_zero_for_unknown_and_give_missing_its_own_code():
    pre = TabularPreprocessor().fit(mixed_frame())
    # obj: 0 unknown, 1 missing, then a, b, c.
    assert pre.categories_["obj"].tolist() == ["a", "b", "c"]
    assert pre.has_na_["obj"] and not pre.has_na_["flag"]
    new = mixed_frame().iloc[:3].copy()
    new["obj"] = ["c", None, "never seen"]
    new["flag"] = [
        False,
        True,
        None,
    ]  # no missing flags in training: missing -> unknown
    out = pre.transform(new)
    assert out["obj"].tolist() == [4, 1, 0]
    assert out["flag"].tolist() == [1, 2, 0]
    assert pre.cardinalities_[0] == 5  # unknown + missing + 3 values


def test_small_and_large_inputs_map_alike():
    df = pd.concat([mixed_frame()] * 20, ignore_index=True)  # 120 rows: vectorised path
    pre = TabularPreprocessor().fit(df)
    big = pre.transform(df)
    small = pd.concat([pre.transform(df.iloc[i : i + 1]) for i in range(6)])
    pd.testing.assert_frame_equal(big.iloc[:6], small)


@pytest.mark.parametrize("n", [4, 400])
def test_category_dtype_with_other_categories_maps_by_value(n):
    train = pd.DataFrame({"c": pd.Categorical(["a", "b", "c", "a"] * 10)})
    pre = TabularPreprocessor().fit(train)
    codes = {v: pre.transform(pd.DataFrame({"c": [v]}))["c"].iloc[0] for v in "abc"}
    # Same values, another category order and an extra category: codes follow values.
    values = ["c", "a", "z", "b"] * (n // 4)
    other = pd.DataFrame({"c": pd.Categorical(values, categories=["z", "c", "b", "a"])})
    got = pre.transform(other)["c"].to_numpy()
    expected = [codes.get(v, 0) for v in values]
    assert got.tolist() == expected


def test_min_frequency_sends_rare_values_to_unknown():
    df = pd.DataFrame({"c": ["a"] * 5 + ["b"] * 2 + ["rare"]})
    pre = TabularPreprocessor(min_frequency=2).fit(df)
    assert pre.categories_["c"].tolist() == ["a", "b"]
    assert pre.transform(df)["c"].tolist()[-1] == 0


def test_continuous_median_fill_indicator_and_standardisation():
    df = pd.DataFrame({"x": [1.0, 2.0, np.nan, 10.0], "z": [5.0, 5.0, 5.0, 6.0]})
    pre = TabularPreprocessor().fit(df)
    assert pre.cont_names_ == ["x", "z", "x_na"]
    assert pre.medians_["x"] == 2.0
    out = pre.transform(df)
    np.testing.assert_allclose(out.mean().to_numpy(), 0, atol=1e-6)
    np.testing.assert_allclose(out.std(ddof=0).to_numpy(), 1, atol=1e-5)
    filled = out["x"].iloc[2] * pre.scales_[0] + pre.means_[0]
    assert filled == pytest.approx(2.0)
    assert out["x_na"].iloc[2] > out["x_na"].iloc[0]
    # Missing only at transform time: the median, no new column.
    more = pre.transform(pd.DataFrame({"x": [1.0], "z": [np.nan]}))
    assert (
        list(more.columns) == ["x", "z", "x_na"] and np.isfinite(more.to_numpy()).all()
    )


def test_datetime_parts_tz_aware_and_converted_to_the_training_zone():
    df = mixed_frame()
    pre = TabularPreprocessor().fit(df)
    names = pre.cont_names_
    assert [f"when_{p}" for p in DATE_PARTS] == [
        n for n in names if n.startswith("when_")
    ][: len(DATE_PARTS)]
    assert "when_na" in names and "whenz_na" not in names
    raw = pre._raw_continuous(df)[0]
    j = names.index("when_dayofyear")
    assert raw[5, j] == 60  # 2024-02-29
    assert raw[3, names.index("when_is_year_end")] == 1
    # Midnight in Paris on 2020-01-01 is still 2019 in UTC; parts are Paris time.
    assert raw[0, names.index("whenz_year")] == 2020
    utc = df.copy()
    utc["whenz"] = utc["whenz"].dt.tz_convert("UTC")
    np.testing.assert_allclose(
        pre.transform(utc).to_numpy(), pre.transform(df).to_numpy()
    )
    naive = df.copy()
    naive["whenz"] = naive["whenz"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="'whenz' was tz-aware in training"):
        pre.transform(naive)


def test_numpy_input_is_continuous_unless_cat_features_names_indices():
    X = np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 0.0], [4.0, 2.0]])
    pre = TabularPreprocessor().fit(X)
    assert pre.cont_features_ == ["x0", "x1"] and pre.cat_features_ == []
    pre = TabularPreprocessor(cat_features=[1]).fit(X)
    assert pre.cat_features_ == ["x1"]
    assert pre.transform(X)["x1"].tolist() == [1, 2, 1, 3]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"a": [], "b": []}), "no rows"),
        (pd.DataFrame(index=range(3)), "no columns"),
        (pd.DataFrame([[1, 2], [3, 4]], columns=["a", "a"]), "duplicate column names"),
        (
            pd.DataFrame({"a": [1.0, 2.0], "b": [np.nan, np.nan]}),
            "'b' is missing in every",
        ),
        (
            pd.DataFrame({"a": ["x", "y"], "b": [None, None]}, dtype=object),
            "'b' is missing",
        ),
        (pd.DataFrame({"a": [1.0, np.inf]}), "'a' holds an infinite value"),
        (pd.DataFrame({"a": [1 + 1j, 2j]}), "'a' has dtype complex128"),
    ],
)
def test_bad_frames_at_fit_raise_naming_the_problem(frame, message):
    with pytest.raises(ValueError, match=message):
        TabularPreprocessor().fit(frame)


def test_transform_errors_name_the_column_and_extra_or_reordered_columns_work():
    df = mixed_frame()
    pre = TabularPreprocessor().fit(df)
    with pytest.raises(ValueError, match=r"missing column\(s\) seen in fit: \['flt'\]"):
        pre.transform(df.drop(columns="flt"))
    shuffled = df[df.columns[::-1]].assign(extra=1)
    pd.testing.assert_frame_equal(pre.transform(shuffled), pre.transform(df))
    bad = df.astype({"flt": object})
    bad.loc[1, "flt"] = "oops"
    with pytest.raises(ValueError, match=r"'flt' is continuous .* 'oops'"):
        pre.transform(bad)


def test_the_callers_frame_is_never_modified():
    df = mixed_frame()
    before = df.copy(deep=True)
    pre = TabularPreprocessor().fit(df)
    pre.transform(df)
    pre.transform(df.iloc[:2])
    pd.testing.assert_frame_equal(df, before)
    assert (df.dtypes == before.dtypes).all()


def test_clone_pickle_and_feature_names():
    df = mixed_frame()
    pre = TabularPreprocessor(min_frequency=1).fit(df)
    assert clone(pre).get_params() == pre.get_params()
    back = pickle.loads(pickle.dumps(pre))
    pd.testing.assert_frame_equal(back.transform(df), pre.transform(df))
    assert list(pre.get_feature_names_out()) == list(pre.transform(df).columns)


def test_embedding_width_rule():
    assert [embedding_width(c) for c in (2, 3, 10, 99, 100_001)] == [1, 2, 5, 50, 50]


def test_high_cardinality_is_vectorised_and_lean():
    rng = np.random.default_rng(0)
    levels = np.array([f"id{i}" for i in range(100_000)])
    df = pd.DataFrame({"id": levels[rng.integers(0, 100_000, 300_000)]})
    pre = TabularPreprocessor().fit(df)
    assert pre.cardinalities_[0] > 90_000  # ~95% of the levels drawn
    codes, _ = pre.transform_arrays(df)
    # Codes follow the sorted known values; the fitted state is one index of the levels.
    known = pre.categories_["id"]
    np.testing.assert_array_equal(
        known[codes[:1000, 0] - 1], df["id"].to_numpy()[:1000]
    )
    assert pickle.dumps(pre).__len__() < 5_000_000


def test_single_row_fast_path_agrees_and_falls_back_on_odd_values():
    df = mixed_frame().drop(columns=["when", "whenz", "dur"])
    big = pd.concat([df] * 10, ignore_index=True)
    pre = TabularPreprocessor().fit(big)
    expected = pre.transform(big).iloc[:6]
    rows = pd.concat([pre.transform(big.iloc[[i]]) for i in range(6)])
    pd.testing.assert_frame_equal(rows, expected)
    odd = big.iloc[[0]].astype({"flt": object, "nint": object})
    odd.loc[0, "flt"], odd.loc[0, "nint"] = None, pd.NA
    out = pre.transform(odd)
    assert out["flt_na"].iloc[0] > 0 and out["nint_na"].iloc[0] > 0
    with pytest.raises(ValueError, match="'flt' holds an infinite value"):
        pre.transform(big.iloc[[0]].assign(flt=np.inf))


@pytest.mark.parametrize("min_frequency", [1, 2])
def test_fit_transform_hashes_once_and_agrees_with_transform(min_frequency):
    df = pd.concat([mixed_frame()] * 7, ignore_index=True)
    df.loc[3, "obj"] = "once"
    pre = TabularPreprocessor(min_frequency=min_frequency, int_levels=10)
    codes, cont = pre.fit_transform_arrays(df)
    again_codes, again_cont = pre.transform_arrays(df)
    np.testing.assert_array_equal(codes, again_codes)
    np.testing.assert_allclose(cont, again_cont, rtol=1e-6)
    assert pre.cat_names_[-3:] == ["int_cat", "nint_cat", "aint_cat"]
    pd.testing.assert_frame_equal(clone(pre).fit_transform(df), pre.transform(df))


def test_usable_inside_a_pipeline_before_another_model():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"city": rng.choice(["a", "b", "c"], 300), "x": rng.normal(size=300)}
    )
    y = (df["city"] == "b") ^ (df["x"] > 1)
    pipe = make_pipeline(
        TabularPreprocessor(),
        HistGradientBoostingClassifier(categorical_features=[0], max_iter=20),
    ).fit(df, y)
    assert pipe.score(df, y) > 0.95


def test_clip_holds_continuous_values_and_date_parts_to_the_training_range():
    train = pd.DataFrame(
        {
            "x": [1.0, 2.0, 3.0, 4.0],
            "when": pd.to_datetime(
                ["2020-01-01", "2020-03-01", "2020-06-01", "2020-09-01"]
            ),
        }
    )
    later = pd.DataFrame(
        {"x": [10.0, -5.0], "when": pd.to_datetime(["2024-12-31", "2019-01-01"])}
    )
    clipped = TabularPreprocessor(clip=True).fit(train)
    free = TabularPreprocessor().fit(train)
    lo, hi = clipped.transform(train).min(), clipped.transform(train).max()
    out = clipped.transform(later)
    for col in out.columns:
        assert lo[col] <= out[col].min() and out[col].max() <= hi[col], col
    assert out.loc[0, "x"] == pytest.approx(hi["x"])  # 10 -> 4, the training maximum
    assert free.transform(later).loc[0, "x"] > hi["x"]  # unclipped: beyond the range
    np.testing.assert_allclose(
        clipped.transform(train).to_numpy(), free.transform(train).to_numpy()
    )


_VALUES = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, 1.0, 2.5, float("nan")]),
    st.sampled_from(["a", "b", "1", "True"]),
    st.none(),
)


@settings(max_examples=60, deadline=None)
@given(
    train=st.lists(_VALUES, min_size=2, max_size=12),
    test=st.lists(_VALUES, min_size=1, max_size=8),
    as_bool=st.booleans(),
    infer=st.booleans(),
)
def test_few_rows_and_many_rows_code_every_value_alike(train, test, as_bool, infer):
    """The dictionary path (<= 32 rows) and the pandas path code each value the same,
    whatever types fit and predict hold (0/1 for a bool column, say)."""
    if as_bool:
        train = [bool(v) if v is not None and v == v else v for v in train]
    assume(any(v is not None and v == v for v in train))  # not all missing
    fit_col = pd.Series(train, dtype=object if not as_bool else None)
    pre = TabularPreprocessor(cat_features=["c"]).fit(pd.DataFrame({"c": fit_col}))
    frame = pd.DataFrame({"c": pd.Series(test, dtype=None if infer else object)})
    few = np.concatenate(
        [pre.transform_arrays(frame.iloc[[i]])[0] for i in range(len(frame))]
    )
    many = pre.transform_arrays(pd.concat([frame] * 40, ignore_index=True))[0]
    np.testing.assert_array_equal(np.tile(few, (40, 1)), many)


def test_integer_columns_given_as_digit_strings_code_alike():
    rng = np.random.default_rng(0)
    train = pd.DataFrame({"age": rng.integers(18, 60, 500), "n": rng.normal(size=500)})
    pre = TabularPreprocessor(int_levels=100).fit(train)
    as_text = train.astype({"age": str})
    for rows in (slice(0, 5), slice(None)):  # the few-rows and the general path
        codes, cont = pre.transform_arrays(train.iloc[rows])
        codes_s, cont_s = pre.transform_arrays(as_text.iloc[rows])
        np.testing.assert_array_equal(codes_s, codes)
        np.testing.assert_allclose(cont_s, cont)
    assert (codes > 0).all()


def test_derived_names_never_take_an_input_columns_name():
    # A datetime column "when" expands to when_year ..., beside a real "when_year"; its
    # missing-date indicator when_na, beside a real "when_na"; columns 0 and "0".
    df = pd.DataFrame(
        {
            "when": pd.to_datetime(["2020-01-01", "2021-06-01", None, "2022-03-03"]),
            "when_year": [1.0, 2.0, 3.0, np.nan],
            0: [1.0, 2.0, 3.0, 4.0],
            "0": [10.0, 20.0, 30.0, 40.0],
            "when_na": ["a", "b", "a", "b"],
        }
    )
    pre = TabularPreprocessor().fit(df)
    out = pre.transform(df)
    assert not out.columns.has_duplicates
    assert list(out.columns) == list(pre.get_feature_names_out())
    # Each input column keeps its own fill value and its own name.
    assert pre.medians_["when_year"] == 2.0
    assert pre.medians_["when_year_1"] == 2021.0  # the date part, renamed
    assert (pre.medians_["0"], pre.medians_["0_1"]) == (2.5, 25.0)
    assert out["when_na"].tolist() == [1, 2, 1, 2]  # the real column's codes
    filled = out["when_year"].iloc[3] * pre.scales_[0] + pre.means_[0]
    assert filled == pytest.approx(2.0)  # its own median, not the date part's
    # A row through the few-rows path reads the same as through the general path.
    wide = pd.concat([df.drop(columns="when")] * 10, ignore_index=True)
    pre = TabularPreprocessor().fit(wide)
    np.testing.assert_array_equal(
        pre.transform(wide.head(3)).to_numpy(), pre.transform(wide).head(3).to_numpy()
    )


def test_a_flag_seen_in_fewer_than_min_frequency_rows_is_held_at_zero():
    n = 400
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "once": np.r_[1.0, np.zeros(n - 1)],  # set in 1 row
            "often": np.r_[np.ones(5), np.zeros(n - 5)],  # set in 5 rows
            "coin": rng.integers(0, 2, n).astype(float),
            "x": np.r_[np.nan, rng.normal(size=n - 1)],  # x_na is set in 1 row
            "same": np.full(n, 2.0),
            # One day of February, then March: is_month_end is set in one row only.
            "when": pd.to_datetime(["2019-02-28"])
            .append(pd.date_range("2019-03-01", periods=n - 1, freq="90min"))
            .to_numpy(),
        }
    )
    pre = TabularPreprocessor(min_frequency=5).fit(train)
    held = {c for c, h in zip(pre.cont_names_, pre.held_, strict=True) if h}
    assert {"once", "x_na", "same", "when_is_month_end", "when_month"} <= held
    assert not {"often", "coin", "x", "when_day", "when_elapsed"} & held
    # Held columns are 0 in training and after, whatever the value; others are not.
    later = pd.DataFrame(
        {
            "once": [1.0, 0.0],
            "often": [1.0, 0.0],
            "coin": [1.0, 0.0],
            "x": [np.nan, 0.5],
            "same": [7.0, 2.0],
            "when": pd.to_datetime(["2019-03-31", "2019-03-30"]),
        }
    )
    for frame in (train, later):
        out = pre.transform(frame)
        assert (out[sorted(held)] == 0).all().all()
    out = pre.transform(later)
    assert out.loc[0, "often"] != out.loc[1, "often"]
    # min_frequency=1 holds only the constant columns.
    loose = TabularPreprocessor().fit(train)
    np.testing.assert_array_equal(loose.held_, loose.lows_ == loose.highs_)
    assert loose.held_[loose.cont_names_.index("same")]
