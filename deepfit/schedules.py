"""Learning-rate (and momentum) schedules as pure functions of training progress.

A schedule maps ``pos``, the fraction of the fit already done (0 at the first batch, just
under 1 at the last), and the fit's length in epochs to a multiplier of each layer group's
base learning rate and, where the recipe says so, a momentum (Adam's beta1). The
:class:`~deepfit.learner.Learner` evaluates it before every batch, so a schedule holds no
state and can be plotted or tested without a model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from deepfit.persist import persistable

__all__ = ["SGDR", "Constant", "OneCycle", "Schedule", "get_schedule"]


def _cos(start: float, end: float, pos: float) -> float:
    """Cosine interpolation from ``start`` (pos 0) to ``end`` (pos 1)."""
    return end + (start - end) * (1 + math.cos(math.pi * pos)) / 2


class Schedule:
    """Base class: constant rate, momentum left alone."""

    def lr(self, pos: float, epochs: float) -> float:
        """Multiplier of the base learning rate at progress ``pos`` of ``epochs``."""
        return 1.0

    def momentum(self, pos: float, epochs: float) -> float | None:
        """Momentum (beta1) at ``pos``, or ``None`` to leave the optimizer's own."""
        return None


@persistable
@dataclass(frozen=True)
class Constant(Schedule):
    """The base learning rate throughout."""


@persistable
@dataclass(frozen=True)
class SGDR(Schedule):
    """Cosine annealing with warm restarts (Loshchilov & Hutter 2017, "SGDR").

    The rate falls from the base rate to ``min_frac`` times it along a half cosine over one
    cycle, then jumps back up. The first cycle lasts ``cycle_len`` epochs and each following
    cycle ``cycle_mult`` times longer than the one before, so with ``cycle_len=1,
    cycle_mult=2`` restarts fall after epochs 1, 3, 7, 15... Stepped once per batch this is
    ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(T_0=cycle_len * n_batches,
    T_mult=cycle_mult, eta_min=min_frac * base_lr)``.

    Parameters
    ----------
    cycle_len : float, default=1
        Length of the first cycle in epochs.
    cycle_mult : float, default=1
        Growth factor of each following cycle.
    min_frac : float, default=0
        Lowest rate of a cycle, as a fraction of the base rate.
    """

    cycle_len: float = 1.0
    cycle_mult: float = 1.0
    min_frac: float = 0.0

    def __post_init__(self) -> None:
        if not self.cycle_len > 0:
            raise ValueError(f"cycle_len must be > 0, got {self.cycle_len!r}")
        if not self.cycle_mult >= 1:
            raise ValueError(f"cycle_mult must be >= 1, got {self.cycle_mult!r}")

    def cycle_position(self, epoch: float) -> tuple[int, float]:
        """Index of the cycle that ``epoch`` (fractional epochs done) falls in and the
        fraction of that cycle already done."""
        length, start, index = self.cycle_len, 0.0, 0
        # A handful of iterations: cycles grow geometrically (or there are few of them).
        while epoch >= start + length - 1e-12 * length:
            start += length
            length *= self.cycle_mult
            index += 1
        return index, (epoch - start) / length

    def lr(self, pos: float, epochs: float) -> float:
        _, frac = self.cycle_position(pos * epochs)
        return _cos(1.0, self.min_frac, frac)


@persistable
@dataclass(frozen=True)
class OneCycle(Schedule):
    """The one-cycle policy (Smith 2018), in fastai's cosine form.

    The rate climbs from ``1 / div`` of the base rate to the base rate over the first
    ``pct_start`` of training, then falls to ``1 / (div * final_div)`` of it; momentum
    (Adam's beta1) moves the opposite way, from ``moms[0]`` down to ``moms[1]`` and back.

    Parameters
    ----------
    pct_start : float, default=0.25
    div : float, default=25
    final_div : float, default=1e5
    moms : tuple of float or None, default=(0.95, 0.85)
        ``None`` leaves the optimizer's momentum alone.
    """

    pct_start: float = 0.25
    div: float = 25.0
    final_div: float = 1e5
    moms: tuple[float, float] | None = (0.95, 0.85)

    def __post_init__(self) -> None:
        if not 0 <= self.pct_start < 1:
            raise ValueError(f"pct_start must be in [0, 1), got {self.pct_start!r}")

    def lr(self, pos: float, epochs: float) -> float:
        if pos < self.pct_start:
            return _cos(1 / self.div, 1.0, pos / self.pct_start)
        frac = (pos - self.pct_start) / (1 - self.pct_start)
        return _cos(1.0, 1 / (self.div * self.final_div), frac)

    def momentum(self, pos: float, epochs: float) -> float | None:
        if self.moms is None:
            return None
        high, low = self.moms
        if pos < self.pct_start:
            return _cos(high, low, pos / self.pct_start)
        return _cos(low, high, (pos - self.pct_start) / (1 - self.pct_start))


_NAMED = {"constant": Constant, "sgdr": SGDR, "one_cycle": OneCycle}


def get_schedule(schedule: str | Schedule | None) -> Schedule:
    """A :class:`Schedule` from a name (``"one_cycle"``, ``"sgdr"``, ``"constant"``), an
    instance (returned as is) or ``None`` (constant)."""
    if schedule is None:
        return Constant()
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, str) and schedule in _NAMED:
        return _NAMED[schedule]()
    raise ValueError(
        f"schedule must be one of {sorted(_NAMED)} or a deepfit Schedule instance, "
        f"got {schedule!r}"
    )
