"""Categorical columns -> integer codes, fitted and applied.

Codes: 0 for a value unknown in training (unseen, or seen fewer than ``min_frequency``
times), 1 for a missing value when training saw some, then the known values in order
(sorted where they sort). Every path codes a value alike: the hash-table kernels for
many rows (pandas ``factorize``, pyarrow ``index_in``), dictionary lookups for a few,
and Python equality for what pandas' index keeps apart (``1`` and ``1.0`` find
``True``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from tabular.columns import arrow_array, is_arrow_string

__all__ = [
    "SMALL",
    "column_codes",
    "fit_codes",
    "known_values",
    "lookup_codes",
    "lookup_table",
    "missing_everywhere",
]

# Below this many rows, codes come from a dictionary lookup per value; above it, from
# hash-table kernels (pandas factorize, pyarrow index_in) whose setup costs ~0.3 ms.
SMALL = 32


def known_values(values: pd.Index, counts: np.ndarray, min_frequency: int) -> pd.Index:
    """The categories kept: values seen at least ``min_frequency`` times, sorted."""
    known = pd.Index(values).rename(None)[counts >= min_frequency]
    try:
        return known.sort_values()
    except TypeError:  # mixed types: keep order of first appearance
        return known


def missing_everywhere(col: Any) -> None:
    """The error for a column with no value in any row (categorical or not)."""
    raise ValueError(
        f"column {col!r} is missing in every row; drop it (nothing can be learned "
        "from it)"
    )


def _factorize(s: pd.Series, col: Any) -> tuple[np.ndarray, pd.Index]:
    try:
        codes, uniques = pd.factorize(s, use_na_sentinel=True)
    except TypeError as err:
        raise ValueError(
            f"categorical column {col!r} holds values that cannot be hashed ({err})"
        ) from err
    return codes, pd.Index(uniques)


def fit_codes(
    s: pd.Series, col: Any, min_frequency: int
) -> tuple[pd.Index, bool, np.ndarray]:
    """The known values of column ``col`` (sorted), whether values were missing, and
    the codes of its rows."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy()
        uniques = pd.Index(s.cat.categories)
    else:
        codes, uniques = _factorize(s, col)
    missing = codes < 0
    if missing.all():
        missing_everywhere(col)
    counts = np.bincount(codes[~missing], minlength=len(uniques))
    known = known_values(uniques, counts, min_frequency)
    has_na = bool(missing.any())
    offset = 1 + has_na
    pos = known.get_indexer(uniques)
    lut = np.where(pos >= 0, pos + offset, 0).astype(np.int64)
    out = lut[codes] if len(lut) else np.zeros(len(codes), dtype=np.int64)
    out[missing] = 1 if has_na else 0
    return known, has_na, out


def lookup_codes(
    values: Iterable[Any], table: dict[Any, int], na_code: int
) -> np.ndarray:
    """Codes of a few ``values`` by dictionary lookup (``table``: value -> code)."""
    out = []
    for v in values:
        if v is None or v is pd.NA or v is pd.NaT or v != v:
            out.append(na_code)
        else:
            try:
                out.append(table.get(v, 0))
            except TypeError:  # unhashable: unknown
                out.append(0)
    return np.asarray(out, dtype=np.int64)


def lookup_table(
    known: pd.Index, has_na: bool, cache: dict, col: Any
) -> dict[Any, int]:
    """Value -> code for column ``col`` (kept in ``cache``)."""
    key = ("dict", col)
    table = cache.get(key)
    if table is None:
        offset = 1 + has_na
        values = known.tolist()
        table = dict(zip(values, range(offset, offset + len(values)), strict=True))
        cache[key] = table
    return table


def _by_equality(
    pos: np.ndarray, values: Any, table: dict[Any, int], offset: int
) -> np.ndarray:
    """``pos`` (positions in the known values, -1 when not found by pandas) with the
    values not found looked up by Python equality, as the few-rows path does."""
    missing = np.flatnonzero(pos < 0)
    if not len(missing):
        return pos
    pos = pos.copy()
    # Only the values not found (unseen ones, mostly) go through Python.
    found = lookup_codes(pd.Index(values).take(missing), table, 0) - offset
    pos[missing] = found
    return np.where(pos >= 0, pos, -1)


def column_codes(
    s: pd.Series, col: Any, known: pd.Index, has_na: bool, cache: dict
) -> np.ndarray:
    """Codes (int64) of one categorical column ``s`` whose known values are ``known``;
    ``cache`` keeps the lookup structures between calls."""
    offset = 1 + has_na
    na_code = 1 if has_na else 0
    n = len(s)
    if n <= SMALL:
        return lookup_codes(
            s.tolist(), lookup_table(known, has_na, cache, col), na_code
        )
    if isinstance(s.dtype, pd.CategoricalDtype):
        # Map the (few) categories by value, then gather: never trust the codes of
        # another frame's categories.
        pos = known.get_indexer(s.cat.categories)
        pos = _by_equality(
            pos, s.cat.categories, lookup_table(known, has_na, cache, col), offset
        )
        lut = np.where(pos >= 0, pos + offset, 0).astype(np.int64)
        raw = s.cat.codes.to_numpy()
        return np.where(raw >= 0, lut[raw], na_code)
    if is_arrow_string(s) and known.inferred_type in ("string", "empty"):
        # pyarrow's hash kernel, straight on the column's Arrow buffers.
        key = ("arrow", col)
        value_set = cache.get(key)
        if value_set is None:
            value_set = pa.array(known.astype(object), type=pa.large_string())
            cache[key] = value_set
        arr = arrow_array(s)
        if arr.type != value_set.type:
            arr = arr.cast(value_set.type)
        pos = pc.index_in(arr, value_set=value_set).fill_null(-1)
        pos = pos.to_numpy(zero_copy_only=False).astype(np.int64)
        out = np.where(pos >= 0, pos + offset, 0)
        if has_na and arr.null_count:
            out[pc.is_null(arr).to_numpy(zero_copy_only=False)] = na_code
        return out
    codes, uniques = _factorize(s, col)
    pos = known.get_indexer(uniques) if len(uniques) else np.empty(0, int)
    pos = _by_equality(pos, uniques, lookup_table(known, has_na, cache, col), offset)
    lut = np.where(pos >= 0, pos + offset, 0).astype(np.int64)
    return (
        np.where(codes >= 0, lut[codes], na_code)
        if len(lut)
        else np.full(n, na_code, dtype=np.int64)
    )
