"""The learning-rate range test (Smith 2017): train a few batches at exponentially growing
rates, watch the loss, and put the model back as it was.

The sweep is an ordinary :meth:`Learner.fit` with the :class:`LRFinder` callback (as in
fastai), so the learner's callbacks (gradient clipping, adversarial training, a recurrent
model's state reset), mixed precision and everything else of the training step apply to
it. How a rate is read off the curve is a *suggestion rule*: one of :data:`SUGGESTIONS`
by name, or any function ``rule(lrs, losses, raw_losses) -> (rate, reliable)``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from deepfit.callbacks import Callback, CancelFit, LearnerView
from deepfit.persist import persistable

__all__ = [
    "SUGGESTIONS",
    "LRFinder",
    "LRFinderResult",
    "lr_find",
    "suggest_minimum",
    "suggest_steepest",
    "suggest_zero_lag",
]

SuggestRule = Callable[[Sequence[float], Sequence[float], Sequence[float]], tuple]


@persistable
@dataclass
class LRFinderResult:
    """The curve of a learning-rate sweep and the rates read off it.

    Attributes
    ----------
    lrs, losses : list of float
        Each step's rate and its (exponentially smoothed, bias-corrected) training loss.
    suggestion : float
        The rate the suggestion rule read off the curve (by default where the smoothed
        loss falls fastest, see :func:`suggest_steepest`).
    steepest : float
        The steepest-descent rate over the whole curve before the minimum.
    minimum : float
        The rate at the lowest smoothed loss, divided by 10 (Smith's rule of thumb).
    reliable : bool
        False when the sweep was too short or the loss hardly fell (the suggestion is
        then the rule's fallback).
    diverged : bool
        Whether the sweep stopped early because the loss blew up.
    raw_losses : list of float
        Each step's unsmoothed training loss.
    """

    lrs: list[float]
    losses: list[float]
    suggestion: float
    steepest: float
    minimum: float
    reliable: bool = True
    diverged: bool = False
    raw_losses: list[float] = field(default_factory=list)

    def plot(self, path: str | Path | None = None, ax: Any = None) -> Any:
        """Plot loss against rate (log scale) and mark the suggestion; save a PNG when
        ``path`` is given. Returns the matplotlib Figure. Needs ``deepfit[plot]``."""
        try:
            from matplotlib.figure import Figure
        except ImportError as err:
            raise ImportError(
                "LRFinderResult.plot needs matplotlib: pip install 'deepfit[plot]'"
            ) from err
        if ax is None:
            fig = Figure(figsize=(6, 4))
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate")
        ax.set_ylabel("smoothed training loss")
        ax.axvline(self.suggestion, color="red", linestyle="--", label="suggestion")
        ax.legend()
        if path is not None:
            fig.savefig(path, dpi=100, bbox_inches="tight")
        return fig


# ---- suggestion rules ------------------------------------------------------------------


def _descent(
    lrs: Sequence[float], losses: Sequence[float]
) -> tuple[np.ndarray, np.ndarray, int, float]:
    lr, loss = np.asarray(lrs, dtype=np.float64), np.asarray(losses, dtype=np.float64)
    i_min = int(np.argmin(loss))
    drop = (loss[0] - loss[i_min]) / max(abs(loss[0]), 1e-12)
    return lr, loss, i_min, drop


def suggest_minimum(
    lrs: Sequence[float], losses: Sequence[float], raw_losses: Sequence[float] = ()
) -> tuple[float, bool]:
    """A tenth of the rate at the lowest smoothed loss (Smith's rule of thumb); the
    sweep is unreliable when the minimum comes in its first three steps or the loss fell
    by less than 1%."""
    lr, _, i_min, drop = _descent(lrs, losses)
    return float(lr[i_min] / 10), bool(i_min >= 3 and drop >= 0.01)


def suggest_steepest(
    lrs: Sequence[float], losses: Sequence[float], raw_losses: Sequence[float] = ()
) -> tuple[float, bool]:
    """Where the smoothed loss falls fastest per decade of rate, searched between 1/100
    and 1/2 of the rate at the loss minimum (the default rule); the minimum rule's rate
    when the sweep is unreliable."""
    lr, loss, i_min, drop = _descent(lrs, losses)
    minimum = float(lr[i_min] / 10)
    if i_min < 3 or drop < 0.01:
        return minimum, False
    grad = np.gradient(loss[: i_min + 1], np.log(lr[: i_min + 1]))
    window = (lr[: i_min + 1] >= lr[i_min] / 100) & (lr[: i_min + 1] <= lr[i_min] / 2)
    if window.sum() < 2:
        return minimum, False
    idx = np.flatnonzero(window)
    return float(lr[idx[np.argmin(grad[idx])]]), True


def suggest_zero_lag(
    lrs: Sequence[float],
    losses: Sequence[float],
    raw_losses: Sequence[float] = (),
    bounds: tuple[float, float] = (1e-4, 1e-2),
    fallback: float = 1e-3,
    width: float = 0.25,
) -> tuple[float, bool]:
    """For a short, noisy sweep (a few dozen small batches): the rate where the raw
    losses, smoothed without lag, bottom out.

    An exponential average of the loss lags behind the sweep by about a decade of rates
    (the minimum rule's "divide by ten" compensates for that lag on long sweeps); here the
    raw losses are averaged with a Gaussian of ``width`` decades over log-rate centred on
    each point, and the rate is where that curve is lowest: the largest rate at which the
    sweep still made progress, which Smith (2017) takes as the peak of a cyclical
    schedule. The rate is kept within ``bounds`` (a range Adam trains in, so a noisy
    curve cannot send it far); the sweep is unreliable, and ``fallback`` returned, when it
    is shorter than ten steps, bottoms out in its first three, or the loss fell by less
    than 10%.
    """
    lr = np.asarray(lrs, dtype=np.float64)
    raw = np.asarray(raw_losses if len(raw_losses) else losses, dtype=np.float64)
    if len(lr) < 10:
        return fallback, False
    x = np.log10(lr)
    w = np.exp(-0.5 * ((x[:, None] - x[None, :]) / width) ** 2)
    smooth = (w @ raw) / w.sum(1)
    i = int(np.argmin(smooth))
    fell = (smooth[0] - smooth[i]) / max(abs(smooth[0]), 1e-12)
    if i < 3 or fell < 0.1:
        return fallback, False
    lo, hi = bounds
    return float(min(max(lr[i], lo), hi)), True


SUGGESTIONS: dict[str, SuggestRule] = {
    "steepest": suggest_steepest,
    "minimum": suggest_minimum,
    "zero_lag": suggest_zero_lag,
}


def _rule(suggest: str | SuggestRule) -> SuggestRule:
    if callable(suggest):
        return suggest
    if suggest not in SUGGESTIONS:
        raise ValueError(
            f"unknown suggestion rule {suggest!r}; use one of {list(SUGGESTIONS)} or a "
            "function (lrs, losses, raw_losses) -> (rate, reliable)"
        )
    return SUGGESTIONS[suggest]


# ---- the sweep ---------------------------------------------------------------------------


class LRFinder(Callback):
    """Drive a ``fit`` as a learning-rate sweep: before each batch set every group's rate
    to the next of ``num_it`` rates from ``start_lr`` to ``end_lr`` (geometric), record the
    smoothed loss after it, and cancel the fit after ``num_it`` batches or once the loss
    diverges. The model's ``state_dict`` and the optimizer's state are copied in memory
    before the sweep and put back after it (nothing is written to disk), as are the
    model's train/eval mode and the optimizer's rates and momenta.
    """

    order = -30  # before the others, so they see the sweep's rate

    def __init__(
        self,
        start_lr: float = 1e-7,
        end_lr: float = 10.0,
        num_it: int = 100,
        beta: float = 0.98,
        diverge: float = 4.0,
    ) -> None:
        if not 0 < start_lr < end_lr:
            raise ValueError(
                f"need 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}"
            )
        if num_it < 2:
            raise ValueError(f"num_it must be >= 2, got {num_it}")
        self.start_lr, self.end_lr, self.num_it = start_lr, end_lr, num_it
        self.beta, self.diverge = beta, diverge

    def before_fit(self, learn: LearnerView) -> None:
        self._was_training = learn.model.training
        self._saved_model = {
            k: v.detach().clone() for k, v in learn.model.state_dict().items()
        }
        self._saved_opt = copy.deepcopy(learn.opt.state_dict())
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.raw: list[float] = []
        self._avg, self._best, self.diverged, self._step = 0.0, math.inf, False, 0

    def before_batch(self, learn: LearnerView) -> None:
        i = self._step
        self._lr = self.start_lr * (self.end_lr / self.start_lr) ** (
            i / (self.num_it - 1)
        )
        learn.set_hyper([self._lr] * learn.n_groups)

    def after_batch(self, learn: LearnerView) -> None:
        value = learn.batch_loss()
        self._step += 1
        if not math.isfinite(value):
            self.diverged = True
            raise CancelFit("the loss is not finite")
        self._avg = self.beta * self._avg + (1 - self.beta) * value
        smooth = self._avg / (1 - self.beta**self._step)
        self.lrs.append(self._lr)
        self.losses.append(smooth)
        self.raw.append(value)
        self._best = min(self._best, smooth)
        if smooth > self.diverge * self._best and self._step > 6:
            self.diverged = True
            raise CancelFit("the loss diverged")
        if self._step >= self.num_it:
            raise CancelFit("the sweep is done")

    def after_fit(self, learn: LearnerView) -> None:
        learn.model.load_state_dict(self._saved_model)
        learn.opt.load_state_dict(self._saved_opt)
        learn.model.train(self._was_training)


def lr_find(
    learn: LearnerView,
    batches: Iterable,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
    suggest: str | SuggestRule = "steepest",
    **suggest_kwargs: Any,
) -> LRFinderResult:
    """Sweep the rate from ``start_lr`` to ``end_lr`` over ``num_it`` batches (one
    optimizer step each, every trainable group at the same rate, through the learner's
    own ``fit``) and stop early when the smoothed loss exceeds ``diverge`` times its
    minimum or stops being finite; the model and optimizer are then put back as they
    were (see :class:`LRFinder`).

    ``suggest`` names the rule that reads the rate off the curve (``"steepest"``,
    ``"minimum"``, ``"zero_lag"``; see :data:`SUGGESTIONS`) or is such a function;
    ``suggest_kwargs`` go to it (say ``bounds`` of ``"zero_lag"``).
    """
    rule = _rule(suggest)
    if suggest_kwargs:
        rule = partial(rule, **suggest_kwargs)
    if not hasattr(batches, "__len__") or len(batches) == 0:
        raise ValueError("batches is empty (or has no length)")
    finder = LRFinder(start_lr, end_lr, num_it, beta, diverge)
    epochs = math.ceil(num_it / len(batches))
    interrupted, tags, had_opt = learn.interrupted, learn.tags, learn.opt is not None
    learn.fit(batches, epochs, start_lr, "constant", callbacks=[finder])
    if not had_opt:  # the sweep's optimizer goes: the first real fit makes its own
        learn.opt = None
    if learn.interrupted:  # Ctrl-C during the sweep: stop what called it too
        learn.interrupted = interrupted
        raise KeyboardInterrupt("learning-rate sweep interrupted")
    learn.tags = tags
    if len(finder.lrs) < 2:
        raise RuntimeError(
            "the learning-rate finder diverged at once; lower start_lr or check the data"
        )
    suggestion, reliable = rule(finder.lrs, finder.losses, finder.raw)
    lr, loss, i_min, drop = _descent(finder.lrs, finder.losses)
    minimum = steepest = float(lr[i_min] / 10)
    if i_min >= 3 and drop >= 0.01:
        grad = np.gradient(loss[: i_min + 1], np.log(lr[: i_min + 1]))
        steepest = float(lr[int(np.argmin(grad))])
    return LRFinderResult(
        list(finder.lrs),
        list(finder.losses),
        float(suggestion),
        steepest,
        minimum,
        bool(reliable),
        finder.diverged,
        list(finder.raw),
    )
