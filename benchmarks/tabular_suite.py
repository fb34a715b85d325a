"""The tabular estimators' defaults on every table of ``tabular-suite/`` and on Adult,
against scikit-learn's ``HistGradientBoosting*`` defaults in the same run.

    python -m benchmarks.tabular_suite [--tables diamonds titanic ...] [--cv 5]
        [--config name=key:value,...] [--seeds 1]

Each table is read, split and scored as ``../shared/data/tabular-suite/README.md`` says
(random 80/20 with seed 0, or temporal; RMSLE, RMSE or log loss); Adult is
``adult.data`` -> ``adult.test``. The error that ranks the models is log loss for
classification and the table's metric for regression; the ratio is ours / HistGB's and
the summary is the geometric mean of the ratios. For RMSLE tables HistGB trains on
``log1p(y)`` through scikit-learn's ``TransformedTargetRegressor`` (what a user who is
scored by RMSLE does); ``TabularRegressor`` decides by itself (``log_target="auto"``:
log for non-negative targets with skewness above 1, so all three RMSLE tables). HistGB takes
string columns of at most 255 levels as native categoricals and larger ones as ordinal
codes, and datetimes as seconds (it takes no datetime dtype).

``--cv K`` scores by K-fold cross-validation on each table's *training* part only (its
test part is never read; temporal tables forward in time, with scikit-learn's
``TimeSeriesSplit``): the figure that defaults are chosen by. ``--config`` adds a
variant of the estimators' parameters (``name=key:value,...``, values as Python
literals); the defaults always run.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import (
    KFold,
    StratifiedKFold,
    TimeSeriesSplit,
    train_test_split,
)

from benchmarks._common import data_dir, md_table, parse_config, peak_rss_mb, save
from tabular import TabularClassifier, TabularRegressor
from tabular.demo import load_adult


@dataclass
class Table:
    name: str
    task: str  # "regression", "binary", "multiclass"
    metric: str  # "rmsle", "rmse", "log_loss"
    load: Callable[[Path], tuple[pd.DataFrame, pd.Series]]
    split: str | Callable[[pd.DataFrame], np.ndarray] = "random"  # or a test mask

    def time(self, X: pd.DataFrame) -> np.ndarray:
        """The time column of a temporal table (for forward cross-validation)."""
        return X[self.split.column].to_numpy()


def _suite(root: Path, folder: str) -> Path:
    return root / "tabular-suite" / folder


def _temporal(col: str) -> Callable[[pd.DataFrame], np.ndarray]:
    """Test = rows at or after the value at position floor(0.8 n) of the sorted column."""

    def mask(X: pd.DataFrame) -> np.ndarray:
        s = X[col].sort_values(kind="stable")
        cut = s.iloc[math.floor(0.8 * len(s))]
        return (X[col] >= cut).to_numpy()

    mask.column = col
    return mask


def _diamonds(root):
    df = pd.read_csv(_suite(root, "diamonds") / "diamonds.csv")
    return df.drop(columns="price"), df["price"].astype(float)


def _taxis(root):
    df = pd.read_csv(
        _suite(root, "nyc-taxis") / "taxis.csv", parse_dates=["pickup", "dropoff"]
    )
    return df.drop(columns=["fare", "total", "tip"]), df["fare"].astype(float)


def _kc(root):
    df = pd.read_csv(
        _suite(root, "kc-house-sales") / "kc_house_data.csv",
        dtype={"zipcode": str},
    )
    df["date"] = pd.to_datetime(df["date"], format="%Y%m%dT%H%M%S")
    return df.drop(columns=["id", "price"]), df["price"].astype(float)


def _avocado(root):
    df = pd.read_csv(_suite(root, "avocado-prices") / "avocado.csv")
    df["Date"] = pd.to_datetime(df["Date"])
    return df.drop(columns=["Unnamed: 0", "AveragePrice"]), df["AveragePrice"]


def _wine(root):
    folder = _suite(root, "wine-quality")
    parts = []
    for color in ("red", "white"):
        part = pd.read_csv(folder / f"winequality-{color}.csv", sep=";")
        parts.append(part.assign(color=color))
    df = pd.concat(parts, ignore_index=True)
    return df.drop(columns="quality"), df["quality"]


def _penguins(root):
    df = pd.read_csv(_suite(root, "palmer-penguins") / "penguins.csv")
    return df.drop(columns="species"), df["species"]


def _credit(root):
    df = pd.read_csv(
        _suite(root, "credit-card-default-taiwan")
        / "default of credit card clients.csv",
        header=1,
        encoding="utf-8-sig",
    )
    target = "default payment next month"
    cats = ["SEX", "EDUCATION", "MARRIAGE", "PAY_0"] + [f"PAY_{i}" for i in range(2, 7)]
    df[cats] = df[cats].astype(str)  # integer codes, categorical per the suite README
    return df.drop(columns=["ID", target]), df[target]


def _telco(root):
    df = pd.read_csv(
        _suite(root, "telco-customer-churn") / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
    )
    df["TotalCharges"] = pd.to_numeric(df["TotalCharges"], errors="coerce")
    return df.drop(columns=["customerID", "Churn"]), df["Churn"].eq("Yes").astype(int)


def _shoppers(root):
    df = pd.read_csv(
        _suite(root, "online-shoppers-intention") / "online_shoppers_intention.csv"
    )
    cats = [
        "Month",
        "VisitorType",
        "OperatingSystems",
        "Browser",
        "Region",
        "TrafficType",
    ]
    df[cats] = df[cats].astype(str)
    return df.drop(columns="Revenue"), df["Revenue"].astype(int)


def _bank(root):
    df = pd.read_csv(_suite(root, "bank-customer-churn") / "Churn_Modelling.csv")
    return df.drop(columns=["RowNumber", "CustomerId", "Exited"]), df["Exited"]


def _titanic(root):
    df = pd.read_csv(_suite(root, "titanic") / "train.csv")
    return df.drop(columns=["PassengerId", "Name", "Survived"]), df["Survived"]


TABLES = [
    Table("diamonds", "regression", "rmsle", _diamonds),
    Table("nyc-taxis", "regression", "rmsle", _taxis, _temporal("pickup")),
    Table("kc-house-sales", "regression", "rmsle", _kc, _temporal("date")),
    Table("avocado-prices", "regression", "rmse", _avocado, _temporal("Date")),
    Table("wine-quality", "multiclass", "log_loss", _wine),
    Table("palmer-penguins", "multiclass", "log_loss", _penguins),
    Table("credit-card-default", "binary", "log_loss", _credit),
    Table("telco-churn", "binary", "log_loss", _telco),
    Table("online-shoppers", "binary", "log_loss", _shoppers),
    Table("bank-churn", "binary", "log_loss", _bank),
    Table("titanic", "binary", "log_loss", _titanic),
    Table("adult", "binary", "log_loss", lambda root: load_adult(root / "adult")),
]


def split(table: Table, root: Path, X: pd.DataFrame, y: pd.Series):
    """(X_train, y_train, X_test, y_test) as the suite's README says."""
    if table.name == "adult":
        Xt, yt = load_adult(root / "adult", "test")
        return X, y, Xt, yt
    if table.split == "random":
        return _unpack(train_test_split(X, y, test_size=0.2, random_state=0))
    test = table.split(X)
    return X[~test], y[~test], X[test], y[test]


