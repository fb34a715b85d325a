"""Declared parameter constraints, checked once at the top of ``fit`` and ``lr_find``.

Each estimator class lists its parameters' constraints in ``_parameter_constraints`` (a
dict of name -> list of constraints, any of which may hold; ``None`` in the list admits
``None``), merged with its base class's, as scikit-learn's estimators do. scikit-learn's
own constraint classes live in a private module, so these few are written here, with the
same meaning. The checks run before any data is read or any fitted attribute changes.

:func:`warn` issues the library's warnings at the user's line: the first frame outside
deepfit's packages (Python 3.12's ``skip_file_prefixes``, for 3.10 and 3.11 too).
"""

from __future__ import annotations

import math
import numbers
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any

__all__ = [
    "PACKAGES",
    "Boolean",
    "Constraint",
    "InstanceOf",
    "Interval",
    "InvalidParameterError",
    "Options",
    "Satisfies",
    "SequenceOf",
    "validate_params",
    "warn",
]


class InvalidParameterError(ValueError, TypeError):
    """A parameter's value breaks its declared constraints (both a ``ValueError`` and a
    ``TypeError``, as scikit-learn's)."""


class Constraint:
    """A test of one parameter value, and its description for the error message."""

    def __call__(self, value: Any) -> bool:
        raise NotImplementedError

    def __str__(self) -> str:
        raise NotImplementedError


class Interval(Constraint):
    """A number (``numbers.Integral`` or ``numbers.Real``; never a bool) in
    ``[left, right]``, each end ``None`` for unbounded, open where ``closed`` says
    (``"both"``, ``"left"``, ``"right"``, ``"neither"``). Non-finite reals are refused."""

    def __init__(
        self,
        kind: type,
        left: float | None,
        right: float | None,
        closed: str = "both",
    ) -> None:
        self.kind, self.left, self.right, self.closed = kind, left, right, closed

    def __call__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, self.kind):
            return False
        if not math.isfinite(value):
            return False
        lo_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        hi_ok = self.right is None or (
            value <= self.right
            if self.closed in ("both", "right")
            else value < self.right
        )
        return lo_ok and hi_ok

    def __str__(self) -> str:
        kind = "an int" if self.kind is numbers.Integral else "a number"
        if self.left is not None and self.right is not None:
            lb = "[" if self.closed in ("both", "left") else "("
            rb = "]" if self.closed in ("both", "right") else ")"
            return f"{kind} in {lb}{self.left}, {self.right}{rb}"
        if self.left is not None:
            op = ">=" if self.closed in ("both", "left") else ">"
            return f"{kind} {op} {self.left}"
        if self.right is not None:
            op = "<=" if self.closed in ("both", "right") else "<"
            return f"{kind} {op} {self.right}"
        return kind


class Options(Constraint):
    """One of the given values (strings, say)."""

    def __init__(self, *values: Any) -> None:
        self.values = values

    def __call__(self, value: Any) -> bool:
        return isinstance(value, (str, bool)) and any(
            value == v and type(value) is type(v) for v in self.values
        )

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


class Boolean(Constraint):
    """``True`` or ``False``."""

    def __call__(self, value: Any) -> bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"

    def __str__(self) -> str:
        return "a bool"


class InstanceOf(Constraint):
    """An instance of ``types``, described as ``what``."""

    def __init__(self, types: type | tuple[type, ...], what: str) -> None:
        self.types, self.what = types, what

    def __call__(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def __str__(self) -> str:
        return self.what


class SequenceOf(Constraint):
    """A list or tuple of at least ``min_len`` items, each satisfying ``item``."""

    def __init__(self, item: Constraint, min_len: int = 1) -> None:
        self.item, self.min_len = item, min_len

    def __call__(self, value: Any) -> bool:
        return (
            isinstance(value, (list, tuple))
            and len(value) >= self.min_len
            and all(self.item(v) for v in value)
        )

    def __str__(self) -> str:
        least = (
            "a non-empty" if self.min_len == 1 else f"at least {self.min_len} items:"
        )
        return f"{least} sequence of {self.item}"


class Satisfies(Constraint):
    """Any value for which ``test(value)`` is true, described as ``what``."""

    def __init__(self, test: Callable[[Any], bool], what: str) -> None:
        self.test, self.what = test, what

    def __call__(self, value: Any) -> bool:
        try:
            return bool(self.test(value))
        except Exception:  # a test that cannot even run on the value: not satisfied
            return False

    def __str__(self) -> str:
        return self.what


def validate_params(est: Any) -> None:
    """Check every parameter of ``est`` that its class declares in
    ``_parameter_constraints``; raise :class:`InvalidParameterError` naming the first
    that fails, what it must be and what it is."""
    for name, allowed in type(est)._parameter_constraints.items():
        value = getattr(est, name)
        if any(value is None if c is None else c(value) for c in allowed):
            continue
        what = " or ".join("None" if c is None else str(c) for c in allowed)
        raise InvalidParameterError(
            f"{name} must be {what}, got {value!r} ({type(est).__name__})"
        )


# deepfit's import packages: the engine and the four domains.
PACKAGES = ("deepfit", "tabular", "collab", "text", "vision")
_PACKAGE_DIRS = tuple(
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), pkg)
    + os.sep
    for pkg in PACKAGES
)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the first caller outside deepfit's packages (the
    user's call), whatever the depth of the library's own calls."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRS):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level + 1)
