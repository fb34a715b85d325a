"""``CollabRecommender``: top-k recommendation from implicit feedback (who interacted with
what), behind ``fit(X)`` / ``recommend(users, k)``."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.utils.validation import check_is_fitted
from torch import nn

from collab.closed_form import attribute_design, edlae, ridge
from collab.data import (
    AttributeCodes,
    InteractionRows,
    check_attribute_overlap,
    encode_ids,
    id_column,
    id_vocabulary,
)
from collab.metrics import ndcg_at_k
from collab.model import ItemAutoencoder, RecOutput, autoencoder_splitter
from collab.ranking import check_k, id_index, top_k_frame
from deepfit import FitData, History, Learner, NeuralEstimator
from deepfit.callbacks import Callback
from deepfit.data import check_sample_weight
from deepfit.params import Boolean, InstanceOf, Interval, SequenceOf, warn
from deepfit.schedules import Schedule
from deepfit.stream import is_stream

__all__ = ["CollabRecommender"]

# The item-item map covers at most this many items (the most interacted-with of a larger
# catalogue): its dense (items x items) map, solved in place, then takes 1.6 GB.
_ITEM_ITEM_MAX = 20_000
# Rows scored at once at prediction: each holds a score for every item, so a block
# holds at most 2^24 scores (64 MB) and 1,024 rows.
_PREDICT_CELLS, _PREDICT_ROWS = 2**24, 1024


def _predict_rows(n_items: int) -> int:
    return max(1, min(_PREDICT_ROWS, _PREDICT_CELLS // max(n_items, 1)))


# The L2 penalty of the attribute models (cold users and items; collab.closed_form),
# chosen on held-out users of MovieLens 100K (seeds 0-2) and the restaurant log (seeds
# 0-5) by NDCG@20 against popularity: 3 -> 1.05 / 1.33, 30 -> 1.05 / 1.43, 1000 ->
# 1.04 / 1.03 (benchmarks/collab_cold_start.py reports other seeds).
_ATTR_RIDGE = 30.0


def recommender_loss(pred: RecOutput, x: torch.Tensor) -> torch.Tensor:
    """The nonlinear path's multinomial negative log-likelihood, summed over items and
    averaged over the batch's users (the item-item path is solved, not trained)."""
    return -(torch.log_softmax(pred.logits.float(), 1) * x).sum(1).mean()


@dataclass
class _RecData(FitData):
    """The batches, and the training users' interaction matrix the item-item map is
    solved on."""

    matrix: sparse.csr_matrix | None = None
    user_attrs: tuple[torch.Tensor, ...] = ()  # the training users' attribute codes


