"""Top-k recommendation on MovieLens 100K: ``CollabRecommender`` against what a user
would pick instead, in the same run.

    python -m benchmarks.collab_ranking [--splits u1 u2 u3 u4 u5] [--validate]
        [--config name=key:value,...]

Protocol: every rating of a ``.base`` file is an interaction (its value unused); the
relevant items of a user are their ratings >= 4 in the ``.test`` file; the users
evaluated are those with at least one relevant item; every item seen in training is a
candidate except the user's own training items (full ranking, no sampled negatives);
metrics from :mod:`collab.metrics` (NDCG@20, Recall@20, Precision@10, coverage of the
top-20 lists), means over users, then over splits.

Rows: ``CollabRecommender()`` defaults; item popularity; EASE (Steck 2019; closed form,
numpy); ``CollabRegressor().recommend`` (a model of ratings); implicit's ALS and BPR
when the ``implicit`` package is installed (not a dependency). The peers' settings
(EASE's lambda; ALS's factors, regularization and alpha; BPR's factors, rate and
iterations) are searched on the validation split, as the recommender's defaults were.

``--validate`` scores on the validation split instead: a random 10% of u1.base's rows
(seed 0) held out, relevant where rated >= 4. Every setting (EASE's lambda, the
recommender's defaults, ``--config`` variants) is chosen there, never on ``.test``.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import sparse

from benchmarks._common import data_dir, md_table, parse_config, peak_rss_mb, save
from collab import CollabRecommender, CollabRegressor
from collab.metrics import coverage, ndcg_at_k, precision_at_k, recall_at_k

COLS = ["user", "item", "rating", "ts"]


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, sep="\t", names=COLS)


def validation_split(base: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    held = np.random.default_rng(0).random(len(base)) < 0.1
    return base[~held].reset_index(drop=True), base[held].reset_index(drop=True)


class Ease:
    """EASE (Steck 2019): B = I - P / diag(P), P = (X'X + lambda I)^-1; scores X B."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def fit(self, train: pd.DataFrame) -> Ease:
        self.users = pd.Index(np.sort(train.user.unique()))
        self.items = pd.Index(np.sort(train.item.unique()))
        u = self.users.get_indexer(train.user)
        i = self.items.get_indexer(train.item)
        self.X = sparse.csr_matrix(
            (np.ones(len(u)), (u, i)), shape=(len(self.users), len(self.items))
        )
        self.X.data[:] = 1.0
        g = (self.X.T @ self.X).toarray()
        g[np.diag_indices_from(g)] += self.lam
        p = np.linalg.inv(g)
        self.B = -p / np.diag(p)
        self.B[np.diag_indices_from(self.B)] = 0.0
        return self

    def recommend(self, users, k: int) -> pd.DataFrame:
        codes = self.users.get_indexer(users)
        scores = np.asarray(self.X[codes] @ self.B)
        scores[self.X[codes].toarray() > 0] = -np.inf
        return _frame(users, self.items, scores, k)


class Popularity:
    def fit(self, train: pd.DataFrame) -> Popularity:
        self.count = train.groupby("item").user.nunique()
        self.seen = train.groupby("user").item.apply(set)
        return self

    def recommend(self, users, k: int) -> pd.DataFrame:
        order = self.count.sort_values(ascending=False, kind="stable").index
        rows = []
        for u in users:
            seen = self.seen.get(u, set())
            top = [i for i in order[: k + len(seen)] if i not in seen][:k]
            rows += [(u, i, r + 1) for r, i in enumerate(top)]
        return pd.DataFrame(rows, columns=["user", "item", "rank"])


class ImplicitModel:
    """implicit's ALS or BPR on the binary user-item matrix (when installed); ``params``
    go to the model (ALS also takes ``alpha``, the confidence of an interaction)."""

    def __init__(self, kind: str, **params) -> None:
        self.kind, self.params = kind, params

    def fit(self, train: pd.DataFrame) -> ImplicitModel:
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking

        self.users = pd.Index(np.sort(train.user.unique()))
        self.items = pd.Index(np.sort(train.item.unique()))
        u = self.users.get_indexer(train.user)
        i = self.items.get_indexer(train.item)
        self.X = sparse.csr_matrix(
            (np.ones(len(u), np.float32), (u, i)),
            shape=(len(self.users), len(self.items)),
        )
        self.X.data[:] = 1.0
        params = dict(self.params)
        if self.kind == "als":
            alpha = params.pop("alpha", 20.0)
            self.model = AlternatingLeastSquares(
                iterations=15, random_state=0, **params
            )
            self.model.fit(self.X * alpha, show_progress=False)
        else:
            self.model = BayesianPersonalizedRanking(random_state=0, **params)
            self.model.fit(self.X, show_progress=False)
        return self

    def recommend(self, users, k: int) -> pd.DataFrame:
        codes = self.users.get_indexer(users)
        ids, scores = self.model.recommend(
            codes, self.X[codes], N=k, filter_already_liked_items=True
        )
        return _frame(users, self.items, None, k, ids, scores)


# Peers' settings searched on the validation split (the best is used on the test files).
EASE_GRID = [{"lam": lam} for lam in (50, 100, 200, 400, 800)]
ALS_GRID = [
    {"factors": f, "regularization": r, "alpha": a}
    for f in (64, 128, 256, 512)
    for r in (0.1, 1.0, 10.0, 30.0, 100.0)
    for a in (0.5, 1.0, 2.0, 5.0, 20.0)
]
BPR_GRID = [
    {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": it}
    for f in (64, 128)
    for lr in (0.002, 0.005, 0.01, 0.05)
    for it in (100, 300, 1000)
]


def _frame(users, items, scores, k, idx=None, top=None) -> pd.DataFrame:
    if idx is None:
        idx = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        top = np.take_along_axis(scores, idx, 1)
    return pd.DataFrame(
        {
            "user": np.repeat(np.asarray(users), k),
            "item": items[idx.ravel()],
            "score": top.ravel(),
            "rank": np.tile(np.arange(1, k + 1), len(users)),
        }
    )


def score(recs: pd.DataFrame, relevant: pd.DataFrame, n_items: int) -> dict:
    return {
        "ndcg@20": ndcg_at_k(recs, relevant, 20),
        "recall@20": recall_at_k(recs, relevant, 20),
        "precision@10": precision_at_k(recs, relevant, 10),
        "coverage@20": coverage(recs, n_items, 20),
    }


def methods(args, tuned: dict[str, dict]) -> dict:
    out = {
        "CollabRecommender() defaults": lambda: CollabRecommender(
            random_state=0, verbose=0
        ),
        "item popularity": Popularity,
        f"EASE ({_fmt(tuned['ease'])})": lambda: Ease(**tuned["ease"]),
        "CollabRegressor().recommend (ratings)": lambda: CollabRegressor(
            random_state=0, verbose=0
        ),
    }
    for name, params in args.config:
        out[f"CollabRecommender({name})"] = lambda p=params: CollabRecommender(
            random_state=0, verbose=0, **p
        )
    if "als" in tuned:
        out[f"implicit ALS ({_fmt(tuned['als'])})"] = lambda: ImplicitModel(
            "als", **tuned["als"]
        )
        out[f"implicit BPR ({_fmt(tuned['bpr'])})"] = lambda: ImplicitModel(
            "bpr", **tuned["bpr"]
        )
    return out


def _fmt(params: dict) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def tune(fit_part: pd.DataFrame, held: pd.DataFrame) -> tuple[dict, dict]:
    """Each peer's best setting by NDCG@20 on the validation split, and every score."""
    grids = {"ease": (Ease, EASE_GRID)}
    try:
        import implicit  # noqa: F401

        grids["als"] = (partial(ImplicitModel, "als"), ALS_GRID)
        grids["bpr"] = (partial(ImplicitModel, "bpr"), BPR_GRID)
    except ImportError:
        print("implicit is not installed: its ALS and BPR rows are left out")
    best, scores = {}, {}
    for name, (make, grid) in grids.items():
        scores[name] = []
        for params in grid:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = run_split("val", fit_part, held, partial(make, **params))
            scores[name].append({**params, "ndcg@20": r["ndcg@20"]})
        best[name] = {
            k: v
            for k, v in max(scores[name], key=lambda r: r["ndcg@20"]).items()
            if k != "ndcg@20"
        }
        print(f"{name}: best on the validation split {best[name]}")
    return best, scores


def run_split(name: str, train, test, make) -> dict:
    relevant = test[(test.rating >= 4) & test.user.isin(train.user)]
    relevant = relevant[relevant.item.isin(train.item)]
    users = relevant.user.unique()
    n_items = train.item.nunique()
    start = time.perf_counter()
    model = make()
    if isinstance(model, CollabRegressor):
        model.fit(train[["user", "item"]], train.rating)
    else:  # CollabRecommender reads the id columns only
        model.fit(train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    recs = model.recommend(users, k=20)
    rec_s = time.perf_counter() - start
    return {**score(recs, relevant, n_items), "fit_s": fit_s, "recommend_s": rec_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", nargs="+", default=["u1", "u2", "u3", "u4", "u5"])
    ap.add_argument("--validate", action="store_true")
    ap.add_argument("--config", type=parse_config, action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = data_dir()
    if root is None or not (root / "movielens-100k").is_dir():
        raise SystemExit("movielens-100k not found under ../shared/data (DEEPFIT_DATA)")
    folder = root / "movielens-100k"

    # The peers' settings, on the validation split of u1.base only.
    fit_part, held = validation_split(read(folder, "u1.base"))
    tuned, peer_scores = tune(fit_part, held)

    splits = (
        {"val": (fit_part, held)}
        if args.validate
        else {
            s: (read(folder, f"{s}.base"), read(folder, f"{s}.test"))
            for s in args.splits
        }
    )
    results: dict[str, dict[str, dict]] = {}
    for name, make in methods(args, tuned).items():
        results[name] = {}
        for split, (train, test) in splits.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                r = run_split(split, train, test, make)
            results[name][split] = r
            print(
                f"{split} {name:45s} ndcg@20 {r['ndcg@20']:.4f} recall@20 "
                f"{r['recall@20']:.4f} p@10 {r['precision@10']:.4f} fit "
                f"{r['fit_s']:.1f} s",
                flush=True,
            )
    rows = []
    for name, per in results.items():
        row = {"method": name}
        for key in ("ndcg@20", "recall@20", "precision@10", "coverage@20", "fit_s"):
            row[key] = statistics.mean(r[key] for r in per.values())
        row["recommend_s"] = statistics.mean(r["recommend_s"] for r in per.values())
        if len(per) > 1:
            row["ndcg@20 per split"] = " / ".join(
                f"{r['ndcg@20']:.3f}" for r in per.values()
            )
        rows.append(row)
    cols = [
        "method",
        "ndcg@20",
        "recall@20",
        "precision@10",
        "coverage@20",
        "fit_s",
        "recommend_s",
    ]
    if len(splits) > 1:
        cols.append("ndcg@20 per split")
    where = "the validation split of u1.base" if args.validate else ", ".join(splits)
    table = md_table(rows, cols) + (
        f"\n\nMovieLens 100K, {where}; relevant = test ratings >= 4, full ranking of the "
        f"training items, seen items excluded; means over users, then splits; the "
        f"peers' settings chosen on the validation split of u1.base (grids in the "
        f"JSON); {torch.get_num_threads()} threads, peak RSS {peak_rss_mb():.0f} MiB.\n"
    )
    print("\n" + table)
    payload = {
        "args": {**vars(args), "config": args.config},
        "results": results,
        "peer_validation": peer_scores,
    }
    save("collab_ranking", payload, table, partial=args.validate or bool(args.config))


if __name__ == "__main__":
    main()
