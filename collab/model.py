"""Collaborative-filtering networks: a biased embedding dot product and a neural variant
for ratings, and an autoencoder of interaction rows for top-k recommendation.

The rating models take integer codes of users and items (``0 .. n - 1``) and return one predicted
rating per pair. Both keep a bias per user and per item and a fixed global offset, so a
pair where one side was never seen can still be scored from what is known
(:meth:`fallback`). Codes and DataFrames are the estimator's business
(:mod:`collab.estimator`); nothing here knows about pandas.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from collab.closed_form import attribute_design
from deepfit.layers import SigmoidRange, mlp_blocks

__all__ = [
    "AttributeEmbedding",
    "EmbeddingDotBias",
    "EmbeddingNN",
    "ImplicitSum",
    "ItemAutoencoder",
    "RecOutput",
    "ServedRatings",
    "autoencoder_splitter",
    "splitter",
]


def _link(value: float, y_range: tuple[float, float] | None) -> float:
    """The inverse of the output squashing: the raw score that maps to ``value``."""
    if y_range is None:
        return float(value)
    lo, hi = y_range
    frac = min(max((value - lo) / (hi - lo), 1e-4), 1 - 1e-4)
    return math.log(frac / (1 - frac))


def _init_embeddings(std: float, *embeddings: nn.Embedding) -> None:
    for emb in embeddings:
        if std > 0:
            nn.init.trunc_normal_(emb.weight, std=std, a=-2 * std, b=2 * std)
        else:
            nn.init.zeros_(emb.weight)


class _SparseTimesDense(torch.autograd.Function):
    """``a @ dense`` for a fixed sparse ``a``, with the gradient ``a_t @ grad`` computed
    from a transpose built once, instead of transposing ``a`` on every backward pass."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, a_t: torch.Tensor, dense: torch.Tensor):
        ctx.a_t = a_t
        # float32 even under autocast: the sparse kernels do not take bfloat16.
        with torch.autocast(dense.device.type, enabled=False):
            return a @ dense.float()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        with torch.autocast(grad.device.type, enabled=False):
            return None, None, ctx.a_t @ grad.float()


class ImplicitSum(nn.Module):
    """For each row entity, the normalised sum of learned vectors of the column entities
    it has a rating with: ``|N(r)|^-1/2 * sum_{c in N(r)} w_c``.

    The "implicit feedback" term of SVD++ (Koren 2008, "Factorization meets the
    neighborhood"): *which* items a user rated says something about the user's taste,
    whatever the ratings were. Applied to users (over the items they rated) and to items
    (over the users who rated them). The pairs are the training pairs only.

    Shape:
        - Output: ``(n_rows, dim)``, every row entity at once (one sparse product).
    """

    def __init__(
        self, n_rows: int, n_cols: int, dim: int, rows: torch.Tensor, cols: torch.Tensor
    ) -> None:
        super().__init__()
        self.n_rows, self.n_cols = int(n_rows), int(n_cols)
        self.weight = nn.Parameter(torch.empty(n_cols, dim))
        self._sparse: tuple | None = None
        self.set_pairs(rows, cols)

    def set_pairs(self, rows: torch.Tensor, cols: torch.Tensor) -> None:
        """Store the (row, col) pairs, each once, as CSR index buffers of the normalised
        matrix and of its transpose."""
        rows, cols = (
            torch.as_tensor(rows).long().cpu(),
            torch.as_tensor(cols).long().cpu(),
        )
        key = torch.unique(rows * self.n_cols + cols)  # sorted by row, then column
        rows, cols = key // self.n_cols, key % self.n_cols
        counts = torch.bincount(rows, minlength=self.n_rows).float()
        values = counts[rows].rsqrt()
        for prefix, r, c, n in (
            ("", rows, cols, self.n_rows),
            ("t_", cols, rows, self.n_cols),
        ):
            order = torch.argsort(r * (self.n_rows + self.n_cols) + c)
            crow = torch.zeros(n + 1, dtype=torch.long)
            crow[1:] = torch.cumsum(torch.bincount(r, minlength=n), 0)
            device = self.weight.device
            for name, t in (("crow", crow), ("col", c[order]), ("val", values[order])):
                if hasattr(self, prefix + name):
                    delattr(self, prefix + name)
                self.register_buffer(prefix + name, t.to(device))
        self._sparse = None

    def _matrices(self) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.crow.device
        if self._sparse is None or self._sparse[0] != device:
            with warnings.catch_warnings():  # "sparse CSR support is in beta"
                warnings.simplefilter("ignore", UserWarning)
                a = torch.sparse_csr_tensor(
                    self.crow, self.col, self.val, (self.n_rows, self.n_cols)
                )
                a_t = torch.sparse_csr_tensor(
                    self.t_crow, self.t_col, self.t_val, (self.n_cols, self.n_rows)
                )
            self._sparse = (device, a, a_t)
        return self._sparse[1], self._sparse[2]

    def forward(self) -> torch.Tensor:
        if torch.compiler.is_exporting():
            # torch.export takes no sparse tensors: the same sums as a gather and an
            # index_add over the stored pairs.
            counts = self.crow[1:] - self.crow[:-1]
            rows = torch.repeat_interleave(
                torch.arange(self.n_rows, device=self.crow.device), counts
            )
            terms = self.weight[self.col] * self.val[:, None]
            out = self.weight.new_zeros(self.n_rows, self.weight.shape[1])
            return out.index_add(0, rows, terms)
        a, a_t = self._matrices()
        return _SparseTimesDense.apply(a, a_t, self.weight)

    def _apply(self, fn, recurse=True):
        self._sparse = None  # rebuilt on the next forward, on the new device
        return super()._apply(fn, recurse)

    def __getstate__(self) -> dict:
        # The sparse tensors are a cache of the buffers: never pickle or deep-copy them.
        return {**self.__dict__, "_sparse": None}

    def extra_repr(self) -> str:
        return f"n_rows={self.n_rows}, n_cols={self.n_cols}, nnz={len(self.col)}"