class CollabRecommender(NeuralEstimator):
    """Top-k recommendation from implicit feedback: which items each user should see
    next, learned from which items users interacted with.

    ``fit(X)`` takes a DataFrame of interactions (a user id column and an item id
    column; any hashable ids), optionally weighted (``sample_weight``: a count, a rating,
    a recency weight; repeated pairs add up). The model is :class:`~collab.model.
    ItemAutoencoder`: each user's row of interactions goes through two decoders: a
    full-rank item-item map solved in closed form (EDLAE, Steck 2020: the shallow
    autoencoder of EASE with dropout's penalty, one Cholesky solve) and a Mult-DAE
    (Liang et al. 2018, multinomial likelihood) trained through the engine's
    ``Learner`` with entries of each row dropped at random; items are ranked by a
    weighted mean of the two paths' per-user standardised scores. The defaults (the
    closed form alone, ``linear_dropout=0.67``, ``l2=30``) were chosen on validation
    splits of MovieLens 100K and the five logs of the recommender suite
    (``benchmarks/collab_ranking.py --choose``). A model trained on interactions ranks
    for what users will pick; a model of ratings (:class:`CollabRegressor`) ranks
    rarely rated, highly rated items first.

    **Unknown users.** ``recommend`` gives a user never seen in fit the most popular
    items (those with the most interactions). A new user's history, given at predict
    time, is read by the trained network without refitting: :meth:`recommend_history`
    (fold-in).

    **Attributes** (hybrid, as LightFM): ``fit(..., user_features=, item_features=)``
    takes a frame of attributes per user and per item. A user with attributes and no
    history is scored by a ridge regression of the training users' rows on their
    attributes (its constant term is the popularity prior, which the attributes
    adjust); an item with attributes and no interactions gets its item-item column
    from a ridge regression of the other items' columns on their attributes (both in
    :mod:`collab.closed_form`). With ``mix > 0`` the attributes are also embedded, the
    entity-embedding way, into the nonlinear path.

    Parameters
    ----------
    user_col, item_col : hashable, default="user", "item"
    hidden : tuple of int, default=(600, 200)
        Widths of the nonlinear path's encoder (its decoder mirrors them).
    dropout : float, default=0.5
        Share of a row's entries the nonlinear path does not see in training.
    linear_dropout : float, default=0.67
        EDLAE's dropout share ``p`` of the item-item path: a penalty of
        ``p / (1 - p)`` times each item's interaction count on its weights, which
        keeps the map off the identity (:mod:`collab.closed_form`). Scaled by each
        item's count, it carries over between logs where EASE's single ``l2`` must be
        tuned per log.
    item_item : bool, default=True
        Whether to have the item-item path, solved in closed form. It covers at most
        the 20,000 most interacted-with items (its dense map then takes 1.6 GB).
    l2 : float, default=30.0
        L2 penalty of the item-item matrix, in EASE's units (the sum over all users of
        the squared error against ``l2`` times the squared weights).
    mix : float, default=0.0
        Weight of the nonlinear path in the ranking score. 0: the item-item path ranks
        alone and nothing is trained (the network is not built): one closed-form solve,
        EASE's cost. Above 0 the Mult-DAE is trained and mixed in (on four test logs
        ``mix=0.5`` added 0.4-2.3% NDCG@20 at 50 to 8,000 times the fit time).
    epochs : int, default=80
    lr : float or None, default=2e-3
        Peak rate of the nonlinear path. ``None``: the finder's suggestion.
    batch_size : int, default=128
        Users per batch.
    schedule, validation_fraction, early_stopping, random_state, device, verbose,
    warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`. A validation fraction holds out users
        (their rows' reconstruction loss is ``history_["valid_loss"]``, with ``mix >
        0``); ``warm_start`` takes interactions of known users and items only: it
        solves the item-item map again on them and continues training the network.

    Attributes
    ----------
    users_, items_ : pandas.Index
        The ids seen in training; position = code.
    interactions_ : scipy.sparse.csr_matrix
        ``(n_users, n_items)`` summed weights of the training interactions.
    item_counts_ : pandas.Series
        Users per item in training (the popularity fallback ranks by it; 0 for items
        known by their attributes alone).
    user_attributes_, item_attributes_ : AttributeCodes or None
        The fitted attribute encoders (and frames), when attributes were given.
    module_ : ItemAutoencoder
    history_, lr_, n_epochs_ : see :class:`deepfit.NeuralEstimator`

    Example
    -------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"user": [1, 1, 2, 2, 3, 3], "item": list("abbcac")})
    >>> rec = CollabRecommender(epochs=2, verbose=0, random_state=0).fit(X)
    >>> rec.recommend([1, 99], k=1).columns.tolist()
    ['user', 'item', 'score', 'rank']
    >>> rec.recommend_history({"new": ["a"]}, k=2)["item"].tolist()[0] in ("b", "c")
    True
    """

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *NeuralEstimator._fitted_attributes,
        "users_",
        "items_",
        "user_attributes_",
        "item_attributes_",
        "interactions_",
        "item_counts_",
        "item_item_size_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NeuralEstimator._parameter_constraints,
        "user_col": [InstanceOf(Hashable, "a column name")],
        "item_col": [InstanceOf(Hashable, "a column name")],
        "hidden": [SequenceOf(Interval(numbers.Integral, 1, None))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "linear_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "item_item": [Boolean()],
        "l2": [Interval(numbers.Real, 0, None)],
        "mix": [Interval(numbers.Real, 0, 1)],
    }

    def __init__(
        self,
        user_col: Hashable = "user",
        item_col: Hashable = "item",
        hidden: tuple[int, ...] = (600, 200),
        dropout: float = 0.5,
        linear_dropout: float = 0.67,
        item_item: bool = True,
        l2: float = 30.0,
        mix: float = 0.0,
        *,
        epochs: int = 80,
        lr: float | None = 2e-3,
        schedule: str | Schedule = "one_cycle",
        batch_size: int = 128,
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
        self.hidden = hidden
        self.dropout = dropout
        self.linear_dropout = linear_dropout
        self.item_item = item_item
        self.l2 = l2
        self.mix = mix

    # ---- data -------------------------------------------------------------------------

    def _pairs(
        self, X: Any, sample_weight: Any = None
    ) -> tuple[pd.Series, pd.Series, np.ndarray]:
        """The user and item id columns and each row's weight, checked."""
        users = id_column(X, self.user_col, "user")
        items = id_column(X, self.item_col, "item")
        if sample_weight is None:
            return users, items, np.ones(len(users), dtype=np.float32)
        w = check_sample_weight(sample_weight, len(users))
        return users, items, w.astype(np.float32)

    def _matrix(self, u: np.ndarray, i: np.ndarray, w: np.ndarray, n_users: int):
        m = sparse.csr_matrix(
            (w, (u, i)), shape=(n_users, len(self.items_)), dtype=np.float32
        )
        m.sum_duplicates()
        return m

    def _fit_data(
        self,
        X: Any,
        y: Any,
        eval_set: Any,
        reset: bool,
        sample_weight: Any = None,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
    ) -> FitData:
        # Everything is checked before a fitted attribute changes.
        if is_stream(X):
            raise ValueError(
                "CollabRecommender takes the interactions as a DataFrame (it trains on "
                "their user-item matrix, held in memory); a parquet path or Arrow "
                "dataset streams into TabularClassifier/Regressor and CollabRegressor"
            )
        users, items, w = self._pairs(X, sample_weight)
        if len(users) == 0:
            raise ValueError("X is empty: need interactions to fit")
        if reset:
            user_vocab = id_vocabulary(users)
            seen_items = id_vocabulary(items)
            if len(seen_items) < 2:
                raise ValueError(
                    f"the interactions hold a single item ({seen_items[0]!r}): there is "
                    "nothing to rank"
                )
            encoders = [
                None if f is None else AttributeCodes().fit(f, role)
                for f, role in ((user_features, "user"), (item_features, "item"))
            ]
            for frame, ids, role in (
                (user_features, user_vocab, "user"),
                (item_features, seen_items, "item"),
            ):
                check_attribute_overlap(frame, ids, role)
            item_vocab = seen_items
            if item_features is not None:  # items known by their attributes alone
                item_vocab = id_vocabulary(
                    pd.Series([*seen_items, *item_features.index], dtype=object)
                )
        else:
            if user_features is not None or item_features is not None:
                raise ValueError(
                    "warm_start: user_features and item_features are those of the first "
                    "fit; refit with warm_start=False to change them"
                )
            user_vocab, item_vocab = self.users_, self.items_
            encoders = [self.user_attributes_, self.item_attributes_]
        u, i = encode_ids(user_vocab, users), encode_ids(item_vocab, items)
        for role, codes, vals in (("user", u, users), ("item", i, items)):
            if (codes < 0).any():  # only possible when warm-starting
                new = pd.unique(vals[codes < 0])
                raise ValueError(
                    f"warm_start: {len(new)} {role}s not seen in the first fit (e.g. "
                    f"{new[0]!r}); refit with warm_start=False"
                )
        valid_rows = None
        if eval_set is not None:
            ev = eval_set[0]
            vu, vi, vw = self._pairs(ev)
            vi_codes = encode_ids(item_vocab, vi)
            keep = vi_codes >= 0  # items the model has no output for cannot count
            vcodes, vusers = pd.factorize(vu[keep].to_numpy())
            valid_rows = (vcodes, vi_codes[keep], vw[keep], pd.Index(vusers))
        if reset:
            self.users_, self.items_ = user_vocab, item_vocab
            self.user_attributes_, self.item_attributes_ = encoders
            self.n_features_in_ = 2
        matrix = self._matrix(u, i, w, len(self.users_))
        self.interactions_ = matrix
        self.item_counts_ = pd.Series(
            np.bincount(matrix.indices, minlength=len(self.items_)),
            index=self.items_,
            name="n_users",
        )
        train_idx, valid_idx = self._validation_split(matrix.shape[0])
        device = self._device()
        attrs = self._user_attrs(self.users_)
        train = InteractionRows(
            matrix[train_idx],
            self.batch_size,
            shuffle=True,
            generator=self._generator(),
            device=device,
            extras=tuple(t[train_idx] for t in attrs),
        )
        valid = None
        if valid_rows is not None:
            vcodes, vitems, vweights, vusers = valid_rows
            vm = sparse.csr_matrix(
                (vweights, (vcodes, vitems)), shape=(len(vusers), len(self.items_))
            )
            valid = InteractionRows(
                vm,
                _predict_rows(vm.shape[1]),
                device=device,
                extras=self._user_attrs(vusers),
            )
        elif valid_idx is not None:
            valid = InteractionRows(
                matrix[valid_idx],
                _predict_rows(matrix.shape[1]),
                device=device,
                extras=tuple(t[valid_idx] for t in attrs),
            )
        self.item_item_size_ = (
            min(len(self.items_), _ITEM_ITEM_MAX) if self._use_item_item() else 0
        )
        return _RecData(
            train,
            valid,
            matrix=matrix if valid_idx is None else matrix[train_idx],
            user_attrs=tuple(t[train_idx] for t in attrs),
        )

    def _user_attrs(
        self, ids: pd.Index, frame: pd.DataFrame | None = None
    ) -> tuple[torch.Tensor, ...]:
        """The attribute codes and numbers of users ``ids`` (from ``frame``, default
        the fitted ``user_features``); none without user attributes."""
        enc = self.user_attributes_
        return () if enc is None else enc.transform(pd.Index(ids), frame)

    # ---- the engine's hooks -----------------------------------------------------------

    def _use_item_item(self) -> bool:
        return bool(self.item_item)

    def _closed_form_only(self) -> bool:
        """Whether the item-item path ranks alone (``mix=0``): no network to train."""
        return self._use_item_item() and self.mix == 0

    def _build_module(self) -> nn.Module:
        users, items = self.user_attributes_, self.item_attributes_
        return ItemAutoencoder(
            len(self.items_),
            None if self._closed_form_only() else tuple(self.hidden),
            float(self.dropout),
            item_item=self.item_item_size_,
            user_attributes=None
            if users is None
            else (users.cardinalities_, len(users.cont_cols_)),
            item_attributes=None if items is None else items.transform(self.items_),
            item_cardinalities=None if items is None else items.cardinalities_,
            known=torch.from_numpy(self.item_counts_.to_numpy() > 0),
        )

    def _loss_func(self) -> Any:
        return recommender_loss

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return autoencoder_splitter(module)

    def _opt_func(self, module: nn.Module) -> Any:
        # Adam without weight decay, with the fused kernel where torch has one.
        fused = True if self._device().type in ("cpu", "cuda") else None
        return partial(torch.optim.Adam, betas=(0.9, 0.99), fused=fused)

    def _recipe(self, learner: Learner, data: FitData, history: History) -> Any:
        """The item-item map in closed form (:func:`collab.closed_form.edlae`), then
        one ``fit`` of the nonlinear path at ``lr`` (or the finder's rate); none when
        ``mix`` is 0 and the item-item path ranks alone."""
        module = self.module_
        if module.item_item is not None:
            index, weights = edlae(
                data.matrix, float(self.l2), float(self.linear_dropout), _ITEM_ITEM_MAX
            )
            self._cold_item_columns(index, weights)
            module.set_item_item(index, weights)
            if module.user_prior is not None:
                design = attribute_design(*data.user_attrs, module.user_cards)
                module.user_prior.copy_(ridge(design, data.matrix, _ATTR_RIDGE))
            if self._closed_form_only():
                return None
        lr = self._resolve_lr(learner, data.finder_batches)
        cbs = self._fit_callbacks(history, data.valid)
        learner.fit(data.train, self.epochs, lr, self.schedule, cbs, data.valid)
        return lr

    def _cold_item_columns(self, index: torch.Tensor, weights: torch.Tensor) -> None:
        """Fill the item-item columns of items with attributes but no interactions
        (in ``index``) from their attributes: a ridge fit of the other columns."""
        enc = self.item_attributes_
        counts = self.item_counts_.to_numpy()[index.numpy()]
        if enc is None or (counts > 0).all():
            return
        design = attribute_design(
            *enc.transform(self.items_[index.numpy()]), enc.cardinalities_
        )
        warm = torch.from_numpy(counts > 0)
        fit = ridge(design[warm], weights[:, warm].T, _ATTR_RIDGE)  # (D, k)
        weights[:, ~warm] = (design[~warm] @ fit).T

    def fit(
        self,
        X: Any,
        y: Any = None,
        *,
        sample_weight: Any = None,
        eval_set: Any = None,
        user_features: pd.DataFrame | None = None,
        item_features: pd.DataFrame | None = None,
    ):
        """Fit on the interactions in ``X`` (``y`` is ignored).

        Parameters
        ----------
        X : DataFrame
            Holds ``user_col`` and ``item_col`` (other columns are ignored).
        y : None
        sample_weight : array-like of shape (n_rows,), optional
            A weight >= 0 per interaction (repeated pairs add up); default 1.
        eval_set : DataFrame, optional
            Held-out interactions whose users' rows give a validation loss.
        user_features, item_features : DataFrame, optional
            Attributes, one row per id (the ids as the index): categorical columns get
            entity embeddings, numeric ones are standardised. A user with attributes
            but no interactions is then scored from them (also when only
            ``user_features`` names them), and so is an item listed in
            ``item_features`` with no interactions (it joins the catalogue).

        Returns
        -------
        self
        """
        return self._fit(
            X,
            y,
            eval_set=eval_set,
            sample_weight=sample_weight,
            user_features=user_features,
            item_features=item_features,
        )

    # ---- recommendation ---------------------------------------------------------------

    def _top_k(
        self,
        rows: sparse.csr_matrix,
        attrs: tuple[torch.Tensor, ...],
        k: int,
        exclude_seen: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` item codes and their scores of each row (history) of
        ``rows`` (and users' attributes), through the engine's prediction path."""
        mix = float(self.mix)

        def rank(forward: Any, xb: Any) -> tuple[torch.Tensor, torch.Tensor]:
            scores = ItemAutoencoder.rank_scores(forward(xb), mix)
            if exclude_seen:
                seen = xb[0] if isinstance(xb, (tuple, list)) else xb
                scores = scores.masked_fill(seen > 0, -math.inf)
            return torch.topk(scores, k, dim=1)

        batches = InteractionRows(
            rows, _predict_rows(rows.shape[1]), targets=False, extras=attrs
        )
        top, idx = self._predict_outputs(batches, transform=rank)
        return top.numpy(), idx.numpy()

    def _recommend_rows(
        self,
        ids: pd.Index,
        rows: sparse.csr_matrix,
        attrs: tuple[torch.Tensor, ...],
        described: np.ndarray,
        k: int,
        exclude_seen: bool,
    ) -> pd.DataFrame:
        """Top-k of each history row (with the user's attributes); a user with neither
        a history nor attributes (``described`` False) gets the popular items."""
        top = np.full((len(ids), k), -np.inf)
        idx = np.zeros((len(ids), k), dtype=np.int64)
        use = (np.diff(rows.indptr) > 0) | described
        if use.any():
            sel = torch.from_numpy(np.flatnonzero(use))
            top[use], idx[use] = self._top_k(
                rows[use], tuple(t[sel] for t in attrs), k, exclude_seen
            )
        if not use.all():
            counts = self.item_counts_.to_numpy()
            order = np.argsort(-counts, kind="stable")[:k]
            top[~use] = np.log1p(counts[order])
            idx[~use] = order
        return top_k_frame(ids, self.items_, top, idx, k)

    def _described(
        self, ids: pd.Index, frame: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Which of ``ids`` have attributes (in ``frame``, default the fitted ones)."""
        enc = self.user_attributes_
        if enc is None:
            return np.zeros(len(ids), dtype=bool)
        return np.asarray(ids.isin((enc.frame_ if frame is None else frame).index))

    def recommend(
        self, users: Any, k: int = 10, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """The top-``k`` items for each of ``users``.

        Every item is scored for a block of users at once (one pass of the network over
        their interaction rows) and ``torch.topk`` picks the best.

        Parameters
        ----------
        users : id or list-like of ids
            A user never seen in training is scored from their attributes when the
            fitted ``user_features`` list them, and otherwise gets the most popular
            items (score ``log1p`` of the item's user count); to use a new user's
            history, see :meth:`recommend_history`.
        k : int, default=10
        exclude_seen : bool, default=True
            Leave out the items the user interacted with in training.

        Returns
        -------
        DataFrame
            Columns ``user``, ``item``, ``score`` (higher is better; comparable within a
            user), ``rank`` (1 = best), by user in the order given, then rank.
        """
        check_is_fitted(self)
        k = check_k(k, len(self.items_))
        ids = id_index(users)
        codes = encode_ids(self.users_, ids)
        rows = self.interactions_[np.clip(codes, 0, None)]
        if (codes < 0).any():  # an empty row: attributes or the popular items
            rows = (sparse.diags((codes >= 0).astype(np.float32)) @ rows).tocsr()
            rows.eliminate_zeros()
        attrs = self._user_attrs(ids)
        return self._recommend_rows(
            ids, rows, attrs, self._described(ids), k, exclude_seen
        )

    def recommend_history(
        self,
        history: Mapping[Any, Any] | pd.DataFrame,
        k: int = 10,
        exclude_seen: bool = True,
        user_features: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Top-``k`` items for users described by their interactions, without refitting
        (fold-in): the trained network reads each history as it reads a training user's.

        Parameters
        ----------
        history : dict of user -> list of items, or DataFrame
            A DataFrame holds ``user_col`` and ``item_col`` (and, optionally, a
            ``weight`` column). Items never seen in training are ignored (the model has no
            input for them); a user left with no known item is scored from their
            attributes if they have any, and otherwise gets the popular items.
        k : int, default=10
        exclude_seen : bool, default=True
            Leave out the items of the history.
        user_features : DataFrame, optional
            These users' attributes (the fitted ``user_features``' columns, the user ids
            as the index); by default they are looked up in the fitted ones.

        Returns
        -------
        DataFrame
            As :meth:`recommend`.
        """
        check_is_fitted(self)
        k = check_k(k, len(self.items_))
        if isinstance(history, pd.DataFrame):
            weights = history["weight"] if "weight" in history.columns else None
            users, items, w = self._pairs(history, weights)
            ids = pd.Index(pd.unique(users), tupleize_cols=False)
            u = encode_ids(ids, users)
        elif isinstance(history, Mapping):
            ids = pd.Index(list(history), tupleize_cols=False)
            lists = [list(id_index(v)) for v in history.values()]
            u = np.repeat(np.arange(len(ids)), [len(v) for v in lists])
            items = pd.Series([it for v in lists for it in v], dtype=object)
            w = np.ones(len(items), dtype=np.float32)
        else:
            raise TypeError(
                "history must be a dict of user -> items or a DataFrame of interactions, "
                f"got {type(history).__name__}"
            )
        i = encode_ids(self.items_, items)
        if (i < 0).any():
            warn(
                f"{int((i < 0).sum())} interaction(s) of the history name items never "
                f"seen in training (e.g. {items[i < 0].iloc[0]!r}); they are ignored",
                UserWarning,
            )
        keep = (i >= 0) & (w > 0)
        rows = self._matrix(u[keep], i[keep], w[keep], len(ids))
        attrs = self._user_attrs(ids, user_features)
        described = self._described(ids, user_features)
        return self._recommend_rows(ids, rows, attrs, described, k, exclude_seen)

    def similar_items(self, item: Hashable, k: int = 10) -> pd.DataFrame:
        """The ``k`` items the model recommends to a user whose one interaction is
        ``item`` ("people who took this took ..."): the item's row of the item-item
        map, with the nonlinear path's scores of that history mixed in by ``mix``.

        Returns
        -------
        DataFrame
            Columns ``item``, ``similarity`` (the recommendation score: higher is
            closer), ``rank`` (1 = closest); the item itself is left out.
        """
        check_is_fitted(self)
        check_k(k, len(self.items_))
        if encode_ids(self.items_, [item])[0] < 0:
            raise KeyError(f"item {item!r} was not seen in training")
        recs = self.recommend_history({0: [item]}, k=k)
        return pd.DataFrame(
            {
                "item": recs["item"].to_numpy(),
                "similarity": recs["score"].to_numpy(),
                "rank": recs["rank"].to_numpy(),
            }
        )

    def score(self, X: Any, y: Any = None, k: int = 10) -> float:
        """NDCG@``k`` of the held-out interactions ``X`` (all relevant; filter them
        first, say to high ratings) against :meth:`recommend`'s lists for their users,
        training items left out (see :mod:`collab.metrics`)."""
        check_is_fitted(self)
        users, items, _ = self._pairs(X)
        relevant = pd.DataFrame({"user": users.to_numpy(), "item": items.to_numpy()})
        recs = self.recommend(pd.unique(relevant["user"]), k=k)
        return ndcg_at_k(recs, relevant, k)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
