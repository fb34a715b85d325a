"""Ranking metrics of top-k recommendation lists against held-out interactions.

Every function takes a frame of recommendations (one row per recommended item: a user
column, an item column and a ``rank`` column, 1 = first; without ``rank`` the rows'
``score`` sets the order, highest first, and without either the row order does) and a
frame of held-out relevant interactions (a user column and an item column; filter it
first, say to ratings >= 4). So they score any recommender's output, ours or a peer's.

The protocol is the usual full-ranking one: the users evaluated are those with at least
one relevant item (a user without any recommendation scores 0); each user's list is cut
to its first ``k`` items; relevance is binary; the mean is over users.

- ``precision_at_k``: hits / k.
- ``recall_at_k``: hits / min(k, number of relevant items) (so a perfect list scores 1).
- ``ndcg_at_k``: DCG of the hits (gain 1 at rank r discounted by ``log2(r + 1)``) over the
  DCG of a perfect list of ``min(k, relevant)`` hits.
- ``map_at_k``: the mean over users of the average precision at the hits, divided by
  ``min(k, relevant)``.
- ``coverage``: the share of the catalogue that appears in some top-k list.
"""

from __future__ import annotations

from collections.abc import Hashable, Sized

import numpy as np
import pandas as pd

__all__ = [
    "coverage",
    "map_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics",
    "recall_at_k",
]


def _check(frame: pd.DataFrame, cols: list[Hashable], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{name} has no column(s) {missing}; its columns are {list(frame.columns)}"
        )


def _top_k(
    recommendations: pd.DataFrame, k: int, user_col: Hashable, item_col: Hashable
) -> pd.DataFrame:
    """The first ``k`` distinct items of each user's list, with their rank 1..k."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    _check(recommendations, [user_col, item_col], "recommendations")
    recs = recommendations
    if "rank" in recs.columns:
        recs = recs.sort_values([user_col, "rank"], kind="stable")
    elif "score" in recs.columns:
        recs = recs.sort_values(
            [user_col, "score"], ascending=[True, False], kind="stable"
        )
    recs = recs[[user_col, item_col]].drop_duplicates()
    pos = recs.groupby(user_col, sort=False).cumcount().to_numpy() + 1
    recs = recs.assign(_pos=pos)
    return recs[recs["_pos"] <= k]


def _hits(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int,
    user_col: Hashable,
    item_col: Hashable,
) -> tuple[pd.DataFrame, pd.Series]:
    """The top-k rows that are relevant (with their position) and each evaluated
    user's number of relevant items."""
    _check(relevant, [user_col, item_col], "relevant")
    rel = relevant[[user_col, item_col]].drop_duplicates()
    n_rel = rel.groupby(user_col).size()
    top = _top_k(recommendations, k, user_col, item_col)
    hits = top.merge(rel, on=[user_col, item_col], how="inner")
    return hits, n_rel


def _per_user(values: pd.Series, n_rel: pd.Series) -> float:
    if len(n_rel) == 0:
        raise ValueError("relevant holds no interactions: no user to evaluate")
    return float(values.reindex(n_rel.index, fill_value=0.0).mean())


def precision_at_k(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int = 10,
    user_col: Hashable = "user",
    item_col: Hashable = "item",
) -> float:
    """Mean over evaluated users of (relevant items in the top ``k``) / ``k``."""
    hits, n_rel = _hits(recommendations, relevant, k, user_col, item_col)
    return _per_user(hits.groupby(user_col).size() / k, n_rel)


def recall_at_k(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int = 10,
    user_col: Hashable = "user",
    item_col: Hashable = "item",
) -> float:
    """Mean over evaluated users of hits / min(``k``, their relevant items)."""
    hits, n_rel = _hits(recommendations, relevant, k, user_col, item_col)
    per = hits.groupby(user_col).size() / np.minimum(n_rel, k)
    return _per_user(per.dropna(), n_rel)


def ndcg_at_k(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int = 10,
    user_col: Hashable = "user",
    item_col: Hashable = "item",
) -> float:
    """Mean over evaluated users of the normalised discounted cumulative gain of the
    top ``k`` (binary relevance)."""
    hits, n_rel = _hits(recommendations, relevant, k, user_col, item_col)
    disc = 1.0 / np.log2(np.arange(2, k + 2))
    dcg = pd.Series(disc[hits["_pos"].to_numpy() - 1], index=hits[user_col])
    dcg = dcg.groupby(level=0).sum()
    ideal = np.cumsum(disc)[np.minimum(n_rel.to_numpy(), k) - 1]
    idcg = pd.Series(ideal, index=n_rel.index)
    return _per_user(dcg / idcg.reindex(dcg.index), n_rel)


def map_at_k(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int = 10,
    user_col: Hashable = "user",
    item_col: Hashable = "item",
) -> float:
    """Mean over evaluated users of the average precision at ``k``: the precision at
    each hit's position, summed, over min(``k``, their relevant items)."""
    hits, n_rel = _hits(recommendations, relevant, k, user_col, item_col)
    hits = hits.sort_values([user_col, "_pos"], kind="stable")
    nth = hits.groupby(user_col, sort=False).cumcount().to_numpy() + 1
    prec = pd.Series(nth / hits["_pos"].to_numpy(), index=hits[user_col])
    ap = prec.groupby(level=0).sum() / np.minimum(n_rel, k).reindex(prec.index.unique())
    return _per_user(ap, n_rel)


def coverage(
    recommendations: pd.DataFrame,
    catalogue: int | Sized,
    k: int = 10,
    user_col: Hashable = "user",
    item_col: Hashable = "item",
) -> float:
    """The share of the catalogue (its size, or the items themselves) that appears in
    at least one user's top ``k``."""
    n = catalogue if isinstance(catalogue, (int, np.integer)) else len(catalogue)
    if n < 1:
        raise ValueError(f"the catalogue must hold at least one item, got {n}")
    top = _top_k(recommendations, k, user_col, item_col)
    return top[item_col].nunique() / n


def ranking_metrics(
    recommendations: pd.DataFrame,
    relevant: pd.DataFrame,
    k: int = 10,
    catalogue: int | Sized | None = None,
    user_col: Hashable = "user",
    item_col: Hashable = "item",
) -> dict[str, float]:
    """All of the above at ``k`` in one dict (``coverage`` when ``catalogue`` is
    given), plus ``users``: how many users were evaluated."""
    args = (recommendations, relevant, k, user_col, item_col)
    out = {
        f"ndcg@{k}": ndcg_at_k(*args),
        f"recall@{k}": recall_at_k(*args),
        f"precision@{k}": precision_at_k(*args),
        f"map@{k}": map_at_k(*args),
    }
    if catalogue is not None:
        out[f"coverage@{k}"] = coverage(
            recommendations, catalogue, k, user_col, item_col
        )
    out["users"] = float(relevant[user_col].nunique())
    return out
