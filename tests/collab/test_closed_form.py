"""The closed-form item-item map (EASE / EDLAE) and the attribute ridge models against
their textbook formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.linear_model import Ridge

from collab.closed_form import attribute_design, edlae, ridge


def interactions(n_users=200, n_items=40, density=0.15, seed=0) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    X = sparse.random(n_users, n_items, density=density, random_state=rng, format="csr")
    X.data[:] = 1.0
    return X


@pytest.mark.parametrize(("l2", "p"), [(50.0, 0.0), (5.0, 0.5)])
def test_edlae_is_the_textbook_solution(l2, p):
    X = interactions()
    G = (X.T @ X).toarray()
    P = np.linalg.inv(G + np.diag(l2 + p / (1 - p) * np.diag(G)))
    expected = -P / np.diag(P)
    np.fill_diagonal(expected, 0.0)
    index, B = edlae(X, l2, p, max_items=1000)
    np.testing.assert_array_equal(index.numpy(), np.arange(40))
    np.testing.assert_allclose(B.numpy(), expected, atol=1e-5)
    # EASE's defining property: the diagonal is zero, and X B is its best prediction
    # of X under that constraint (the gradient vanishes off the diagonal).
    B64 = B.double().numpy()
    grad = -(G @ (np.eye(40) - B64)) + np.diag(l2 + p / (1 - p) * np.diag(G)) @ B64
    off = ~np.eye(40, dtype=bool)
    assert np.abs(grad[off]).max() < 1e-3 * np.abs(G).max()


def test_the_gram_matrix_summed_in_blocks_of_users_is_the_same(monkeypatch):
    import collab.closed_form

    X = interactions()
    _, whole = edlae(X, 5.0, 0.5, max_items=1000)
    monkeypatch.setattr(collab.closed_form, "GRAM_BLOCK", 37)  # ~30 blocks
    _, blocks = edlae(X, 5.0, 0.5, max_items=1000)
    np.testing.assert_allclose(blocks.numpy(), whole.numpy(), atol=1e-6)


def test_a_large_catalogue_keeps_its_most_interacted_with_items():
    X = interactions(n_items=60)
    counts = np.diff(X.tocsc().indptr)
    index, B = edlae(X, 10.0, 0.25, max_items=25)
    assert B.shape == (25, 25) and torch.all(torch.diagonal(B) == 0)
    kept = set(index.numpy())
    assert min(counts[list(kept)]) >= max(np.delete(counts, list(kept)))
    # The same as solving on those items' columns alone.
    _, alone = edlae(X[:, index.numpy()], 10.0, 0.25, max_items=1000)
    np.testing.assert_allclose(B.numpy(), alone.numpy(), atol=1e-6)


def test_ridge_leaves_the_constant_unpenalised_as_scikit_learn_does():
    rng = np.random.default_rng(0)
    codes = torch.from_numpy(rng.integers(0, 4, (300, 2)))
    cont = torch.from_numpy(rng.normal(size=(300, 3))).float()
    design = attribute_design(codes, cont, [4, 4])
    assert design.shape == (300, 4 + 4 + 3 + 1)
    Y = sparse.random(300, 25, density=0.2, random_state=rng, format="csr")
    W = ridge(design, Y, alpha=7.0)
    ref = Ridge(alpha=7.0).fit(design[:, :-1].numpy(), Y.toarray())
    np.testing.assert_allclose(
        (design @ W).numpy(), ref.predict(design[:, :-1].numpy()), atol=1e-4
    )
    np.testing.assert_allclose(
        W.numpy(), ridge(design, torch.from_numpy(Y.toarray()), 7.0).numpy(), atol=1e-5
    )


def test_the_in_place_inverse_matches_torch_across_its_mirrored_blocks():
    from collab.closed_form import _spd_inverse

    rng = np.random.default_rng(0)
    a = torch.from_numpy(rng.normal(size=(2100, 30)))
    gram = a @ a.T + 50 * torch.eye(2100, dtype=torch.float64)
    expected = torch.linalg.inv(gram)
    got = _spd_inverse(gram.clone())
    torch.testing.assert_close(got, expected)
    assert torch.equal(got, got.T)
