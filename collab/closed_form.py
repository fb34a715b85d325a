"""Item-item models solved in closed form instead of trained.

EDLAE (Steck 2020, "Autoencoders that don't overfit towards the identity"): the shallow
autoencoder ``X -> X B`` of EASE (Steck 2019) with a zero diagonal, trained as if a share
``p`` of each row's entries were dropped. Dropout adds the penalty
``p / (1 - p) * diag(X'X)`` on each item's weights, so with EASE's L2 term ``l2``:

    P = (X'X + l2 I + p / (1 - p) diag(X'X))^-1,    B = I - P diag(1 / diag(P))

(``B_jj = 0``). One Cholesky factorisation of the Gram matrix: EASE's cost. A catalogue
larger than ``max_items`` keeps the map over its ``max_items`` most interacted-with items
(the others get no item-item score): the dense matrix has ``max_items^2`` entries.

Attributes serve what has no interactions, also in closed form (ridge regression on the
attributes' design: one-hot codes, standardised numbers and a constant):

- a user with no history: their row predicted from their attributes,
  ``W = (F'F + alpha I)^-1 F'X`` over the training users (the constant, unpenalised,
  gives the popularity prior, which the attributes adjust);
- an item with no interactions: its column of ``B`` (how each history item votes for
  it) predicted from its attributes, fitted on the columns of the items that have some.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from scipy import sparse
from scipy.linalg import lapack

__all__ = ["GRAM_BLOCK", "attribute_design", "edlae", "ridge"]

# Pairs of interactions per block of users when summing the Gram matrix (12 bytes each
# in scipy's product, 16 more as torch indices).
GRAM_BLOCK = 10_000_000


def edlae(
    X: sparse.csr_matrix, l2: float, dropout: float, max_items: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The item-item map of EDLAE fitted to the ``(users, items)`` matrix ``X``:
    ``(index, B)``, the items it covers (long, ascending) and their ``(k, k)`` float32
    weights, zero on the diagonal.

    Solved in float64 up to 4,096 items, in float32 above (a 20,000-item map then takes
    1.6 GB, solved in place)."""
    counts = np.bincount(X.indices, minlength=X.shape[1])
    n_items = X.shape[1]
    if n_items > max_items:
        index = np.sort(np.argsort(-counts, kind="stable")[:max_items])
        X = X[:, index]
    else:
        index = np.arange(n_items)
    dtype = torch.float64 if len(index) <= 4096 else torch.float32
    gram = _gram(sparse.csr_matrix(X), dtype)  # (k, k)
    diag = torch.diagonal(gram).clone()
    gram.diagonal().add_(float(l2) + dropout / (1 - dropout) * diag)
    # Items no training row touches have a zero row and column: the l2 term alone keeps
    # the matrix positive definite; with l2 = 0 they need a floor.
    gram.diagonal().clamp_(min=1e-6)
    p = _spd_inverse(gram)  # (k, k), in gram's memory
    p.div_(-torch.diagonal(p).clone())  # B_ij = -P_ij / P_jj
    p.diagonal().zero_()
    return torch.from_numpy(index).long(), p.float()


def _spd_inverse(a: torch.Tensor) -> torch.Tensor:
    """The inverse of the symmetric positive definite ``a``, computed in ``a``'s own
    memory (LAPACK's ``potrf`` then ``potri``, in place): one ``k x k`` buffer where
    torch's Cholesky and inverse hold three (20,000 items: 1.6 GB instead of 4.8)."""
    f = a.numpy().T  # the symmetric matrix, Fortran-ordered, no copy
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (f,))
    c, info = potrf(f, lower=0, clean=0, overwrite_a=1)
    if info == 0:
        c, info = potri(c, lower=0, overwrite_c=1)
    if info != 0:
        raise FloatingPointError(
            "the item-item Gram matrix is not positive definite in floating point; "
            "raise l2"
        )
    # potri fills the upper triangle (of the Fortran view): mirror it, a block of
    # rows at a time (bounded temporary memory).
    n, step = len(c), 2048
    for start in range(0, n, step):
        stop = min(start + step, n)
        c[start:stop, :start] = c[:start, start:stop].T
        block = c[start:stop, start:stop]
        below = np.tril_indices(stop - start, -1)
        block[below] = block.T[below]
    return torch.from_numpy(c.T)


def _gram(X: sparse.csr_matrix, dtype: torch.dtype) -> torch.Tensor:
    """``X'X`` as a dense tensor, summed over blocks of users whose products hold at
    most ``GRAM_BLOCK`` pairs of interactions (a user with ``n`` gives ``n^2``): the
    whole sparse product would hold up to ``k^2`` entries of 12 bytes beside the dense
    result."""
    k = X.shape[1]
    gram = torch.zeros(k, k, dtype=dtype)
    pairs = np.cumsum(np.diff(X.indptr).astype(np.float64) ** 2)
    cuts = np.searchsorted(pairs, np.arange(GRAM_BLOCK, pairs[-1], GRAM_BLOCK))
    for start, stop in itertools.pairwise(np.unique([0, *(cuts + 1), X.shape[0]])):
        g = (X[start:stop].T @ X[start:stop]).tocoo()
        rows, cols = torch.from_numpy(g.row).long(), torch.from_numpy(g.col).long()
        gram.index_put_(
            (rows, cols), torch.from_numpy(g.data).to(dtype), accumulate=True
        )
    return gram


def attribute_design(
    codes: torch.Tensor, cont: torch.Tensor, cardinalities: list[int]
) -> torch.Tensor:
    """The ridge design of attributes: one-hot columns per code (``(N, n_cat)``, code
    0 for missing or unseen), the numbers ``(N, n_cont)`` and a constant 1, float32."""
    parts = [
        torch.nn.functional.one_hot(codes[:, j].long(), c).float()
        for j, c in enumerate(cardinalities)
    ]
    ones = torch.ones(len(codes), 1, device=codes.device)
    return torch.cat([*parts, cont.float(), ones], dim=1)


def ridge(
    design: torch.Tensor, targets: torch.Tensor | sparse.spmatrix, alpha: float
) -> torch.Tensor:
    """``W`` minimising ``|targets - design W|^2 + alpha |W|^2``, the last column of
    ``design`` (the constant) unpenalised: ``(D, T)``. ``targets`` ``(N, T)`` may be
    sparse (a user-item matrix): it is never made dense."""
    d = design.double()
    gram = d.T @ d
    penalty = torch.full((d.shape[1],), float(alpha), dtype=torch.float64)
    penalty[-1] = 1e-8
    gram.diagonal().add_(penalty)
    if sparse.issparse(targets):
        cross = torch.from_numpy(np.asarray(targets.T @ d.numpy()).T)  # (D, T)
    else:
        cross = d.T @ targets.double()
    return torch.linalg.solve(gram, cross).float()
