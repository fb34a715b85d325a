"""UCI Adult: train on ``adult.data``, evaluate on ``adult.test``.

    python -m benchmarks.tabular_adult [--seeds 0 1 2]

In the same run: ``TabularClassifier`` with its defaults, with the best settings found on a
validation split of adult.data (``BEST`` below; the test set played no part in choosing
them), sklearn's ``HistGradientBoostingClassifier`` on the raw columns (categoricals
native), and the same GBDT trained on our ``transform()`` output (entity embeddings and
scaled continuous columns) of the default model. Accuracy, AUC, log loss, fit seconds and
peak memory; means over the seeds; the median time of a single-row
``predict_proba`` of the defaults. Targets: defaults >= 0.860 accuracy, best >= 0.868,
GBDT on embeddings >= GBDT alone.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import accuracy_score, log_loss, roc_auc_score

from benchmarks._common import data_dir, md_table, peak_rss_mb, save
from tabular import TabularClassifier
from tabular.demo import load_adult

#: Chosen on a stratified 80/20 split of adult.data (seeds 0-2): see benchmarks/README.md.
BEST = dict(lr=3e-3, dropout=0.3, embed_dropout=0.1)


def scores(y: pd.Series, proba: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": accuracy_score(y, proba > 0.5),
        "auc": roc_auc_score(y, proba),
        "log_loss": log_loss(y, proba),
    }


def gbdt(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(random_state=seed)


def as_categories(df: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """String columns as pandas categories (the training set's categories), which the
    GBDT handles natively."""
    out = df.copy()
    for col in like.columns:
        if not pd.api.types.is_numeric_dtype(like[col]):
            cats = pd.Index(like[col].dropna().unique()).sort_values()
            out[col] = pd.Categorical(df[col], categories=cats)
    return out


def single_row_ms(clf: TabularClassifier, X: pd.DataFrame, calls: int = 200) -> float:
    """Median milliseconds of ``predict_proba`` on one row (a different row each call)."""
    times = []
    for i in range(calls):
        row = X.iloc[[i]]
        start = time.perf_counter()
        clf.predict_proba(row)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    root = data_dir()
    if root is None or not (root / "adult" / "adult.data").exists():
        raise SystemExit("Adult not found: set DEEPFIT_DATA or provide ../shared/data")
    X, y = load_adult(root / "adult", "data")
    X_test, y_test = load_adult(root / "adult", "test")
    runs: dict[str, list[dict]] = {}
    one_row: list[float] = []

    def record(name: str, seconds: float, proba: np.ndarray, seed: int) -> None:
        row = {**scores(y_test, proba), "fit_s": seconds, "peak_rss_mb": peak_rss_mb()}
        runs.setdefault(name, []).append(row)
        print(
            f"seed {seed} {name:28s} acc {row['accuracy']:.4f} auc {row['auc']:.4f} "
            f"ll {row['log_loss']:.4f} fit {seconds:.1f} s",
            flush=True,
        )

    for seed in args.seeds:
        for name, params in (("deepfit defaults", {}), ("deepfit best", BEST)):
            clf = TabularClassifier(random_state=seed, verbose=0, **params)
            start = time.perf_counter()
            clf.fit(X, y)
            record(
                name, time.perf_counter() - start, clf.predict_proba(X_test)[:, 1], seed
            )
            if not params:
                emb_train, emb_test = clf.transform(X), clf.transform(X_test)
                one_row.append(single_row_ms(clf, X_test))
        start = time.perf_counter()
        model = gbdt(seed).fit(as_categories(X, X), y)
        seconds = time.perf_counter() - start
        record(
            "GBDT", seconds, model.predict_proba(as_categories(X_test, X))[:, 1], seed
        )
        start = time.perf_counter()
        model = gbdt(seed).fit(emb_train, y)
        seconds = time.perf_counter() - start
        record(
            "GBDT on deepfit embeddings",
            seconds,
            model.predict_proba(emb_test)[:, 1],
            seed,
        )

    rows = []
    for name, rs in runs.items():
        row = {"model": name}
        for k in ("accuracy", "auc", "log_loss", "fit_s"):
            vals = [r[k] for r in rs]
            row[k] = statistics.mean(vals)
            if k == "accuracy":
                row["acc sd"] = statistics.pstdev(vals)
        row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rs)
        rows.append(row)
    table = md_table(
        rows, ["model", "accuracy", "acc sd", "auc", "log_loss", "fit_s", "peak_rss_mb"]
    )
    table += (
        f"\n\nUCI Adult, adult.data ({len(X):,} rows) -> adult.test ({len(X_test):,} "
        f"rows); means over seeds {args.seeds}; {torch.get_num_threads()} threads. "
        f"Best settings: {BEST} (chosen on a validation split of adult.data). "
        "Peak RSS is the process's so far (it only grows). Single-row "
        "`predict_proba` of the defaults: median of 200 calls "
        f"{statistics.median(one_row):.2f} ms (medians per seed: "
        f"{', '.join(f'{v:.2f}' for v in one_row)}).\n"
    )
    print("\n" + table)
    payload = {"args": vars(args), "best": BEST, "runs": runs, "single_row_ms": one_row}
    save("tabular_adult", payload, table)


if __name__ == "__main__":
    main()
