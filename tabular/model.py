"""``TabularModel``: entity embeddings for categorical columns, batchnorm for continuous
ones, then an MLP. ``splitter`` cuts it into layer groups."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from deepfit.layers import mlp_blocks

__all__ = [
    "MemberHeads",
    "PiecewiseLinearEmbedding",
    "SigmoidRangeVec",
    "TabularModel",
    "quantile_edges",
    "splitter",
]


class MemberHeads(nn.Module):
    """The members of a batch ensemble: a multiplicative adapter per member on the
    MLP's input (random signs, as TabM-mini: Gorishniy et al., ICLR 2025) and a linear
    head per member on its output; the MLP between them is shared.

    Shape:
        - ``adapt``: ``(N, d_in)`` -> ``(N * k, d_in)``, member-major within each row
        - ``forward``: ``(N * k, d)`` -> ``(N, k, out)``
    """

    def __init__(self, k: int, d_in: int, d: int, out: int) -> None:
        super().__init__()
        self.k = k
        signs = torch.randint(0, 2, (k, d_in)).float() * 2 - 1
        self.adapter = nn.Parameter(signs)
        bound = 1 / math.sqrt(d)  # nn.Linear's initialisation, per member
        self.weight = nn.Parameter(torch.empty(k, d, out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(k, out).uniform_(-bound, bound))

    def adapt(self, x: torch.Tensor) -> torch.Tensor:
        return (x.unsqueeze(1) * self.adapter).flatten(0, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = h.view(-1, self.k, h.shape[-1])
        return torch.einsum("nkd,kdo->nko", h, self.weight) + self.bias


def combine_members(out: torch.Tensor, how: str) -> torch.Tensor:
    """``(N, k, out)`` member outputs as one ``(N, out)`` output of the same kind:
    logits of the mean probability (``"softmax"``, ``"sigmoid"``) or the mean
    (``"mean"``)."""
    k = out.shape[1]
    if how == "softmax":
        return torch.logsumexp(torch.log_softmax(out, -1), dim=1) - math.log(k)
    if how == "sigmoid":
        p = torch.sigmoid(out).mean(1).clamp(1e-7, 1 - 1e-7)
        return torch.log(p) - torch.log1p(-p)
    return out.mean(1)


class SigmoidRangeVec(nn.Module):
    """A scaled sigmoid into ``(low, high)``, with bounds per output column (several
    regression targets on different scales).

    Shape:
        - Input: ``(N, k)``
        - Output: ``(N, k)``
    """

    def __init__(self, low: Sequence[float], high: Sequence[float]) -> None:
        super().__init__()
        lo = torch.as_tensor(low, dtype=torch.float32).reshape(-1)
        hi = torch.as_tensor(high, dtype=torch.float32).reshape(-1)
        if not bool((lo < hi).all()):
            raise ValueError(f"y_range needs low < high, got ({low}, {high})")
        self.register_buffer("low", lo)
        self.register_buffer("span", hi - lo)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(x) * self.span + self.low


def quantile_edges(x: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Bin edges of each column of ``x`` ``(N, F)`` at ``n_bins`` quantiles: increasing,
    at least two per column (one bin), fewer bins where a column has few distinct values."""
    edges = []
    qs = np.linspace(0.0, 1.0, n_bins + 1)
    for j in range(x.shape[1]):
        col = x[:, j]
        e = np.unique(np.quantile(col, qs)) if len(col) else np.zeros(1)
        if len(e) < 2:  # a constant column: one bin around its value
            e = np.array([e[0] - 0.5, e[0] + 0.5])
        edges.append(e.astype(np.float32))
    return edges


