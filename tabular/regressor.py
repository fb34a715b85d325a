"""``TabularRegressor``: the entity-embedding network for regression targets."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from scipy.stats import skew
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted

from deepfit.callbacks import Callback
from deepfit.params import Boolean, InstanceOf, Options
from deepfit.stream import Moments
from deepfit.targets import (
    mse,
)
from tabular.base import PARAMETERS_DOC, TabularEstimator, per_member

__all__ = ["TabularRegressor"]


class TabularRegressor(RegressorMixin, TabularEstimator):
    __doc__ = (
        """Entity-embedding network for regression on DataFrames (one or several targets).

    Targets are standardised for training (after ``log1p`` where ``log_target`` says) and
    mapped back at prediction. With ``y_range`` the output goes through a scaled sigmoid
    that keeps predictions inside the range (fastai's recipe for bounded targets).

    Parameters
    ----------"""
        + PARAMETERS_DOC
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

    # Defined in tabular/estimator.py until 2026-12-08: model files name it so.
    _moved_from: ClassVar[tuple[str, ...]] = ("tabular.estimator.TabularRegressor",)

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
