from __future__ import annotations

import copy
import pickle

import pytest
import torch

from collab.model import EmbeddingDotBias, EmbeddingNN, ImplicitSum, splitter

RATED = (torch.tensor([0, 0, 1, 3, 6, 6, 6, 2]), torch.tensor([1, 4, 4, 0, 0, 2, 3, 2]))
IDS = ["dot", "nn", "dot-implicit", "nn-implicit"]


def models():
    common = {"y_range": (0.5, 5.5), "global_mean": 3.2}
    return [
        EmbeddingDotBias(7, 5, n_factors=4, **common),
        EmbeddingNN(7, 5, 4, 4, layers=(8,), ps=0.1, **common),
        EmbeddingDotBias(7, 5, n_factors=4, rated=RATED, **common),
        EmbeddingNN(7, 5, 4, 4, layers=(8,), ps=0.1, rated=RATED, **common),
    ]


@pytest.mark.parametrize("model", models(), ids=IDS)
def test_forward_shape_and_range(model):
    for p in model.parameters():  # large weights push the sigmoid to its ends
        torch.nn.init.normal_(p, std=3.0)
    model.eval()
    users, items = torch.tensor([0, 6, 3, 3]), torch.tensor([4, 0, 2, 2])
    out = model(users, items)
    assert out.shape == (4,)
    assert (out >= 0.5).all() and (out <= 5.5).all()


@pytest.mark.parametrize("model", models(), ids=IDS)
def test_item_scores_match_forward_on_every_pair(model):
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    model.eval()
    users = torch.tensor([5, 0, 2])
    scores = model.item_scores(users)
    assert scores.shape == (3, 5)
    uu = users.repeat_interleave(5)
    ii = torch.arange(5).repeat(3)
    torch.testing.assert_close(scores, model(uu, ii).view(3, 5))


@pytest.mark.parametrize("model", models(), ids=IDS)
def test_fallback_uses_known_biases_and_the_global_mean(model):
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    users, items = torch.tensor([-1, 2, -1]), torch.tensor([-1, -1, 3])
    out = model.fallback(users, items)
    # Both unknown: exactly the training mean the offset encodes.
    assert out[0].item() == pytest.approx(3.2, abs=1e-5)
    expect_user = model.squash(model.user_bias.weight[2, 0] + model.offset)
    expect_item = model.squash(model.item_bias.weight[3, 0] + model.offset)
    torch.testing.assert_close(out[1], expect_user)
    torch.testing.assert_close(out[2], expect_item)


def test_fresh_model_predicts_the_global_mean_without_range():
    model = EmbeddingDotBias(
        3, 3, n_factors=2, y_range=None, global_mean=3.5, init_std=0
    )
    out = model(torch.tensor([0, 1]), torch.tensor([2, 0]))
    torch.testing.assert_close(out, torch.full((2,), 3.5))


@pytest.mark.parametrize("model", models(), ids=IDS)
def test_splitter_covers_every_parameter_once(model):
    groups = splitter(model)
    assert len(groups) == (2 if isinstance(model, EmbeddingNN) else 1)
    flat = [p for g in groups for p in g]
    assert len(flat) == len(list(model.parameters()))
    assert {id(p) for p in flat} == {id(p) for p in model.parameters()}


def dense_implicit(n_rows, n_cols, rows, cols, weight):
    m = torch.zeros(n_rows, n_cols)
    m[rows, cols] = 1.0  # a pair listed twice counts once
    norm = m.sum(1, keepdim=True).clamp(min=1).rsqrt()
    return (m * norm) @ weight


def test_implicit_sum_matches_the_dense_formula_and_its_gradient():
    rows, cols = RATED
    rows, cols = torch.cat([rows, rows[:2]]), torch.cat([cols, cols[:2]])  # duplicates
    imp = ImplicitSum(7, 5, 3, rows, cols)
    torch.nn.init.normal_(imp.weight)
    out = imp()
    w = imp.weight.detach().clone().requires_grad_(True)
    expected = dense_implicit(7, 5, rows, cols, w)
    torch.testing.assert_close(out, expected)
    g = torch.randn(7, 3)
    (out * g).sum().backward()
    (expected * g).sum().backward()
    torch.testing.assert_close(imp.weight.grad, w.grad)
    assert out[4].abs().sum() == 0 and out[5].abs().sum() == 0  # rated nothing


def test_implicit_terms_enter_the_vectors_and_survive_copies():
    model = models()[2]
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.5)
    users, items = RATED
    expected = model.user_factors.weight + dense_implicit(
        7, 5, users, items, model.user_implicit.weight
    )
    torch.testing.assert_close(model.user_vectors(), expected)
    expected = model.item_factors.weight + dense_implicit(
        5, 7, items, users, model.item_implicit.weight
    )
    torch.testing.assert_close(model.item_vectors(), expected)
    x = (torch.tensor([0, 6]), torch.tensor([4, 1]))
    for twin in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
        torch.testing.assert_close(twin(*x), model(*x))
    model.set_rated(torch.tensor([0, 1]), torch.tensor([1, 2]))
    assert len(model.user_implicit.col) == 2