class PiecewiseLinearEmbedding(nn.Module):
    """Piecewise-linear encoding of continuous columns on fixed bins, then a linear map and
    ReLU per column (Gorishniy et al. 2022, "On Embeddings for Numerical Features in
    Tabular Deep Learning", PLE-Q with the "LR" head).

    A value's encoding in bin ``t`` with edges ``[b(t-1), b(t)]`` is 0 below it, 1 above
    it and ``(x - b(t-1)) / (b(t) - b(t-1))`` inside, so each column gets a learned
    piecewise-linear response that is *flat* beyond the outermost edges (as a tree's is),
    which keeps a network from extrapolating linearly into a future it never saw.

    Parameters
    ----------
    edges : sequence of 1-D arrays
        Increasing bin edges per column (``quantile_edges``), at least two each.
    dim : int
        Output width per column.

    Shape:
        - Input: ``(N, F)`` float32
        - Output: ``(N, F * dim)``
    """

    def __init__(self, edges: Sequence[np.ndarray], dim: int) -> None:
        super().__init__()
        n_feat = len(edges)
        n_bins = max((len(e) - 1 for e in edges), default=1)
        left = torch.zeros(n_feat, n_bins)
        width = torch.ones(n_feat, n_bins)
        mask = torch.zeros(n_feat, n_bins)
        for j, e in enumerate(edges):
            e = torch.as_tensor(np.asarray(e, dtype=np.float32))
            k = len(e) - 1
            left[j, :k] = e[:-1]
            width[j, :k] = (e[1:] - e[:-1]).clamp_min(1e-6)
            mask[j, :k] = 1.0
        self.register_buffer("left", left)
        self.register_buffer("width", width)
        self.register_buffer("mask", mask)
        self.dim = dim
        self.weight = nn.Parameter(torch.empty(n_feat, n_bins, dim))
        self.bias = nn.Parameter(torch.empty(n_feat, dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1 / math.sqrt(max(self.weight.shape[1], 1))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The piecewise-linear encoding ``(N, F, n_bins)``."""
        enc = ((x.unsqueeze(-1) - self.left) / self.width).clamp(0.0, 1.0)
        return enc * self.mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.einsum("nfb,fbd->nfd", self.encode(x), self.weight) + self.bias
        return torch.relu(out).flatten(1)

    def extra_repr(self) -> str:
        return f"features={self.weight.shape[0]}, bins={self.weight.shape[1]}, dim={self.dim}"


class TabularModel(nn.Module):
    """Entity embeddings + MLP for tabular data.

    Each categorical column gets an embedding (Guo & Berkhahn 2016, "Entity Embeddings of
    Categorical Variables"); the embeddings go through embedding dropout, the continuous
    columns through batchnorm, and the concatenation through linear-batchnorm-ReLU-dropout
    blocks to the output, squashed into ``y_range`` when given (fastai's ``TabularModel``).

    During training a fraction ``unknown_p`` of the categorical codes is replaced by 0, the
    unknown code, so the unknown embedding learns what an average member of each column
    looks like and an unseen category predicts like one.

    Parameters
    ----------
    emb_szs : sequence of (cardinality, width)
        One pair per categorical column; codes run from 0 (unknown) to cardinality - 1.
    n_cont : int
        Number of continuous columns.
    out_sz : int
        Outputs (classes, labels or regression targets).
    layers : sequence of int, default=(200, 100)
    ps : float or sequence of float, default=0.0
        Dropout after each hidden block.
    embed_p : float, default=0.0
        Dropout on the concatenated embeddings.
    y_range : (low, high) or None, default=None
        Bounds of the outputs; each a number or one per output.
    use_bn : bool, default=True
        Batchnorm on the continuous inputs and in the hidden blocks.
    unknown_p : float, default=0.0
        Share of codes replaced by the unknown code during training.
    sparse : bool or sequence of bool, default=False
        Sparse gradients for the embeddings (all, or per column). Worth it for big tables
        that a batch touches a small part of; needs an optimizer that takes sparse
        gradients, such as :class:`deepfit.optim.SparseAdamW`.
    cont_edges : sequence of 1-D arrays or None, default=None
        Bin edges per continuous column: each column is also fed through a
        :class:`PiecewiseLinearEmbedding` of width ``cont_dim``, besides its batchnormed
        value.
    cont_dim : int, default=8
    n_members : int, default=1
        Members of a batch ensemble (:class:`MemberHeads`): each row goes through the
        shared MLP once per member, each member with its own input adapter and head.
    combine : {"softmax", "sigmoid", "mean"}, default="mean"
        How members' outputs become one in evaluation (see :func:`combine_members`):
        the mean probability for a softmax or sigmoid output, else the mean.

    Shape:
        - x_cat: ``(N, n_cat)`` int64 codes
        - x_cont: ``(N, n_cont)`` float32
        - Output: ``(N, out_sz)``; in training with ``n_members > 1``,
          ``(N, n_members, out_sz)``, each member's output, for a loss per member
    """

    combine = "mean"  # models pickled before batch ensembles have no members

    def __init__(
        self,
        emb_szs: Sequence[tuple[int, int]],
        n_cont: int,
        out_sz: int,
        layers: Sequence[int] = (200, 100),
        ps: float | Sequence[float] = 0.0,
        embed_p: float = 0.0,
        y_range: tuple[Any, Any] | None = None,
        use_bn: bool = True,
        unknown_p: float = 0.0,
        sparse: bool | Sequence[bool] = False,
        cont_edges: Sequence[np.ndarray] | None = None,
        cont_dim: int = 8,
        n_members: int = 1,
        combine: str = "mean",
    ) -> None:
        super().__init__()
        if combine not in ("softmax", "sigmoid", "mean"):
            raise ValueError(
                f"combine must be softmax, sigmoid or mean, got {combine!r}"
            )
        self.combine = combine
        sparse_flags = (
            [bool(sparse)] * len(emb_szs)
            if isinstance(sparse, bool)
            else [bool(s) for s in sparse]
        )
        self.embeds = nn.ModuleList(
            nn.Embedding(c, w, sparse=s)
            for (c, w), s in zip(emb_szs, sparse_flags, strict=True)
        )
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if n_cont and use_bn else nn.Identity()
        self.n_emb = sum(w for _, w in emb_szs)
        self.n_cont, self.unknown_p = n_cont, float(unknown_p)
        self.cont_embed = None
        n_in = self.n_emb + n_cont
        if cont_edges is not None and n_cont:
            if len(cont_edges) != n_cont:
                raise ValueError(
                    f"{len(cont_edges)} sets of bin edges for {n_cont} continuous columns"
                )
            self.cont_embed = PiecewiseLinearEmbedding(cont_edges, cont_dim)
            n_in += n_cont * cont_dim
        self.layers = mlp_blocks(n_in, tuple(layers), ps, bn=use_bn)
        last = layers[-1] if len(layers) else n_in
        self.members = (
            MemberHeads(int(n_members), n_in, last, out_sz) if n_members > 1 else None
        )
        head: list[nn.Module] = [] if self.members else [nn.Linear(last, out_sz)]
        if y_range is not None:
            low, high = (
                torch.as_tensor(v, dtype=torch.float32).expand(out_sz) for v in y_range
            )
            head.append(SigmoidRangeVec(low, high))
        self.head = nn.Sequential(*head)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Small embeddings (fastai: truncated normal, std 0.01) so that an untrained row
        # starts near the origin instead of as a large random vector.
        for emb in self.embeds:
            nn.init.trunc_normal_(emb.weight, std=0.01, a=-0.02, b=0.02)

    def embed(self, x_cat: torch.Tensor) -> torch.Tensor:
        """The concatenated embeddings of the codes, ``(N, n_emb)``."""
        if not self.embeds:
            return x_cat.new_zeros((x_cat.shape[0], 0), dtype=torch.float32)
        if self.training and self.unknown_p > 0:
            drop = torch.rand(x_cat.shape, device=x_cat.device) < self.unknown_p
            x_cat = x_cat.masked_fill(drop, 0)
        return torch.cat([e(x_cat[:, i]) for i, e in enumerate(self.embeds)], dim=1)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.embeds:
            parts.append(self.emb_drop(self.embed(x_cat)))
        if self.n_cont:
            parts.append(self.bn_cont(x_cont))
            if self.cont_embed is not None:
                parts.append(self.cont_embed(x_cont))
        x = torch.cat(parts, dim=1)  # (N, n_emb + n_cont [+ n_cont * cont_dim])
        members = getattr(self, "members", None)
        if members is None:
            return self.head(self.layers(x))
        out = self.head(members(self.layers(members.adapt(x))))
        return out if self.training else combine_members(out, self.combine)

    def extra_repr(self) -> str:
        return f"n_emb={self.n_emb}, n_cont={self.n_cont}, unknown_p={self.unknown_p}"


def splitter(model: TabularModel) -> list[list[nn.Module]]:
    """Two layer groups: the inputs (embeddings, continuous batchnorm), then the MLP and
    the head, so ``lr=slice(lo, hi)`` gives the embeddings their own rate."""
    inputs = [model.embeds, model.bn_cont]
    if model.cont_embed is not None:
        inputs.append(model.cont_embed)
    rest = [model.layers, model.head]
    if getattr(model, "members", None) is not None:
        rest.append(model.members)
    return [inputs, rest]
