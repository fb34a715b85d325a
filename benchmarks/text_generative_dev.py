"""Choosing the generative classifier's settings without the official validation reviews:
a dev split of the IMDB sample's 800 training reviews.

    python -m benchmarks.text_generative_dev [--threads N] [--variants 2:0.2 4:0.2 2:0]

The 800 training reviews are split 600 / 200 (stratified, seed 0, the split of
``benchmarks.text_probe``); the 200 official validation reviews are not used. For each
variant ``epochs:calibration_fraction``, ``GenerativeTextClassifier`` starts from the
cached WikiText-2 encoder of ``benchmarks.text_imdb`` (run that first) with that
benchmark's (d) settings otherwise (``2:0.2``), once per seed; each seed's accuracy and AUC
on the 200 are reported, and those of the seeds' averaged probabilities (an ensemble,
fitted for the price of all the seeds). ``calibration_fraction=0`` is the plain Bayes
rule: every review trains its class's model, the scale is 1 and the offsets are the log
class frequencies. The TF-IDF baseline of ``text_imdb`` (c) on the same split is the
reference.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from benchmarks._common import data_dir, md_table, save
from benchmarks.text_imdb import CACHE
from text import GenerativeTextClassifier
from text.demo import tfidf_baseline


def _row(name: str, p: np.ndarray, y: np.ndarray, fit_s: float | None) -> dict:
    row = {
        "model": name,
        "accuracy": float(((p > 0.5) == y).mean()),
        "auc": float(roc_auc_score(y, p)),
        "fit_s": fit_s,
    }
    print(row, flush=True)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument(
        "--variants",
        nargs="+",
        default=["2:0.2", "4:0.2", "2:0"],
        help="epochs:calibration_fraction pairs",
    )
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    warnings.filterwarnings("ignore", category=FutureWarning)
    if args.threads:
        torch.set_num_threads(args.threads)
    data = data_dir()
    if data is None or not (data / "imdb-sample").is_dir():
        raise SystemExit("IMDB sample not found: set DEEPFIT_DATA or ../shared/data")
    if not CACHE.exists():
        raise SystemExit(f"{CACHE} not found: run python -m benchmarks.text_imdb first")
    df = pd.read_csv(data / "imdb-sample" / "texts.csv")
    train = df[~df.is_valid]
    fit, dev = train_test_split(
        train, test_size=200, stratify=train.label, random_state=0
    )
    y = (dev.label == "positive").to_numpy()
    start = time.perf_counter()
    base = tfidf_baseline().fit(fit.text, fit.label)
    seconds = time.perf_counter() - start
    proba = base.predict_proba(dev.text)[:, list(base.classes_).index("positive")]
    rows = [_row("TF-IDF 1-2 grams + LogisticRegression", proba, y, seconds)]
    for variant in args.variants:
        epochs, calibration = (float(v) for v in variant.split(":"))
        name = f"generative, {epochs:g} epochs, calibration_fraction={calibration:g}"
        probas = []
        for seed in range(args.seeds):
            # The (d) settings of benchmarks.text_imdb but for the variant's two.
            model = GenerativeTextClassifier(
                language_model=CACHE,
                calibration_fraction=calibration,
                drop_mult=0.3,
                batch_size=32,
                epochs=int(epochs),
                lr=1e-2,
                random_state=seed,
                verbose=0,
            )
            start = time.perf_counter()
            model.fit(fit.text, fit.label)
            seconds = time.perf_counter() - start
            pos = list(model.classes_).index("positive")
            probas.append(model.predict_proba(dev.text)[:, pos])
            rows.append(_row(f"{name}, seed {seed}", probas[-1], y, seconds))
        rows.append(
            _row(
                f"{name}, mean of the {args.seeds} seeds' probabilities",
                np.mean(probas, 0),
                y,
                sum(r["fit_s"] for r in rows[-args.seeds :]),
            )
        )
    table = md_table(rows, ["model", "accuracy", "auc", "fit_s"])
    print(table)
    save("text_generative_dev", {"rows": rows, "args": vars(args)}, table)


if __name__ == "__main__":
    main()
