"""Callbacks: plain classes whose hooks do nothing unless overridden.

The :class:`~deepfit.learner.Learner` calls, in this order::

    before_fit
      before_epoch
        before_batch -> after_loss -> before_step -> after_batch     (every training batch)
        before_validate -> after_validate                           (when there is a valid set)
      after_epoch
    after_fit                                                       (always, even on cancel)

Each hook receives the learner, whose attributes (``model``, ``opt``, ``epoch``, ``iter``,
``pos``, ``loss``, ``xb``, ``yb``, ``pred``, ``train_loss``, ``valid_loss``, ``metrics``,
``lrs``, ``tags``) describe the current state. A hook may raise :class:`CancelFit` to end training
cleanly (``after_fit`` still runs). Callbacks run in ascending ``order``.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import torch

from deepfit.files import check_writable, save_torch

__all__ = [
    "EVENTS",
    "AdversarialTraining",
    "Callback",
    "CancelFit",
    "Checkpoint",
    "EarlyStopping",
    "GradientClipping",
    "History",
    "LearnerView",
    "ProgressBar",
    "report",
    "shown",
]

# Progress and decisions (epoch lines, the finder's rate): a script that configures
# logging gets them at INFO; Python shows nothing below WARNING by default.
logger = logging.getLogger("deepfit")

EVENTS = (
    "before_fit",
    "before_epoch",
    "before_batch",
    "after_loss",
    "before_step",
    "after_batch",
    "before_validate",
    "after_validate",
    "after_epoch",
    "after_fit",
)


class LearnerView(Protocol):
    """What callbacks read from, and set on, the learner that calls them
    (:class:`deepfit.learner.Learner` is one): a protocol, so this module and the
    learner's do not import each other."""

    model: torch.nn.Module
    opt: torch.optim.Optimizer | None
    loss: torch.Tensor
    extra_loss: torch.Tensor | None
    loss_func: Callable[..., torch.Tensor]
    train_loss: float
    valid_loss: float | None
    metrics: dict[str, float]
    tags: dict[str, Any]
    lrs: list[float]
    epoch: int
    n_epochs: int
    n_groups: int
    batches: Iterable
    xb: Any
    yb: Any
    pred: Any
    interrupted: bool
    diverged: bool

    def forward(self, xb: Any) -> Any: ...
    def autocast(self) -> Any: ...
    def set_hyper(self, lrs: list[float]) -> None: ...
    def batch_loss(self) -> float: ...
    def fit(self, batches: Iterable, epochs: int, *args: Any, **kwargs: Any) -> Any: ...


class CancelFit(Exception):
    """Raise from a callback to stop training; ``after_fit`` still runs."""


class Callback:
    """Base class. Override the hooks you need; ``order`` sorts callbacks (low first)."""

    order: int = 0

    def check(self) -> None:
        """Raise if the callback cannot do its job (a folder it cannot write): called
        by an estimator's ``fit`` before any data is read or any training starts."""

    def before_fit(self, learn: LearnerView) -> None: ...
    def before_epoch(self, learn: LearnerView) -> None: ...
    def before_batch(self, learn: LearnerView) -> None: ...
    def after_loss(self, learn: LearnerView) -> None: ...
    def before_step(self, learn: LearnerView) -> None: ...
    def after_batch(self, learn: LearnerView) -> None: ...
    def before_validate(self, learn: LearnerView) -> None: ...
    def after_validate(self, learn: LearnerView) -> None: ...
    def after_epoch(self, learn: LearnerView) -> None: ...
    def after_fit(self, learn: LearnerView) -> None: ...


def _monitor_value(learn: LearnerView, monitor: str) -> float | None:
    if monitor == "valid_loss":
        return learn.valid_loss
    if monitor == "train_loss":
        return learn.train_loss
    return learn.metrics.get(monitor)


