"""``TabularClassifier`` and ``TabularRegressor``: the scikit-learn face of the tabular
domain, wiring :class:`TabularPreprocessor` and :class:`TabularModel` to the engine
through :class:`tabular.base.TabularEstimator`."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.stats import skew
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from deepfit.callbacks import Callback
from deepfit.data import check_class_labels
from deepfit.params import Boolean, InstanceOf, Options
from deepfit.stream import Moments, ValueCounts
from deepfit.targets import (
    accuracy,
    binary_cross_entropy,
    cross_entropy,
    encode_targets,
    hits,
    label_accuracy,
    label_kind,
    labels_from_hits,
    mse,
)
from tabular.base import TabularEstimator, per_member

__all__ = ["TabularClassifier", "TabularRegressor"]


_COMMON_DOC = """
    layers : sequence of int, default=(200, 100)
        Widths of the hidden linear-batchnorm-ReLU-dropout blocks.
    dropout : float, default=0.1
        Dropout after each hidden block.
    embed_dropout : float, default=0.0
        Dropout on the concatenated embeddings.
    embedding_sizes : dict of column -> int, optional
        Embedding width per categorical column; the others get
        ``min(50, (c + 1) // 2)``, where ``c`` counts the unknown (and missing) codes.
    cat_features, cont_features : list, optional
        Force columns to be categorical or continuous (names for a DataFrame, indices for
        an array; an array is all continuous otherwise). Integer columns are continuous
        unless named in ``cat_features``.
    min_frequency : int, default=5
        Categories seen fewer times in training are treated as unknown (a surname or
        ticket seen once or twice is memorised rather than learned from). Likewise a
        two-valued continuous column (a flag, a date flag such as ``is_month_end``, a
        ``_na`` indicator) whose rarer value was seen fewer times is held at 0 (see
        :class:`TabularPreprocessor`).
    int_levels : int, default=200
        Integer columns with 2 to ``int_levels`` distinct values in training are *also*
        embedded as categoricals (``<col>_cat``), keeping their continuous value, so the
        network can learn a value per level besides the trend (an age or a count whose
        effect is not linear). 0 turns this off.
    unknown_rate : float, default=0.01
        Share of categorical codes replaced by the unknown code during training, so the
        unknown embedding is trained: an unseen category predicts like an average one.
    weight_decay : float, default=0.01
        Decoupled (AdamW) weight decay, on sparse embedding rows too (applied when a
        row next appears, see :class:`deepfit.SparseAdamW`).
    sparse_embeddings : {"auto", True, False}, default="auto"
        Sparse gradients and row-wise AdamW updates (:class:`deepfit.SparseAdamW`, which
        catches a returning row up on the steps it missed) for embedding tables;
        ``"auto"`` uses them for tables with more than ``4 * batch_size`` rows, where
        they are faster. A distributed fit on NCCL (GPUs) trains them dense: NCCL
        reduces no sparse gradients (gloo, on CPUs, does).
    clip : bool, default=True
        Clip continuous columns (date parts and ``elapsed`` included) to their training
        range at prediction (see :class:`TabularPreprocessor`), so the network does not
        extrapolate into a future (or a size) it never saw.
    cont_bins : int, default=16
        Bins per continuous column (at training quantiles) of a piecewise-linear
        encoding (:class:`tabular.model.PiecewiseLinearEmbedding`) that the network sees
        besides the value itself; 0 turns it off.
    cont_dim : int, default=8
        Width of each continuous column's piecewise-linear embedding.
    n_members : int, default=8
        Members of a batch ensemble (TabM-mini, Gorishniy et al. 2025): the MLP runs
        once per member on each row, each member with its own input adapter and head
        and its own loss; predictions average the members' (probabilities for a
        classifier). Costs about ``n_members`` times the MLP's compute; 1 turns it off.
        8 was chosen by 5-fold CV on the training parts of the tabular suite.
    epochs : int, default=50
        The most epochs of the one-cycle schedule; early stopping usually ends sooner.
    early_stopping : bool or int, default=10
        Hold out ``validation_fraction`` (0.1) of the rows, stop when their loss has not
        improved for 10 epochs and keep the best epoch's weights. ``False`` trains all
        ``epochs`` on every row (the earlier defaults: ``epochs=5`` without it).
    holdout : {"random", "latest"}, default="random"
        Which rows early stopping holds out: a random (stratified) share, or the most
        recent by the first datetime column. On the suite's three temporal tables,
        forward-in-time CV preferred the random hold-out (error ratio to HistGB 0.99
        against 1.04).
    lr, schedule, batch_size, validation_fraction, random_state, device, verbose,
    warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`.
"""


class TabularClassifier(ClassifierMixin, TabularEstimator):
    __doc__ = (
        """Entity-embedding network for classification on DataFrames.

    Binary and multiclass targets (softmax, cross-entropy) and multi-label targets given
    as a 2-D 0/1 indicator array or DataFrame (sigmoid outputs). Categorical columns get
    entity embeddings (Guo & Berkhahn 2016), continuous ones batchnorm, then an MLP
    trained with AdamW and the one-cycle schedule (Smith 2018), as in fastai's tabular
    learner.

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    class_weight : "balanced", dict or None, default=None
        Per-class loss weights (``"balanced"``: inversely proportional to class
        frequency; for multi-label targets, each label's positives weighted by
        negatives/positives).

    Attributes
    ----------
    classes_ : ndarray
        Class labels (multi-label: the indicator's column names, or ``0..k-1``).
    pos_weight_ : ndarray or None
        Multi-label with ``class_weight="balanced"``: each label's weight of its
        positives in the loss (negatives / positives in training).
    preprocessor_ : TabularPreprocessor
    module_ : TabularModel
    stream_targets_ : list of str or None
        The target columns of a streamed fit (``None`` after a fit in memory).
    history_, lr_, lr_find_, n_epochs_
        See :class:`deepfit.NeuralEstimator`.

    Example
    -------
    >>> import pandas as pd
    >>> X = pd.DataFrame({"colour": ["red", "blue"] * 50, "size": range(100)})
    >>> y = (X["colour"] == "red").astype(int)
    >>> clf = TabularClassifier(epochs=5, batch_size=16, verbose=0, random_state=0)
    >>> clf = clf.fit(X, y)
    >>> clf.predict(X.head(2)).tolist()
    [1, 0]
    """
    )

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *TabularEstimator._fitted_attributes,
        "classes_",
        "multilabel_",
        "label_format_",
        "pos_weight_",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **TabularEstimator._parameter_constraints,
        "class_weight": [Options("balanced"), InstanceOf(dict, "a dict"), None],
    }

    def __init__(
        self,
        layers: tuple[int, ...] = (200, 100),
        dropout: float = 0.1,
        embed_dropout: float = 0.0,
        embedding_sizes: dict[Any, int] | None = None,
        cat_features: list[Any] | None = None,
        cont_features: list[Any] | None = None,
        min_frequency: int = 5,
        int_levels: int = 200,
        unknown_rate: float = 0.01,
        weight_decay: float = 0.01,
        sparse_embeddings: bool | str = "auto",
        clip: bool = True,
        cont_bins: int = 16,
        cont_dim: int = 8,
        n_members: int = 8,
        holdout: str = "random",
        class_weight: str | dict | None = None,
        *,
        epochs: int = 50,
        lr: float | None = 1e-2,
        schedule: str = "one_cycle",
        batch_size: int = 256,
        validation_fraction: float | None = None,
        early_stopping: bool | int = 10,
        random_state: int | None = None,
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
        self.layers = layers
        self.dropout = dropout
        self.embed_dropout = embed_dropout
        self.embedding_sizes = embedding_sizes
        self.cat_features = cat_features
        self.cont_features = cont_features
        self.min_frequency = min_frequency
        self.int_levels = int_levels
        self.unknown_rate = unknown_rate
        self.weight_decay = weight_decay
        self.sparse_embeddings = sparse_embeddings
        self.clip = clip
        self.cont_bins = cont_bins
        self.cont_dim = cont_dim
        self.n_members = n_members
        self.holdout = holdout
        self.class_weight = class_weight

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> TabularClassifier:
        """Fit on a DataFrame (or 2-D array) ``X`` and labels ``y``; ``sample_weight``
        weights rows in the loss; ``eval_set=(X_valid, y_valid)`` is a validation set.

        ``X`` may also be a parquet file or folder, a list of them or a
        ``pyarrow.dataset.Dataset``, too large for memory: it is streamed (see
        :mod:`deepfit.stream`), ``y`` names the label column inside it, ``sample_weight``
        a weight column, every other column is a feature, and the validation rows are a
        hash split (``validation_fraction`` of the rows, at most 500,000). Preprocessing
        is fitted in one pass, as in memory except medians and bin edges, read from a
        sample of 100,000 rows."""
        return self._fit(X, y, eval_set=eval_set, sample_weight=sample_weight)

    def _check_target(self, y: Any, n: int, reset: bool) -> np.ndarray:
        if label_kind(y) == "lists":  # multi-label as label lists: their indicator
            fitted = None if reset else (self.classes_, self.label_format_)
            _, classes, ind = encode_targets(y, n, fitted, type(self).__name__)
            if reset:
                self.multilabel_, self.classes_ = True, classes
                self.label_format_ = "lists"
            return ind.numpy()
        columns = list(y.columns) if isinstance(y, pd.DataFrame) else None
        arr = np.asarray(y)
        if arr.dtype == object and arr.ndim == 1:  # numbers in an object column (JSON)
            arr = pd.Series(arr).infer_objects().to_numpy()
        if len(arr) != n:
            raise ValueError(f"y has {len(arr)} rows but X has {n}")
        if arr.ndim == 0 or arr.ndim > 2:
            raise ValueError(
                f"y must be 1-D (or a 2-D indicator), got shape {arr.shape}"
            )
        if pd.isna(pd.DataFrame(arr) if arr.ndim == 2 else pd.Series(arr)).any(
            axis=None
        ):
            raise ValueError("y holds missing values (NaN/None)")
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr.ravel()
            columns = None
        check_class_labels(arr, regressor="TabularRegressor")
        kind = type_of_target(arr, input_name="y")
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(f"Unknown label type: {kind}")
        if reset:
            self.multilabel_ = kind == "multilabel-indicator"
            self.label_format_ = "indicator" if self.multilabel_ else "single"
            if self.multilabel_:
                self.classes_ = (
                    np.asarray(columns, dtype=object)
                    if columns is not None
                    else np.arange(arr.shape[1])
                )
            else:
                self.classes_ = np.unique(arr)
                if len(self.classes_) < 2:
                    raise ValueError(
                        f"y has a single class ({self.classes_[0]!r}); a classifier "
                        "needs at least 2"
                    )
        elif self.multilabel_ != (kind == "multilabel-indicator"):
            raise ValueError(
                "y's kind (multi-label or not) differs from the fitted one"
            )
        if self.multilabel_ and arr.shape[1] != len(self.classes_):
            raise ValueError(
                f"y has {arr.shape[1]} labels, expected {len(self.classes_)}"
            )
        return arr

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        if self.multilabel_:
            return torch.as_tensor(y.astype(np.float32))
        idx = np.searchsorted(self.classes_, y)
        idx = np.clip(idx, 0, len(self.classes_) - 1)
        bad = self.classes_[idx] != y
        if bad.any():
            raise ValueError(f"y holds labels not seen in fit: {np.unique(y[bad])[:5]}")
        return torch.as_tensor(idx, dtype=torch.int64)

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None if self.multilabel_ else y

    def _class_sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        """Row weights of ``class_weight``; for multi-label targets the per-label
        weights of the positives (``pos_weight_``) instead."""
        cw = self.class_weight
        self.pos_weight_ = None
        if cw is None:
            return None
        if self.multilabel_:
            if cw != "balanced":
                raise ValueError(
                    "multi-label targets support class_weight='balanced' only"
                )
            pos = y.sum(0).astype(np.float64)
            self.pos_weight_ = (len(y) - pos) / np.maximum(pos, 1)
            return None
        return compute_sample_weight(cw, y)

    # ---- streamed targets (see TabularEstimator._stream_fit_data) ----------------------

    def _stream_y_check(self, targets: list[str]) -> None:
        if len(targets) != 1:
            raise ValueError(
                f"a streamed classifier takes one label column, got {targets} "
                "(multi-label targets need an in-memory X)"
            )

    def _stream_y_start(self, single: bool) -> Any:
        return {"counts": ValueCounts()}

    def _stream_y_update(self, state: Any, y: pd.DataFrame, where: str) -> None:
        s = y.iloc[:, 0]
        if s.isna().any():
            raise ValueError(
                f"y column {y.columns[0]!r} holds missing values (in {where})"
            )
        if state is None:  # warm start: every label must be a fitted class
            self._encode_target(self._stream_y_array(y))
        else:
            state["counts"].update(s)

    def _stream_y_finish(self, state: Any, sample: pd.DataFrame) -> None:
        counts = state["counts"].total()
        labels = counts.index.to_numpy()
        check_class_labels(labels, regressor="TabularRegressor")
        order = np.argsort(labels, kind="stable")
        self.multilabel_, self.pos_weight_ = False, None
        self.label_format_ = "single"
        self.classes_, n = labels[order], counts.to_numpy(np.float64)[order]
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has a single class ({self.classes_[0]!r}); a classifier needs at "
                "least 2"
            )
        cw = self.class_weight
        if cw == "balanced":  # as compute_sample_weight: n / (k * count)
            self._stream_cw = n.sum() / (len(n) * n)
        elif isinstance(cw, dict):
            self._stream_cw = np.array([cw.get(c, 1.0) for c in self.classes_])
        else:
            self._stream_cw = None

    def _stream_y_array(self, y: pd.DataFrame) -> np.ndarray:
        return y.iloc[:, 0].to_numpy()

    def _stream_weights(self, y: np.ndarray) -> np.ndarray | None:
        if self._stream_cw is None:
            return None
        return self._stream_cw[np.searchsorted(self.classes_, y)]

    def _out_size(self) -> int:
        return len(self.classes_)

    def _loss_func(self) -> Any:
        if self.multilabel_:
            pw = self.pos_weight_
            if pw is not None:
                pw = torch.as_tensor(pw, dtype=torch.float32)
            return per_member(partial(binary_cross_entropy, pos_weight=pw))
        return per_member(cross_entropy)

    def _combine(self) -> str:
        return "sigmoid" if self.multilabel_ else "softmax"

    def _constant_loss(self) -> float | None:
        # Uniform probabilities: cross-entropy log(K), whatever the class weights.
        return None if self.multilabel_ else float(np.log(len(self.classes_)))

    def _metrics(self) -> dict[str, Any]:
        return {"accuracy": label_accuracy if self.multilabel_ else accuracy}

    def predict_proba(self, X: Any, out: Any = None) -> Any:
        """Class probabilities ``(n, n_classes)`` (multi-label: each label's
        probability). For a streamed ``X`` (a parquet path or dataset), ``out`` (a
        path) writes them to a parquet file instead, a column per class."""

        def post(raw: torch.Tensor) -> np.ndarray:
            # In float64, so rows sum to 1 as scikit-learn's metrics check (a float32
            # softmax is off by ~1e-7, and log_loss warns).
            raw = raw.double()
            probs = (
                torch.sigmoid(raw) if self.multilabel_ else torch.softmax(raw, dim=1)
            )
            return probs.numpy()

        check_is_fitted(self)
        return self._streamed(X, post, [str(c) for c in self.classes_], out)

    def predict(self, X: Any, out: Any = None) -> Any:
        """Labels. Multi-label: the labels whose probability reaches 0.5, in the form
        ``y`` was given (a 0/1 indicator array, or an object array of label lists). For
        a streamed ``X``, ``out`` (a path) writes them to a parquet file instead (column
        ``prediction``; multi-label: a 0/1 column per label)."""
        check_is_fitted(self)
        lists = self.multilabel_ and self.label_format_ == "lists" and out is None

        def post(raw: torch.Tensor) -> np.ndarray:
            if not self.multilabel_:
                return self.classes_[raw.argmax(1).numpy()]
            hit = hits(torch.sigmoid(raw)).numpy()
            return labels_from_hits(
                hit, self.classes_, "lists" if lists else "indicator"
            )

        names = [str(c) for c in self.classes_] if self.multilabel_ else ["prediction"]
        return self._streamed(X, post, names, out)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Fitted before label lists were taken: the form y was given in follows.
        if "multilabel_" in state and "label_format_" not in state:
            state = {
                **state,
                "label_format_": "indicator" if state["multilabel_"] else "single",
            }
        super().__setstate__(state)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class TabularRegressor(RegressorMixin, TabularEstimator):
    __doc__ = (
        """Entity-embedding network for regression on DataFrames (one or several targets).

    Targets are standardised for training (after ``log1p`` where ``log_target`` says) and
    mapped back at prediction. With ``y_range`` the output goes through a scaled sigmoid
    that keeps predictions inside the range (fastai's recipe for bounded targets).

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    y_range : (low, high) or None, default=None
        Bounds of the predictions, in the target's own units (each may be a sequence, one
        per target). Leave some margin beyond the training range.
    log_target : bool or "auto", default="auto"
        Train on ``log1p(y)`` and predict ``expm1`` of the output (for positive, skewed
        targets such as prices or sales; needs ``y > -1``). ``"auto"`` does so for each
        target that is non-negative, has skewness above 1 and is less skewed after
        ``log1p`` (``log_target_`` says which).

    Attributes
    ----------
    preprocessor_ : TabularPreprocessor
    module_ : TabularModel
    y_mean_, y_scale_ : ndarray
        Standardisation of the (log) targets.
    log_target_ : ndarray of bool
        Per target, whether it trains on ``log1p(y)``.
    stream_targets_ : list of str or None
        The target columns of a streamed fit (they name ``predict``'s parquet output).
    history_, lr_, lr_find_, n_epochs_
        See :class:`deepfit.NeuralEstimator`.

    Example
    -------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> X = pd.DataFrame({"shop": rng.choice(["a", "b"], 500), "x": rng.normal(size=500)})
    >>> y = np.where(X["shop"] == "a", 10.0, 20.0) + X["x"]
    >>> reg = TabularRegressor(epochs=5, batch_size=32, verbose=0, random_state=0)
    >>> reg = reg.fit(X, y)
    >>> bool(reg.score(X, y) > 0.9)
    True
    """
    )

    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        *TabularEstimator._fitted_attributes,
        "log_target_",
        "y_mean_",
        "y_scale_",
        "_y_ndim",
    )

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **TabularEstimator._parameter_constraints,
        "y_range": [InstanceOf((tuple, list), "a (low, high) pair"), None],
        "log_target": [Boolean(), Options("auto")],
    }

    def __init__(
        self,
        layers: tuple[int, ...] = (200, 100),
        dropout: float = 0.1,
        embed_dropout: float = 0.0,
        embedding_sizes: dict[Any, int] | None = None,
        cat_features: list[Any] | None = None,
        cont_features: list[Any] | None = None,
        min_frequency: int = 5,
        int_levels: int = 200,
        unknown_rate: float = 0.01,
        weight_decay: float = 0.01,
        sparse_embeddings: bool | str = "auto",
        clip: bool = True,
        cont_bins: int = 16,
        cont_dim: int = 8,
        n_members: int = 8,
        holdout: str = "random",
        y_range: tuple[Any, Any] | None = None,
        log_target: bool | str = "auto",
        *,
        epochs: int = 50,
        lr: float | None = 1e-2,
        schedule: str = "one_cycle",
        batch_size: int = 256,
        validation_fraction: float | None = None,
        early_stopping: bool | int = 10,
        random_state: int | None = None,
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
        self.layers = layers
        self.dropout = dropout
        self.embed_dropout = embed_dropout
        self.embedding_sizes = embedding_sizes
        self.cat_features = cat_features
        self.cont_features = cont_features
        self.min_frequency = min_frequency
        self.int_levels = int_levels
        self.unknown_rate = unknown_rate
        self.weight_decay = weight_decay
        self.sparse_embeddings = sparse_embeddings
        self.clip = clip
        self.cont_bins = cont_bins
        self.cont_dim = cont_dim
        self.n_members = n_members
        self.holdout = holdout
        self.y_range = y_range
        self.log_target = log_target

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> TabularRegressor:
        """Fit on a DataFrame (or 2-D array) ``X`` and targets ``y`` (1-D, or 2-D for
        several targets); ``sample_weight`` weights rows in the loss. A streamed ``X``
        (parquet, an Arrow dataset) takes ``y`` as the target column's name (or a list
        of names), as :meth:`TabularClassifier.fit` describes; the target's mean and
        scale are exact, ``log_target="auto"`` reads the skewness of a sample."""
        return self._fit(X, y, eval_set=eval_set, sample_weight=sample_weight)

    def _check_target(self, y: Any, n: int, reset: bool) -> np.ndarray:
        try:
            arr = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"y must be numeric for regression ({err})") from err
        if arr.ndim == 0 or arr.ndim > 2:
            raise ValueError(f"y must be 1-D or 2-D, got shape {arr.shape}")
        if len(arr) != n:
            raise ValueError(f"y has {len(arr)} rows but X has {n}")
        if not np.isfinite(arr).all():
            bad = "NaN" if np.isnan(arr).any() else "infinite values"
            raise ValueError(f"y holds {bad}; drop those rows or fill them")
        if self.log_target is True and (arr <= -1).any():
            raise ValueError("log_target=True needs y > -1 (it trains on log1p(y))")
        if reset:
            self._y_ndim = arr.ndim
            self.log_target_ = self._choose_log(arr.reshape(n, -1))
            mat = self._forward_y(arr.reshape(n, -1))
            self.y_mean_ = mat.mean(0)
            with np.errstate(over="ignore", invalid="ignore"):  # _check_y_range
                std = mat.std(0)
            self.y_scale_ = np.where(std > 1e-12, std, 1.0)
            self._check_y_range(arr.reshape(n, -1).shape[1])
        elif arr.reshape(n, -1).shape[1] != len(self.y_mean_):
            raise ValueError(
                f"y has {arr.reshape(n, -1).shape[1]} targets, expected {len(self.y_mean_)}"
            )
        elif (arr.reshape(n, -1)[:, self.log_target_] <= -1).any():
            raise ValueError("y must be > -1 for the targets trained on log1p(y)")
        return arr

    # ---- streamed targets (see TabularEstimator._stream_fit_data) ----------------------

    def _stream_y_start(self, single: bool) -> Any:
        self._y_ndim = 1 if single else 2
        return {"y": None, "log": None}

    def _stream_y_update(self, state: Any, y: pd.DataFrame, where: str) -> None:
        arr = self._stream_y_array(y).reshape(len(y), -1)
        if not np.isfinite(arr).all():
            j = int(np.flatnonzero(~np.isfinite(arr).all(0))[0])
            raise ValueError(
                f"y column {y.columns[j]!r} holds NaN or infinite values (in {where}); "
                "drop those rows or fill them"
            )
        logs = (
            self.log_target_
            if state is None
            else np.full(arr.shape[1], self.log_target is True)
        )
        low = (arr <= -1) & logs
        if low.any():
            raise ValueError(
                f"y column {y.columns[int(np.flatnonzero(low.any(0))[0])]!r} holds "
                f"values <= -1 (in {where}); a log target trains on log1p(y)"
            )
        if state is not None:
            state["y"] = state["y"] or Moments(arr.shape[1])
            state["log"] = state["log"] or Moments(arr.shape[1])
            state["y"].update(arr)
            state["log"].update(
                np.where(arr > -1, np.log1p(np.maximum(arr, -1 + 1e-12)), np.nan)
            )

    def _stream_y_finish(self, state: Any, sample: pd.DataFrame) -> None:
        plain, logged = state["y"], state["log"]
        k = len(plain.n)
        # The skewness that log_target="auto" reads comes from the sample of rows.
        self.log_target_ = self._choose_log(self._stream_y_array(sample).reshape(-1, k))
        self.log_target_ &= (plain.low >= 0) | (self.log_target is True)
        mean, std, _, _ = plain.filled(np.zeros(k))
        lmean, lstd, _, _ = logged.filled(np.zeros(k))
        self.y_mean_ = np.where(self.log_target_, lmean, mean)
        std = np.where(self.log_target_, lstd, std)
        self.y_scale_ = np.where(std > 1e-12, std, 1.0)
        self._check_y_range(k)

    def _stream_y_array(self, y: pd.DataFrame) -> np.ndarray:
        try:
            arr = y.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"y column(s) {list(y.columns)} must be numeric for regression ({err})"
            ) from err
        return arr.ravel() if self._y_ndim == 1 else arr

    def _choose_log(self, y: np.ndarray) -> np.ndarray:
        """Which targets train on ``log1p``: all with ``log_target=True``; with
        ``"auto"`` those that are non-negative and right-skewed (skewness above 1) and
        less skewed after ``log1p``: prices, counts, sales."""
        k = y.shape[1]
        if self.log_target != "auto":
            return np.full(k, bool(self.log_target))
        out = np.zeros(k, dtype=bool)
        for j in range(k):
            col = y[:, j]
            if len(col) < 3 or col.min() < 0 or col.std() == 0:
                continue
            before = skew(col)
            out[j] = before > 1 and abs(skew(np.log1p(col))) < abs(before)
        return out

    def _forward_y(self, y: np.ndarray) -> np.ndarray:
        return np.where(self.log_target_, np.log1p(np.maximum(y, -1 + 1e-12)), y)

    def _inverse_y(self, y: np.ndarray) -> np.ndarray:
        return np.where(self.log_target_, np.expm1(np.where(self.log_target_, y, 0)), y)

    def _check_y_range(self, k: int) -> None:
        """The target's scaling is finite (else predictions would be ``inf``) and
        ``y_range`` fits the targets."""
        wide = ~(np.isfinite(self.y_mean_) & np.isfinite(self.y_scale_))
        if wide.any():
            raise ValueError(
                f"y{'' if k == 1 else f' (target {int(np.flatnonzero(wide)[0])})'} "
                "holds values too large to standardise (its variance overflows "
                "float64, from about 1e154); rescale it (other units, or log_target)"
            )
        if self.y_range is None:
            return
        try:
            lo, hi = self.y_range
            lo = np.broadcast_to(np.asarray(lo, dtype=np.float64), (k,))
            hi = np.broadcast_to(np.asarray(hi, dtype=np.float64), (k,))
        except (TypeError, ValueError) as err:
            raise ValueError(
                f"y_range must be (low, high), each a number or one per target; got "
                f"{self.y_range!r}"
            ) from err
        if not (lo < hi).all():
            raise ValueError(f"y_range needs low < high, got {self.y_range!r}")
        if (self.log_target_ & (lo <= -1)).any():
            raise ValueError(
                "y_range's low must be > -1 for targets trained on log1p(y) "
                f"(log_target={self.log_target!r})"
            )

    def _model_y_range(self) -> Any:
        if self.y_range is None:
            return None
        k = len(self.y_mean_)
        lo, hi = (
            np.broadcast_to(np.asarray(v, dtype=np.float64), (k,)) for v in self.y_range
        )
        lo = (self._forward_y(lo) - self.y_mean_) / self.y_scale_
        hi = (self._forward_y(hi) - self.y_mean_) / self.y_scale_
        return (lo.tolist(), hi.tolist())

    def _encode_target(self, y: np.ndarray) -> torch.Tensor:
        mat = (self._forward_y(y.reshape(len(y), -1)) - self.y_mean_) / self.y_scale_
        return torch.as_tensor(mat, dtype=torch.float32)

    def _out_size(self) -> int:
        return len(self.y_mean_)

    def _loss_func(self) -> Any:
        return per_member(mse)

    def _constant_loss(self) -> float | None:
        return 1.0  # the targets are standardised: the mean scores a variance of 1

    def predict(self, X: Any, out: Any = None) -> Any:
        """Predictions ``(n,)`` (or ``(n, n_targets)`` when fitted on several). For a
        streamed ``X`` (a parquet path or dataset), ``out`` (a path) writes them to a
        parquet file instead (column ``prediction``, or one per target)."""

        def post(raw: torch.Tensor) -> np.ndarray:
            y = self._inverse_y(
                raw.numpy().astype(np.float64) * self.y_scale_ + self.y_mean_
            )
            return y.ravel() if self._y_ndim == 1 else y

        check_is_fitted(self)
        k = len(self.y_mean_)
        names = getattr(self, "stream_targets_", None)
        if names is None or len(names) != k:
            names = ["prediction"] if k == 1 else [f"prediction_{j}" for j in range(k)]
        return self._streamed(X, post, list(names), out)