class _BiasedCollab(nn.Module):
    """Shared parts: per-user and per-item biases, a global offset, the squashing and
    the optional implicit terms.

    The offset is a buffer set to the raw score of the training ratings' mean, so a pair
    with both biases at zero predicts that mean; it is not trained, which keeps "offset
    alone" meaning "the global mean" after training too.
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        user_dim: int,
        item_dim: int,
        y_range: tuple[float, float] | None,
        global_mean: float,
        init_std: float,
        rated: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> None:
        super().__init__()
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.init_std = float(init_std)
        self.y_range = (
            None if y_range is None else (float(y_range[0]), float(y_range[1]))
        )
        self.user_factors = nn.Embedding(n_users, user_dim)
        self.item_factors = nn.Embedding(n_items, item_dim)
        self.user_bias = nn.Embedding(n_users, 1)
        self.item_bias = nn.Embedding(n_items, 1)
        self.register_buffer("offset", torch.tensor(_link(global_mean, self.y_range)))
        self.squash = nn.Identity() if y_range is None else SigmoidRange(*self.y_range)
        self.user_implicit: ImplicitSum | None = None
        self.item_implicit: ImplicitSum | None = None
        if rated is not None:
            users, items = rated
            self.user_implicit = ImplicitSum(n_users, n_items, user_dim, users, items)
            self.item_implicit = ImplicitSum(n_items, n_users, item_dim, items, users)
        self.reset_parameters()

    def set_rated(self, users: torch.Tensor, items: torch.Tensor) -> None:
        """Replace the rated pairs behind the implicit terms (say after more ratings)."""
        if self.user_implicit is None or self.item_implicit is None:
            raise ValueError("this model was built without implicit terms")
        self.user_implicit.set_pairs(users, items)
        self.item_implicit.set_pairs(items, users)

    def user_vectors(self, users: torch.Tensor | None = None) -> torch.Tensor:
        """Effective user vectors (factors plus the implicit term); all users when
        ``users`` is None."""
        w = self.user_factors.weight
        if self.user_implicit is not None:
            w = w + self.user_implicit()
        return w if users is None else nn.functional.embedding(users, w)

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """Effective item vectors (factors plus the implicit term); all items when
        ``items`` is None."""
        w = self.item_factors.weight
        if self.item_implicit is not None:
            w = w + self.item_implicit()
        return w if items is None else nn.functional.embedding(items, w)

    def _biases(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        ub = self.user_bias(users).squeeze(-1)
        ib = self.item_bias(items).squeeze(-1)
        return ub + ib + self.offset

    def fallback(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores from what is known: the global offset plus the bias of each side whose
        code is valid. A code of ``-1`` marks a user or item never seen in training, whose
        bias counts as zero; two ``-1`` give the training mean.

        Shape:
            - users, items: ``(N,)`` long, ``-1`` for unknown
            - Output: ``(N,)``
        """
        known_u, known_i = users >= 0, items >= 0
        ub = self.user_bias(users.clamp(min=0)).squeeze(-1) * known_u
        ib = self.item_bias(items.clamp(min=0)).squeeze(-1) * known_i
        return self.squash(ub + ib + self.offset)

    def item_scores(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each of ``users``: ``(len(users), n_items)``."""
        raise NotImplementedError

    def reset_parameters(self) -> None:
        nn.init.zeros_(self.user_bias.weight)
        nn.init.zeros_(self.item_bias.weight)
        parts = (self.user_factors, self.item_factors)
        parts += tuple(m for m in (self.user_implicit, self.item_implicit) if m)
        _init_embeddings(self.init_std, *parts)

    def extra_repr(self) -> str:
        return f"n_users={self.n_users}, n_items={self.n_items}, y_range={self.y_range}"


class ServedRatings(nn.Module):
    """A rating model as served: codes of ``-1`` (an id never seen in training) get
    the model's fallback (:meth:`_BiasedCollab.fallback`), as ``predict`` gives them.

    Shape:
        - users, items: ``(N,)`` long, ``-1`` for unknown
        - Output: ``(N,)``
    """

    def __init__(self, model: _BiasedCollab) -> None:
        super().__init__()
        self.model = model

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        warm = (users >= 0) & (items >= 0)
        scores = self.model(users.clamp(min=0), items.clamp(min=0))
        return torch.where(warm, scores, self.model.fallback(users, items))


class EmbeddingDotBias(_BiasedCollab):
    """``user · item + user bias + item bias + global offset``, squashed into ``y_range``.

    The matrix-factorisation model of the Netflix Prize (Koren, Bell & Volinsky 2009,
    "Matrix factorization techniques for recommender systems") trained by gradient descent
    on the observed ratings only, with the output passed through a scaled sigmoid as in
    fastai's ``EmbeddingDotBias`` so predictions stay in the rating range.

    Parameters
    ----------
    n_users, n_items : int
        Number of distinct users and items (codes run from 0).
    n_factors : int, default=50
        Width of each user and item vector.
    y_range : tuple of float or None, default=None
        ``(low, high)`` of the scaled sigmoid; ``None`` returns the raw score.
    global_mean : float, default=0
        Mean training rating, the prediction when all learned terms are zero.
    init_std : float, default=0.01
        Standard deviation of the (truncated normal) initial factors; biases start at 0.
    rated : pair of long tensors or None, default=None
        ``(user_codes, item_codes)`` of the training pairs. Given, each side's vector gets
        an implicit-feedback term (:class:`ImplicitSum`): the user's over the items they
        rated, the item's over the users who rated it.

    Shape:
        - users, items: ``(N,)`` long codes
        - Output: ``(N,)``
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        n_factors: int = 50,
        y_range: tuple[float, float] | None = None,
        global_mean: float = 0.0,
        init_std: float = 0.01,
        rated: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            n_users,
            n_items,
            n_factors,
            n_factors,
            y_range,
            global_mean,
            init_std,
            rated,
        )
        self.n_factors = int(n_factors)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_vectors(users) * self.item_vectors(items)).sum(-1)  # (N,)
        return self.squash(dot + self._biases(users, items))

    def item_scores(self, users: torch.Tensor) -> torch.Tensor:
        # One matrix product over all items: (U, F) @ (F, I) -> (U, I).
        raw = self.user_vectors(users) @ self.item_vectors().T
        raw = raw + self.user_bias(users) + self.item_bias.weight.T + self.offset
        return self.squash(raw)


