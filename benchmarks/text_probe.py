"""How much sentiment do the language model's features carry? A linear probe on the IMDB
sample, to tell a weak representation from a weak classifier recipe.

    python -m benchmarks.text_probe [--threads N] [--lm-epochs 0 4]

The 800 training reviews are split 600 / 200 (stratified, seed 0); the 200 official
validation reviews are not used. For each number of language-model fine-tuning epochs, the
cached WikiText-2 encoder of ``benchmarks.text_imdb`` (run that first) is fine-tuned on the
600 reviews exactly as ``TextClassifier`` does it (steps 1-2 of ULMFiT), and a
cross-validated logistic regression is fitted on the encoder's concat-pooled states (last,
max and mean over the review; each layer, and both) of the 600 and scored on the 200. The
same split gives the TF-IDF baseline of ``text_imdb`` (c) for reference.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegressionCV
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from benchmarks._common import data_dir, md_table, save
from benchmarks.text_imdb import CACHE
from text import TextClassifier
from text.awd_lstm import masked_concat_pool
from text.demo import tfidf_baseline


class _LanguageModelOnly(TextClassifier):
    """Stops after the language-model fine-tuning: ``module_.encoder`` then holds the
    fine-tuned encoder and no classifier is trained."""

    def _train_classifier(self, *args, **kwargs) -> None:
        return None


def _features(est: TextClassifier, texts, max_len: int) -> dict[str, np.ndarray]:
    enc = est.module_.encoder.eval()
    out: dict[str, list[np.ndarray]] = {"layer 1": [], "layer 2": []}
    with torch.no_grad():
        for doc in est._encode(list(texts)):
            doc = doc[-max_len:]
            raw, _, _ = enc(torch.as_tensor(doc)[None])
            n = torch.tensor([len(doc)])
            for i, key in enumerate(out):
                out[key].append(masked_concat_pool(raw[i], n)[0].numpy())
    feats = {k: np.stack(v) for k, v in out.items()}
    feats["both"] = np.hstack([feats["layer 1"], feats["layer 2"]])
    return feats


def _probe(a: np.ndarray, y, b: np.ndarray, yb) -> float:
    clf = make_pipeline(
        StandardScaler(),
        LogisticRegressionCV(
            Cs=[1e-3, 1e-2, 0.1, 1],
            cv=5,
            max_iter=3000,
            scoring="accuracy",
        ),
    )
    return float(clf.fit(a, y).score(b, yb))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--lm-epochs", type=int, nargs="+", default=[0, 4])
    p.add_argument("--max-len", type=int, default=400)
    args = p.parse_args()
    # scikit-learn 1.8+ announces changed LogisticRegressionCV defaults on every fit.
    warnings.filterwarnings("ignore", category=FutureWarning, module="sklearn")
    if args.threads:
        torch.set_num_threads(args.threads)
    data = data_dir()
    if data is None:
        raise SystemExit("data not found: set DEEPFIT_DATA or provide ../shared/data")
    if not CACHE.exists():
        raise SystemExit(
            f"{CACHE} is missing: run python -m benchmarks.text_imdb first"
        )
    df = pd.read_csv(data / "imdb-sample" / "texts.csv")
    train, dev = train_test_split(
        df[~df.is_valid], test_size=200, stratify=df[~df.is_valid].label, random_state=0
    )
    rows = []
    tfidf = tfidf_baseline().fit(train.text, train.label)
    acc = float(tfidf.score(dev.text, dev.label))
    rows.append({"features": "TF-IDF 1-2 grams", "accuracy": acc})
    print(json.dumps(rows[-1]), flush=True)
    for epochs in args.lm_epochs:
        est = _LanguageModelOnly(
            language_model=CACHE,
            lm_epochs=epochs,
            lm_lr=5e-3,
            emb_size=200,
            hidden_size=400,
            n_layers=2,
            drop_mult=0.3,
            max_len=args.max_len,
            random_state=0,
            verbose=0,
        )
        start = time.perf_counter()
        est.fit(train.text, train.label)
        seconds = time.perf_counter() - start
        a, b = (
            _features(est, train.text, args.max_len),
            _features(est, dev.text, args.max_len),
        )
        for key in a:
            rows.append(
                {
                    "features": f"WikiText-2 LM, {epochs} IMDB LM epochs: {key}",
                    "accuracy": _probe(a[key], train.label, b[key], dev.label),
                    "lm_fit_s": seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    table = md_table(rows, ["features", "accuracy", "lm_fit_s"])
    print(table)
    save("text_probe", {"rows": rows, "args": vars(args)}, table)


if __name__ == "__main__":
    main()
