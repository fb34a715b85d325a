"""``CollabRegressor``: collaborative filtering behind ``fit(X, y)`` / ``predict(X)``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted
from torch import nn

from collab.data import (
    check_ratings,
    encode_ids,
    id_column,
    id_vocabulary,
    rating_batches,
    scan_ratings,
    warn_cold,
)
from collab.model import EmbeddingDotBias, EmbeddingNN, ServedRatings, splitter
from collab.ranking import FactorModel, check_k, id_index, similar_items, top_k_frame
from deepfit import FitData, NeuralEstimator, TensorBatches
from deepfit.callbacks import Callback
from deepfit.data import check_sample_weight
from deepfit.optim import adamw_decays
from deepfit.params import (
    Boolean,
    InstanceOf,
    Interval,
    Options,
    Satisfies,
    SequenceOf,
    warn,
)
from deepfit.schedules import Schedule
from deepfit.stream import (
    fit_columns,
    is_stream,
    open_dataset,
    read_frames,
    valid_share,
)
from deepfit.targets import mse

__all__ = ["CollabRegressor"]

_MODELS = ("dot", "nn")
# Beyond this many training pairs the implicit terms dominate the cost of a batch.
_IMPLICIT_WARN_PAIRS = 2_000_000


def _rmse(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(torch.sqrt(nn.functional.mse_loss(pred, target)))


class CollabRegressor(FactorModel, RegressorMixin, NeuralEstimator):
    """Predict ratings from who rated what, with learned user and item embeddings.

    ``fit(X, y)`` takes a DataFrame with a user id column and an item id column (any
    hashable ids: ints, strings) and the ratings ``y``; ``predict(X)`` scores user-item
    pairs. ``model="dot"`` is :class:`~collab.model.EmbeddingDotBias` (matrix
    factorisation with biases, Koren, Bell & Volinsky 2009), ``model="nn"`` is
    :class:`~collab.model.EmbeddingNN` (an MLP over the two embeddings, He et al. 2017).
    Both squash their output into ``y_range`` with a scaled sigmoid.

    Why embeddings rather than an SVD of the rating matrix: the matrix is mostly empty
    (ML-100K: 94% of user-item cells are unrated). The loss here is the squared error on
    the observed ratings only, so an unrated cell says nothing about the fit. A plain SVD
    needs a full matrix and has to fill the unseen cells with something, usually zeros;
    it then spends its factors reproducing "this user gave that film 0 stars", which is
    wrong for nearly every cell (``benchmarks/collab_movielens.py`` measures the gap: a
    truncated SVD of the zero-filled matrix is far worse than per-user and per-item
    biases alone). *Which* cells are filled does carry information (people rate what
    they chose to watch); ``implicit=True`` uses it as such, in separate learned terms,
    instead of as ratings of zero.

    **Cold start.** A user or item never seen in training does not make ``predict`` fail.
    The pair gets the best estimate from what is known: the global offset (the training
    mean) plus the bias of the known side, squashed like any prediction; when both are
    unknown, the training mean. :meth:`cold_rows` says which rows that applied to.

    **Defaults** were chosen on a validation hold-out (a seeded random 20% of
    MovieLens 100K's u1.base; never its test files) among settings that fit in a few
    seconds on two CPU cores; ``benchmarks/collab_movielens.py`` reports the test figures.

    Parameters
    ----------
    user_col, item_col : hashable, default="user", "item"
        Names of the id columns of ``X`` (positions 0 and 1 for a 2-D array).
    model : {"dot", "nn"}, default="dot"
    n_factors : int, default=50
        Width of the user and item embeddings.
    implicit : bool, default=True
        Add SVD++'s implicit-feedback terms (Koren 2008) on both sides: a user's vector
        gets ``|N(u)|^-1/2`` times the sum of learned vectors of the items the user rated
        in training, and an item's vector the same over the users who rated it (which
        pairs were rated is itself evidence of taste). It costs about twice as much per
        batch: two sparse products over *all* training pairs each way, so the cost of a
        batch grows with the data (a warning says so past 2 million pairs; set
        ``implicit=False`` for large data).
    y_range : "auto", tuple of float or None, default="auto"
        Output range of the scaled sigmoid. ``"auto"``: the training ratings' range,
        widened by ``0.1 * (max - min)`` on each side (a sigmoid only reaches its ends
        at infinity, so 1..5 stars become (0.6, 5.4)). ``None``: no squashing.
    weight_decay : float, default=3.5
        Decoupled (AdamW) weight decay of the embeddings and network weights. Far larger
        than for other networks: each embedding row sees few ratings and overfits fast.
        Its effect per epoch grows with ``lr`` and with the number of batches, so retune
        it when changing ``batch_size`` or ``lr`` a lot.
    bias_decay : float, default=0.0
        Decoupled weight decay of the per-user and per-item biases (none: decaying them
        did worse on the validation hold-out the defaults were chosen on).
    implicit_decay : float, default=4.0
        Decoupled weight decay of the implicit-feedback vectors.
    layers : tuple of int, default=(100,)
        Hidden widths of the MLP (``model="nn"`` only).
    dropout : float, default=0.1
        Dropout after each hidden block (``model="nn"`` only).
    init_std : float, default=0.01
        Standard deviation of the initial embeddings.
    epochs : int, default=10
    lr : float or None, default=0.02
        Peak learning rate of the one-cycle schedule (``None``: the finder's suggestion).
    batch_size : int, default=2048
        Large batches keep the per-batch cost low (the data is held as tensors), at
        hardly any cost in accuracy.
    schedule, validation_fraction, early_stopping, random_state, device, verbose,
    warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`. With ``warm_start=True`` a second ``fit``
        continues from the current weights and must only use ids seen in the first.

    Attributes
    ----------
    users_, items_ : pandas.Index
        The ids seen in training; position = code in the model.
    global_mean_ : float
        Mean training rating.
    y_range_ : tuple of float or None
        The output range actually used.
    seen_ : scipy.sparse.csr_matrix
        Boolean ``(n_users, n_items)`` matrix of the rated pairs (for ``exclude_seen``).
    item_bias_, user_bias_ : pandas.Series
        Learned biases by id, in the model's pre-sigmoid units (higher is better). The
        item bias reads as "how good is this item, whoever watches it": its rating with
        the user's taste and the item's genre factored out.
    item_factors_, user_factors_ : pandas.DataFrame
        The vectors the model compares, one row per id (with ``implicit=True``, the
        factors plus the implicit term).
    item_counts_, user_counts_ : pandas.Series
        Distinct training pairs per id (how many users rated the item, how many items the
        user rated).
    module_, history_, lr_, n_epochs_ : see :class:`deepfit.NeuralEstimator`

    Examples
    --------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"user": ["ann", "ann", "bob", "bob", "cy"],
    ...                   "item": ["up", "jaws", "up", "alien", "jaws"]})
    >>> est = CollabRegressor(n_factors=4, epochs=2, random_state=0, verbose=0)
    >>> est.fit(X, [5, 3, 4, 2, 4]).predict(X).shape
    (5,)
    >>> est.recommend(["ann"], k=1).columns.tolist()
    ['user', 'item', 'score', 'rank']
    """

    def __init__(
        self,
        user_col: Hashable = "user",
        item_col: Hashable = "item",
        model: str = "dot",
        n_factors: int = 50,
        implicit: bool = True,
        y_range: str | tuple[float, float] | None = "auto",
        weight_decay: float = 3.5,
        bias_decay: float = 0.0,
        implicit_decay: float = 4.0,
        layers: tuple[int, ...] = (100,),
        dropout: float = 0.1,
        init_std: float = 0.01,
        *,
        epochs: int = 10,
        lr: float | None = 0.02,
        schedule: str | Schedule = "one_cycle",
        batch_size: int = 2048,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 1,
        warm_start: bool = False,
        amp: bool = False,
        callbacks: list[Callback] | None = None,
    ) -> None:
        super().__init__(
            epochs=epochs,
            lr=lr,
            schedule=schedule,
            batch_size=batch_size,
            validation_fraction=validation_fraction,
            early_stopping=early_stopping,
            random_state=random_state,
            device=device,
            verbose=verbose,
            warm_start=warm_start,
            amp=amp,
            callbacks=callbacks,
        )
        self.user_col = user_col
        self.item_col = item_col
        self.model = model
        self.n_factors = n_factors
        self.implicit = implicit
        self.y_range = y_range
        self.weight_decay = weight_decay
        self.bias_decay = bias_decay
        self.implicit_decay = implicit_decay
        self.layers = layers
        self.dropout = dropout
        self.init_std = init_std

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *NeuralEstimator._fitted_attributes,
        "users_",
        "items_",
        "global_mean_",
        "y_range_",
        "seen_",
        "user_counts_",
        "item_counts_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NeuralEstimator._parameter_constraints,
        "user_col": [InstanceOf(Hashable, "a column name")],
        "item_col": [InstanceOf(Hashable, "a column name")],
        "model": [Options(*_MODELS)],
        "n_factors": [Interval(numbers.Integral, 1, None)],
        "implicit": [Boolean()],
        "y_range": [
            Options("auto"),
            Satisfies(
                lambda r: (
                    len(r) == 2
                    and all(isinstance(v, numbers.Real) and math.isfinite(v) for v in r)
                    and r[0] < r[1]
                    and not isinstance(r, str)
                ),
                "a (low, high) pair with low < high",
            ),
            None,
        ],
        "weight_decay": [Interval(numbers.Real, 0, None)],
        "bias_decay": [Interval(numbers.Real, 0, None)],
        "implicit_decay": [Interval(numbers.Real, 0, None)],
        "layers": [SequenceOf(Interval(numbers.Integral, 1, None))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "init_std": [Interval(numbers.Real, 0, None)],
    }

    def _ids(self, X: Any) -> tuple[pd.Series, pd.Series]:
        users = id_column(X, self.user_col, "user")
        items = id_column(X, self.item_col, "item")
        return users, items

    def _resolve_y_range(self, y: np.ndarray) -> tuple[float, float] | None:
        if self.y_range is None:
            return None
        if isinstance(self.y_range, str):  # "auto"
            lo, hi = float(y.min()), float(y.max())
            margin = 0.1 * (hi - lo) if hi > lo else 0.5
            return (lo - margin, hi + margin)
        return (float(self.y_range[0]), float(self.y_range[1]))

    # ---- fitting --------------------------------------------------------------------

    def _fit_data(self, X, y, eval_set, reset, sample_weight=None) -> FitData:
        # Everything is checked before any fitted attribute changes, so a bad call leaves
        # a fitted estimator as it was.
        if is_stream(X):
            return self._stream_fit_data(X, y, eval_set, reset, sample_weight)
        users, items = self._ids(X)
        if len(users) == 0:
            raise ValueError("X is empty: need ratings to fit")
        if len(users) == 1:
            raise ValueError("need at least 2 ratings to fit, got n_samples=1")
        ratings = check_ratings(y, len(users))
        weights = check_sample_weight(sample_weight, len(users))
        if eval_set is not None:
            vu, vi = self._ids(eval_set[0])
            vy = check_ratings(eval_set[1], len(vu))
        train_idx, valid_idx = self._validation_split(len(users))
        tr_users, tr_items = users.iloc[train_idx], items.iloc[train_idx]
        if reset:
            vocabs = (id_vocabulary(tr_users), id_vocabulary(tr_items))
            for role, vocab in zip(("user", "item"), vocabs, strict=True):
                if len(vocab) < 2:
                    raise ValueError(
                        f"the ratings hold a single {role} ({vocab[0]!r}); collaborative "
                        f"filtering needs at least 2 distinct {role}s"
                    )
        else:
            vocabs = (self.users_, self.items_)
        u, i = encode_ids(vocabs[0], tr_users), encode_ids(vocabs[1], tr_items)
        for role, codes, vals in (("user", u, tr_users), ("item", i, tr_items)):
            if (codes < 0).any():  # only possible when warm-starting
                new = pd.unique(vals[codes < 0])
                raise ValueError(
                    f"warm_start: {len(new)} {role}s not seen in the first fit (e.g. "
                    f"{new[0]!r}); their embeddings do not exist. Refit with "
                    "warm_start=False"
                )

        if reset:
            self.users_, self.items_ = vocabs
            self.global_mean_ = float(
                np.average(
                    ratings[train_idx],
                    weights=None if weights is None else weights[train_idx],
                )
            )
            self.y_range_ = self._resolve_y_range(ratings[train_idx])
            self.n_features_in_ = 2
        shape = (len(self.users_), len(self.items_))
        seen = sparse.csr_matrix(
            (np.ones(len(u), dtype=bool), (u, i)), shape=shape, dtype=bool
        )
        self._update_seen(seen, reset)
        device = self._device()
        w = None if weights is None else torch.from_numpy(weights[train_idx]).float()
        train = TensorBatches(
            (torch.from_numpy(u), torch.from_numpy(i)),
            torch.from_numpy(ratings[train_idx]),
            w,
            batch_size=self.batch_size,
            shuffle=True,
            # A one-row batch breaks BatchNorm in training mode.
            drop_last=self.model == "nn",
            generator=self._generator(),
            device=device,
        )
        # The mean rating's (weighted) squared error: what a constant prediction scores.
        fit_r = ratings[train_idx]
        fit_w = None if weights is None else weights[train_idx]
        constant = None
        if fit_w is None or fit_w.sum() > 0:
            mean = np.average(fit_r, weights=fit_w)
            constant = float(np.average((fit_r - mean) ** 2, weights=fit_w))
        if eval_set is None and valid_idx is None:
            return FitData(train, constant_loss=constant)
        if eval_set is None:
            vu, vi, vy = (
                users.iloc[valid_idx],
                items.iloc[valid_idx],
                ratings[valid_idx],
            )
        valid = self._valid_batches(vu, vi, vy, device)
        return FitData(train, valid, constant_loss=constant)

    def _valid_batches(self, users, items, ratings, device) -> TensorBatches | None:
        # Pairs with an id the model has no embedding for cannot enter the validation
        # loss (the model scores them by the fallback only at predict time).
        u, i = encode_ids(self.users_, users), encode_ids(self.items_, items)
        keep = (u >= 0) & (i >= 0)
        if not keep.any():
            return None
        return TensorBatches(
            (torch.from_numpy(u[keep]), torch.from_numpy(i[keep])),
            torch.from_numpy(np.ascontiguousarray(ratings[keep])),
            batch_size=8192,
            device=device,
        )

    def _stream_fit_data(self, X, y, eval_set, reset, sample_weight) -> FitData:
        """Ratings streamed from parquet (``y``, ``sample_weight``: column names; see
        :func:`collab.data.scan_ratings`); a hash split holds out the validation rows."""
        (y,), weights = fit_columns(y, sample_weight, eval_set)
        source = open_dataset(X)
        frags = source.fragments
        ids = [self.user_col, self.item_col]
        source.check_columns([*ids, y, *weights], "user_col, item_col, y or weights")
        weight = next(iter(weights), None)
        frac = valid_share(self._holdout_fraction(), frags)
        seed = self._seed
        scan = scan_ratings(
            frags,
            *ids,
            y,
            weight,
            frac,
            seed,
            None if reset else (self.users_, self.items_),
        )
        if reset:
            for role, vocab in (("user", scan.users), ("item", scan.items)):
                if len(vocab) < 2:
                    raise ValueError(
                        f"the ratings hold fewer than 2 distinct {role}s; collaborative "
                        "filtering needs at least 2"
                    )
            self.users_, self.items_ = scan.users, scan.items
            self.global_mean_ = scan.global_mean
            self.y_range_ = self._resolve_y_range(np.array([scan.low, scan.high]))
            self.n_features_in_ = 2
        self._update_seen(scan.seen, reset)
        return FitData(
            *rating_batches(
                frags,
                scan,
                ids,
                y,
                weight,
                frac,
                seed,
                batch_size=self.batch_size,
                generator=self._generator(),
            )
        )

    def _update_seen(self, seen: sparse.csr_matrix, reset: bool) -> None:
        """Record the training pairs (``seen_``, the id counts) and hand the implicit
        term its rated pairs when warm-starting."""
        shape = (len(self.users_), len(self.items_))
        if not reset and hasattr(self, "seen_"):
            seen = (seen + self.seen_).astype(bool)
        seen.sort_indices()
        self.seen_ = seen
        self.user_counts_ = pd.Series(
            np.diff(seen.indptr), index=self.users_, name="n_rated"
        )
        self.item_counts_ = pd.Series(
            np.bincount(seen.indices, minlength=shape[1]),
            index=self.items_,
            name="n_rated",
        )
        if self.implicit and self.seen_.nnz > _IMPLICIT_WARN_PAIRS:
            warn(
                f"implicit=True costs two sparse products over all {self.seen_.nnz:,} "
                "training pairs per batch; with this many, implicit=False trains much "
                "faster (at some cost in accuracy)",
                UserWarning,
            )
        if not reset and self.implicit:
            self.module_.set_rated(*self._rated())

    def _rated(self) -> tuple[torch.Tensor, torch.Tensor]:
        coo = self.seen_.tocoo()
        return torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(
            coo.col.astype(np.int64)
        )

    def _build_module(self) -> nn.Module:
        common = {
            "y_range": self.y_range_,
            "global_mean": self.global_mean_,
            "init_std": self.init_std,
        }
        n_u, n_i = len(self.users_), len(self.items_)
        common["rated"] = self._rated() if self.implicit else None
        if self.model == "nn":
            return EmbeddingNN(
                n_u,
                n_i,
                self.n_factors,
                self.n_factors,
                layers=tuple(self.layers),
                ps=self.dropout,
                **common,
            )
        return EmbeddingDotBias(n_u, n_i, self.n_factors, **common)

    def _loss_func(self):
        return mse

    def _metrics(self) -> dict[str, Any]:
        return {"rmse": _rmse}

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return splitter(module)

    def _opt_func(self, module: nn.Module):
        # Each kind of parameter gets its own decoupled weight decay.
        decays = {id(module.user_bias.weight): float(self.bias_decay)}
        decays[id(module.item_bias.weight)] = float(self.bias_decay)
        for imp in (module.user_implicit, module.item_implicit):
            if imp is not None:
                decays[id(imp.weight)] = float(self.implicit_decay)
        return partial(adamw_decays, decays=decays, default=float(self.weight_decay))

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        eval_set: tuple[Any, Any] | None = None,
        sample_weight: Any = None,
    ):
        """Fit on the ratings ``y`` of the user-item pairs in ``X``.

        Parameters
        ----------
        X : DataFrame, or parquet path(s) or ``pyarrow.dataset.Dataset``
            Holds ``user_col`` and ``item_col`` (other columns are ignored). A parquet
            source is streamed (:func:`collab.data.scan_ratings`); ``y`` and
            ``sample_weight`` then name its columns.
        y : array-like of shape (n_rows,), or a column name
            The ratings.
        eval_set : (X_valid, y_valid), optional
            Validation ratings; pairs with an id absent from ``X`` are left out.
        sample_weight : array-like of shape (n_rows,), optional
            Weights of the ratings in the loss (and in ``global_mean_``).

        Returns
        -------
        self
        """
        return self._fit(X, y, eval_set=eval_set, sample_weight=sample_weight)

    # ---- prediction -----------------------------------------------------------------

    def _codes(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        users, items = self._ids(X)
        return encode_ids(self.users_, users), encode_ids(self.items_, items)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted ratings of the pairs in ``X``; pairs with an unknown user or item get
        the fallback described in the class docstring (see :meth:`cold_rows`)."""
        check_is_fitted(self)
        if is_stream(X):
            source = open_dataset(X)
            ids = [self.user_col, self.item_col]
            source.check_columns(ids, "user_col / item_col")
            frames = read_frames(source.fragments, ids)
            return np.concatenate([self.predict(df) for df in frames])
        users, items = self._ids(X)
        u, i = encode_ids(self.users_, users), encode_ids(self.items_, items)
        warn_cold(self.users_, users, u, "user")
        warn_cold(self.items_, items, i, "item")
        out = np.empty(len(u), dtype=np.float64)
        warm = (u >= 0) & (i >= 0)
        if warm.any():
            batches = TensorBatches(
                (torch.from_numpy(u[warm]), torch.from_numpy(i[warm])), batch_size=65536
            )
            out[warm] = self._predict_outputs(batches).numpy()
        if not warm.all():
            cold = TensorBatches(
                (torch.from_numpy(u[~warm]), torch.from_numpy(i[~warm])),
                batch_size=65536,
            )
            fallback = self._predict_outputs(
                cold, transform=lambda forward, xb: self.module_.fallback(*xb)
            )
            out[~warm] = fallback.numpy()
        return out

    def _serving_module(self) -> nn.Module:
        return ServedRatings(self.module_)

    def export(self, path: Any = None) -> Any:
        """The fitted network for serving, as a ``torch.export.ExportedProgram`` (saved
        with ``torch.export.save`` when ``path`` is given): it takes int64 user and
        item codes ``(N,)`` (positions in ``users_`` and ``items_``, ``-1`` for an id
        never seen in training) and returns the predicted ratings, the fallback of
        :meth:`predict` where a code is ``-1``. The implicit-feedback term exports as a
        gather."""
        check_is_fitted(self)
        example = (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
        return self._export(example, path)

    def export_onnx(self, path: Any) -> Any:
        """The fitted network for serving, written to ``path`` as an ONNX model (needs
        the ``export`` extra: ``pip install 'deepfit[export]'``). Its inputs and output
        are :meth:`export`'s, named: ``users`` and ``items`` (int64 ``(N,)``) in,
        ``rating`` out, any ``N``. Returns the ``torch.onnx.ONNXProgram``."""
        check_is_fitted(self)
        example = (torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
        return self._export_onnx(example, path, ["users", "items"], ["rating"])

    def cold_rows(self, X: Any) -> pd.DataFrame:
        """Which rows of ``X`` have a user or item never seen in training.

        Returns
        -------
        DataFrame
            Indexed like ``X``, boolean columns ``cold_user`` and ``cold_item``; a row
            with either set was scored by the fallback in :meth:`predict`.
        """
        check_is_fitted(self)
        u, i = self._codes(X)
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame({"cold_user": u < 0, "cold_item": i < 0}, index=index)

    def recommend(
        self, users: Any, k: int = 10, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """The ``k`` items with the highest *predicted rating* for each of ``users``.

        This ranks by rating, so rarely rated, highly rated items come first: for "what
        will this user pick next" lists, a model trained on the interactions ranks far
        better (:class:`CollabRecommender`; ``benchmarks/collab_ranking.py`` measures
        both). All items are scored for a block of users by one matrix product
        (``"dot"``) or one batched pass of the network (``"nn"``), then ``torch.topk``
        picks the best.

        Parameters
        ----------
        users : id or list-like of ids
            A user never seen in training gets the items with the highest fallback score
            (the item biases).
        k : int, default=10
        exclude_seen : bool, default=True
            Leave out the items the user rated in training. A user with fewer than ``k``
            unseen items gets fewer rows.

        Returns
        -------
        DataFrame
            Columns ``user``, ``item``, ``score`` (predicted rating), ``rank`` (1 = best),
            sorted by user (in the order given) and rank.
        """
        check_is_fitted(self)
        n_items = len(self.items_)
        k = check_k(k, n_items)
        ids = id_index(users)
        codes = encode_ids(self.users_, ids)
        if len(codes) == 0:
            return pd.DataFrame(
                {
                    "user": ids,
                    "item": self.items_[:0],
                    "score": [],
                    "rank": np.zeros(0, dtype=np.int64),
                }
            )
        # Bound the (users, items) block: the MLP of "nn" runs on every pair of it.
        cells = 2**24 if self.model == "dot" else 2**18
        blocks = TensorBatches(
            torch.from_numpy(codes), batch_size=max(1, cells // n_items)
        )
        module = self.module_

        def top_k(forward: Any, block: torch.Tensor) -> tuple[torch.Tensor, ...]:
            known = block >= 0
            scores = module.item_scores(block.clamp(min=0)).float()  # (U, I)
            if not known.all():
                every = torch.arange(n_items, device=block.device)
                none = torch.full((n_items,), -1, device=block.device)
                scores[~known] = module.fallback(none, every).float()
            if exclude_seen:
                rows = block.cpu().numpy()
                mask = self.seen_[np.clip(rows, 0, None)].toarray()
                mask[rows < 0] = False
                scores[torch.from_numpy(mask).to(block.device)] = -math.inf
            return torch.topk(scores, k, dim=1)  # (U, k) scores and item codes

        top, idx = (t.numpy() for t in self._predict_outputs(blocks, transform=top_k))
        return top_k_frame(ids, self.items_, top, idx, k)

    def similar_items(self, item: Hashable, k: int = 10) -> pd.DataFrame:
        """The ``k`` items whose factors are closest to ``item``'s by cosine similarity.

        Returns
        -------
        DataFrame
            Columns ``item``, ``similarity`` (cosine, in [-1, 1]), ``rank`` (1 = closest);
            the item itself is left out.
        """
        check_is_fitted(self)
        return similar_items(self.items_, self.module_.item_vectors(), item, k)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # Positional id columns (user_col=0, item_col=1) take a 2-D array of ids.
        tags.input_tags.two_d_array = all(
            isinstance(c, numbers.Integral) for c in (self.user_col, self.item_col)
        )
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
