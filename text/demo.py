"""The text step of ``python -m deepfit demo``, on the IMDB sample in about half a
minute: a small language model trained on the reviews, then the generative classifier
started from it, against TF-IDF (``benchmarks/text_imdb.py`` runs the full comparison,
ULMFiT from a language model pretrained on WikiText-2 included)."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegressionCV
from sklearn.pipeline import Pipeline, make_pipeline

from text.generative import GenerativeTextClassifier
from text.language_model import LanguageModel

__all__ = ["run", "tfidf_baseline"]


def tfidf_baseline() -> Pipeline:
    """The bag-of-words yardstick for text classification: TF-IDF of 1-2 grams (sublinear
    tf) and a logistic regression whose C is chosen by 5-fold cross-validation on the
    training texts. The demo and ``benchmarks/text_imdb.py`` (row c) use it."""
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        LogisticRegressionCV(
            Cs=[0.1, 1, 10, 100], cv=5, max_iter=2000, scoring="accuracy"
        ),
    )


def _generated(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    good, bad = ["great", "superb", "moving"], ["awful", "dull", "silly"]
    filler = ["the", "film", "plot", "was", "a", "cast", "and", "story", "really"]
    rows = []
    for i in range(n):
        words = list(rng.choice(filler, size=8))
        words.insert(int(rng.integers(0, 9)), str(rng.choice(good if i % 2 else bad)))
        rows.append(("positive" if i % 2 else "negative", " ".join(words)))
    return pd.DataFrame(rows, columns=["label", "text"])


def run(data_dir: Path | None) -> None:
    csv = None if data_dir is None else data_dir / "imdb-sample" / "texts.csv"
    if csv is not None and csv.is_file():
        df = pd.read_csv(csv)
        # Half the training reviews keep the step near a minute on two CPU cores.
        train, valid = df[~df.is_valid].iloc[:400], df[df.is_valid]
        print(f"IMDB sample: {len(train)} train / {len(valid)} valid reviews")
    else:
        print("imdb-sample not found: using generated reviews (label = adjective kind)")
        train, valid = _generated(400, 0), _generated(100, 1)
    # Step 1 of ULMFiT on what there is: a small language model of the reviews.
    lm = LanguageModel(
        emb_size=100, hidden_size=200, epochs=1, lr=1e-2, verbose=0, random_state=0
    )
    start = time.perf_counter()
    lm.fit(train.text)
    print(
        f"LanguageModel on the training reviews: {time.perf_counter() - start:.0f} s, "
        f"vocabulary {len(lm.vocab_)}, valid perplexity {lm.perplexity(valid.text):.0f}"
    )
    sample = lm.generate("This movie", n_words=15, temperature=0.7, random_state=0)
    print(f"  sample: {sample!r}")
    # That model fine-tuned once per class: Bayes' rule reads the label from what each
    # class's model learns about its own reviews' words.
    gen = GenerativeTextClassifier(
        language_model=lm, max_len=200, epochs=1, verbose=0, random_state=0
    )
    start = time.perf_counter()
    gen.fit(train.text, train.label)
    seconds = time.perf_counter() - start
    print(
        "GenerativeTextClassifier (the language model fine-tuned per class, Bayes' "
        f"rule): valid accuracy {gen.score(valid.text, valid.label):.3f}, fit "
        f"{seconds:.0f} s"
    )
    proba = gen.predict_proba([valid.text.iloc[0]])[0]
    shown = {c: round(float(p), 3) for c, p in zip(gen.classes_, proba, strict=True)}
    print(f"  first valid review -> {shown}")
    # The yardstick every text model here should be read against.
    with warnings.catch_warnings():  # scikit-learn 1.8+ announces changed defaults
        warnings.simplefilter("ignore", FutureWarning)
        baseline = tfidf_baseline().fit(train.text, train.label)
    base_acc = baseline.score(valid.text, valid.label)
    print(f"TF-IDF 1-2 grams + LogisticRegression on the same texts: {base_acc:.3f}")
