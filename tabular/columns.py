"""Reading a table's columns: any frame or array as a DataFrame, each column's kind
(categorical, continuous, datetime) from its dtype, continuous values as floats, and
Arrow string columns as Arrow arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from deepfit.data import as_pandas

__all__ = [
    "arrow_array",
    "column_kind",
    "holds_strings",
    "is_arrow_string",
    "is_integer_dtype",
    "to_float",
    "to_frame",
]


def to_frame(X: Any, cat_features: Sequence[Any] | None = None) -> pd.DataFrame:
    """``X`` as a DataFrame: pandas DataFrames pass through; polars DataFrames, pyarrow
    Tables and other frames with the dataframe interchange protocol become pandas ones
    with their column names (Arrow-backed columns, so no copy of numeric data); 2-D
    arrays and lists get columns ``x0, x1, ...``. Raises on 1-D, 3-D or empty input."""
    if isinstance(X, pd.DataFrame):
        return X
    frame = as_pandas(X)
    if frame is not None:
        return frame
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(
            "sparse input is not supported: pass a dense array or a DataFrame "
            "(X.toarray())"
        )
    if isinstance(X, pd.Series):
        raise ValueError(
            "expected a 2-D table (DataFrame or array), got a Series; use "
            "series.to_frame() for a single column"
        )
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(
            f"expected a 2-D table (DataFrame or array), got an array of shape "
            f"{arr.shape}. Reshape your data with array.reshape(-1, 1) for a single "
            "feature or array.reshape(1, -1) for a single sample"
        )
    if np.iscomplexobj(arr):
        raise ValueError("Complex data not supported")
    return pd.DataFrame(arr, columns=[f"x{i}" for i in range(arr.shape[1])], copy=False)


def holds_strings(s: pd.Series) -> bool:
    """Whether an object column holds strings (say a ColumnTransformer's numpy output
    with passed-through text columns): it is then categorical, not continuous."""
    if isinstance(s.dtype, pd.StringDtype):  # pandas reads an object array's strings so
        return True
    return s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in (
        "string",
        "mixed",
        "bytes",
    )


def column_kind(dtype: Any) -> str:
    """``"cat"``, ``"cont"``, ``"date"`` or ``"?"`` for a column's dtype."""
    if isinstance(dtype, pd.ArrowDtype):
        t = dtype.pyarrow_dtype
        if (
            pa.types.is_string(t)
            or pa.types.is_large_string(t)
            or pa.types.is_boolean(t)
            or pa.types.is_dictionary(t)
            or getattr(pa.types, "is_string_view", lambda _: False)(t)
        ):
            return "cat"
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "cont"
        if pa.types.is_duration(t):
            return "cont"
        if pa.types.is_timestamp(t) or pa.types.is_date(t):
            return "date"
        return "?"
    if isinstance(dtype, (pd.CategoricalDtype, pd.StringDtype)):
        return "cat"
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return "cat"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date"
    if pd.api.types.is_timedelta64_dtype(dtype):
        return "cont"
    if pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(
        dtype
    ):
        return "cont"
    return "?"


def is_integer_dtype(dtype: Any) -> bool:
    if isinstance(dtype, pd.ArrowDtype):
        return pa.types.is_integer(dtype.pyarrow_dtype)
    return pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(
        dtype
    )


def to_float(s: pd.Series, col: Any) -> np.ndarray:
    """A continuous column as float64 with NaN for missing; a clear error for values that
    are not numbers."""
    dtype = s.dtype
    if pd.api.types.is_timedelta64_dtype(dtype) or (
        isinstance(dtype, pd.ArrowDtype) and pa.types.is_duration(dtype.pyarrow_dtype)
    ):
        return (
            pd.to_timedelta(s).dt.total_seconds().to_numpy(np.float64, na_value=np.nan)
        )
    if pd.api.types.is_bool_dtype(dtype) or (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    ):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    try:
        conv = pd.to_numeric(s, errors="coerce")
    except TypeError as err:
        raise ValueError(
            f"column {col!r} is continuous but its values cannot be read as numbers "
            f"({err})"
        ) from err
    bad = conv.isna().to_numpy() & s.notna().to_numpy()
    if bad.any():
        value = s[bad].iloc[0]
        raise ValueError(
            f"column {col!r} is continuous but holds the non-numeric value {value!r} "
            f"(row {s.index[bad][0]!r}); name it in cat_features to treat it as "
            "categorical"
        )
    return conv.to_numpy(dtype=np.float64, na_value=np.nan)


def is_arrow_string(s: pd.Series) -> bool:
    dtype = s.dtype
    if isinstance(dtype, pd.StringDtype):
        return dtype.storage == "pyarrow"
    if isinstance(dtype, pd.ArrowDtype):
        t = dtype.pyarrow_dtype
        return pa.types.is_string(t) or pa.types.is_large_string(t)
    return False


def arrow_array(s: pd.Series) -> pa.ChunkedArray | pa.Array:
    return pa.array(s.array) if not hasattr(s.array, "_pa_array") else s.array._pa_array