def _unpack(parts):
    X_tr, X_te, y_tr, y_te = parts
    return X_tr, y_tr, X_te, y_te


# ---- the models ------------------------------------------------------------------------


def histgb_frame(X: pd.DataFrame, ref: pd.DataFrame) -> pd.DataFrame:
    """``X`` as HistGB takes it: datetimes as seconds; strings of at most 255 levels
    (in ``ref``, the training part) as categoricals, larger ones as ordinal codes."""
    out = {}
    for col in X.columns:
        s = X[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            out[col] = s.astype("int64") / 1e9
        elif pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            out[col] = s.astype(float)
        else:
            levels = pd.Index(ref[col].dropna().astype(str).unique()).sort_values()
            codes = levels.get_indexer(s.astype(str).where(s.notna()))
            codes = np.where(codes < 0, np.nan, codes).astype(float)
            out[col] = (
                pd.Categorical(codes, categories=range(len(levels)))
                if len(levels) <= 255
                else codes
            )
    return pd.DataFrame(out, index=X.index)


def make_histgb(table: Table, seed: int):
    if table.task == "regression":
        reg = HistGradientBoostingRegressor(
            categorical_features="from_dtype", random_state=seed
        )
        if table.metric == "rmsle":
            return TransformedTargetRegressor(reg, func=np.log1p, inverse_func=np.expm1)
        return reg
    return HistGradientBoostingClassifier(
        categorical_features="from_dtype", random_state=seed
    )


def make_net(table: Table, seed: int, params: dict):
    common = {"random_state": seed, "verbose": 0, **params}
    if table.task == "regression":
        return TabularRegressor(**common)
    return TabularClassifier(**common)


def error(table: Table, y_true, pred, classes=None) -> dict:
    """The ranking error and the other figures of the table's metric."""
    if table.task == "regression":
        pred = np.asarray(pred, dtype=float)
        out = {"rmse": float(np.sqrt(mean_squared_error(y_true, pred)))}
        if table.metric == "rmsle":
            p = np.clip(pred, 0, None)  # RMSLE is undefined below -1
            out["rmsle"] = float(
                np.sqrt(np.mean((np.log1p(p) - np.log1p(np.asarray(y_true))) ** 2))
            )
        out["error"] = out[table.metric]
        return out
    proba = np.asarray(pred)
    out = {
        "log_loss": float(log_loss(y_true, proba, labels=classes)),
        "accuracy": float(accuracy_score(y_true, np.asarray(classes)[proba.argmax(1)])),
    }
    if table.task == "binary":
        out["auc"] = float(roc_auc_score(y_true, proba[:, 1]))
    out["error"] = out["log_loss"]
    return out


def fit_score(kind: str, table: Table, X_tr, y_tr, X_te, y_te, seed, params) -> dict:
    classes = np.unique(np.concatenate([np.asarray(y_tr), np.asarray(y_te)]))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "histgb":
            model = make_histgb(table, seed)
            model.fit(histgb_frame(X_tr, X_tr), y_tr)
            X_eval = histgb_frame(X_te, X_tr)
        else:
            model = make_net(table, seed, params)
            model.fit(X_tr, y_tr)
            X_eval = X_te
        fit_s = time.perf_counter() - start
        if table.task == "regression":
            pred = model.predict(X_eval)
        else:
            proba = model.predict_proba(X_eval)
            # Classes absent from training get probability 0 (log loss clips it).
            pred = np.zeros((len(X_eval), len(classes)))
            pred[:, np.searchsorted(classes, model.classes_)] = proba
    return {**error(table, y_te, pred, classes), "fit_s": fit_s}


def run_table(table, root, args, configs) -> list[dict]:
    X, y = table.load(root)
    X_tr, y_tr, X_te, y_te = split(table, root, X, y)
    if args.cv:
        if table.split != "random" and table.name != "adult":
            # A temporal table is cross-validated forward in time: each fold trains on
            # the past of its validation rows, as the test split does.
            order = np.argsort(table.time(X_tr), kind="stable")
            X_tr, y_tr = X_tr.iloc[order], y_tr.iloc[order]
            folds = TimeSeriesSplit(args.cv)
        elif table.task == "regression":
            folds = KFold(args.cv, shuffle=True, random_state=0)
        else:
            folds = StratifiedKFold(args.cv, shuffle=True, random_state=0)
        parts = [
            (X_tr.iloc[a], y_tr.iloc[a], X_tr.iloc[b], y_tr.iloc[b])
            for a, b in folds.split(X_tr, y_tr)
        ]
    else:
        parts = [(X_tr, y_tr, X_te, y_te)]
    rows = []
    for name, params in [("histgb", {}), *configs]:
        kind = "histgb" if name == "histgb" else "net"
        results = [
            fit_score(kind, table, *part, seed, params)
            for seed in range(args.seeds)
            for part in parts
        ]
        row = {"table": table.name, "model": name, "metric": table.metric}
        for key in results[0]:
            row[key] = float(np.mean([r[key] for r in results]))
        rows.append(row)
        print(
            f"{table.name:20s} {name:22s} {table.metric} {row['error']:.4f} "
            f"fit {row['fit_s']:.1f} s",
            flush=True,
        )
    base = rows[0]["error"]
    for row in rows:
        row["ratio"] = row["error"] / base
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", nargs="+", default=[t.name for t in TABLES])
    ap.add_argument("--cv", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--config", type=parse_config, action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = data_dir()
    if root is None or not (root / "tabular-suite").is_dir():
        raise SystemExit("tabular-suite not found under ../shared/data (DEEPFIT_DATA)")
    unknown = set(args.tables) - {t.name for t in TABLES}
    if unknown:
        raise SystemExit(f"unknown tables {sorted(unknown)}")
    configs = [("defaults", {}), *args.config]
    rows = []
    for table in TABLES:
        if table.name in args.tables:
            rows += run_table(table, root, args, configs)
    summary = []
    for name, _ in configs:
        ratios = [r["ratio"] for r in rows if r["model"] == name]
        summary.append(
            {
                "model": name,
                "geomean ratio": float(np.exp(np.mean(np.log(ratios)))),
                "worst ratio": max(ratios),
                "tables above 1.05": sum(r > 1.05 for r in ratios),
                "total fit s": sum(r["fit_s"] for r in rows if r["model"] == name),
            }
        )
    where = f"{args.cv}-fold CV on the training parts" if args.cv else "the test parts"
    cols = ["table", "model", "metric", "error", "ratio", "accuracy", "auc", "rmse"]
    table = (
        md_table(rows, [*cols, "fit_s"])
        + "\n\n"
        + md_table(
            summary,
            [
                "model",
                "geomean ratio",
                "worst ratio",
                "tables above 1.05",
                "total fit s",
            ],
        )
        + f"\n\nErrors on {where}; ratio = error / HistGB's (log loss for "
        f"classification, the table's metric for regression); seeds {args.seeds}; "
        f"{torch.get_num_threads()} threads; peak RSS {peak_rss_mb():.0f} MiB.\n"
    )
    print("\n" + table)
    full = set(args.tables) == {t.name for t in TABLES} and not args.cv
    payload = {"args": {**vars(args), "config": args.config}, "rows": rows}
    save("tabular_suite", payload, table, partial=not full or bool(args.config))


if __name__ == "__main__":
    main()
