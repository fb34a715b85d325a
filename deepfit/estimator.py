"""``NeuralEstimator``: the scikit-learn face shared by every deepfit estimator.

A domain estimator subclasses it, lists its own parameters *and* the common ones in its
``__init__`` (scikit-learn reads parameters from the signature), and implements three
hooks:

- ``_fit_data(X, y, eval_set, reset, **kw) -> (train_batches, valid_batches | None)``:
  validate the input, fit preprocessing when ``reset`` (not when warm-starting), and
  return batches ready for the learner;
- ``_build_module() -> nn.Module``, from fitted attributes only;
- ``_loss_func()``; optionally ``_layer_groups(module)``, ``_metrics()``, ``_opt_func()``.

``fit`` is then inherited; estimators with a multi-stage recipe (vision, text) override it
and reuse ``_seeded``, ``_make_learner``, ``_resolve_lr`` and ``_train``.
"""

from __future__ import annotations

import contextlib
import copy
import numbers
from collections.abc import Iterable, Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

from deepfit.callbacks import Callback, EarlyStopping, History, ProgressBar
from deepfit.data import train_valid_split
from deepfit.learner import Learner, _call_model, to_device
from deepfit.lr_finder import LRFinderResult
from deepfit.schedules import Schedule, get_schedule

__all__ = ["NeuralEstimator", "resolve_device"]


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` -> CUDA if available, then MPS, then CPU; anything else as given."""
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(device)


class _PackedModule:
    """A module pickled as a weightless skeleton (meta tensors) plus a CPU state dict,
    so a model fitted on a GPU unpickles on a machine without one."""

    def __init__(self, module: nn.Module) -> None:
        memo: dict[int, Any] = {}
        self.state: dict[str, torch.Tensor] = {}
        for name, p in module.named_parameters():
            self.state[name] = p.detach().cpu()
            memo[id(p)] = nn.Parameter(
                torch.empty_like(p, device="meta"), requires_grad=p.requires_grad
            )
        for name, b in module.named_buffers():
            self.state[name] = b.detach().cpu()
            memo[id(b)] = torch.empty_like(b, device="meta")
        # Tied weights share one id, so they share one placeholder (and stay tied).
        self.skeleton = copy.deepcopy(module, memo)

    def unpack(self) -> nn.Module:
        memo: dict[int, Any] = {}
        for name, p in self.skeleton.named_parameters():
            memo[id(p)] = nn.Parameter(self.state[name], requires_grad=p.requires_grad)
        for name, b in self.skeleton.named_buffers():
            memo[id(b)] = self.state[name]
        return copy.deepcopy(self.skeleton, memo)


class NeuralEstimator(BaseEstimator):
    """Base class of deepfit's estimators (not used directly).

    Parameters
    ----------
    epochs : int, default=5
        Passes over the training data.
    lr : float, sequence of float, slice or None, default=None
        Peak learning rate (one per layer group with a sequence; a ``slice(lo, hi)`` spreads
        rates geometrically over the groups). ``None`` runs the learning-rate finder first
        and uses its suggestion (stored in ``lr_find_``).
    schedule : {"one_cycle", "sgdr", "constant"} or Schedule, default="one_cycle"
    batch_size : int, default=256
    validation_fraction : float or None, default=None
        Share of the training rows held out for validation (stratified for classifiers).
        ``None``: 0.1 when ``early_stopping`` is on, otherwise no hold-out. Ignored when
        ``fit`` gets an ``eval_set``.
    early_stopping : bool or int, default=False
        Stop when the validation loss has not improved for 3 epochs (or for this many,
        given an int) and keep the best weights.
    random_state : int, RandomState or None, default=None
        Seeds weight initialisation, shuffling, dropout and the validation split; the same
        value gives the same predictions on CPU.
    device : str, default="auto"
        ``"auto"`` picks CUDA, then MPS, then CPU.
    verbose : int, default=1
        0 silent; 1 progress bar and epoch lines when standard error is a terminal; 2
        always.
    warm_start : bool, default=False
        Fit again from the current weights (and fitted preprocessing) instead of afresh.
    amp : bool, default=False
        bfloat16 mixed precision on CUDA.
    callbacks : list of Callback or None, default=None
        Extra callbacks for the training loop.

    Attributes
    ----------
    module_ : nn.Module
        The fitted network.
    history_ : pandas.DataFrame
        One row per epoch (losses, metrics, rate, seconds); warm-started fits append.
    lr_ : float, list or slice
        The rate actually used.
    lr_find_ : LRFinderResult
        The finder's sweep, when ``lr=None``.
    n_epochs_ : int
        Epochs actually trained (fewer after early stopping or Ctrl-C).
    interrupted_ : bool
        Whether Ctrl-C ended the last fit (the model is usable; see ``Learner.fit``).
    """

    def __init__(
        self,
        *,
        epochs: int = 5,
        lr: float | None = None,
        schedule: str | Schedule = "one_cycle",
        batch_size: int = 256,
        validation_fraction: float | None = None,
        early_stopping: bool | int = False,
        random_state: int | np.random.RandomState | None = None,
        device: str = "auto",
        verbose: int = 1,
        warm_start: bool = False,
        amp: bool = False,
        callbacks: list[Callback] | None = None,
    ) -> None:
        self.epochs = epochs
        self.lr = lr
        self.schedule = schedule
        self.batch_size = batch_size
        self.validation_fraction = validation_fraction
        self.early_stopping = early_stopping
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.warm_start = warm_start
        self.amp = amp
        self.callbacks = callbacks

    # ---- hooks for subclasses -------------------------------------------------------

    def _fit_data(
        self,
        X: Any,
        y: Any,
        eval_set: tuple[Any, Any] | None,
        reset: bool,
        **kwargs: Any,
    ) -> tuple[Iterable, Iterable | None]:
        raise NotImplementedError

    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _loss_func(self) -> Any:
        raise NotImplementedError

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return [module]

    def _metrics(self) -> dict[str, Any]:
        return {}

    def _opt_func(self) -> Any:
        wd = getattr(self, "weight_decay", 0.01)
        return partial(torch.optim.AdamW, betas=(0.9, 0.99), weight_decay=wd)

    # ---- shared machinery -----------------------------------------------------------

    def _check_common_params(self) -> None:
        def positive_int(name: str) -> None:
            v = getattr(self, name)
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        positive_int("epochs")
        positive_int("batch_size")
        vf = self.validation_fraction
        if vf is not None and not (isinstance(vf, numbers.Real) and 0 <= vf < 1):
            raise ValueError(
                f"validation_fraction must be in [0, 1) or None, got {vf!r}"
            )
        es = self.early_stopping
        if not isinstance(es, (bool, numbers.Integral)) or (
            not isinstance(es, bool) and es < 1
        ):
            raise ValueError(
                f"early_stopping must be a bool or a patience >= 1, got {es!r}"
            )
        lr = self.lr
        if isinstance(lr, numbers.Real) and not lr > 0:
            raise ValueError(f"lr must be > 0 (or None for the finder), got {lr!r}")
        get_schedule(self.schedule)
        resolve_device(self.device)

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Run under a seed drawn from ``random_state``, leaving torch's global random
        state as it was. Sets ``self._seed`` for generators made inside."""
        rng = check_random_state(self.random_state)
        self._seed = int(rng.randint(0, 2**31 - 1))
        device = resolve_device(self.device)
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed)
            yield

    def _generator(self, offset: int = 1) -> torch.Generator:
        """A CPU generator for shuffling, derived from the fit's seed."""
        return torch.Generator().manual_seed(self._seed + offset)

    def _device(self) -> torch.device:
        return resolve_device(self.device)

    def _validation_split(
        self, n: int, stratify: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Train and validation row indices following ``validation_fraction``."""
        frac = self.validation_fraction
        if frac is None:
            frac = 0.1 if self.early_stopping else 0.0
        if frac == 0:
            return np.arange(n), None
        return train_valid_split(n, frac, random_state=self._seed, stratify=stratify)

    def _make_learner(self, module: nn.Module | None = None) -> Learner:
        module = self.module_ if module is None else module
        return Learner(
            module,
            self._loss_func(),
            layer_groups=self._layer_groups(module),
            opt_func=self._opt_func(),
            metrics=self._metrics(),
            device=self._device(),
            amp=self.amp,
        )

    def _resolve_lr(self, learner: Learner, batches: Iterable, **finder_kw: Any) -> Any:
        if self.lr is not None:
            return self.lr
        result = learner.lr_find(batches, **finder_kw)
        self.lr_find_ = result
        return result.suggestion

    def _train(
        self,
        learner: Learner,
        train: Iterable,
        valid: Iterable | None,
        lr: Any,
        epochs: int | None = None,
        schedule: Any = None,
        extra_callbacks: Iterable[Callback] = (),
    ) -> Learner:
        """One ``learner.fit`` with the estimator's callbacks; updates ``history_``."""
        history = History()
        cbs: list[Callback] = [history, ProgressBar(self.verbose), *extra_callbacks]
        if self.early_stopping and valid is not None:
            patience = 3 if self.early_stopping is True else int(self.early_stopping)
            cbs.append(EarlyStopping(patience=patience))
        cbs += list(self.callbacks or [])
        learner.fit(
            train,
            epochs or self.epochs,
            lr,
            self.schedule if schedule is None else schedule,
            cbs,
            valid,
        )
        frame = history.to_frame()
        previous = getattr(self, "history_", None)
        if previous is not None and len(previous) and len(frame):
            frame["epoch"] += int(previous["epoch"].max()) + 1
            frame = pd.concat([previous, frame], ignore_index=True)
        self.history_ = frame
        self.n_epochs_ = len(history.epochs)
        self.interrupted_ = learner.interrupted
        self.lr_ = lr
        return learner

    def _is_warm(self) -> bool:
        return bool(self.warm_start) and hasattr(self, "module_")

    def _fit(self, X: Any, y: Any = None, eval_set: Any = None, **kwargs: Any):
        self._check_common_params()
        reset = not self._is_warm()
        if reset:
            self.history_ = None
        with self._seeded():
            train, valid = self._fit_data(
                X, y, eval_set=eval_set, reset=reset, **kwargs
            )
            if reset:
                self.module_ = self._build_module()
            self.module_.to(self._device())
            learner = self._make_learner()
            lr = self._resolve_lr(learner, train)
            self._train(learner, train, valid, lr)
        return self

    def fit(self, X: Any, y: Any = None, eval_set: tuple[Any, Any] | None = None):
        """Fit on ``X`` (and ``y``); ``eval_set=(X_valid, y_valid)`` gives a validation
        set (otherwise ``validation_fraction``). Returns ``self``."""
        return self._fit(X, y, eval_set=eval_set)

    def lr_find(self, X: Any, y: Any = None, **kwargs: Any) -> LRFinderResult:
        """Run the learning-rate finder on a fresh copy of this estimator (this one is
        left as it was). Keyword arguments go to :func:`deepfit.lr_find`; call ``.plot()``
        on the result to see the curve."""
        est = clone(self)
        est._check_common_params()
        with est._seeded():
            train, _ = est._fit_data(X, y, eval_set=None, reset=True)
            module = est._build_module().to(est._device())
            est.module_ = module
            return est._make_learner(module).lr_find(train, **kwargs)

    def _predict_outputs(
        self, batches: Iterable, module: nn.Module | None = None
    ) -> torch.Tensor:
        """The network's outputs on ``batches``, in eval mode, as one CPU float tensor;
        ``module`` (default ``module_``) is what is called on each batch's inputs."""
        check_is_fitted(self)
        device = self._device()
        module = self.module_ if module is None else module
        if next(module.parameters()).device != device:
            module.to(device)
        module.eval()
        outs = []
        ctx = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.amp and device.type == "cuda"
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), ctx:
            for batch in batches:
                xb = to_device(batch[0], device)
                out = _call_model(module, xb)
                outs.append(out[0] if isinstance(out, (tuple, list)) else out)
        return torch.cat(outs).float().cpu()

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "module_")

    # ---- pickling -------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # a copy: never touch self.__dict__
        for k, v in list(state.items()):
            if isinstance(v, nn.Module):
                state[k] = _PackedModule(v)
            elif isinstance(v, torch.Tensor):
                state[k] = v.detach().cpu()
            elif isinstance(v, torch.Generator):
                state[k] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = {
            k: v.unpack() if isinstance(v, _PackedModule) else v
            for k, v in state.items()
        }
        super().__setstate__(state)
