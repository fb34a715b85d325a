"""Top-k recommendation on MovieLens 100K and the five logs of ``recsys-suite/``:
``CollabRecommender`` against what a user would pick instead, in the same run.

    python -m benchmarks.collab_ranking [--logs ml-100k lastfm-hetrec2011 ...]
        [--splits u1 u2 u3 u4 u5] [--validate] [--choose] [--config name=key:value,...]

Protocol. MovieLens 100K: every rating of a ``.base`` file is an interaction; relevant
items are a user's ratings >= 4 in the ``.test`` file. The suite logs: the README's
per-user 80/20 holdout, seed 0 (``benchmarks/recsys_suite.py``); relevant as the
README says (any interaction; Jester ratings >= 5; restaurant ratings >= 1). Training
input is binary (values unused). Users evaluated: those with a relevant held-out item;
every item seen in training is a candidate except the user's own training items (full
ranking); NDCG@20 and Recall@20 from :mod:`collab.metrics`, means over users.

Rows: ``CollabRecommender()`` defaults; item popularity; EASE (Steck 2019) with its
lambda tuned on the validation split, solved by the same Cholesky routine as ours
(:func:`collab.closed_form.edlae` with no dropout: the same cost, so fit seconds
compare the methods, not two linear-algebra libraries); implicit's ALS and BPR when the
``implicit`` package is installed (not a dependency), tuned on the validation split.
Fit seconds beside each.

Validation split (every setting is chosen there, never on a test part): MovieLens 100K,
a random 10% of u1.base's rows (seed 0), relevant where rated >= 4; a suite log, the
same per-user 80/20 holdout of its training part with seed 1, relevance as above.
``--validate`` reports on the validation splits; ``--choose`` scores a grid of the
recommender's closed-form settings on them (how its defaults were chosen).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from threadpoolctl import threadpool_limits

from benchmarks import recsys_suite
from benchmarks._common import data_dir, md_table, parse_config, peak_rss_mb, save
from collab import CollabRecommender
from collab.closed_form import edlae
from collab.metrics import ndcg_at_k, recall_at_k

ML = "ml-100k"
LOGS = (ML, *recsys_suite.LOGS)


@dataclass
class Task:
    """One train/evaluation pair: binary training interactions and relevant items."""

    log: str
    split: str
    train: pd.DataFrame  # user, item
    relevant: pd.DataFrame  # user, item


def _ml(name: str) -> pd.DataFrame:
    cols = ["user", "item", "rating", "ts"]
    return pd.read_csv(data_dir() / "movielens-100k" / name, sep="\t", names=cols)


def _task(log, split, train, held, rule) -> Task:
    rel = held[rule(held)]
    rel = rel[rel.user.isin(train.user) & rel.item.isin(train.item)]
    return Task(log, split, train[["user", "item"]].reset_index(drop=True), rel)


def _relevance(log: str):
    if log == ML:
        return lambda df: df.rating >= 4
    if log == "jester5k":
        return lambda df: df.value >= 5.0
    if log == "restaurant-consumer":
        return lambda df: df.value >= 1
    return lambda df: np.ones(len(df), dtype=bool)


def validation_task(log: str) -> Task:
    if log == ML:
        base = _ml("u1.base")
        held = np.random.default_rng(0).random(len(base)) < 0.1
        return _task(log, "val", base[~held], base[held], _relevance(log))
    train = recsys_suite.load(log, seed=0).train
    held = recsys_suite.holdout(train, seed=1)
    return _task(log, "val", train[~held], train[held], _relevance(log))


def test_tasks(log: str, ml_splits: list[str]) -> list[Task]:
    if log == ML:
        return [
            _task(log, s, _ml(f"{s}.base"), _ml(f"{s}.test"), _relevance(log))
            for s in ml_splits
        ]
    split = recsys_suite.load(log, seed=0)
    return [_task(log, "test", split.train, split.test, _relevance(log))]


# ---- the peers ----------------------------------------------------------------------


class _Matrix:
    """The binary user-item matrix of the training interactions."""

    def _matrix(self, train: pd.DataFrame) -> sparse.csr_matrix:
        self.users = pd.Index(np.sort(train.user.unique()))
        self.items = pd.Index(np.sort(train.item.unique()))
        u = self.users.get_indexer(train.user)
        i = self.items.get_indexer(train.item)
        X = sparse.csr_matrix(
            (np.ones(len(u), np.float32), (u, i)),
            shape=(len(self.users), len(self.items)),
        )
        X.data[:] = 1.0
        self.X = X
        return X


class Ease(_Matrix):
    """EASE (Steck 2019): B = I - P / diag(P), P = (X'X + lambda I)^-1; scores X B."""

    def __init__(self, lam: float) -> None:
        self.lam = lam

    def fit(self, train: pd.DataFrame) -> Ease:
        X = self._matrix(train)
        _, self.B = edlae(X, self.lam, 0.0, X.shape[1])
        return self

    def recommend(self, users, k: int) -> pd.DataFrame:
        codes = self.users.get_indexer(users)
        tops, idxs = [], []
        for start in range(0, len(codes), 2048):  # blocks of users: bounded memory
            rows = torch.from_numpy(self.X[codes[start : start + 2048]].toarray())
            scores = (rows @ self.B).masked_fill(rows > 0, -math.inf)
            top, idx = torch.topk(scores, k, dim=1)
            tops.append(top.numpy())
            idxs.append(idx.numpy())
        return _frame(users, self.items, k, np.concatenate(idxs), np.concatenate(tops))


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


class ImplicitModel(_Matrix):
    """implicit's ALS or BPR on the binary user-item matrix (when installed); ``params``
    go to the model (ALS also takes ``alpha``, the confidence of an interaction)."""

    def __init__(self, kind: str, **params) -> None:
        self.kind, self.params = kind, params

    def fit(self, train: pd.DataFrame) -> ImplicitModel:
        from implicit.als import AlternatingLeastSquares
        from implicit.bpr import BayesianPersonalizedRanking

        X = self._matrix(train)
        params = dict(self.params)
        # implicit runs its own threads and asks for a single-threaded BLAS inside
        # them (its documentation; otherwise OpenBLAS warns, and slows, per call).
        with threadpool_limits(1, "blas"):
            if self.kind == "als":
                alpha = params.pop("alpha", 20.0)
                self.model = AlternatingLeastSquares(
                    iterations=15, random_state=0, **params
                )
                self.model.fit(X * alpha, show_progress=False)
            else:
                self.model = BayesianPersonalizedRanking(random_state=0, **params)
                self.model.fit(X, show_progress=False)
        return self

    def recommend(self, users, k: int) -> pd.DataFrame:
        codes = self.users.get_indexer(users)
        with threadpool_limits(1, "blas"):
            ids, scores = self.model.recommend(
                codes, self.X[codes], N=k, filter_already_liked_items=True
            )
        return _frame(users, self.items, k, ids, scores)


def _frame(users, items, k, idx, top) -> pd.DataFrame:
    keep = np.isfinite(top.ravel()) & (idx.ravel() >= 0)
    return pd.DataFrame(
        {
            "user": np.repeat(np.asarray(users), k)[keep],
            "item": items[np.clip(idx.ravel(), 0, None)][keep],
            "score": top.ravel()[keep],
            "rank": np.tile(np.arange(1, k + 1), len(users))[keep],
        }
    )


# Peers' settings searched on the validation split of each log.
EASE_GRID = [{"lam": lam} for lam in (10, 30, 100, 300, 1000, 3000, 10000)]
ALS_GRID = [
    {"factors": f, "regularization": r, "alpha": a}
    for f in (64, 256)
    for r in (0.1, 10.0)
    for a in (1.0, 10.0)
]
BPR_GRID = [
    {"factors": f, "learning_rate": lr, "regularization": 0.01, "iterations": it}
    for f in (64, 128)
    for lr in (0.01, 0.05)
    for it in (100, 300)
]
# The recommender's closed-form settings scored by --choose: EASE's grid (no dropout),
# then EDLAE's dropout with a few L2 terms.
CHOOSE_GRID = [
    {"mix": 0.0, "l2": g["lam"], "linear_dropout": 0.0} for g in EASE_GRID
] + [
    {"mix": 0.0, "l2": l2, "linear_dropout": p}
    for p in (0.33, 0.5, 0.67, 0.8)
    for l2 in (3, 30, 300)
]


def evaluate(task: Task, make) -> dict:
    users = task.relevant.user.unique()
    start = time.perf_counter()
    model = make().fit(task.train)
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    recs = model.recommend(users, k=20)
    rec_s = time.perf_counter() - start
    return {
        "ndcg@20": ndcg_at_k(recs, task.relevant, 20),
        "recall@20": recall_at_k(recs, task.relevant, 20),
        "fit_s": fit_s,
        "recommend_s": rec_s,
        "users": len(users),
    }


def _fmt(params: dict) -> str:
    return ", ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def tune(task: Task, peers: dict) -> tuple[dict, dict]:
    """Each peer's best setting by NDCG@20 on ``task`` (a validation split)."""
    best, scores = {}, {}
    for name, (make, grid) in peers.items():
        scores[name] = []
        for params in grid:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = evaluate(task, partial(make, **params))
            scores[name].append({**params, "ndcg@20": r["ndcg@20"]})
        top = max(scores[name], key=lambda r: r["ndcg@20"])
        best[name] = {k: v for k, v in top.items() if k != "ndcg@20"}
        print(f"  {task.log}: {name} best on validation {_fmt(best[name])}", flush=True)
    return best, scores


def peers() -> dict:
    out = {"ease": (Ease, EASE_GRID)}
    try:
        import implicit  # noqa: F401

        out["als"] = (partial(ImplicitModel, "als"), ALS_GRID)
        out["bpr"] = (partial(ImplicitModel, "bpr"), BPR_GRID)
    except ImportError:
        print("implicit is not installed: its ALS and BPR rows are left out")
    return out


def methods(args, tuned: dict) -> dict:
    out = {
        "CollabRecommender()": lambda: CollabRecommender(random_state=0, verbose=0),
        f"EASE ({_fmt(tuned['ease'])})": lambda: Ease(**tuned["ease"]),
        "popularity": Popularity,
    }
    for name, params in args.config:
        out[f"CollabRecommender({name})"] = lambda p=params: CollabRecommender(
            random_state=0, verbose=0, **p
        )
    if "als" in tuned:
        out[f"ALS ({_fmt(tuned['als'])})"] = lambda: ImplicitModel(
            "als", **tuned["als"]
        )
        out[f"BPR ({_fmt(tuned['bpr'])})"] = lambda: ImplicitModel(
            "bpr", **tuned["bpr"]
        )
    return out


def choose(logs: list[str]) -> dict:
    """NDCG@20 of each closed-form setting on each log's validation split, as a ratio
    to tuned EASE's there; the setting with the best geometric mean wins."""
    table: dict[str, dict[str, float]] = {}
    for log in logs:
        task = validation_task(log)
        scores = {}
        for params in CHOOSE_GRID:
            make = partial(CollabRecommender, random_state=0, verbose=0, **params)
            scores[_fmt(params)] = evaluate(task, make)["ndcg@20"]
            print(f"  {log} {_fmt(params)}: {scores[_fmt(params)]:.4f}", flush=True)
        # Tuned EASE: the best of the settings without dropout (EASE's own grid).
        base = max(v for s, v in scores.items() if s.endswith("linear_dropout=0"))
        for s, v in scores.items():
            table.setdefault(s, {})[log] = v / base
    rows = [
        {
            "setting": s,
            **{log: v for log, v in per.items()},
            "geomean": math.exp(statistics.mean(math.log(v) for v in per.values())),
            "min": min(per.values()),
        }
        for s, per in table.items()
    ]
    rows.sort(key=lambda r: -r["geomean"])
    print("\n" + md_table(rows, ["setting", *logs, "geomean", "min"]))
    return {"grid": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--logs", nargs="+", default=list(LOGS), choices=LOGS)
    ap.add_argument("--splits", nargs="+", default=["u1", "u2", "u3", "u4", "u5"])
    ap.add_argument("--validate", action="store_true")
    ap.add_argument("--choose", action="store_true")
    ap.add_argument("--config", type=parse_config, action="append", default=[])
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if data_dir() is None:
        raise SystemExit("../shared/data (DEEPFIT_DATA) not found")
    if args.choose:
        save("collab_ranking_choose", choose(args.logs), "", partial=True)
        return

    results: dict[str, dict[str, dict]] = {}
    tuning = {}
    for log in args.logs:
        val = validation_task(log)
        tuned, tuning[log] = tune(val, peers())
        tasks = [val] if args.validate else test_tasks(log, args.splits)
        for name, make in methods(args, tuned).items():
            runs = []
            for task in tasks:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", UserWarning)
                    runs.append(evaluate(task, make))
            key = "EASE" if name.startswith("EASE") else name
            results.setdefault(log, {})[key] = {
                "method": name,
                **{
                    m: statistics.mean(r[m] for r in runs)
                    for m in ("ndcg@20", "recall@20", "fit_s", "recommend_s")
                },
            }
            r = results[log][key]
            print(
                f"{log} {name:40s} ndcg@20 {r['ndcg@20']:.4f} recall@20 "
                f"{r['recall@20']:.4f} fit {r['fit_s']:.2f} s",
                flush=True,
            )
    rows = []
    for log, per in results.items():
        ease = per["EASE"]
        for r in per.values():
            rows.append(
                {
                    "log": log,
                    **r,
                    "ndcg / EASE": r["ndcg@20"] / ease["ndcg@20"],
                    "fit / EASE": r["fit_s"] / ease["fit_s"],
                }
            )
    cols = ["log", "method", "ndcg@20", "recall@20", "ndcg / EASE", "fit_s"]
    cols += ["fit / EASE", "recommend_s"]
    ours = [r for r in rows if r["method"] == "CollabRecommender()"]
    where = "validation splits" if args.validate else "test parts"
    table = md_table(rows, cols) + (
        f"\n\n{where.capitalize()}; MovieLens 100K: mean over {', '.join(args.splits)}"
        " (relevant = ratings >= 4); suite logs: the README's 80/20 holdout, seed 0. "
        "Peers tuned on each log's validation split. `CollabRecommender()` against "
        "EASE: NDCG@20 ratio geometric mean "
        f"{math.exp(statistics.mean(math.log(r['ndcg / EASE']) for r in ours)):.3f}, "
        f"lowest {min(r['ndcg / EASE'] for r in ours):.3f}; fit-time ratio highest "
        f"{max(r['fit / EASE'] for r in ours):.2f}. {torch.get_num_threads()} "
        f"threads, peak RSS {peak_rss_mb():.0f} MiB.\n"
    )
    print("\n" + table)
    payload = {"args": {**vars(args)}, "results": results, "tuning": tuning}
    partial_run = args.validate or bool(args.config) or list(args.logs) != list(LOGS)
    save("collab_ranking", payload, table, partial=partial_run)


if __name__ == "__main__":
    main()
