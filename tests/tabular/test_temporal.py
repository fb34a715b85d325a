"""Temporal splits: a model trained on the past and scored on the future, the way a
forecasting user works. Trees are flat beyond the training range; the network must be
too (clipping, piecewise-linear embeddings) and must not read meaning into a date flag
that a handful of training rows set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tabular import TabularRegressor

DATES = ["pickup", "dropoff"]


def rmsle(pred: np.ndarray, y: pd.Series) -> float:
    return float(
        np.sqrt(np.mean((np.log1p(np.clip(pred, 0, None)) - np.log1p(y)) ** 2))
    )


def with_and_without_dates(X_tr, y_tr, X_te, y_te, **params) -> tuple[float, float]:
    """Test RMSLE of the defaults with the datetime columns and without them, after
    checking that predictions stay in the training targets' range, widened by 10%."""
    errors = []
    for drop in ([], DATES):
        est = TabularRegressor(random_state=0, verbose=0, **params)
        pred = est.fit(X_tr.drop(columns=drop), y_tr).predict(X_te.drop(columns=drop))
        margin = 0.1 * (y_tr.max() - y_tr.min())
        assert y_tr.min() - margin <= pred.min() and pred.max() <= y_tr.max() + margin
        errors.append(rmsle(pred, y_te))
    return errors[0], errors[1]


def trips(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Taxi trips of March 2019 and one of the evening of February 28 (an outlier),
    whose fares follow distance, duration and a weekend surcharge."""
    rng = np.random.default_rng(seed)
    secs = np.sort(rng.uniform(0, 31 * 86400, n))
    pickup = pd.Timestamp("2019-03-01") + pd.to_timedelta(secs, unit="s")
    pickup = pickup.insert(0, pd.Timestamp("2019-02-28 23:30"))
    distance = rng.gamma(2.0, 1.5, n + 1)
    minutes = distance * rng.uniform(2, 6, n + 1)
    fare = 2.5 + 2.0 * distance + 0.3 * minutes + 3.0 * (pickup.day_of_week >= 5)
    fare[0] = 80.0
    X = pd.DataFrame(
        {
            "pickup": pickup,
            "dropoff": pickup + pd.to_timedelta(minutes, unit="min"),
            "distance": distance,
        }
    )
    return X, pd.Series(fare, name="fare")


def test_a_date_flag_set_by_one_training_row_does_not_move_the_future():
    # The one February trip is the only training row with is_month_end set; every trip
    # of March 31, in the test weeks, has it set too. Held at 0 (min_frequency=5), the
    # flag cannot tie March 31 to that outlier; with min_frequency=1 it did (RMSLE 0.93
    # against 0.14 without the dates, predictions up to 303 for fares of at most 80).
    X, y = trips()
    test = (X["pickup"] >= "2019-03-25").to_numpy()
    dates, no_dates = with_and_without_dates(X[~test], y[~test], X[test], y[test])
    assert dates <= 1.25 * no_dates, (dates, no_dates)


@pytest.fixture(scope="module")
def taxis(data_dir) -> tuple[pd.DataFrame, pd.Series]:
    path = data_dir / "tabular-suite" / "nyc-taxis" / "taxis.csv"
    if not path.exists():
        pytest.skip(f"{path} not found")
    df = pd.read_csv(path, parse_dates=DATES).sort_values("pickup", kind="stable")
    return df.drop(columns=["fare", "total", "tip"]), df["fare"].astype(float)


def test_nyc_taxis_forward_in_time_with_its_datetime_columns(taxis):
    # The suite's split: the last 20% of the trips by pickup time are the test part.
    X, y = taxis
    cut = int(0.8 * len(X))
    dates, no_dates = with_and_without_dates(
        X.iloc[:cut], y.iloc[:cut], X.iloc[cut:], y.iloc[cut:]
    )
    # Before date flags seen in a few rows were held, seed 0 on the suite's split (2
    # threads) gave 0.53 with the dates; 0.21 both with and without them since.
    assert dates <= 1.1 * no_dates, (dates, no_dates)
