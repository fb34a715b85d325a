"""Datetime columns as numbers: the parts a datetime column expands into (year, month,
..., seconds since the epoch), in the time zone seen in training."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["DATE_PARTS", "date_parts", "to_datetime"]

#: The parts a datetime column expands into (``<col>_<part>``), all continuous.
DATE_PARTS = (
    "year",
    "month",
    "week",
    "day",
    "dayofweek",
    "dayofyear",
    "is_month_end",
    "is_month_start",
    "is_quarter_end",
    "is_quarter_start",
    "is_year_end",
    "is_year_start",
    "elapsed",
)


def to_datetime(s: pd.Series, col: Any, tz: Any) -> pd.Series:
    """A datetime column as pandas datetime64 in the time zone seen in training."""
    if isinstance(s.dtype, pd.ArrowDtype) or not pd.api.types.is_datetime64_any_dtype(
        s.dtype
    ):
        try:
            s = pd.to_datetime(s, utc=tz is not None)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"column {col!r} was a datetime column in training but cannot be read "
                f"as dates here ({err})"
            ) from err
    have = getattr(s.dt, "tz", None)
    if (have is None) != (tz is None):
        raise ValueError(
            f"column {col!r} was {'tz-aware' if tz else 'tz-naive'} in training but is "
            f"{'tz-aware' if have else 'tz-naive'} here"
        )
    if tz is not None:
        s = s.dt.tz_convert(tz)
    return s


def date_parts(s: pd.Series) -> np.ndarray:
    """``(n, len(DATE_PARTS))`` float64 parts of a datetime Series; NaN where NaT."""
    dt = s.dt
    missing = s.isna().to_numpy()
    week = dt.isocalendar().week.to_numpy(dtype=np.float64, na_value=np.nan)
    cols = [
        dt.year,
        dt.month,
        week,
        dt.day,
        dt.day_of_week,
        dt.day_of_year,
        dt.is_month_end,
        dt.is_month_start,
        dt.is_quarter_end,
        dt.is_quarter_start,
        dt.is_year_end,
        dt.is_year_start,
    ]
    out = np.empty((len(s), len(DATE_PARTS)), dtype=np.float64)
    for j, c in enumerate(cols):
        out[:, j] = (
            np.asarray(c, dtype=np.float64)
            if j == 2
            else c.to_numpy(dtype=np.float64, na_value=np.nan)
        )
    # Seconds since the Unix epoch (absolute time for tz-aware columns).
    ns = (
        s.to_numpy(dtype="datetime64[ns]")
        if s.dt.tz is None
        else s.dt.tz_convert("UTC")
        .dt.tz_localize(None)
        .to_numpy(dtype="datetime64[ns]")
    )
    out[:, -1] = ns.astype(np.int64) / 1e9
    out[missing] = np.nan
    return out
