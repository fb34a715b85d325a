"""``NeuralEstimator``: the scikit-learn face shared by every deepfit estimator.

A domain estimator subclasses it, lists its own parameters *and* the common ones in its
``__init__`` (scikit-learn reads parameters from the signature), declares their
constraints in ``_parameter_constraints`` (merged with the base class's), and implements
the hooks that describe *what* it trains:

- ``_fit_data(X, y, eval_set, reset, **kw) -> FitData`` (or a ``(train, valid)``
  pair): validate the input, fit preprocessing when ``reset`` (not when warm-starting),
  and return the batches;
- ``_build_module() -> nn.Module``, from fitted attributes only;
- ``_loss_func()``; optionally ``_layer_groups(module)``, ``_metrics()``,
  ``_opt_func(module)``, ``_learner_callbacks()`` (callbacks of every training step,
  the finder's included), ``_finder_params()`` (how the finder sweeps and reads its
  curve) and ``_check_params()`` (checks across parameters);
- ``_recipe(learner, data, history) -> lr``: how it trains (default: one
  ``learner.fit`` at the rate ``_resolve_lr`` gives; the transfer-learning domains use
  ``learner.fine_tune``).

``fit``, ``lr_find`` and the prediction path (``_predict_outputs``) are the engine's.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import numbers
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from torch import nn

import deepfit.distributed as distributed
from deepfit.callbacks import Callback, EarlyStopping, History, ProgressBar, report
from deepfit.data import train_valid_split
from deepfit.files import atomic_path
from deepfit.learner import Learner
from deepfit.lr_finder import LRFinderResult
from deepfit.params import (
    PACKAGES,
    Boolean,
    InstanceOf,
    Interval,
    InvalidParameterError,
    Options,
    Satisfies,
    SequenceOf,
    validate_params,
    warn,
)
from deepfit.persist import persistable, save
from deepfit.schedules import Schedule

__all__ = ["Decided", "FitData", "NeuralEstimator", "resolve_device"]


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


class _SweepDone(Exception):
    """Ends ``lr_find``'s run of the recipe at its sweep, carrying the result."""

    def __init__(self, result: LRFinderResult) -> None:
        super().__init__("learning-rate sweep done")
        self.result = result


@dataclass
class Decided:
    """What a recipe decided: the rate it trained at (the finder's, say), and whether
    Ctrl-C cut it short in a stage the estimator's History did not follow (a language
    model's, say). A recipe may also return the rate alone."""

    lr: Any
    interrupted: bool = False


@dataclass
class FitData:
    """What ``_fit_data`` hands the recipe: training batches, validation batches (or
    ``None``) and, optionally, the batches the finder sweeps (default: the training
    ones, or a function that makes them when a sweep needs them). A domain whose recipe
    needs more (images to resize, a language model's texts) subclasses it."""

    train: Iterable
    valid: Iterable | None = None
    finder: Iterable | Callable[[], Iterable] | None = None
    reset: bool = True  # False when warm-starting (set by ``fit``)
    # The training loss of a constant prediction (the mean, or uniform classes), when
    # the domain knows it: a fit that ends far above it learned nothing, and says so.
    constant_loss: float | None = None

    @property
    def finder_batches(self) -> Iterable:
        """``finder`` (made now if it is a function), else the training batches."""
        if self.finder is None:
            return self.train
        return self.finder() if callable(self.finder) else self.finder


