from __future__ import annotations

import numpy as np
import pytest
import torch

from tabular.model import PiecewiseLinearEmbedding, TabularModel, quantile_edges


def test_quantile_edges_are_increasing_and_fewer_for_few_values():
    rng = np.random.default_rng(0)
    x = np.stack(
        [rng.normal(size=1000), rng.integers(0, 3, 1000), np.full(1000, 2.0)], axis=1
    )
    edges = quantile_edges(x, 8)
    assert len(edges[0]) == 9 and np.all(np.diff(edges[0]) > 0)
    assert np.isclose(edges[0][0], x[:, 0].min()) and np.isclose(
        edges[0][-1], x[:, 0].max()
    )
    assert list(edges[1]) == [0.0, 1.0, 2.0]  # three values: two bins
    assert len(edges[2]) == 2 and edges[2][0] < 2.0 < edges[2][1]  # constant: one bin


def test_piecewise_linear_encoding_known_values_and_flat_outside_the_edges():
    emb = PiecewiseLinearEmbedding([np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0])], 4)
    x = torch.tensor([[0.5, 1.0], [2.0, -5.0], [9.0, 9.0]])
    enc = emb.encode(x)
    # column 0: bins [0, 1] and [1, 3]; column 1: one bin [0, 2] and a padded one
    expected = torch.tensor(
        [
            [[0.5, 0.0], [0.5, 0.0]],
            [[1.0, 0.5], [0.0, 0.0]],
            [[1.0, 1.0], [1.0, 0.0]],
        ]
    )
    torch.testing.assert_close(enc, expected)
    far = torch.tensor([[100.0, 100.0], [-100.0, -100.0]])
    edge = torch.tensor([[3.0, 2.0], [0.0, 0.0]])
    torch.testing.assert_close(emb(far), emb(edge))  # no extrapolation
    assert emb(x).shape == (3, 8)


def test_tabular_model_with_bin_edges_trains_its_embedding():
    edges = quantile_edges(np.random.default_rng(0).normal(size=(100, 2)), 4)
    model = TabularModel([(5, 3)], 2, 1, layers=(8,), cont_edges=edges, cont_dim=2)
    out = model(torch.zeros(4, 1, dtype=torch.int64), torch.randn(4, 2))
    out.sum().backward()
    assert out.shape == (4, 1) and model.cont_embed.weight.grad is not None
    with pytest.raises(ValueError, match="1 sets of bin edges for 2"):
        TabularModel([], 2, 1, cont_edges=edges[:1])


def test_batch_ensemble_members_and_their_combination():
    from deepfit.targets import cross_entropy, mse
    from tabular.base import per_member
    from tabular.model import combine_members

    torch.manual_seed(0)
    model = TabularModel([(5, 3)], 2, 3, layers=(8,), n_members=4, combine="softmax")
    x_cat, x_cont = torch.randint(0, 5, (6, 1)), torch.randn(6, 2)
    model.train()
    out = model(x_cat, x_cont)
    assert out.shape == (6, 4, 3)
    # Members differ (own adapters and heads) though the MLP is shared.
    assert not torch.allclose(out[:, 0], out[:, 1])
    # The per-member loss is the mean of each member's loss on the batch.
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    each = [cross_entropy(out[:, j], y) for j in range(4)]
    assert torch.isclose(per_member(cross_entropy)(out, y), torch.stack(each).mean())
    two_d = torch.randn(6, 3)
    assert torch.equal(
        per_member(mse)(two_d, y[:, None].float()), mse(two_d, y[:, None])
    )
    # In evaluation: the logits of the members' mean probability (the BN layers are in
    # eval mode here, so compare with each member's own output in that mode).
    model.eval()
    with torch.no_grad():
        logits = model(x_cat, x_cont)
        model.train(False)
        members = model.members(
            model.layers(
                model.members.adapt(
                    torch.cat(
                        [
                            model.embed(x_cat),
                            model.bn_cont(x_cont),
                            model.cont_embed(x_cont)
                            if model.cont_embed
                            else x_cont[:, :0],
                        ],
                        1,
                    )
                )
            )
        )
    expected = torch.softmax(members, -1).mean(1)
    assert torch.allclose(torch.softmax(logits, -1), expected, atol=1e-6)
    p = torch.rand(5, 3, 2)
    sig = combine_members(torch.logit(p), "sigmoid")
    assert torch.allclose(torch.sigmoid(sig), p.mean(1), atol=1e-5)
    assert torch.equal(combine_members(p, "mean"), p.mean(1))
