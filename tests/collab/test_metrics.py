from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from collab.metrics import (
    coverage,
    map_at_k,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    recall_at_k,
)

# Two users. ann: relevant {a, c, e}; her list a, b, c (hits at ranks 1 and 3).
# bob: relevant {x}; his list y, z (no hit). cy has a list but nothing relevant: not
# evaluated. dee has relevant items but no list: evaluated, scores 0.
RECS = pd.DataFrame(
    {
        "user": ["ann", "ann", "ann", "bob", "bob", "cy"],
        "item": ["a", "b", "c", "y", "z", "a"],
        "rank": [1, 2, 3, 1, 2, 1],
    }
)
REL = pd.DataFrame(
    {"user": ["ann", "ann", "ann", "bob", "dee"], "item": ["a", "c", "e", "x", "a"]}
)


def test_known_answers_by_hand():
    disc = [1 / math.log2(r + 1) for r in (1, 2, 3)]
    ann_ndcg = (disc[0] + disc[2]) / sum(disc)  # 3 relevant, k=3: ideal is 3 hits
    assert ndcg_at_k(RECS, REL, k=3) == pytest.approx(ann_ndcg / 3)  # ann, bob, dee
    assert recall_at_k(RECS, REL, k=3) == pytest.approx((2 / 3) / 3)
    assert precision_at_k(RECS, REL, k=3) == pytest.approx((2 / 3) / 3)
    assert map_at_k(RECS, REL, k=3) == pytest.approx(((1 / 1 + 2 / 3) / 3) / 3)
    # At k=2 ann keeps a, b: one hit; recall divides by min(k, relevant) = 2.
    assert recall_at_k(RECS, REL, k=2) == pytest.approx((1 / 2) / 3)
    assert ndcg_at_k(RECS, REL, k=2) == pytest.approx((1 / (1 + disc[1])) / 3)
    assert coverage(RECS, 10, k=2) == pytest.approx(4 / 10)  # a, b, y, z (cy: a again)
    assert coverage(RECS, list("abcdefghij"), k=1) == pytest.approx(2 / 10)


def test_order_comes_from_rank_then_score_then_rows():
    shuffled = RECS.sample(frac=1, random_state=0)
    assert ndcg_at_k(shuffled, REL, k=2) == ndcg_at_k(RECS, REL, k=2)
    by_score = RECS.drop(columns="rank").assign(score=-RECS["rank"])
    assert ndcg_at_k(by_score.iloc[::-1], REL, k=2) == ndcg_at_k(RECS, REL, k=2)
    by_rows = RECS.drop(columns="rank")
    assert ndcg_at_k(by_rows, REL, k=3) == ndcg_at_k(RECS, REL, k=3)


def test_perfect_lists_score_one_and_duplicates_do_not_count_twice():
    recs = REL.assign(rank=REL.groupby("user").cumcount() + 1)
    out = ranking_metrics(recs, REL, k=5, catalogue=6)
    assert out["ndcg@5"] == out["recall@5"] == out["map@5"] == pytest.approx(1.0)
    assert out["users"] == 3
    doubled = pd.concat([recs, recs]).sort_values(["user", "rank"])
    assert ndcg_at_k(doubled, REL, k=5) == pytest.approx(1.0)


def test_matches_a_direct_computation_on_random_lists():
    rng = np.random.default_rng(0)
    users, items, k = 30, 50, 10
    scores = rng.random((users, items))
    order = np.argsort(-scores, 1)[:, :k]
    recs = pd.DataFrame(
        {
            "user": np.repeat(np.arange(users), k),
            "item": order.ravel(),
            "rank": np.tile(np.arange(1, k + 1), users),
        }
    )
    rel_sets = [
        set(rng.choice(items, rng.integers(1, 8), replace=False)) for _ in range(users)
    ]
    rel = pd.DataFrame(
        [(u, i) for u, s in enumerate(rel_sets) for i in s], columns=["user", "item"]
    )
    disc = 1 / np.log2(np.arange(2, k + 2))
    nd, rc = [], []
    for u, s in enumerate(rel_sets):
        hit = np.array([i in s for i in order[u]], float)
        nd.append((hit * disc).sum() / disc[: min(k, len(s))].sum())
        rc.append(hit.sum() / min(k, len(s)))
    assert ndcg_at_k(recs, rel, k) == pytest.approx(np.mean(nd))
    assert recall_at_k(recs, rel, k) == pytest.approx(np.mean(rc))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"k must be a positive integer"):
        ndcg_at_k(RECS, REL, k=0)
    with pytest.raises(ValueError, match=r"relevant has no column\(s\) \['item'\]"):
        ndcg_at_k(RECS, REL.rename(columns={"item": "film"}))
    with pytest.raises(ValueError, match="no user to evaluate"):
        ndcg_at_k(RECS, REL.iloc[:0])
    with pytest.raises(TypeError, match="must be a DataFrame"):
        recall_at_k(RECS.to_numpy(), REL)
