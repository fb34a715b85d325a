"""A minimal estimator on numeric arrays built on NeuralEstimator, to test the base class
the way a domain uses it."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from torch import nn

from deepfit import NeuralEstimator, TensorBatches


class TiedNet(nn.Module):
    """Two layers sharing one weight (as a tied language-model decoder does)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.enc = nn.Linear(n, n)
        self.dec = nn.Linear(n, n)
        self.dec.weight = self.enc.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dec(torch.relu(self.enc(x)))


class ToyRegressor(RegressorMixin, NeuralEstimator):
    def __init__(
        self,
        n_hidden: int = 16,
        *,
        epochs: int = 5,
        lr: float | None = 0.01,
        schedule: str = "one_cycle",
        batch_size: int = 32,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
        random_state: int | None = None,
        device: str = "auto",
        verbose: int = 0,
        warm_start: bool = False,
        amp: bool = False,
        callbacks: list | None = None,
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
        self.n_hidden = n_hidden

    def _fit_data(self, X, y, eval_set, reset, **kwargs):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.float32, y_numeric=True)
        if len(X) < 2:
            raise ValueError(
                f"need at least 2 samples to train, got n_samples={len(X)}"
            )
        if reset:
            self.mean_, self.scale_ = X.mean(0), X.std(0) + 1e-6
            self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() + 1e-6)
        xt = torch.from_numpy((X - self.mean_) / self.scale_)
        yt = torch.from_numpy(((y - self.y_mean_) / self.y_scale_).astype(np.float32))
        train_idx, valid_idx = self._validation_split(len(X))
        dev = self._device()
        train = TensorBatches(
            xt[train_idx],
            yt[train_idx],
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=True,
            generator=self._generator(),
            device=dev,
        )
        valid = None
        if valid_idx is not None:
            valid = TensorBatches(
                xt[valid_idx], yt[valid_idx], batch_size=256, device=dev
            )
        return train, valid

    def _build_module(self) -> nn.Module:
        return nn.Sequential(
            nn.Linear(self.n_features_in_, self.n_hidden),
            nn.BatchNorm1d(self.n_hidden),
            nn.ReLU(),
            nn.Dropout(0.1),
            nn.Linear(self.n_hidden, 1),
            nn.Flatten(0),
        )

    def _loss_func(self):
        return nn.functional.mse_loss

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float32)
        xt = torch.from_numpy((X - self.mean_) / self.scale_)
        out = self._predict_outputs(TensorBatches(xt, batch_size=1024))
        return out.numpy().astype(np.float64) * self.y_scale_ + self.y_mean_