class EmbeddingNN(_BiasedCollab):
    """Concatenated user and item embeddings through linear-batchnorm-ReLU-dropout blocks.

    fastai's ``EmbeddingNN`` (the "neural collaborative filtering" idea of He et al. 2017
    in its simplest form: an MLP over the two embeddings), plus a bias per user and per
    item added to the network's output. The biases cost nothing, and give the neural model
    the same cold-start fallback and the same bias interpretation as the dot model.

    Parameters
    ----------
    n_users, n_items : int
    user_dim, item_dim : int
        Embedding widths.
    layers : sequence of int, default=(100,)
        Hidden widths of the MLP.
    ps : float or sequence of float, default=0.1
        Dropout after each hidden block.
    embed_p : float, default=0.0
        Dropout on the concatenated embeddings.
    y_range, global_mean, init_std, rated : see :class:`EmbeddingDotBias`

    Shape:
        - users, items: ``(N,)`` long codes
        - Output: ``(N,)``
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        user_dim: int = 50,
        item_dim: int = 50,
        layers: tuple[int, ...] | list[int] = (100,),
        ps: float | tuple[float, ...] | list[float] = 0.1,
        embed_p: float = 0.0,
        y_range: tuple[float, float] | None = None,
        global_mean: float = 0.0,
        init_std: float = 0.01,
        rated: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> None:
        super().__init__(
            n_users, n_items, user_dim, item_dim, y_range, global_mean, init_std, rated
        )
        self.embed_drop = nn.Dropout(embed_p)
        self.mlp = mlp_blocks(user_dim + item_dim, tuple(layers), ps)
        self.head = nn.Linear(list(layers)[-1] if layers else user_dim + item_dim, 1)

    def _net(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        x = self.embed_drop(torch.cat([u, i], dim=-1))  # (N, user_dim + item_dim)
        return self.head(self.mlp(x)).squeeze(-1)

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        net = self._net(self.user_vectors(users), self.item_vectors(items))
        return self.squash(net + self._biases(users, items))

    def item_scores(self, users: torch.Tensor) -> torch.Tensor:
        n_u, n_i = len(users), self.n_items
        u = self.user_vectors(users)[:, None, :].expand(n_u, n_i, -1)  # (U, I, Du)
        i = self.item_vectors()[None, :, :].expand(n_u, n_i, -1)  # (U, I, Di)
        net = self._net(u.reshape(n_u * n_i, -1), i.reshape(n_u * n_i, -1))
        raw = net.view(n_u, n_i) + self.user_bias(users) + self.item_bias.weight.T
        return self.squash(raw + self.offset)


def splitter(model: _BiasedCollab) -> list[list[nn.Parameter]]:
    """Parameter groups, earliest first: the embeddings and biases, then (for
    :class:`EmbeddingNN`) the MLP. Used for differential learning rates."""
    parts = (
        model.user_factors,
        model.item_factors,
        model.user_bias,
        model.item_bias,
        model.user_implicit,
        model.item_implicit,
    )
    emb = [p for m in parts if m is not None for p in m.parameters()]
    rest = [p for n, p in model.named_parameters() if not any(p is q for q in emb)]
    return [emb, rest] if rest else [emb]


class AttributeEmbedding(nn.Module):
    """Attributes of users or items, the entity-embedding way (Guo & Berkhahn 2016): an
    embedding per categorical column, ``min(50, (c + 1) // 2)`` wide (``c`` counts the
    unknown code 0), concatenated with the standardised numeric columns, then a linear
    map to ``out`` numbers.

    Shape:
        - Input: codes ``(N, n_cat)`` int64 and numbers ``(N, n_cont)``
        - Output: ``(N, out)``
    """

    def __init__(self, cardinalities: Sequence[int], n_cont: int, out: int) -> None:
        super().__init__()
        widths = [min(50, (c + 1) // 2) for c in cardinalities]
        self.embeds = nn.ModuleList(
            nn.Embedding(c, w) for c, w in zip(cardinalities, widths, strict=True)
        )
        self.linear = nn.Linear(sum(widths) + n_cont, out)

    def forward(self, codes: torch.Tensor, cont: torch.Tensor) -> torch.Tensor:
        parts = [emb(codes[:, j]) for j, emb in enumerate(self.embeds)]
        return self.linear(torch.cat([*parts, cont.float()], 1))


class RecOutput(NamedTuple):
    """What :class:`ItemAutoencoder` returns: the item-item path's scores (``None``
    without it, and in training) and the nonlinear path's logits (``None`` without
    it), each ``(B, n_items)``."""

    linear: torch.Tensor | None
    logits: torch.Tensor | None


class ItemAutoencoder(nn.Module):
    """A denoising autoencoder of each user's interaction row, with two decoders.

    - The item-item path is a full-rank linear map with a zero diagonal (an item may not
      predict itself), solved in closed form before training (EDLAE, Steck 2020: EASE's
      shallow autoencoder with dropout's penalty; :func:`collab.closed_form.edlae`) and
      held as buffers: ``item_item`` ``(k, k)`` over the items ``item_index`` (all
      items, or the ``k`` most interacted-with of a large catalogue). It scores only at
      prediction: training fits the nonlinear path alone.
    - The nonlinear path is Mult-DAE (Liang et al. 2018): the L2-normalised row through
      tanh layers to logits over the items, trained with the multinomial likelihood.

    In training the nonlinear path reads the row with a share ``dropout`` of its
    entries dropped (the kept ones are not rescaled). The two paths err on different
    users, so :meth:`rank_scores` ranks by the mean of their scores,
    each standardised per user (weight ``mix`` on the nonlinear path).

    With attributes (hybrid, as LightFM): on the item-item path a user with no
    interactions is scored by ``user_prior``, a ridge regression of the training rows
    on the attributes' design (the caller also writes an attribute-predicted column of
    the map for each item without interactions). On the nonlinear path a user's
    attributes join its first layer, and an item's output vector and bias are its free
    ones plus those its attributes give (:class:`AttributeEmbedding`; ``known`` False:
    the free ones stay zero).

    Shape:
        - Input: ``(B, n_items)`` interaction weights (0 where there was none), and with
          user attributes their codes ``(B, n_cat)`` and numbers ``(B, n_cont)``
        - Output: :class:`RecOutput`
    """

    def __init__(
        self,
        n_items: int,
        hidden: Sequence[int] | None = (600, 200),
        dropout: float = 0.5,
        item_item: int = 0,
        user_attributes: tuple[Sequence[int], int] | None = None,
        item_attributes: tuple[torch.Tensor, torch.Tensor] | None = None,
        item_cardinalities: Sequence[int] | None = None,
        known: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.n_items, self.dropout = n_items, dropout
        # Set to the closed-form solution (set_item_item), never trained; None without
        # the path. Left uninitialised until then: a 20,000-item map is 1.6 GB.
        k = int(item_item)
        self.register_buffer("item_item", torch.empty(k, k) if k else None)
        self.register_buffer("item_index", torch.arange(k) if k else None)
        # A user with no history, scored from their attributes: ridge weights on their
        # design (collab.closed_form.attribute_design), solved with the item-item map.
        self.user_cards = [] if user_attributes is None else list(user_attributes[0])
        width = sum(self.user_cards) + (user_attributes or ([], 0))[1] + 1
        prior = k and user_attributes is not None
        self.register_buffer(
            "user_prior", torch.zeros(width, n_items) if prior else None
        )
        known = torch.ones(n_items, dtype=torch.bool) if known is None else known
        self.register_buffer("known", known.bool())
        self.encoder = self.decoder = self.user_attr = self.item_attr = None
        if hidden is None:  # the item-item path alone: nothing to train
            return
        sizes = [n_items, *hidden]
        enc = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes)]
        dec = [nn.Linear(a, b) for a, b in itertools.pairwise(sizes[::-1])]
        self.encoder = nn.ModuleList(enc)
        self.decoder = nn.ModuleList(dec)
        if user_attributes is not None:
            self.user_attr = AttributeEmbedding(*user_attributes, hidden[0])
        if item_attributes is not None:
            codes, cont = item_attributes
            self.register_buffer("item_codes", codes.long())
            self.register_buffer("item_cont", cont.float())
            self.item_attr = AttributeEmbedding(
                list(item_cardinalities), cont.shape[1], hidden[0] + 1
            )

    def _output_layer(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each item's output vector ``(I, H)`` and bias ``(I,)``: the free ones (zero for
        items never interacted with) plus what the attributes give."""
        last = self.decoder[-1]
        keep = self.known.to(last.weight.dtype)
        w, b = last.weight * keep[:, None], last.bias * keep
        if self.item_attr is not None:
            extra = self.item_attr(self.item_codes, self.item_cont)  # (I, H + 1)
            w, b = w + extra[:, :-1], b + extra[:, -1]
        return w, b

    def set_item_item(self, index: torch.Tensor, weights: torch.Tensor) -> None:
        """Take the closed-form map (``collab.closed_form.edlae``) as it is (no copy):
        ``weights`` ``(k, k)`` over the items ``index``."""
        if self.item_item is None or weights.shape != self.item_item.shape:
            raise ValueError(f"a map of shape {tuple(weights.shape)} does not fit")
        self.item_index, self.item_item = index.to(self.item_index), weights

    def forward(
        self,
        x: torch.Tensor,
        user_codes: torch.Tensor | None = None,
        user_cont: torch.Tensor | None = None,
    ) -> RecOutput:
        linear = None
        if self.item_item is not None and not self.training:
            idx, w = self.item_index, self.item_item.to(x.dtype)
            xs = x if len(idx) == self.n_items else x[:, idx]
            if xs.is_cpu and (xs != 0).float().mean() < 0.05:
                # Histories are sparse: the rows of B they select, summed (B nnz(x)
                # instead of B k^2 multiply-adds).
                part = torch.sparse.mm(xs.to_sparse(), w)  # (B, k)
            else:
                part = xs @ w  # (B, k)
            if len(idx) == self.n_items:
                linear = part
            else:  # the covered items alone
                linear = x.new_zeros(x.shape)
                linear[:, idx] = part
            if self.user_prior is not None and user_codes is not None:
                empty = (x != 0).sum(1) == 0  # no history: the attributes' prior
                if empty.any():
                    design = attribute_design(
                        user_codes[empty], user_cont[empty], self.user_cards
                    )
                    linear[empty] = (design @ self.user_prior).to(linear.dtype)
        if self.encoder is None:
            return RecOutput(linear, None)
        if self.training and self.dropout > 0:
            x = x * (torch.rand_like(x) >= self.dropout).to(x.dtype)
        h = nn.functional.normalize(x, dim=1)
        for i, layer in enumerate(self.encoder):
            h = layer(h)
            if i == 0 and self.user_attr is not None and user_codes is not None:
                h = h + self.user_attr(user_codes, user_cont)
            h = torch.tanh(h)
        for layer in self.decoder[:-1]:
            h = torch.tanh(layer(h))
        w, b = self._output_layer()
        return RecOutput(linear, h @ w.T + b)

    @staticmethod
    def rank_scores(out: RecOutput, mix: float) -> torch.Tensor:
        """One score per item to rank by: the paths' scores standardised per user
        (row) and averaged, ``mix`` on the nonlinear path."""

        def z(s: torch.Tensor) -> torch.Tensor:
            s = s.float()
            return (s - s.mean(1, keepdim=True)) / s.std(1, keepdim=True).clamp_min(
                1e-8
            )

        if out.linear is None:
            return out.logits.float()
        if out.logits is None:
            return out.linear.float()
        return (1 - mix) * z(out.linear) + mix * z(out.logits)

    def extra_repr(self) -> str:
        k = 0 if self.item_item is None else len(self.item_index)
        return f"n_items={self.n_items}, item_item={k}, dropout={self.dropout}"


def autoencoder_splitter(model: ItemAutoencoder) -> list[list[nn.Parameter]]:
    """One group: the nonlinear path with the attribute embeddings (the item-item map
    is solved, not trained)."""
    return [list(model.parameters())]
