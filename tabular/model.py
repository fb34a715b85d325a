"""``TabularModel``: entity embeddings for categorical columns, batchnorm for continuous
ones, then an MLP. ``splitter`` cuts it into layer groups."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from deepfit.layers import mlp_blocks

__all__ = ["SigmoidRangeVec", "TabularModel", "splitter"]


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

    Shape:
        - x_cat: ``(N, n_cat)`` int64 codes
        - x_cont: ``(N, n_cont)`` float32
        - Output: ``(N, out_sz)``
    """

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
    ) -> None:
        super().__init__()
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
        self.layers = mlp_blocks(self.n_emb + n_cont, tuple(layers), ps, bn=use_bn)
        last = layers[-1] if len(layers) else self.n_emb + n_cont
        head: list[nn.Module] = [nn.Linear(last, out_sz)]
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
        x = torch.cat(parts, dim=1)  # (N, n_emb + n_cont)
        return self.head(self.layers(x))

    def extra_repr(self) -> str:
        return f"n_emb={self.n_emb}, n_cont={self.n_cont}, unknown_p={self.unknown_p}"


def splitter(model: TabularModel) -> list[list[nn.Module]]:
    """Two layer groups: the inputs (embeddings, continuous batchnorm), then the MLP and
    the head, so ``lr=slice(lo, hi)`` gives the embeddings their own rate."""
    return [[model.embeds, model.bn_cont], [model.layers, model.head]]