def _warn_if_unlearned(history: History, constant: float | None, lr: Any) -> None:
    """Warn when the last epoch's training loss is well above what a constant
    prediction scores (``constant``): the rate was too high, and the model is worse
    than predicting the mean. The margin (1.5x) leaves room for dropout's noise."""
    last = history.epochs[-1].get("train_loss") if history.epochs else None
    if constant is None or last is None or not last > 1.5 * constant:
        return
    warn(
        f"the training loss ended at {last:.4g}, above the {constant:.4g} of a constant "
        f"prediction: the model learned nothing useful at lr={lr}. Try a lower lr (or "
        "lr=None for the finder's)",
        RuntimeWarning,
    )


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
    diverged_ : bool
        The training loss became NaN or infinite: training stopped there and the weights
        of the last finite epoch were put back (a first epoch that diverges raises
        ``FloatingPointError`` instead).
    interrupted_ : bool
        Whether Ctrl-C ended the last fit (the model is usable; see ``Learner.fit``).
    """

    # What a fitted estimator always holds besides module_: a model file that lacks
    # one is refused (deepfit.load). Subclasses add theirs.
    _fitted_attributes: ClassVar[tuple[str, ...]] = (
        "history_",
        "n_epochs_",
        "interrupted_",
        "diverged_",
        "lr_",
    )

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Every estimator class of deepfit's packages may be saved (deepfit.save) and
        # is on the loading allow-list; a user's subclass elsewhere is not.
        super().__init_subclass__(**kwargs)
        if cls.__module__.split(".")[0] in PACKAGES:
            persistable(cls, *cls.__dict__.get("_moved_from", ()))

    # Subclasses merge their own: {**NeuralEstimator._parameter_constraints, ...}.
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "epochs": [Interval(numbers.Integral, 1, None)],
        "lr": [
            Interval(numbers.Real, 0, None, closed="neither"),
            SequenceOf(Interval(numbers.Real, 0, None, closed="neither")),
            InstanceOf(slice, "a slice(lo, hi) of rates"),
            None,
        ],
        "schedule": [
            Options("one_cycle", "sgdr", "constant"),
            InstanceOf(Schedule, "a Schedule"),
        ],
        "batch_size": [Interval(numbers.Integral, 1, None)],
        "validation_fraction": [Interval(numbers.Real, 0, 1, closed="left"), None],
        "early_stopping": [Boolean(), Interval(numbers.Integral, 1, None)],
        "random_state": [
            Interval(numbers.Integral, 0, 2**32 - 1),
            InstanceOf(np.random.RandomState, "a numpy RandomState"),
            None,
        ],
        "device": [
            Satisfies(resolve_device, '"auto" or a torch device ("cpu", "cuda:0", ...)')
        ],
        "verbose": [Boolean(), Interval(numbers.Integral, 0, None)],
        "warm_start": [Boolean()],
        "amp": [Boolean()],
        "callbacks": [SequenceOf(InstanceOf(Callback, "a Callback"), min_len=0), None],
    }

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
    ) -> FitData:
        raise NotImplementedError

    def _build_module(self) -> nn.Module:
        raise NotImplementedError

    def _loss_func(self) -> Any:
        raise NotImplementedError

    def _layer_groups(self, module: nn.Module) -> list[Any]:
        return [module]

    def _metrics(self) -> dict[str, Any]:
        return {}

    def _opt_func(self, module: nn.Module) -> Any:
        wd = getattr(self, "weight_decay", 0.01)
        return partial(torch.optim.AdamW, betas=(0.9, 0.99), weight_decay=wd)

    def _learner_callbacks(self) -> list[Callback]:
        """Callbacks of every training step of this estimator's learner, the finder's
        sweep included (gradient clipping, say)."""
        return []

    def _finder_params(self) -> dict[str, Any]:
        """Keyword arguments of the finder's sweep when ``lr=None`` (its range, length,
        suggestion rule)."""
        return {}

    def _check_params(self) -> None:
        """Checks across parameters that ``_parameter_constraints`` cannot state."""

    def _recipe(self, learner: Learner, data: FitData, history: History) -> Any:
        """Train ``learner`` on ``data`` and return the rate used (the default: one
        ``fit`` of ``epochs`` at ``lr`` or the finder's suggestion)."""
        lr = self._resolve_lr(learner, data.finder_batches)
        learner.fit(
            data.train,
            self.epochs,
            lr,
            self.schedule,
            self._fit_callbacks(history, data.valid),
            data.valid,
        )
        return lr

    # ---- shared machinery -----------------------------------------------------------

    def _check_loaded(self, fitted: bool) -> None:
        """A loaded estimator's fields against its class (``deepfit.load``, before it
        builds the network): its parameters within their constraints and, when
        ``fitted``, every attribute of ``_fitted_attributes`` there. ``ValueError``
        naming the field."""
        try:
            validate_params(self)
        except InvalidParameterError as err:
            raise ValueError(f"field {err}") from err
        missing = [a for a in self._fitted_attributes if a not in self.__dict__]
        if fitted and missing:
            raise ValueError(
                f"does not describe a fitted {type(self).__name__}: missing fitted "
                f"attribute(s) {missing}"
            )

    def _validate_params(self) -> None:
        """Every declared constraint, then the checks across parameters: once, at the
        top of ``fit`` and ``lr_find``, before any data is read."""
        validate_params(self)
        self._check_params()

    @contextlib.contextmanager
    def _seeded(self) -> Iterator[None]:
        """Run under a seed drawn from ``random_state``, leaving torch's global random
        state as it was. Sets ``self._seed`` for generators made inside."""
        rng = check_random_state(self.random_state)
        # Rank 0's seed on every rank of a distributed fit: the same split, the same
        # batches and the same initial weights everywhere.
        self._seed = distributed.broadcast_object(int(rng.randint(0, 2**31 - 1)))
        device = self._device()
        devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seed)
            yield

    def _generator(self, offset: int = 1) -> torch.Generator:
        """A CPU generator for shuffling, derived from the fit's seed."""
        return torch.Generator().manual_seed(self._seed + offset)

    def _device(self) -> torch.device:
        device = resolve_device(self.device)
        if device.type == "cuda" and device.index is None and distributed.is_active():
            return torch.device("cuda", distributed.local_rank())
        return device

    def _holdout_fraction(self) -> float:
        """``validation_fraction``, or its default: 0.1 with early stopping, else 0."""
        frac = self.validation_fraction
        if frac is None:
            return 0.1 if self.early_stopping else 0.0
        return float(frac)

    def _validation_split(
        self, n: int, stratify: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Train and validation row indices following ``validation_fraction``."""
        frac = self._holdout_fraction()
        if frac == 0:
            return np.arange(n), None
        return train_valid_split(n, frac, random_state=self._seed, stratify=stratify)

    def _make_learner(
        self, module: nn.Module | None = None, **overrides: Any
    ) -> Learner:
        """A learner for ``module`` (default ``module_``) from the estimator's hooks;
        ``overrides`` replace any of the Learner's arguments (a second model of the
        recipe, say a language model, brings its own loss and groups)."""
        module = self.module_ if module is None else module
        hooks: dict[str, Callable[[], Any]] = {
            "loss_func": self._loss_func,
            "layer_groups": partial(self._layer_groups, module),
            "opt_func": partial(self._opt_func, module),
            "metrics": self._metrics,
            "callbacks": self._learner_callbacks,
        }
        kwargs = {k: overrides[k] if k in overrides else f() for k, f in hooks.items()}
        kwargs.update(device=self._device(), amp=self.amp)
        return Learner(module, **kwargs)

    def _fit_callbacks(
        self, history: History, valid: Iterable | None
    ) -> list[Callback]:
        """The callbacks of one fit: history, progress, early stopping (when there is a
        validation set) and the user's."""
        verbose = self.verbose if distributed.is_main_process() else 0
        cbs: list[Callback] = [history, ProgressBar(verbose)]
        if self.early_stopping and valid is not None:
            patience = 3 if self.early_stopping is True else int(self.early_stopping)
            cbs.append(EarlyStopping(patience=patience))
        return cbs + list(self.callbacks or [])

    def _resolve_lr(self, learner: Learner, batches: Iterable) -> Any:
        """``lr``, or with ``lr=None`` the finder's suggestion from a sweep of
        ``learner`` on ``batches`` as it stands (say with its body frozen); the sweep
        is kept in ``lr_find_``. The one place where ``lr=None`` is resolved."""
        sweep = getattr(self, "_sweep_kwargs", None)
        if sweep is None and self.lr is not None:
            return self.lr
        result = learner.lr_find(batches, **{**self._finder_params(), **(sweep or {})})
        if sweep is not None:
            raise _SweepDone(result)
        self.lr_find_ = result
        report(
            f"learning-rate finder: lr={result.suggestion:.3g} "
            f"({'reliable' if result.reliable else 'unreliable'} curve of "
            f"{len(result.lrs)} steps)",
            self.verbose if distributed.is_main_process() else 0,
        )
        if not result.reliable:
            warn(
                "the learning-rate finder's curve is unreliable (too short, or the loss "
                f"hardly fell); using lr={result.suggestion:g}. Pass lr to choose it "
                "yourself.",
                RuntimeWarning,
            )
        return result.suggestion

    def _eval_pair(self, eval_set: Any) -> tuple[Any, Any] | None:
        """``eval_set`` as ``(X_valid, y_valid)``, checked once for every estimator: a
        pair for those that learn targets; for those that learn from ``X`` alone, ``X``
        or ``(X,)`` (``y_valid`` is then None)."""
        if eval_set is None:
            return None
        sequence = isinstance(eval_set, (tuple, list))
        if self.__sklearn_tags__().target_tags.required:
            if not (sequence and len(eval_set) == 2):
                raise ValueError(
                    f"eval_set must be a pair (X_valid, y_valid), got "
                    f"{type(eval_set).__name__}"
                    + (f" of length {len(eval_set)}" if sequence else "")
                )
            return tuple(eval_set)
        if isinstance(eval_set, tuple) and len(eval_set) in (1, 2):
            return (eval_set[0], None)
        return (eval_set, None)

    def _is_warm(self) -> bool:
        return bool(self.warm_start) and hasattr(self, "module_")

    def _fit(self, X: Any, y: Any = None, eval_set: Any = None, **kwargs: Any):
        """The one ``fit``: checks, data, module, learner, the recipe, the record. Atomic:
        a fit that raises (bad input found late, a diverged first epoch, an error in a
        callback) leaves the estimator exactly as it was, weights included."""
        self._validate_params()
        for cb in self.callbacks or []:
            cb.check()
        eval_set = self._eval_pair(eval_set)
        distributed.init_from_env(resolve_device(self.device))  # under torchrun
        reset = not self._is_warm()
        saved = self.__dict__.copy()
        weights = None if reset else copy.deepcopy(self.module_.state_dict())
        try:
            with self._seeded():
                data = self._fit_data(X, y, eval_set=eval_set, reset=reset, **kwargs)
                if not isinstance(data, FitData):  # a (train, valid) pair
                    data = FitData(*data)
                data.reset = reset
                if reset:
                    self.module_ = self._build_module()
                if distributed.is_active():  # dropout masks of their own per rank
                    torch.manual_seed(self._seed + distributed.rank())
                self.module_.to(self._device())
                learner = self._make_learner()
                history = History()
                decided = self._recipe(learner, data, history)
                if not isinstance(decided, Decided):  # a recipe may return its rate
                    decided = Decided(decided)
                lr = decided.lr
            if history.diverged and not history.epochs:
                raise FloatingPointError(
                    f"training diverged in its first epoch (the loss was {learner.train_loss}"
                    f" at lr={lr}): nothing was learned, and the estimator is left as it "
                    "was. Try a lower lr (or lr=None for the finder's)."
                )
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if weights is not None:
                self.module_.load_state_dict(weights)
            raise
        _warn_if_unlearned(history, data.constant_loss, lr)
        # Left in eval mode: prediction then never switches modes, which threads
        # predicting at once would see half-way (dropout on in another's forward).
        self.module_.eval()
        distributed.broadcast_module(self.module_)  # one model on every rank
        self.history_ = self._history_frame(history, reset)
        self.n_epochs_ = len(history.epochs)
        self.interrupted_ = decided.interrupted or history.interrupted
        self.diverged_ = history.diverged
        self.lr_ = lr
        return self

    def _history_frame(self, history: History, reset: bool) -> pd.DataFrame:
        """The fit's history; a warm start's rows follow the previous fit's."""
        frame = history.to_frame()
        previous = None if reset else getattr(self, "history_", None)
        if previous is not None and len(previous) and len(frame):
            frame["epoch"] += int(previous["epoch"].max()) + 1
            frame = pd.concat([previous, frame], ignore_index=True)
        return frame

    def fit(self, X: Any, y: Any = None, eval_set: tuple[Any, Any] | None = None):
        """Fit on ``X`` (and ``y``); ``eval_set=(X_valid, y_valid)`` gives a validation
        set (otherwise ``validation_fraction``). Returns ``self``."""
        return self._fit(X, y, eval_set=eval_set)

    def lr_find(self, X: Any, y: Any = None, **kwargs: Any) -> LRFinderResult:
        """The learning-rate sweep that ``lr=None`` runs, on a fresh copy of this
        estimator (this one is left as it was): ``fit``'s recipe up to its sweep (say
        with the body frozen, or after a language model's fine-tuning). Keyword
        arguments go to :func:`deepfit.lr_find`; call ``.plot()`` on the result to see
        the curve."""
        return self._sweep(X, y, kwargs)

    def _sweep(
        self, X: Any, y: Any, finder_kwargs: dict[str, Any], **fit_kwargs: Any
    ) -> LRFinderResult:
        est = clone(self)
        est._sweep_kwargs = dict(finder_kwargs)  # its recipe stops at the sweep
        try:
            est._fit(X, y, **fit_kwargs)
        except _SweepDone as done:
            return done.result
        raise ValueError(
            f"{type(self).__name__} with these parameters trains nothing by gradient "
            "descent (its recipe ran no learning-rate sweep): there is no rate to find"
        )

    def _predict_outputs(
        self,
        batches: Iterable,
        module: nn.Module | None = None,
        transform: Callable | None = None,
    ) -> Any:
        """The network's outputs on ``batches`` through the engine's one prediction
        path (:meth:`Learner.predict`: eval mode, device, mixed precision), as CPU
        tensors; ``module`` (default ``module_``) is what runs on each batch's inputs,
        ``transform`` is :meth:`Learner.predict`'s."""
        check_is_fitted(self)
        device = self._device()
        module = self._on_device(self.module_ if module is None else module)
        learner = Learner(module, None, device=device, amp=self.amp)
        return learner.predict(batches, transform)

    def _on_device(self, module: nn.Module) -> nn.Module:
        """``module`` on the estimator's device, moved only when it is elsewhere: a
        no-op ``.to()`` still rebuilds an LSTM's flat weights, which races with other
        threads predicting at the same time."""
        device = self._device()
        first = next(module.parameters(), None)
        if first is not None and first.device != device:
            module.to(device)
        return module

    def _serving_module(self) -> nn.Module:
        """What ``export`` and ``export_onnx`` trace: ``module_`` (a domain may wrap
        it, say to serve unknown ids their fallback)."""
        return self.module_

    def _export(self, example: tuple[torch.Tensor, ...], path: Any) -> Any:
        """``module_`` as a ``torch.export`` program on the CPU whose first dimension
        (the batch) is dynamic; written with ``torch.export.save`` when ``path`` is
        given. ``example``: two rows of the network's inputs."""
        check_is_fitted(self)
        module = copy.deepcopy(self._serving_module()).cpu().eval()
        batch = torch.export.Dim("batch")
        shapes = tuple({0: batch} for _ in example)
        with torch.no_grad():
            program = torch.export.export(module, example, dynamic_shapes=shapes)
        if path is not None:
            with atomic_path(path, "the exported program") as tmp:
                torch.export.save(program, tmp)
        return program

    def _export_onnx(
        self,
        example: tuple[torch.Tensor, ...],
        path: Any,
        input_names: list[str],
        output_names: list[str],
    ) -> Any:
        """``module_`` as an ONNX model on the CPU whose first dimension (the batch,
        named ``"batch"``) is dynamic, written to ``path`` in one file (within ONNX's 2 GB
        limit). Returns the
        ``torch.onnx.ONNXProgram``. ``example``: two rows of the network's inputs."""
        check_is_fitted(self)
        for name in ("onnx", "onnxscript"):
            try:
                importlib.import_module(name)
            except ImportError as err:
                raise ImportError(
                    f"{type(self).__name__}.export_onnx needs the '{name}' package "
                    "(torch's ONNX exporter runs on onnx and onnxscript): "
                    "pip install 'deepfit[export]'"
                ) from err
        module = copy.deepcopy(self._serving_module()).cpu().eval()
        # The module, not _export's program: torch.onnx traces it with the settings its
        # translation needs (a program from torch.export.export leaves the collab
        # implicit term's data-dependent length as a sym_numel ONNX has no op for).
        # DYNAMIC, not a named Dim: torch.onnx warns when two inputs share a name.
        shapes = tuple({0: torch.export.Dim.DYNAMIC} for _ in example)
        with torch.no_grad():
            onnx_program = torch.onnx.export(
                module,
                example,
                dynamo=True,
                dynamic_shapes=shapes,
                input_names=input_names,
                output_names=output_names,
                verbose=False,
            )
        onnx_program.rename_axes(
            {
                value.shape[0]: "batch"
                for value in onnx_program.model.graph.inputs
                if not isinstance(value.shape[0], int)
            }
        )
        with atomic_path(path, "the ONNX model") as tmp:
            onnx_program.save(tmp, external_data=False)
        return onnx_program

    def save(self, path: Any) -> None:
        """Write this estimator to ``path`` as data only: ``deepfit.load(path)`` reads
        it back without running code from the file (pickle and joblib files run what
        they hold: use them only for files you trust). See :mod:`deepfit.persist`."""
        save(self, path)

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
