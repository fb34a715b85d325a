"""``TabularPreprocessor``: a DataFrame in, categorical codes and scaled continuous values out.

Every step is vectorised (pandas, pyarrow, numpy); nothing loops over rows in Python except
the small-input path used for a handful of rows (single-row prediction), where a dictionary
lookup beats building hash tables.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from deepfit.data import is_frame
from deepfit.params import Boolean, Interval, Satisfies, validate_params
from deepfit.persist import persistable
from deepfit.stream import Moments, RowSample, ValueCounts
from tabular.categories import (
    SMALL,
    column_codes,
    fit_codes,
    known_values,
    lookup_codes,
    lookup_table,
    missing_everywhere,
)
from tabular.columns import (
    column_kind,
    holds_strings,
    is_integer_dtype,
    to_float,
    to_frame,
)
from tabular.dates import DATE_PARTS, date_parts, to_datetime

__all__ = [
    "DATE_PARTS",
    "TabularPreprocessor",
    "embedding_width",
    "holds_strings",
    "to_frame",
    "unique_names",
]


UNKNOWN = "#unknown"
MISSING = "#na"


def embedding_width(cardinality: int) -> int:
    """fastai's rule of thumb for an embedding's width: ``min(50, (c + 1) // 2)``, where
    ``c`` counts every code including the unknown one."""
    return int(min(50, (cardinality + 1) // 2))


def unique_names(names: Sequence[str], taken: set[str]) -> list[str]:
    """``names`` made unique against ``taken`` (and each other) by a ``_1``, ``_2`` ...
    suffix; ``taken`` gains the names given out."""
    out = []
    for name in names:
        new, k = name, 1
        while new in taken:
            new, k = f"{name}_{k}", k + 1
        taken.add(new)
        out.append(new)
    return out


def _names_ok(names: Any) -> bool:
    return isinstance(names, (str, numbers.Integral, list, tuple, np.ndarray, pd.Index))


@persistable
class TabularPreprocessor(TransformerMixin, BaseEstimator):
    """DataFrame -> categorical codes and standardised continuous columns.

    Categorical columns (object, pandas ``str``/string, ``category``, bool and pyarrow
    string/bool/dictionary dtypes, plus any column named in ``cat_features``) are mapped to
    codes: 0 is reserved for unknown values (unseen in training, or rarer than
    ``min_frequency``), 1 for missing values when training had any, then the known values
    in sorted order. Mapping is by value, so a ``category`` column whose categories differ
    between fit and transform still maps each value to its training code.

    Continuous columns (numeric dtypes, nullable and pyarrow ones included; timedeltas as
    seconds) get their missing values filled with the training median plus a
    ``<col>_na`` indicator when training had missing values, then standardisation.
    Datetime columns (tz-aware too; converted to the training time zone) expand into the
    parts in :data:`DATE_PARTS` (``<col>_year`` ... ``<col>_elapsed``), treated as
    continuous, with one ``<col>_na`` indicator when training had missing dates. Integer
    columns are continuous unless named in ``cat_features``.

    Parameters
    ----------
    cat_features : list or None, default=None
        Columns to treat as categorical whatever their dtype (names for a DataFrame,
        indices for an array). Other columns are detected by dtype.
    cont_features : list or None, default=None
        Columns to treat as continuous whatever their dtype.
    min_frequency : int, default=1
        Categories seen fewer times than this in training map to the unknown code, so the
        unknown embedding learns from rare values. Likewise a two-valued continuous
        output (a 0/1 column, a date flag such as ``<col>_is_month_end``, a ``<col>_na``
        indicator) whose rarer value was seen fewer times than this is *held*: it is 0
        in every row, in training and after (so is a column constant in training, whose
        other values were never seen). A handful of rows cannot teach a network
        what the value means, and standardised, a flag set in 1 row of 5,000 reads 71:
        one February trip in a March table of taxi fares set ``is_month_end``, and every
        trip of March 31 then looked like it.
    int_levels : int, default=0
        Integer columns (detected as continuous, not named in ``cont_features``) with 2 to
        ``int_levels`` distinct values in training are *also* encoded as a categorical
        column ``<col>_cat``, keeping their continuous value. 0 turns this off.
    clip : bool, default=False
        Clip each continuous column (date parts and ``elapsed`` included) to its
        training range before standardising, so a model sees no value beyond what it
        was trained on (a network extrapolates linearly there; trees are flat).

    Attributes
    ----------
    cat_features_, cont_features_, date_features_ : list
        The input columns of each kind.
    int_cat_features_ : list
        Integer columns also encoded as categorical (see ``int_levels``).
    cat_names_ : list
        The categorical outputs, in code-column order: ``cat_features_``, then
        ``<col>_cat`` for each of ``int_cat_features_``.
    categories_ : dict of name -> pandas.Index
        The known values of each categorical output; a value's code is its position plus
        ``1 + has_na_[name]``.
    has_na_ : dict of column -> bool
        Whether the column had missing values in training (they then have code 1).
    cardinalities_ : list of int
        Codes per categorical column, the unknown (and missing) codes included.
    cat_output_names_ : list of str
        Names of :meth:`transform`'s code columns (``cat_names_`` as unique strings).
    cont_names_ : list of str
        Names of the continuous output columns (date parts and ``_na`` indicators
        included). Derived names never take an input column's name: they get a ``_1``
        suffix when one is taken (a datetime column ``when`` beside a column
        ``when_year``).
    medians_ : dict of str -> float
        Fill value of each raw continuous output column.
    means_, scales_ : ndarray
        Standardisation of the continuous output columns.
    lows_, highs_ : ndarray
        Their training ranges (before standardisation; see ``clip``).
    held_ : ndarray of bool
        The continuous outputs held at 0 (see ``min_frequency``).
    feature_names_in_ : ndarray
    n_features_in_ : int

    Example
    -------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"city": ["a", "b", "a"], "age": [30.0, None, 50.0]})
    >>> pre = TabularPreprocessor().fit(df)
    >>> pre.cat_features_, pre.cont_names_
    (['city'], ['age', 'age_na'])
    >>> pre.transform(pd.DataFrame({"city": ["b", "zzz"], "age": [40.0, 40.0]}))["city"]
    0    2
    1    0
    Name: city, dtype: int64
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "cat_features": [Satisfies(_names_ok, "a column name or a list of them"), None],
        "cont_features": [
            Satisfies(_names_ok, "a column name or a list of them"),
            None,
        ],
        "min_frequency": [Interval(numbers.Integral, 1, None)],
        "int_levels": [Interval(numbers.Integral, 0, None)],
        "clip": [Boolean()],
    }

    def __init__(
        self,
        cat_features: Sequence[Any] | None = None,
        cont_features: Sequence[Any] | None = None,
        min_frequency: int = 1,
        int_levels: int = 0,
        clip: bool = False,
    ) -> None:
        self.cat_features = cat_features
        self.cont_features = cont_features
        self.min_frequency = min_frequency
        self.int_levels = int_levels
        self.clip = clip

    # ---- fit ------------------------------------------------------------------------

    def _resolve_names(self, df: pd.DataFrame, names: Any, param: str) -> list[Any]:
        if names is None:
            return []
        if isinstance(names, (str, numbers.Integral)):
            names = [names]
        out = []
        generated = list(df.columns) == [f"x{i}" for i in range(df.shape[1])]
        for name in names:
            if name in df.columns:
                out.append(name)
            elif (
                generated
                and isinstance(name, numbers.Integral)
                and 0 <= name < df.shape[1]
            ):
                out.append(f"x{int(name)}")
            else:
                raise ValueError(
                    f"{param} names column {name!r}, which X does not have"
                )
        return out

    def _check_frame(self, df: pd.DataFrame) -> None:
        if df.columns.has_duplicates:
            dup = df.columns[df.columns.duplicated()].unique().tolist()
            raise ValueError(f"X has duplicate column names: {dup}")
        if df.shape[1] == 0:
            raise ValueError(
                f"X has no columns: 0 feature(s) (shape={df.shape}) while a minimum of "
                "1 is required."
            )
        if df.shape[0] == 0:
            raise ValueError(
                f"X has no rows (an empty frame): 0 sample(s) (shape={df.shape}) while "
                "a minimum of 1 is required."
            )

    def fit(self, X: Any, y: Any = None) -> TabularPreprocessor:
        """Learn codes, fill values and scales from ``X``."""
        self._fit(X)
        return self

    def fit_transform_arrays(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``fit(X)`` and ``transform_arrays(X)`` in one pass: the training codes come
        from the hashing that finds the categories, not from a second one."""
        return self._fit(X)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        """``fit(X)``, then :meth:`transform` ``(X)``, hashing each column once."""
        codes, cont = self._fit(X)
        return self._to_frame(codes, cont, to_frame(X).index)

    def _fit(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        validate_params(self)
        df = to_frame(X)
        self._check_frame(df)
        conts = self._detect_columns(df, by_dtype=is_frame(X))

        # Integer columns with few levels are also embedded: the network then learns a
        # value per level (Adult's capital gain of exactly 99999, say) besides the trend.
        self._set_int_cats(
            df.columns,
            {c: df[c].nunique() for c in self._int_candidates(df, conts)},
        )
        self.categories_, self.has_na_ = {}, {}
        codes = np.empty((len(df), len(self.cat_names_)), dtype=np.int64)
        for j, (name, col) in enumerate(self.cat_sources_.items()):
            self.categories_[name], self.has_na_[name], codes[:, j] = fit_codes(
                df[col], col, self.min_frequency
            )
        self.cardinalities_ = [
            len(self.categories_[c]) + 1 + int(self.has_na_[c]) for c in self.cat_names_
        ]
        raw, sources = self._raw_continuous(df)
        moments = Moments(raw.shape[1])
        moments.update(raw)
        self._fit_continuous(moments, sources, raw)
        self._cache: dict[Any, Any] = {}
        return codes, self._scale(self._finish_continuous(raw, sources))

    def _detect_columns(self, df: pd.DataFrame, by_dtype: bool) -> list[Any]:
        """Sort ``df``'s columns into categorical, continuous and datetime ones (and
        read the datetime columns' time zones). Returns the columns forced continuous."""
        cats = self._resolve_names(df, self.cat_features, "cat_features")
        conts = self._resolve_names(df, self.cont_features, "cont_features")
        both = set(cats) & set(conts)
        if both:
            raise ValueError(f"columns in both cat_features and cont_features: {both}")
        self.cat_features_, self.cont_features_, self.date_features_ = [], [], []
        # An array's columns are continuous unless cat_features names them or they hold
        # strings (an object array: a ColumnTransformer's output with text passed through).
        for col in df.columns:
            if col in cats:
                kind = "cat"
            elif col in conts:
                kind = "cont"
            elif not by_dtype:
                kind = "cat" if holds_strings(df[col]) else "cont"
            else:
                kind = column_kind(df[col].dtype)
            if kind == "?":
                raise ValueError(
                    f"column {col!r} has dtype {df[col].dtype}, which is neither "
                    "categorical, continuous nor datetime; convert it or drop it"
                )
            {
                "cat": self.cat_features_,
                "cont": self.cont_features_,
                "date": self.date_features_,
            }[kind].append(col)
        self.feature_names_in_ = np.asarray(df.columns, dtype=object)
        self.n_features_in_ = df.shape[1]
        self.date_tz_ = {}
        for col in self.date_features_:
            s = df[col]
            if isinstance(
                s.dtype, pd.ArrowDtype
            ) or not pd.api.types.is_datetime64_any_dtype(s.dtype):
                s = pd.to_datetime(s)
            self.date_tz_[col] = getattr(s.dt, "tz", None)
        return conts

    def _int_candidates(self, df: pd.DataFrame, conts: list[Any]) -> list[Any]:
        """Integer columns that ``int_levels`` may also embed (not forced continuous)."""
        if not self.int_levels:
            return []
        return [
            c
            for c in self.cont_features_
            if c not in conts and is_integer_dtype(df[c].dtype)
        ]

    def _set_int_cats(self, columns: pd.Index, levels: dict[Any, int]) -> None:
        """The integer columns also embedded (2 to ``int_levels`` distinct values in
        ``levels``) and the categorical outputs' sources."""
        self.int_cat_features_ = []
        for col, k in levels.items():
            name = f"{col}_cat"
            if (
                name not in columns
                and name not in {f"{c}_cat" for c in self.int_cat_features_}
                and 2 <= k <= self.int_levels
            ):
                self.int_cat_features_.append(col)
        self.cat_sources_ = {c: c for c in self.cat_features_}
        self.cat_sources_.update({f"{c}_cat": c for c in self.int_cat_features_})
        self.cat_names_ = list(self.cat_sources_)

    def fit_frames(
        self,
        frames: Iterable[pd.DataFrame],
        sample: RowSample,
        columns: Sequence[Any] | None = None,
    ) -> None:
        """Fit in one pass over ``frames`` (a table too large for memory, read a record
        batch at a time): category counts, missing counts, means, variances, minima and
        maxima are exact (up to rounding); medians come from ``sample``, a uniform
        sample of the rows that this pass fills (see :class:`deepfit.stream.RowSample`
        for its accuracy). ``columns`` names the features when the frames hold more
        (a target, say; the sample keeps every column). The first frame decides the
        columns' kinds."""
        validate_params(self)
        it = iter(frames)
        head = next(it, None)
        if head is None:
            raise ValueError("X has no rows (an empty dataset)")
        columns = list(head.columns if columns is None else columns)
        first = head[columns]
        self._check_frame(first)
        conts = self._detect_columns(first, by_dtype=True)
        ints = self._int_candidates(first, conts)
        counts = {c: ValueCounts() for c in self.cat_features_}
        int_counts = {c: ValueCounts() for c in ints}
        n_missing = dict.fromkeys(self.cat_features_, 0)
        moments = None
        for whole in itertools.chain([head], it):
            sample.update(whole)
            df = whole[columns]
            for col in self.cat_features_:
                s = df[col]
                try:
                    counts[col].update(s)
                except TypeError as err:
                    raise ValueError(
                        f"categorical column {col!r} holds values that cannot be "
                        f"hashed ({err})"
                    ) from err
                n_missing[col] += int(s.isna().sum())
            for col in list(int_counts):  # until a column has too many levels
                int_counts[col].update(df[col])
                if len(int_counts[col]) > self.int_levels:
                    del int_counts[col]
            raw, sources = self._raw_continuous(df)
            moments = moments or Moments(raw.shape[1])
            moments.update(raw)
        levels = {c: len(int_counts[c]) if c in int_counts else 0 for c in ints}
        self._set_int_cats(first.columns, levels)
        self.categories_, self.has_na_ = {}, {}
        for name, col in self.cat_sources_.items():
            if name == col:
                found, n_na = counts[col].total(), n_missing[col]
            else:  # <col>_cat: by the numeric value, as in transform
                found = int_counts[col].total()
                n_na = int(moments.rows - moments.n[sources[col][0]])
            if not len(found):
                missing_everywhere(col)
            self.categories_[name] = known_values(
                found.index, found.to_numpy(), self.min_frequency
            )
            self.has_na_[name] = n_na > 0
        self.cardinalities_ = [
            len(self.categories_[c]) + 1 + int(self.has_na_[c]) for c in self.cat_names_
        ]
        assert moments is not None
        raw_sample, _ = self._raw_continuous(sample.frame[columns])
        self._fit_continuous(moments, sources, raw_sample)
        self._cache = {}

    def _fit_continuous(
        self,
        moments: Moments,
        sources: dict[Any, tuple[int, int]],
        raw_sample: np.ndarray,
    ) -> None:
        """The continuous outputs' fitted state, from the raw columns' exact
        ``moments`` and a sample of their rows (every row, in memory) for the medians:
        the ``_na`` indicators, the medians that fill missing values, and the scaling
        of the filled columns and the indicators."""
        self.na_sources_ = []
        medians = np.empty(raw_sample.shape[1])
        for src, (lo, hi) in sources.items():
            if (moments.n[lo:hi] == 0).all():
                missing_everywhere(src)
            for j in range(lo, hi):
                col = raw_sample[:, j]
                # A sample may miss a rare column's values: its mean then stands in.
                medians[j] = (
                    np.nanmedian(col) if (~np.isnan(col)).any() else moments.mean[j]
                )
            if (moments.n[lo:hi] < moments.rows).any():
                self.na_sources_.append(src)
        self.cat_output_names_, raw_names, na_names = self._output_names()
        self.cont_names_ = raw_names + na_names
        self.medians_ = dict(zip(raw_names, medians.tolist(), strict=True))
        with np.errstate(over="ignore", invalid="ignore"):  # checked in _set_scaling
            mean, std, low, high = moments.filled(medians)
        share = np.array(
            [1 - moments.n[sources[s][0]] / moments.rows for s in self.na_sources_]
        ).reshape(-1)
        self._set_scaling(
            np.concatenate([mean, share]),
            np.concatenate([std, np.sqrt(share * (1 - share))]),
            np.concatenate([low, (share == 1).astype(np.float64)]),
            np.concatenate([high, (share > 0).astype(np.float64)]),
            moments.rows,
        )

    def _set_scaling(
        self,
        mean: np.ndarray,
        std: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        rows: int,
    ) -> None:
        """Standardisation, training ranges and held columns of the continuous outputs,
        from their (filled) moments over ``rows`` training rows. ``ValueError`` naming
        a column whose values are too large to standardise in float64 (its variance
        overflows, from about 1e154)."""
        wide = ~(np.isfinite(mean) & np.isfinite(std))
        if wide.any():
            col = self.cont_names_[int(np.flatnonzero(wide)[0])]
            raise ValueError(
                f"column {col!r} holds values too large to standardise (up to "
                f"{max(abs(low[wide][0]), abs(high[wide][0])):.3g}); rescale it (say "
                "to other units, or its log)"
            )
        self.means_, self.lows_, self.highs_ = mean, low, high
        self.scales_ = np.where(std > 1e-12, std, 1.0)
        # A column takes at most two values exactly when its variance reaches the
        # Bhatia-Davis bound (high - mean)(mean - low); the rarer value's count follows
        # from the mean (0 for a constant column).
        span = high - low
        with np.errstate(over="ignore", invalid="ignore"):  # 1e150s: an inf side
            two = std**2 >= (high - mean) * (mean - low) - 1e-9 * span**2
        share = np.divide(mean - low, span, out=np.zeros_like(span), where=span > 0)
        rarer = np.rint(np.minimum(share, 1 - share) * rows)
        self.held_ = two & (rarer < self.min_frequency)

    def _output_names(self) -> tuple[list[str], list[str], list[str]]:
        """Unique output names: the code columns, the raw continuous columns and the
        ``_na`` indicators. Input columns keep their names (a second one reading the
        same, ``"0"`` after ``0``, gets a suffix); derived names (``<col>_cat``, date
        parts, ``<col>_na``) never take an input column's name, so no fitted value is
        keyed twice and :meth:`transform` has no duplicate columns."""
        reals = [str(c) for c in (*self.cat_features_, *self.cont_features_)]
        taken, seen, named = set(reals), set(), []
        for name in reals:
            named.append(name if name not in seen else unique_names([name], taken)[0])
            seen.add(name)
        n_cat = len(self.cat_features_)
        cat = named[:n_cat] + unique_names(
            [f"{c}_cat" for c in self.int_cat_features_], taken
        )
        dates = [f"{c}_{p}" for c in self.date_features_ for p in DATE_PARTS]
        raw = named[n_cat:] + unique_names(dates, taken)
        na = unique_names([f"{s}_na" for s in self.na_sources_], taken)
        return cat, raw, na

    def _scale(self, cont: np.ndarray) -> np.ndarray:
        """Standardised (after clipping to the training range, with ``clip``); held
        columns are 0."""
        if self.held_.any():
            cont = np.where(self.held_, self.means_, cont)
        if self.clip:
            cont = np.clip(cont, self.lows_, self.highs_)
        return ((cont - self.means_) / self.scales_).astype(np.float32)

    def _raw_continuous(
        self, df: pd.DataFrame
    ) -> tuple[np.ndarray, dict[Any, tuple[int, int]]]:
        """Continuous and date-part columns before filling, with each source column's
        slice of them."""
        blocks, sources, at = [], {}, 0
        for col in self.cont_features_:
            blocks.append(to_float(df[col], col)[:, None])
            sources[col] = (at, at + 1)
            at += 1
        for col in self.date_features_:
            blocks.append(date_parts(to_datetime(df[col], col, self.date_tz_[col])))
            sources[col] = (at, at + len(DATE_PARTS))
            at += len(DATE_PARTS)
        raw = np.concatenate(blocks, axis=1) if blocks else np.empty((len(df), 0))
        if raw.size and not np.isfinite(raw[~np.isnan(raw)]).all():
            j = int(np.flatnonzero(np.isinf(raw).any(axis=0))[0])
            src, (lo, hi) = next((c, s) for c, s in sources.items() if s[0] <= j < s[1])
            part = f" (its {DATE_PARTS[j - lo]})" if hi - lo > 1 else ""
            raise ValueError(
                f"column {src!r}{part} holds an infinite value; replace it (say with "
                "NaN, which is filled with the training median)"
            )
        return raw, sources

    def _finish_continuous(
        self, raw: np.ndarray, sources: dict[Any, tuple[int, int]]
    ) -> np.ndarray:
        """Fill missing values with the medians and append the ``_na`` indicators."""
        miss = np.isnan(raw)
        if miss.any():
            fill = np.array(
                [self.medians_[n] for n in self.cont_names_[: raw.shape[1]]]
            )
            raw = np.where(miss, fill, raw)
        na = [miss[:, sources[s][0]] for s in self.na_sources_]
        if na:
            raw = np.concatenate([raw, np.stack(na, axis=1).astype(np.float64)], axis=1)
        return raw

    # ---- transform ------------------------------------------------------------------

    def _frame(self, X: Any) -> pd.DataFrame:
        df = to_frame(X)
        if df.columns.has_duplicates:
            dup = df.columns[df.columns.duplicated()].unique().tolist()
            raise ValueError(f"X has duplicate column names: {dup}")
        needed = (*self.cat_features_, *self.cont_features_, *self.date_features_)
        cols = df.columns
        missing = [c for c in needed if c not in cols]
        if missing:
            raise ValueError(f"X is missing column(s) seen in fit: {missing}")
        if len(df) == 0:
            raise ValueError("X has no rows (an empty frame)")
        return df

    def transform_arrays(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(codes, cont)``: int64 codes ``(n, n_cat)`` and float32 standardised
        continuous values ``(n, n_cont)``; the arrays the model takes."""
        check_is_fitted(self, "cardinalities_")
        df = self._frame(X)
        return self._arrays(df)

    def _arrays(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        n = len(df)
        if n <= SMALL and not self.date_features_:
            fast = self._arrays_small(df)
            if fast is not None:
                return fast
        codes = np.empty((n, len(self.cat_names_)), dtype=np.int64)
        for j, (name, col) in enumerate(self.cat_sources_.items()):
            s = df[col]
            if name != col:  # <col>_cat of an integer column: by its numeric value
                s = pd.Series(to_float(s, col), index=s.index)
            codes[:, j] = column_codes(
                s, name, self.categories_[name], self.has_na_[name], self._cache
            )
        if not self.cont_names_:
            return codes, np.empty((n, 0), dtype=np.float32)
        raw, sources = self._raw_continuous(df)
        cont = self._finish_continuous(raw, sources)
        return codes, self._scale(cont)

    def _arrays_small(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """A few rows (single-row prediction): one conversion of the frame to Python
        objects, then dictionary lookups, instead of ~0.05 ms of pandas per column.
        ``None`` when a continuous value is not a plain number (the general path then
        handles it, with its error messages)."""
        key = ("pos", tuple(df.columns))
        pos = self._cache.get(key)
        if pos is None:
            pos = {c: i for i, c in enumerate(df.columns)}
            self._cache = {k: v for k, v in self._cache.items() if k[0] != "pos"}
            self._cache[key] = pos
        values = df.to_numpy(dtype=object)
        n = len(df)
        cont = np.empty((n, 0))
        if self.cont_features_:
            try:
                cont = values[:, [pos[c] for c in self.cont_features_]].astype(
                    np.float64
                )
            except (TypeError, ValueError):
                return None
            if np.isinf(cont).any():
                return None
        codes = np.empty((n, len(self.cat_names_)), dtype=np.int64)
        cont_at = {c: k for k, c in enumerate(self.cont_features_)}
        for j, (name, col) in enumerate(self.cat_sources_.items()):
            known, has_na = self.categories_[name], self.has_na_[name]
            table = lookup_table(known, has_na, self._cache, name)
            # <col>_cat of an integer column: by the numeric value, as in the general path
            column = cont[:, cont_at[col]] if name != col else values[:, pos[col]]
            codes[:, j] = lookup_codes(column, table, 1 if has_na else 0)
        if not self.cont_names_:
            return codes, np.empty((n, 0), dtype=np.float32)
        sources = {c: (j, j + 1) for j, c in enumerate(self.cont_features_)}
        full = self._finish_continuous(cont, sources)
        return codes, self._scale(full)

    def transform(self, X: Any) -> pd.DataFrame:
        """A DataFrame of the codes (int64, one column per categorical column) and the
        standardised continuous columns (float32), indexed like ``X``."""
        check_is_fitted(self, "cardinalities_")
        df = self._frame(X)
        codes, cont = self._arrays(df)
        return self._to_frame(codes, cont, df.index)

    def _to_frame(
        self, codes: np.ndarray, cont: np.ndarray, index: pd.Index
    ) -> pd.DataFrame:
        out = pd.DataFrame(codes, columns=self.cat_output_names_, index=index)
        for j, name in enumerate(self.cont_names_):
            out[name] = cont[:, j]
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of :meth:`transform`'s columns."""
        check_is_fitted(self, "cardinalities_")
        return np.asarray(self.cat_output_names_ + self.cont_names_, dtype=object)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_cache", None)  # lookup tables are rebuilt on demand
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._cache = {}
        if "means_" in state and "held_" not in state:  # saved before held columns
            self.held_ = np.zeros(len(self.means_), dtype=bool)
