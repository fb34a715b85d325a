"""``TabularClassifier`` and ``TabularRegressor``: the scikit-learn face of the tabular
domain, wiring :class:`TabularPreprocessor` and :class:`TabularModel` to the engine."""

from __future__ import annotations

import numbers
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils import TransformerTags
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn
from torch.nn import functional as F

from deepfit import FitData, NeuralEstimator, SparseAdamW, TensorBatches
from deepfit.callbacks import Callback
from deepfit.params import Boolean, InstanceOf, Interval, Options, SequenceOf
from tabular.model import TabularModel, splitter
from tabular.preprocessing import TabularPreprocessor, embedding_width, to_frame

__all__ = ["TabularClassifier", "TabularRegressor"]

# Rows per forward pass at prediction time.
_PREDICT_BATCH = 8192


def _weighted_mean(loss: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    return loss.mean() if w is None else (loss * w).sum() / w.sum().clamp_min(1e-12)


def _cross_entropy(
    pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None
) -> torch.Tensor:
    return _weighted_mean(F.cross_entropy(pred, y, reduction="none"), w)


def _bce(
    pred: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    if pos_weight is not None:
        pos_weight = pos_weight.to(pred.device)
    loss = F.binary_cross_entropy_with_logits(
        pred, y, pos_weight=pos_weight, reduction="none"
    )
    return _weighted_mean(loss.mean(1), w)


def _mse(
    pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None
) -> torch.Tensor:
    return _weighted_mean((pred.float() - y).pow(2).mean(1), w)


def _accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred.argmax(1) == y).float().mean())


def _label_accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float(((pred > 0).float() == y).float().mean())


