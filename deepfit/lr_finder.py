"""The learning-rate range test (Smith 2017): train a few batches at exponentially growing
rates, watch the loss, and put the model back as it was."""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from deepfit.learner import _call_model, to_device

if TYPE_CHECKING:
    from deepfit.learner import Learner

__all__ = ["LRFinderResult", "lr_find"]


@dataclass
class LRFinderResult:
    """The curve of a learning-rate sweep and the rates read off it.

    Attributes
    ----------
    lrs, losses : list of float
        Each step's rate and its (exponentially smoothed, bias-corrected) training loss.
    suggestion : float
        Where the smoothed loss falls fastest (steepest descent per decade of rate), searched
        between 1/100 and 1/2 of the rate at the loss minimum; ``minimum / 10`` when the loss
        hardly fell (then ``reliable`` is False).
    steepest : float
        The steepest-descent rate over the whole curve before the minimum.
    minimum : float
        The rate at the lowest smoothed loss, divided by 10 (Smith's rule of thumb).
    reliable : bool
        False when the sweep was too short or the loss hardly fell.
    diverged : bool
        Whether the sweep stopped early because the loss blew up.
    raw_losses : list of float
        Each step's unsmoothed training loss (for one's own analysis of the curve, say a
        zero-lag smoothing of a short sweep, where the exponential average lags).
    """

    lrs: list[float]
    losses: list[float]
    suggestion: float
    steepest: float
    minimum: float
    reliable: bool = True
    diverged: bool = False
    raw_losses: list[float] = field(default_factory=list)
    _extra: dict[str, Any] = field(default_factory=dict, repr=False)

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


def _cycle(batches: Iterable) -> Iterator:
    while True:
        empty = True
        for b in batches:
            empty = False
            yield b
        if empty:
            raise ValueError("batches is empty")


def suggest(lrs: list[float], losses: list[float]) -> tuple[float, float, float, bool]:
    """(suggestion, steepest, minimum, reliable) from a smoothed sweep curve."""
    lr = np.asarray(lrs)
    loss = np.asarray(losses)
    i_min = int(np.argmin(loss))
    minimum = float(lr[i_min] / 10)
    # Need a descent: a few points before the minimum and a real drop of the loss.
    drop = (loss[0] - loss[i_min]) / max(abs(loss[0]), 1e-12)
    if i_min < 3 or drop < 0.01:
        return minimum, minimum, minimum, False
    grad = np.gradient(loss[: i_min + 1], np.log(lr[: i_min + 1]))
    steepest = float(lr[int(np.argmin(grad))])
    window = (lr[: i_min + 1] >= lr[i_min] / 100) & (lr[: i_min + 1] <= lr[i_min] / 2)
    if window.sum() < 2:
        return minimum, steepest, minimum, False
    idx = np.flatnonzero(window)
    suggestion = float(lr[idx[np.argmin(grad[idx])]])
    return suggestion, steepest, minimum, True


def lr_find(
    learn: Learner,
    batches: Iterable,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_it: int = 100,
    beta: float = 0.98,
    diverge: float = 4.0,
) -> LRFinderResult:
    """Sweep the rate from ``start_lr`` to ``end_lr`` over ``num_it`` batches (one
    optimizer step each, every trainable group at the same rate) and stop early when the
    smoothed loss exceeds ``diverge`` times its minimum or stops being finite.

    The model's ``state_dict`` and the optimizer's state are copied in memory before the
    sweep and restored after it (nothing is written to disk), as are the model's
    train/eval mode and the optimizer's rates and momenta.
    """
    model = learn.model
    saved_model = {k: v.detach().clone() for k, v in model.state_dict().items()}
    had_opt = learn.opt is not None
    if not had_opt:
        learn.create_opt()
    saved_opt = copy.deepcopy(learn.opt.state_dict())
    was_training = model.training
    lrs: list[float] = []
    losses: list[float] = []
    raw: list[float] = []
    avg, best, diverged = 0.0, math.inf, False
    try:
        learn.train_mode()
        stream = _cycle(batches)
        for i in range(num_it):
            lr = start_lr * (end_lr / start_lr) ** (i / max(num_it - 1, 1))
            learn.set_hyper([lr] * learn.n_groups)
            xb, *yb = to_device(next(stream), learn.device)
            with learn._autocast():
                loss = learn.loss_func(_call_model(model, xb), *yb)
            loss.backward()
            learn.opt.step()
            learn.opt.zero_grad(set_to_none=True)
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            avg = beta * avg + (1 - beta) * value
            smooth = avg / (1 - beta ** (i + 1))
            lrs.append(lr)
            losses.append(smooth)
            raw.append(value)
            best = min(best, smooth)
            if smooth > diverge * best and i > 5:
                diverged = True
                break
    finally:
        model.load_state_dict(saved_model)
        if had_opt:
            learn.opt.load_state_dict(saved_opt)
        else:
            learn.opt = None
        model.train(was_training)
    if len(lrs) < 2:
        raise RuntimeError(
            "the learning-rate finder diverged at once; lower start_lr or check the data"
        )
    suggestion, steepest, minimum, reliable = suggest(lrs, losses)
    return LRFinderResult(
        lrs, losses, suggestion, steepest, minimum, reliable, diverged, raw
    )
