"""The collaborative-filtering step of ``python -m deepfit demo``.

On MovieLens 100K (u1 split): fit ``CollabRegressor`` with its defaults and print the
test RMSE and the films the item biases rank highest (rating prediction); then fit
``CollabRecommender``, the estimator for "what to watch next", on the same interactions
and print one user's top 5 with titles, and its NDCG@20 on the test ratings >= 4 beside
popularity's. Without the data set, the same on generated low-rank ratings.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from collab.estimator import CollabRegressor
from collab.metrics import ndcg_at_k
from collab.recommender import CollabRecommender

__all__ = ["run"]

NAMES = ["user", "item", "rating", "timestamp"]


def _rmse(pred: np.ndarray, y: pd.Series | np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - np.asarray(y)) ** 2)))


def _generated() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    n_users, n_items, rank = 300, 200, 4
    p, q = rng.normal(size=(n_users, rank)), rng.normal(size=(n_items, rank))
    full = 3 + 0.4 * rng.normal(size=(n_users, 1)) + 0.6 * (p @ q.T) / np.sqrt(rank)
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.2)
    rating = np.clip(
        np.round(full[users, items] + 0.3 * rng.normal(size=len(users))), 1, 5
    )
    frame = pd.DataFrame({"user": users, "item": items, "rating": rating})
    test = rng.random(len(frame)) < 0.2
    return frame[~test], frame[test]


def run(data_dir: Path | None) -> None:
    folder = None if data_dir is None else Path(data_dir) / "movielens-100k"
    titles = None
    if folder is not None and (folder / "u1.base").is_file():
        train = pd.read_csv(folder / "u1.base", sep="\t", names=NAMES)
        test = pd.read_csv(folder / "u1.test", sep="\t", names=NAMES)
        items = pd.read_csv(
            folder / "u.item", sep="|", encoding="latin-1", header=None, usecols=[0, 1]
        )
        titles = items.set_index(0)[1]
        print(f"MovieLens 100K u1: {len(train):,} training ratings, {len(test):,} test")
    else:
        print(
            "MovieLens 100K not found: generated low-rank ratings (300 users, 200 items)"
        )
        train, test = _generated()

    start = time.perf_counter()
    est = CollabRegressor(random_state=0, verbose=0).fit(train, train["rating"])
    seconds = time.perf_counter() - start
    baseline = _rmse(np.full(len(test), train["rating"].mean()), test["rating"])
    print(
        f"fit {seconds:.1f} s; test RMSE {_rmse(est.predict(test), test['rating']):.4f} "
        f"(predicting the mean: {baseline:.4f}; cold rows: "
        f"{int(est.cold_rows(test).any(axis=1).sum())})"
    )

    def name(item):
        return titles.get(item, item) if titles is not None else f"item {item}"

    counts = est.item_counts_
    bias = est.item_bias_[counts[counts >= 50].index].sort_values()
    print("\nitem bias, among films with 50+ ratings (quality whoever watches):")
    print("  highest: " + "; ".join(name(i) for i in bias.index[::-1][:3]))
    print("  lowest:  " + "; ".join(name(i) for i in bias.index[:3]))

    # What to watch next: a model of the interactions, not of the ratings.
    start = time.perf_counter()
    rec = CollabRecommender(random_state=0, verbose=0).fit(train)
    seconds = time.perf_counter() - start
    relevant = test[(test["rating"] >= 4) & test["item"].isin(train["item"])]
    relevant = relevant[relevant["user"].isin(train["user"])]
    users = relevant["user"].unique()
    ndcg = ndcg_at_k(rec.recommend(users, k=20), relevant, 20)
    top = train["item"].value_counts().index
    seen = train.groupby("user")["item"].apply(set)
    popular = pd.DataFrame(
        [
            (u, i, r + 1)
            for u in users
            for r, i in enumerate([i for i in top if i not in seen[u]][:20])
        ],
        columns=["user", "item", "rank"],
    )
    print(
        "\nCollabRecommender (what to watch next): "
        f"fit {seconds:.2f} s; test NDCG@20 "
        f"{ndcg:.3f} (most popular unseen films: {ndcg_at_k(popular, relevant, 20):.3f})"
    )
    user = train["user"].value_counts().index[10]  # a user with plenty of ratings
    liked = train[(train["user"] == user) & (train["rating"] == 5)]["item"].head(3)
    print(f"user {user} gave 5 stars to: " + "; ".join(name(i) for i in liked))
    print(f"next for user {user} (unseen films):")
    for row in rec.recommend(user, k=5).itertuples():
        print(f"  {row.rank}. {name(row.item)}")