class _TabularBase(NeuralEstimator):
    """Shared machinery of the tabular estimators (not used directly)."""

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **NeuralEstimator._parameter_constraints,
        "layers": [SequenceOf(Interval(numbers.Integral, 1, None))],
        "dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "embed_dropout": [Interval(numbers.Real, 0, 1, closed="left")],
        "embedding_sizes": [InstanceOf(dict, "a dict of column -> width"), None],
        "cat_features": [InstanceOf((list, tuple), "a list of columns"), None],
        "cont_features": [InstanceOf((list, tuple), "a list of columns"), None],
        "min_frequency": [Interval(numbers.Integral, 1, None)],
        "int_levels": [Interval(numbers.Integral, 0, None)],
        "unknown_rate": [Interval(numbers.Real, 0, 1, closed="left")],
        "weight_decay": [Interval(numbers.Real, 0, None)],
        "sparse_embeddings": [Options(True, False, "auto")],
    }

    # ---- data ---------------------------------------------------------------------------

    def _input_frame(self, X: Any, fitting: bool) -> pd.DataFrame:
        """``X`` as a DataFrame of the fitted columns: taken by name from a frame (their
        order and extra columns do not matter), by position from an array; scikit-learn's
        ``validate_data`` keeps ``feature_names_in_`` and ``n_features_in_`` and warns on
        a frame after a fit on an array, or the other way round."""
        df = to_frame(X)
        frame = isinstance(X, pd.DataFrame)
        if fitting:
            self._fitted_on_frame = frame
            validate_data(self, df if frame else X, skip_check_array=True)
            return df
        names = self.preprocessor_.feature_names_in_
        if self._fitted_on_frame and frame:
            if df.columns.equals(pd.Index(names)):
                return df  # the fitted columns in the fitted order: nothing to check
            missing = [c for c in names if c not in df.columns]
            if missing:
                raise ValueError(f"X is missing column(s) seen in fit: {missing}")
            df = df[list(names)]
        validate_data(self, df if frame else X, reset=False, skip_check_array=True)
        if self._fitted_on_frame and not frame:
            df = df.set_axis(list(names), axis=1)
        elif not self._fitted_on_frame and frame:
            df = df.set_axis([f"x{i}" for i in range(df.shape[1])], axis=1)
        return df

    def _fit_data(
        self,
        X: Any,
        y: Any,
        eval_set: tuple[Any, Any] | None,
        reset: bool,
        sample_weight: Any = None,
        **kwargs: Any,
    ) -> FitData:
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None"
            )
        df = self._input_frame(X, fitting=True)
        if len(df) == 0:
            raise ValueError(
                f"X has no rows (an empty frame): 0 sample(s) (shape={df.shape}) while "
                "a minimum of 1 is required."
            )
        if len(df) < 2:
            raise ValueError(
                f"need at least 2 samples to train, got n_samples = {len(df)}"
            )
        y_arr = self._check_target(y, len(df), reset)
        w = self._sample_weights(sample_weight, y_arr, len(df))
        if reset:
            self.preprocessor_ = TabularPreprocessor(
                cat_features=self.cat_features,
                cont_features=self.cont_features,
                min_frequency=self.min_frequency,
                int_levels=self.int_levels,
            )
            codes, cont = self.preprocessor_.fit_transform_arrays(
                df if self._fitted_on_frame else X
            )
            self._check_embedding_sizes()
        else:
            codes, cont = self.preprocessor_.transform_arrays(df)
        y_t = self._encode_target(y_arr)
        w_t = None if w is None else torch.as_tensor(w, dtype=torch.float32)
        x = (torch.from_numpy(codes), torch.from_numpy(cont))
        device = self._device()
        valid = None
        if eval_set is not None:
            Xv, yv = eval_set
            dfv = self._input_frame(Xv, fitting=False)
            yv_arr = self._check_target(yv, len(dfv), reset=False)
            cv, fv = self.preprocessor_.transform_arrays(dfv)
            valid = TensorBatches(
                (torch.from_numpy(cv), torch.from_numpy(fv)),
                self._encode_target(yv_arr),
                batch_size=_PREDICT_BATCH,
                device=device,
            )
            train_idx = np.arange(len(df))
        else:
            train_idx, valid_idx = self._validation_split(
                len(df), stratify=self._stratify(y_arr)
            )
            if valid_idx is not None:
                vi = torch.from_numpy(valid_idx)
                valid = TensorBatches(
                    tuple(t[vi] for t in x),
                    y_t[vi],
                    None if w_t is None else w_t[vi],
                    batch_size=_PREDICT_BATCH,
                    device=device,
                )
        if len(train_idx) < len(df):
            ti = torch.from_numpy(train_idx)
            x = tuple(t[ti] for t in x)
            y_t = y_t[ti]
            w_t = None if w_t is None else w_t[ti]
        n = len(y_t)
        train = TensorBatches(
            x,
            y_t,
            w_t,
            batch_size=min(self.batch_size, n),
            shuffle=True,
            # A last batch of one row would break batchnorm: drop the remainder then
            # (every epoch draws a new permutation, so no row is left out for good).
            drop_last=n % self.batch_size == 1,
            generator=self._generator(),
            device=device,
        )
        return FitData(train, valid)

    def _sample_weights(self, sample_weight: Any, y: np.ndarray, n: int) -> Any:
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64)
            if w.shape != (n,):
                raise ValueError(
                    f"sample_weight has shape {w.shape}, expected ({n},) to match X"
                )
            if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError(
                    "sample_weight must be finite, non-negative and not all zero"
                )
        cw = self._class_sample_weight(y)
        if cw is not None:
            w = cw if w is None else w * cw
        return w

    def _class_sample_weight(self, y: np.ndarray) -> np.ndarray | None:
        return None

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    def _check_embedding_sizes(self) -> None:
        sizes = self.embedding_sizes or {}
        unknown = [c for c in sizes if c not in self.preprocessor_.cat_names_]
        if unknown:
            raise ValueError(
                f"embedding_sizes names column(s) {unknown} that are not categorical; "
                f"categorical columns: {self.preprocessor_.cat_names_}"
            )
        for c, v in sizes.items():
            if not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"embedding width for {c!r} must be >= 1, got {v!r}")

    # ---- model --------------------------------------------------------------------------

    def _emb_szs(self) -> list[tuple[int, int]]:
        sizes = self.embedding_sizes or {}
        pre = self.preprocessor_
        return [
            (c, int(sizes.get(col, embedding_width(c))))
            for col, c in zip(pre.cat_names_, pre.cardinalities_, strict=True)
        ]

    def _sparse_flags(self) -> list[bool]:
        cards = self.preprocessor_.cardinalities_
        if self.sparse_embeddings == "auto":
            # A batch touches at most batch_size rows of a table. Past a few times that,
            # a dense step mostly rewrites rows (and Adam moments) that had no gradient,
            # and a row-wise sparse step is faster (benchmarks/tabular_throughput).
            return [c > 4 * self.batch_size for c in cards]
        return [bool(self.sparse_embeddings)] * len(cards)

    def _build_module(self) -> nn.Module:
        return TabularModel(
            self._emb_szs(),
            len(self.preprocessor_.cont_names_),
            self._out_size(),
            layers=tuple(self.layers),
            ps=self.dropout,
            embed_p=self.embed_dropout,
            y_range=self._model_y_range(),
            use_bn=True,
            unknown_p=self.unknown_rate,
            sparse=self._sparse_flags(),
        )

    def _model_y_range(self) -> Any:
        return None

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return splitter(module)

    def _opt_func(self, module: nn.Module) -> Any:
        # foreach: one fused call per group for the dense tensors (about 15% faster
        # per step than torch's per-tensor default on CPU, measured on an Adult model).
        return partial(
            SparseAdamW,
            betas=(0.9, 0.99),
            weight_decay=self.weight_decay,
            foreach=True,
        )

    # ---- prediction -----------------------------------------------------------------------

    def _outputs(self, X: Any) -> torch.Tensor:
        """Raw network outputs for ``X``, through the engine's prediction path, in
        chunks of 8192 rows."""
        check_is_fitted(self)
        df = self._input_frame(X, fitting=False)
        codes, cont = self.preprocessor_.transform_arrays(df)
        x = (torch.from_numpy(codes), torch.from_numpy(cont))
        return self._predict_outputs(TensorBatches(x, batch_size=_PREDICT_BATCH))

    def transform(self, X: Any) -> pd.DataFrame:
        """The learned entity embeddings of each categorical column
        (``<col>_emb<j>``) and the standardised continuous columns, as a DataFrame indexed
        like ``X``: features for another model (say gradient boosting)."""
        check_is_fitted(self)
        df = self._input_frame(X, fitting=False)
        codes, cont = self.preprocessor_.transform_arrays(df)
        parts, names = [], []
        for j, (col, emb) in enumerate(
            zip(self.preprocessor_.cat_names_, self.module_.embeds, strict=True)
        ):
            weight = emb.weight.detach().cpu().numpy()
            parts.append(weight[codes[:, j]])
            names += [f"{col}_emb{k}" for k in range(weight.shape[1])]
        parts.append(cont)
        names += list(self.preprocessor_.cont_names_)
        values = np.concatenate(parts, axis=1) if parts else np.empty((len(df), 0))
        return pd.DataFrame(values, columns=names, index=df.index)

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> pd.DataFrame:
        """``fit(X, y, **fit_params)``, then :meth:`transform` ``(X)``."""
        return self.fit(X, y, **fit_params).transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Column names of :meth:`transform`'s output."""
        check_is_fitted(self)
        names = [
            f"{col}_emb{k}"
            for col, emb in zip(
                self.preprocessor_.cat_names_, self.module_.embeds, strict=True
            )
            for k in range(emb.embedding_dim)
        ]
        return np.asarray(names + list(self.preprocessor_.cont_names_), dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.target_tags.multi_output = True
        tags.non_deterministic = False
        # transform() gives the learned embeddings: a transformer too.
        tags.transformer_tags = TransformerTags(preserves_dtype=[])
        return tags


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
    min_frequency : int, default=1
        Categories seen fewer times in training are treated as unknown.
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
        they are faster.
    epochs, lr, schedule, batch_size, validation_fraction, early_stopping, random_state,
    device, verbose, warm_start, amp, callbacks
        See :class:`deepfit.NeuralEstimator`.
"""


class TabularClassifier(ClassifierMixin, _TabularBase):
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

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_TabularBase._parameter_constraints,
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
        min_frequency: int = 1,
        int_levels: int = 200,
        unknown_rate: float = 0.01,
        weight_decay: float = 0.01,
        sparse_embeddings: bool | str = "auto",
        class_weight: str | dict | None = None,
        *,
        epochs: int = 5,
        lr: float | None = 1e-2,
        schedule: str = "one_cycle",
        batch_size: int = 256,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
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
        self.class_weight = class_weight

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> TabularClassifier:
        """Fit on a DataFrame (or 2-D array) ``X`` and labels ``y``; ``sample_weight``
        weights rows in the loss; ``eval_set=(X_valid, y_valid)`` is a validation set."""
        return self._fit(X, y, eval_set=eval_set, sample_weight=sample_weight)

    def _check_target(self, y: Any, n: int, reset: bool) -> np.ndarray:
        columns = list(y.columns) if isinstance(y, pd.DataFrame) else None
        arr = np.asarray(y)
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
        kind = type_of_target(arr, input_name="y")
        if kind not in ("binary", "multiclass", "multilabel-indicator"):
            if kind == "continuous" or kind == "continuous-multioutput":
                raise ValueError(
                    f"Unknown label type: {kind} (y holds non-integer numbers; use "
                    "TabularRegressor for regression)"
                )
            raise ValueError(f"Unknown label type: {kind}")
        if reset:
            self.multilabel_ = kind == "multilabel-indicator"
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

    def _out_size(self) -> int:
        return len(self.classes_)

    def _loss_func(self) -> Any:
        if self.multilabel_:
            pw = self.pos_weight_
            if pw is not None:
                pw = torch.as_tensor(pw, dtype=torch.float32)
            return partial(_bce, pos_weight=pw)
        return _cross_entropy

    def _metrics(self) -> dict[str, Any]:
        return {"accuracy": _label_accuracy if self.multilabel_ else _accuracy}

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities ``(n, n_classes)`` (multi-label: each label's
        probability)."""
        out = self._outputs(X)
        probs = torch.sigmoid(out) if self.multilabel_ else torch.softmax(out, dim=1)
        return probs.numpy().astype(np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Labels (multi-label: a 0/1 indicator array, threshold 0.5)."""
        out = self._outputs(X)
        if self.multilabel_:
            return (out > 0).numpy().astype(np.int64)
        return self.classes_[out.argmax(1).numpy()]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class TabularRegressor(RegressorMixin, _TabularBase):
    __doc__ = (
        """Entity-embedding network for regression on DataFrames (one or several targets).

    Targets are standardised for training (after ``log1p`` with ``log_target=True``) and
    mapped back at prediction. With ``y_range`` the output goes through a scaled sigmoid
    that keeps predictions inside the range (fastai's recipe for bounded targets).

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    y_range : (low, high) or None, default=None
        Bounds of the predictions, in the target's own units (each may be a sequence, one
        per target). Leave some margin beyond the training range.
    log_target : bool, default=False
        Train on ``log1p(y)`` and predict ``expm1`` of the output (for positive, skewed
        targets such as prices or sales; needs ``y > -1``).

    Attributes
    ----------
    preprocessor_ : TabularPreprocessor
    module_ : TabularModel
    y_mean_, y_scale_ : ndarray
        Standardisation of the (log) targets.
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

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **_TabularBase._parameter_constraints,
        "y_range": [InstanceOf((tuple, list), "a (low, high) pair"), None],
        "log_target": [Boolean()],
    }

    def __init__(
        self,
        layers: tuple[int, ...] = (200, 100),
        dropout: float = 0.1,
        embed_dropout: float = 0.0,
        embedding_sizes: dict[Any, int] | None = None,
        cat_features: list[Any] | None = None,
        cont_features: list[Any] | None = None,
        min_frequency: int = 1,
        int_levels: int = 200,
        unknown_rate: float = 0.01,
        weight_decay: float = 0.01,
        sparse_embeddings: bool | str = "auto",
        y_range: tuple[Any, Any] | None = None,
        log_target: bool = False,
        *,
        epochs: int = 5,
        lr: float | None = 1e-2,
        schedule: str = "one_cycle",
        batch_size: int = 256,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
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
        self.y_range = y_range
        self.log_target = log_target

    def fit(
        self,
        X: Any,
        y: Any,
        sample_weight: Any = None,
        eval_set: tuple[Any, Any] | None = None,
    ) -> TabularRegressor:
        """Fit on a DataFrame (or 2-D array) ``X`` and targets ``y`` (1-D, or 2-D for
        several targets); ``sample_weight`` weights rows in the loss."""
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
        if self.log_target and (arr <= -1).any():
            raise ValueError("log_target=True needs y > -1 (it trains on log1p(y))")
        if reset:
            self._y_ndim = arr.ndim
            mat = self._forward_y(arr.reshape(n, -1))
            self.y_mean_ = mat.mean(0)
            std = mat.std(0)
            self.y_scale_ = np.where(std > 1e-12, std, 1.0)
            self._check_y_range(arr.reshape(n, -1).shape[1])
        elif arr.reshape(n, -1).shape[1] != len(self.y_mean_):
            raise ValueError(
                f"y has {arr.reshape(n, -1).shape[1]} targets, expected {len(self.y_mean_)}"
            )
        return arr

    def _forward_y(self, y: np.ndarray) -> np.ndarray:
        return np.log1p(y) if self.log_target else y

    def _check_y_range(self, k: int) -> None:
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
        if self.log_target and (lo <= -1).any():
            raise ValueError("with log_target=True, y_range's low must be > -1")

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
        return _mse

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``(n,)`` (or ``(n, n_targets)`` when fitted on several)."""
        out = self._outputs(X).numpy().astype(np.float64)
        y = out * self.y_scale_ + self.y_mean_
        if self.log_target:
            y = np.expm1(y)
        return y.ravel() if self._y_ndim == 1 else y
