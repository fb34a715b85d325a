"""The tabular step of ``python -m deepfit demo``: UCI Adult with the default
``TabularClassifier``, its test accuracy and fit time."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["ADULT_COLUMNS", "load_adult", "make_adult_like", "run"]

ADULT_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education_num",
    "marital_status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital_gain",
    "capital_loss",
    "hours_per_week",
    "native_country",
    "income",
]


def load_adult(folder: Path, split: str = "data") -> tuple[pd.DataFrame, pd.Series]:
    """``(X, y)`` of UCI Adult's ``adult.data`` (``split="data"``) or ``adult.test``;
    ``?`` becomes missing, ``y`` is 1 for ``>50K``."""
    df = pd.read_csv(
        Path(folder) / f"adult.{split}",
        header=None,
        names=ADULT_COLUMNS,
        skipinitialspace=True,
        na_values="?",
        skiprows=1 if split == "test" else 0,
    )
    y = df.pop("income").str.rstrip(".").eq(">50K").astype(np.int64)
    return df, y.rename("income")


def make_adult_like(n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A generated stand-in with Adult's shape (categorical and continuous columns, a
    logistic target with a known structure), used when the real data is absent."""
    rng = np.random.default_rng(seed)
    job = rng.choice([f"job{i}" for i in range(12)], n)
    edu = rng.choice([f"edu{i}" for i in range(16)], n)
    age = rng.integers(18, 80, n).astype(float)
    hours = rng.normal(40, 10, n).round()
    # Fixed effects (seed 0) so that training and test sets share the same structure.
    fx = np.random.default_rng(0)
    job_effect = dict(
        zip([f"job{i}" for i in range(12)], fx.normal(0, 1.5, 12), strict=True)
    )
    edu_effect = dict(
        zip([f"edu{i}" for i in range(16)], fx.normal(0, 1.0, 16), strict=True)
    )
    score = (
        pd.Series(job).map(job_effect).to_numpy()
        + pd.Series(edu).map(edu_effect).to_numpy()
        + 0.05 * (age - 40)
        + 0.06 * (hours - 40)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-score + 1))).astype(np.int64)
    X = pd.DataFrame({"job": job, "education": edu, "age": age, "hours": hours})
    return X, pd.Series(y, name="income")


def run(data_dir: Path | None) -> None:
    """Fit the default classifier on Adult (or generated data) and print what it got."""
    from sklearn.metrics import accuracy_score, roc_auc_score

    from tabular import TabularClassifier

    folder = None if data_dir is None else Path(data_dir) / "adult"
    if folder is not None and (folder / "adult.data").exists():
        X, y = load_adult(folder, "data")
        X_test, y_test = load_adult(folder, "test")
        name = "UCI Adult (adult.data -> adult.test)"
    else:
        print("Adult not found: using generated data with the same shape instead")
        X, y = make_adult_like(30_000, seed=0)
        X_test, y_test = make_adult_like(10_000, seed=1)
        name = "generated Adult-like data"
    clf = TabularClassifier(random_state=0, verbose=0)
    start = time.perf_counter()
    clf.fit(X, y)
    seconds = time.perf_counter() - start
    proba = clf.predict_proba(X_test)[:, 1]
    acc = accuracy_score(y_test, clf.predict(X_test))
    print(f"{name}: {len(X):,} training rows, {len(X_test):,} test rows")
    print(
        f"TabularClassifier (defaults): test accuracy {acc:.4f}, "
        f"AUC {roc_auc_score(y_test, proba):.4f}, fit {seconds:.1f} s "
        f"({clf.n_epochs_} epochs)"
    )
    emb = clf.transform(X_test.head(3))
    print(f"transform(): {emb.shape[1]} columns, e.g. {list(emb.columns[:4])}")
