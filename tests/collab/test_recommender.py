from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from collab import CollabRecommender

FAST = {"epochs": 30, "lr": 1e-2, "batch_size": 16, "hidden": (32, 8), "verbose": 0}


def clusters(n_users=60, seed=0):
    """Two tastes: users of group 0 pick among items a0..a9, group 1 among b0..b9;
    each user picks 6 of the 10, so the other 4 of their group are what to
    recommend. a0 (and b0) is picked by everyone of its group: the most popular."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        g = "ab"[u % 2]
        picks = [0, *rng.choice(np.arange(1, 10), 5, replace=False)]
        rows += [(f"u{u}", f"{g}{i}") for i in picks]
    return pd.DataFrame(rows, columns=["user", "item"])


@pytest.fixture(scope="module")
def fitted():
    X = clusters()
    return X, CollabRecommender(random_state=0, **FAST).fit(X)


def test_recommends_the_users_own_taste_and_leaves_out_what_they_saw(fitted):
    X, rec = fitted
    out = rec.recommend(["u0", "u1"], k=4)
    assert list(out.columns) == ["user", "item", "score", "rank"]
    for user, group in (("u0", "a"), ("u1", "b")):
        mine = out[out.user == user]
        assert mine["rank"].tolist() == [1, 2, 3, 4]
        assert mine["score"].is_monotonic_decreasing
        assert all(item.startswith(group) for item in mine["item"])
        seen = set(X[X.user == user].item)
        assert not seen & set(mine["item"])
    again = rec.recommend(["u0"], k=30, exclude_seen=False)
    assert len(again) == 20 and set(X[X.user == "u0"].item) <= set(again["item"])


def test_fold_in_serves_a_new_users_history_without_refitting(fitted):
    _X, rec = fitted
    before = {k: v.clone() for k, v in rec.module_.state_dict().items()}
    hist = {"newb": ["b1", "b2", "b3"], "newa": ["a4", "a5"], "nobody": []}
    with pytest.warns(UserWarning, match="never seen in training.*'zz'"):
        out = rec.recommend_history({**hist, "x": ["zz"]}, k=3)
    assert list(pd.unique(out.user)) == ["newb", "newa", "nobody", "x"]
    assert all(i.startswith("b") for i in out[out.user == "newb"].item)
    assert all(i.startswith("a") for i in out[out.user == "newa"].item)
    assert not {"b1", "b2", "b3"} & set(out[out.user == "newb"].item)
    # No known item: the popular items, as for an unknown user.
    assert set(out[out.user == "nobody"].item) == set(out[out.user == "x"].item)
    frame = pd.DataFrame({"user": ["n"] * 3, "item": ["b1", "b2", "b3"]})
    np.testing.assert_array_equal(
        rec.recommend_history(frame, k=3)["item"], out[out.user == "newb"]["item"]
    )
    for k, v in rec.module_.state_dict().items():
        assert np.array_equal(v, before[k])


def test_unknown_users_get_the_popular_items(fitted):
    X, rec = fitted
    out = rec.recommend(["stranger", "u0"], k=2)
    popular = X.item.value_counts()
    assert set(out[out.user == "stranger"].item) == set(popular.index[:2])  # a0, b0
    assert set(out[out.user == "stranger"].item) == {"a0", "b0"}


def test_similar_items_and_score(fitted):
    X, rec = fitted
    sim = rec.similar_items("a3", k=3)
    assert list(sim.columns) == ["item", "similarity", "rank"]
    assert "a3" not in set(sim.item)
    with pytest.raises(KeyError, match="'zz' was not seen"):
        rec.similar_items("zz")
    # Held-out picks: each user's unseen items of their group.
    held = []
    for u in range(60):
        g = "ab"[u % 2]
        seen = set(X[X.user == f"u{u}"].item)
        held += [(f"u{u}", f"{g}{i}") for i in range(10) if f"{g}{i}" not in seen]
    held = pd.DataFrame(held, columns=["user", "item"])
    assert rec.score(held, k=4) > 0.9


def test_weights_count_and_repeated_pairs_add_up():
    X = clusters()
    w = np.where(X.item.str.endswith("1"), 5.0, 1.0)
    rec = CollabRecommender(random_state=0, **FAST).fit(X, sample_weight=w)
    assert rec.interactions_.sum() == pytest.approx(w.sum())
    doubled = CollabRecommender(random_state=0, **FAST).fit(pd.concat([X, X]))
    assert doubled.interactions_.max() == 2


def test_same_random_state_same_lists_and_pickle_round_trip(fitted):
    X, rec = fitted
    again = CollabRecommender(random_state=0, **FAST).fit(X)
    users = X.user.unique()
    pd.testing.assert_frame_equal(rec.recommend(users, 5), again.recommend(users, 5))
    loaded = pickle.loads(pickle.dumps(rec))
    pd.testing.assert_frame_equal(rec.recommend(users, 5), loaded.recommend(users, 5))
    twin = clone(rec)
    assert twin.get_params() == rec.get_params() and not hasattr(twin, "module_")


def test_without_the_item_item_path_and_with_the_finder():
    X = clusters()
    rec = CollabRecommender(item_item=False, random_state=0, **FAST).fit(X)
    assert rec.module_.item_item is None
    assert all(i.startswith("a") for i in rec.recommend(["u0"], 3).item)
    sweep = CollabRecommender(random_state=0, mix=0.7, **FAST).lr_find(X, num_it=20)
    assert len(sweep.lrs) > 5 and np.isfinite(sweep.suggestion)
    with pytest.raises(ValueError, match="trains nothing by gradient descent"):
        CollabRecommender(**FAST).lr_find(X)  # the closed form alone: no rate


def test_validation_and_warm_start():
    X = clusters()
    rec = CollabRecommender(
        random_state=0, validation_fraction=0.2, early_stopping=True, mix=0.7, **FAST
    ).fit(X)
    assert "valid_loss" in rec.history_
    warm = CollabRecommender(random_state=0, warm_start=True, mix=0.7, **FAST).fit(X)
    n = len(warm.history_)
    warm.fit(X.iloc[:30])
    assert len(warm.history_) == 2 * n
    with pytest.raises(ValueError, match="warm_start: 1 items not seen"):
        warm.fit(pd.DataFrame({"user": ["u0"], "item": ["c9"]}))


@pytest.mark.parametrize(
    ("make_bad", "match"),
    [
        (lambda X: X.drop(columns="item"), r"no item id column 'item'"),
        (lambda X: X.assign(user=[None, *list(X.user[1:])]), r"1 missing"),
        (lambda X: X.iloc[:0], "X is empty"),
        (lambda X: X.assign(item="a0"), "single item"),
    ],
)
def test_bad_input_fails_before_training_and_leaves_x_alone(make_bad, match):
    X = clusters()
    bad = make_bad(X)
    before = bad.copy()
    with pytest.raises(ValueError, match=match):
        CollabRecommender(**FAST).fit(bad)
    pd.testing.assert_frame_equal(bad, before)


def test_bad_weights_k_and_parameters(fitted):
    X, rec = fitted
    with pytest.raises(ValueError, match=r"sample_weight must be finite and >= 0"):
        CollabRecommender(**FAST).fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match=r"sample_weight has shape \(3,\)"):
        CollabRecommender(**FAST).fit(X, sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match="k must be a positive integer"):
        rec.recommend(["u0"], k=0)
    with pytest.raises(ValueError, match=r"mix must be a number in \[0, 1\]"):
        CollabRecommender(mix=2, **FAST).fit(X)
    with pytest.raises(NotFittedError):
        CollabRecommender().recommend(["u0"])
    with pytest.raises(TypeError, match="history must be a dict"):
        rec.recommend_history([["a1"]])


def test_attributes_score_users_and_items_without_interactions():
    X = clusters()
    users = pd.DataFrame(
        {"taste": ["ab"[u % 2] for u in range(60)] + ["b", "a"], "age": range(62)},
        index=[f"u{u}" for u in range(60)] + ["cold_b", "cold_a"],
    )
    kinds = [f"{g}{i}" for g in "ab" for i in range(10)] + ["a_new", "b_new"]
    items = pd.DataFrame({"kind": [k[0] for k in kinds]}, index=kinds)
    rec = CollabRecommender(random_state=0, **{**FAST, "epochs": 60}).fit(
        X, user_features=users, item_features=items
    )
    assert {"a_new", "b_new"} <= set(rec.items_)
    assert rec.item_counts_["b_new"] == 0
    # A user known by attributes alone gets the items of their taste.
    out = rec.recommend(["cold_b", "cold_a", "nobody"], k=5)
    assert sum(i.startswith("b") for i in out[out.user == "cold_b"].item) >= 4
    assert sum(i.startswith("a") for i in out[out.user == "cold_a"].item) >= 4
    popular = rec.recommend(["nobody"], k=5).item.tolist()
    assert popular[:2] in (["a0", "b0"], ["b0", "a0"])
    # An item known by attributes alone ranks higher for users of its kind.
    full = rec.recommend([f"u{u}" for u in range(60)], k=22, exclude_seen=False)
    rank = full[full.item == "b_new"].set_index("user")["rank"]
    b_users = [f"u{u}" for u in range(1, 60, 2)]
    a_users = [f"u{u}" for u in range(0, 60, 2)]
    assert rank[b_users].mean() < rank[a_users].mean()
    # Fold-in with attributes given at predict time.
    new = pd.DataFrame({"taste": ["b"], "age": [30]}, index=["guest"])
    folded = rec.recommend_history({"guest": []}, k=5, user_features=new)
    assert sum(i.startswith("b") for i in folded.item) >= 4
    loaded = pickle.loads(pickle.dumps(rec))
    pd.testing.assert_frame_equal(loaded.recommend(["cold_b"], 5), out.iloc[:5])
    with pytest.raises(ValueError, match=r"lists user 'u0' more than once"):
        CollabRecommender(**FAST).fit(X, user_features=pd.concat([users, users]))
    with pytest.raises(ValueError, match="warm_start: user_features"):
        rec.set_params(warm_start=True).fit(X, user_features=users)


def test_bad_weights_and_attributes_fail_before_training():
    """Issue 40: each of these trained a model that recommends the wrong items, or
    failed after training started."""
    X = clusters()
    with pytest.raises(ValueError, match="sample_weight is zero in every row"):
        CollabRecommender(**FAST).fit(X, sample_weight=np.zeros(len(X)))
    numbered = X.assign(user=X["user"].str[1:].astype(int))
    users = pd.DataFrame({"taste": list("ab") * 30}, index=[str(u) for u in range(60)])
    with pytest.raises(ValueError, match=r"matches none of the 60 users.*'0'.*0"):
        CollabRecommender(**FAST).fit(numbered, user_features=users)
    items = pd.DataFrame({"kind": ["a", "b", "c"]}, index=["a0", np.nan, "b1"])
    with pytest.raises(ValueError, match=r"index .* holds a missing id at position 1"):
        CollabRecommender(**FAST).fit(X, item_features=items)
    ages = pd.DataFrame(
        {"age": [30.0] * 59 + [np.inf]}, index=[f"u{u}" for u in range(60)]
    )
    with pytest.raises(ValueError, match=r"column 'age' holds inf \(user 'u59'\)"):
        CollabRecommender(**FAST).fit(X, user_features=ages)
    with pytest.raises(ValueError, match="'age' holds values too large"):
        CollabRecommender(**FAST).fit(X, user_features=ages.replace(np.inf, 1e300))


def test_a_set_of_items_is_a_history(fitted):
    _, rec = fitted
    as_list = rec.recommend_history({"new": ["a1", "a2", "a3"]}, k=5)
    as_set = rec.recommend_history({"new": {"a1", "a2", "a3"}}, k=5)
    pd.testing.assert_frame_equal(as_set, as_list)


def test_save_load_keeps_attributes_aligned_and_datetime_ids(tmp_path):
    import deepfit

    X = clusters()
    users = pd.DataFrame(
        {"taste": ["ab"[u % 2] for u in range(60)] + ["b"]},
        index=[f"u{u}" for u in range(60)] + ["cold_b"],
    )[::-1]  # not in the log's order: a lost index misaligns every row
    rec = CollabRecommender(random_state=0, **FAST).fit(X, user_features=users)
    rec.save(tmp_path / "rec")
    back = deepfit.load(tmp_path / "rec")
    some = ["cold_b", "u1", "u2", "nobody"]
    pd.testing.assert_frame_equal(back.recommend(some, k=5), rec.recommend(some, k=5))
    days = {
        f"{g}{i}": pd.Timestamp("2024-01-01") + pd.Timedelta(days=3 * i + (g == "b"))
        for g in "ab"
        for i in range(10)
    }
    dated = X.assign(item=X["item"].map(days))
    rec = CollabRecommender(random_state=0, **FAST).fit(dated)
    rec.save(tmp_path / "dated")
    back = deepfit.load(tmp_path / "dated")
    pd.testing.assert_index_equal(back.items_, rec.items_)
    pd.testing.assert_frame_equal(
        back.recommend(["u0"], k=5), rec.recommend(["u0"], k=5)
    )


def test_the_default_is_the_closed_form_alone_and_the_network_mixes_in():
    """mix=0: EDLAE's solution (nothing trained: no epochs, no network); mix > 0 adds
    the Mult-DAE, trained, to the same map."""
    from collab.closed_form import edlae

    X = clusters()
    rec = CollabRecommender(**FAST).fit(X)
    assert rec.n_epochs_ == 0 and rec.module_.encoder is None
    assert not list(rec.module_.parameters())
    _, B = edlae(rec.interactions_, rec.l2, rec.linear_dropout, 10**6)
    torch.testing.assert_close(rec.module_.item_item, B)
    users = [f"u{u}" for u in range(10)]
    rows = torch.from_numpy(rec.interactions_[:10].toarray())
    scores = (rows @ B).masked_fill(rows > 0, -np.inf)
    top = torch.topk(scores, 4, dim=1).indices.numpy()
    got = rec.recommend([rec.users_[u] for u in range(10)], k=4)
    np.testing.assert_array_equal(got.item.to_numpy(), rec.items_[top.ravel()])
    mixed = CollabRecommender(random_state=0, **{**FAST, "mix": 0.5}).fit(X)
    assert mixed.n_epochs_ == FAST["epochs"] and mixed.module_.encoder is not None
    torch.testing.assert_close(mixed.module_.item_item, B)
    assert set(users) <= set(mixed.recommend(users, 3).user)
