"""``TabularClassifier``, the scikit-learn face of the tabular domain for labels, wiring
:class:`TabularPreprocessor` and :class:`TabularModel` to the engine through
:class:`tabular.base.TabularEstimator` (``TabularRegressor`` is in
:mod:`tabular.regressor`)."""

from __future__ import annotations

from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted

from deepfit.callbacks import Callback
from deepfit.data import check_class_labels
from deepfit.params import InstanceOf, Options
from deepfit.stream import ValueCounts
from deepfit.targets import (
    accuracy,
    binary_cross_entropy,
    cross_entropy,
    encode_targets,
    hits,
    label_accuracy,
    label_kind,
    labels_from_hits,
)
from tabular.base import PARAMETERS_DOC, TabularEstimator, per_member
from tabular.regressor import TabularRegressor  # defined here until 2026-12-08

__all__ = ["TabularClassifier", "TabularRegressor"]


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
        + PARAMETERS_DOC
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
        if hasattr(y, "__len__") and label_kind(y) == "lists":  # label lists
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