class History(Callback):
    """Per-epoch record of losses, metrics, learning rates and time.

    One ``History`` may follow several fits (the stages of a recipe): its rows then run
    on, and each carries the ``tags`` of its fit (``stage``, say).

    Attributes
    ----------
    epochs : list of dict
        One row per finished epoch: ``epoch`` (counted over every fit this History saw),
        ``train_loss``, ``valid_loss`` (when there is a validation set), each metric,
        ``lr`` (the last layer group's rate at the epoch's last batch), ``time`` in
        seconds, then the fit's tags.
    lrs : list of list of float
        The rate of every layer group at every training batch.
    diverged, interrupted : bool
        Whether any fit it followed diverged, or was cut short by Ctrl-C (the
        learner's flags say it of its last fit).
    """

    order = -10

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.lrs: list[list[float]] = []
        self.diverged = self.interrupted = False

    def after_fit(self, learn: LearnerView) -> None:
        self.diverged = self.diverged or learn.diverged
        self.interrupted = self.interrupted or learn.interrupted

    def before_epoch(self, learn: LearnerView) -> None:
        self._start = time.perf_counter()

    def after_batch(self, learn: LearnerView) -> None:
        self.lrs.append(list(learn.lrs))

    def after_epoch(self, learn: LearnerView) -> None:
        row: dict[str, Any] = {
            "epoch": len(self.epochs),
            "train_loss": learn.train_loss,
        }
        if learn.valid_loss is not None:
            row["valid_loss"] = learn.valid_loss
        row.update(learn.metrics)
        row["lr"] = learn.lrs[-1] if learn.lrs else float("nan")
        row["time"] = time.perf_counter() - self._start
        row.update(learn.tags)
        self.epochs.append(row)

    def to_frame(self):
        """The per-epoch record as a pandas DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.epochs)


def shown(verbose: int) -> bool:
    """Whether progress is written to standard error: ``verbose >= 2``, or 1 with a
    terminal attached."""
    return verbose >= 2 or (verbose >= 1 and sys.stderr.isatty())


def report(message: str, verbose: int) -> None:
    """``message`` to the ``deepfit`` logger (INFO), and to standard error (through
    tqdm, so bars stay intact) when :func:`shown`."""
    logger.info(message)
    if shown(verbose):
        from tqdm.auto import tqdm

        tqdm.write(message, file=sys.stderr)


class ProgressBar(Callback):
    """A tqdm bar over the batches of each epoch and a line of figures per epoch.

    Parameters
    ----------
    verbose : int, default=1
        0: silent. 1: bar and epoch lines on standard error when it is a terminal,
        and the lines to the ``deepfit`` logger (INFO) always, so a script that sets up
        ``logging`` gets them in its log. 2: bar and lines on standard error even
        without a terminal (notebooks).
    """

    order = 10

    def __init__(self, verbose: int = 1) -> None:
        self.verbose = verbose
        self._bar = None

    def _wanted(self) -> bool:
        return shown(self.verbose)

    def before_epoch(self, learn: LearnerView) -> None:
        if self._wanted():
            from tqdm.auto import tqdm

            total = len(learn.batches) if hasattr(learn.batches, "__len__") else None
            self._bar = tqdm(
                total=total,
                desc=f"epoch {learn.epoch + 1}/{learn.n_epochs}",
                leave=False,
                file=sys.stderr,
            )

    def after_batch(self, learn: LearnerView) -> None:
        if self._bar is not None:
            self._bar.update(1)

    def after_epoch(self, learn: LearnerView) -> None:
        self._close()
        if self.verbose < 1:
            return
        # What this fit is part of: a text model's language model, a class's model,
        # an image size, a fine-tuning stage.
        where = [
            f"{k} {v}" if k in ("class", "size") else str(v)
            for k in ("model", "class", "size", "stage")
            if (v := learn.tags.get(k)) is not None
        ]
        parts = [(", ".join(where) + ": " if where else "")]
        parts[0] += f"epoch {learn.epoch + 1}/{learn.n_epochs}"
        parts.append(f"train_loss {learn.train_loss:.4f}")
        if learn.valid_loss is not None:
            parts.append(f"valid_loss {learn.valid_loss:.4f}")
        parts += [f"{k} {v:.4f}" for k, v in learn.metrics.items()]
        report("  ".join(parts), self.verbose)

    def after_fit(self, learn: LearnerView) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class GradientClipping(Callback):
    """Clip the global gradient norm to ``max_norm`` before every optimizer step."""

    def __init__(self, max_norm: float = 1.0) -> None:
        self.max_norm = max_norm

    def before_step(self, learn: LearnerView) -> None:
        torch.nn.utils.clip_grad_norm_(learn.model.parameters(), self.max_norm)


class AdversarialTraining(Callback):
    """Adversarial training on one layer's output (Goodfellow et al. 2015; on the word
    embeddings of a text classifier, Miyato et al. 2017).

    Every training batch adds a second loss to the first: the loss with the named
    submodule's output ``e`` moved to ``e + r``, where, for each example,
    ``r = eps * ||e|| * g / ||g||`` and ``g`` is the first loss's gradient with respect
    to ``e`` (norms over all but the batch dimension). The step follows the sum: the
    model learns to give the same answer to inputs a small worst-case step away (a
    regulariser that Miyato et al. found stronger than random noise of the same size).
    Each batch costs a second forward and backward pass. The reported training loss is
    the first loss alone; evaluation and prediction are untouched.

    Parameters
    ----------
    module : str
        Dotted name of the submodule whose output is perturbed, as for
        ``model.get_submodule`` (a ``TextClassifier``'s embedding is
        ``"encoder.encoder_dp"``). The output must be a tensor with the batch first.
    eps : float, default=0.05
        Size of ``r`` relative to each example's ``||e||``.
    """

    order = 5

    def __init__(self, module: str, eps: float = 0.05) -> None:
        if isinstance(eps, bool) or not (isinstance(eps, int | float) and eps > 0):
            raise ValueError(f"eps must be a number > 0, got {eps!r}")
        self.module, self.eps = module, eps
        self._handle = self._e = self._r = None

    def _hook(self, mod: torch.nn.Module, inputs: Any, out: torch.Tensor) -> Any:
        if not mod.training:
            return None
        if self._r is not None:
            return out + self._r
        if not out.requires_grad:  # a frozen layer: still perturb what it gives
            out = out.detach().requires_grad_()
        self._e = out
        return out

    def before_fit(self, learn: LearnerView) -> None:
        mod = learn.model.get_submodule(self.module)
        self._handle = mod.register_forward_hook(self._hook)

    def after_loss(self, learn: LearnerView) -> None:
        e, self._e = self._e, None
        if e is None or not learn.loss.requires_grad:
            return
        (g,) = torch.autograd.grad(learn.loss, e, retain_graph=True, allow_unused=True)
        if g is None:
            return
        g = g.detach()
        size = self.eps * e.detach().flatten(1).norm(dim=1)
        scale = size / g.flatten(1).norm(dim=1).clamp_min(1e-12)
        self._r = g * scale.view(-1, *[1] * (g.dim() - 1))
        try:
            with learn.autocast():
                adv = learn.loss_func(learn.forward(learn.xb), *learn.yb)
        finally:
            self._r = None
        # One backward takes both losses (and what other callbacks added).
        learn.extra_loss = adv if learn.extra_loss is None else learn.extra_loss + adv

    def after_fit(self, learn: LearnerView) -> None:
        if self._handle is not None:
            self._handle.remove()
        self._handle = self._e = self._r = None


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs; optionally put back
    the best weights at the end of the fit (also when the fit is interrupted).

    Parameters
    ----------
    monitor : str, default="valid_loss"
        ``"valid_loss"``, ``"train_loss"`` or the name of a metric.
    mode : {"min", "max"}, default="min"
    patience : int, default=3
    min_delta : float, default=0
        Smallest change that counts as an improvement.
    restore_best_weights : bool, default=True
    """

    order = 20

    def __init__(
        self,
        monitor: str = "valid_loss",
        mode: str = "min",
        patience: int = 3,
        min_delta: float = 0.0,
        restore_best_weights: bool = True,
    ) -> None:
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.min_delta, self.restore_best_weights = min_delta, restore_best_weights

    def before_fit(self, learn: LearnerView) -> None:
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.wait = 0

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def after_epoch(self, learn: LearnerView) -> None:
        value = _monitor_value(learn, self.monitor)
        if value is None:
            raise ValueError(
                f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                "produce (no validation set, or no such metric)"
            )
        if math.isfinite(value) and self._improved(value):
            self.best, self.best_epoch, self.wait = value, learn.epoch, 0
            if self.restore_best_weights:
                self.best_state = {
                    k: v.detach().clone() for k, v in learn.model.state_dict().items()
                }
        else:
            self.wait += 1
            if self.wait >= self.patience:
                raise CancelFit(
                    f"no improvement of {self.monitor} in {self.wait} epochs"
                )

    def after_fit(self, learn: LearnerView) -> None:
        if self.restore_best_weights and self.best_state is not None:
            learn.model.load_state_dict(self.best_state)


class Checkpoint(Callback):
    """Save the model's ``state_dict`` to ``path`` after each epoch, or only when
    ``monitor`` improves (``save_best_only=True``)."""

    order = 30

    def __init__(
        self,
        path: str | Path,
        monitor: str = "valid_loss",
        mode: str = "min",
        save_best_only: bool = True,
    ) -> None:
        self.path, self.monitor, self.mode = Path(path), monitor, mode
        self.save_best_only = save_best_only

    def check(self) -> None:
        # A folder that cannot take the file fails now, not after an epoch.
        check_writable(self.path, "the checkpoint")

    def before_fit(self, learn: LearnerView) -> None:
        self.check()  # also when a Learner is used directly
        self.best: float | None = None

    def after_epoch(self, learn: LearnerView) -> None:
        if self.save_best_only:
            value = _monitor_value(learn, self.monitor)
            if value is None:
                raise ValueError(f"Checkpoint monitors {self.monitor!r}, not produced")
            better = self.best is None or (
                value < self.best if self.mode == "min" else value > self.best
            )
            if not better:
                return
            self.best = value
        save_torch(learn.model.state_dict(), self.path, "the checkpoint")
