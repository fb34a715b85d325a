"""Targets, losses and metrics, once for every estimator.

Class labels in: one label per row, label lists or an indicator matrix (multi-label),
checked and encoded the same way by every classifier that takes them; out: labels, or
for multi-label the labels whose probability reaches the threshold (:func:`hits`, the
one rule: ``>=``). The weighted losses (cross-entropy, per-label binary cross-entropy,
squared error) and the training metrics (accuracy, per-label accuracy) every domain
uses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.data import check_class_labels

__all__ = [
    "accuracy",
    "binary_cross_entropy",
    "check_no_missing",
    "cross_entropy",
    "encode_targets",
    "hits",
    "label_accuracy",
    "label_kind",
    "label_set_accuracy",
    "labels_from_hits",
    "mse",
    "weighted_cross_entropy",
    "weighted_mean",
]


def check_no_missing(labels: Any) -> None:
    """Raise naming the first missing label (NaN, None) of a 1-D ``labels``. Read a list
    before numpy does: ``np.asarray(["a", nan])`` holds the string ``'nan'``."""
    missing = pd.isna(pd.Series(labels, dtype=object)).to_numpy()
    if missing.any():
        raise ValueError(
            f"y holds missing labels (NaN/None), first at position "
            f"{int(np.flatnonzero(missing)[0])}"
        )


def _is_label_list(v: Any) -> bool:
    return isinstance(v, (list, tuple, set, frozenset, np.ndarray, pd.Series))


def label_kind(y: Any) -> str:
    """``"indicator"`` (a 2-D matrix or DataFrame), ``"lists"`` (label lists) or
    ``"single"`` (one label per row): the forms every classifier takes. Rows of 0/1 of
    one length are an indicator matrix written as lists, as scikit-learn reads them."""
    if isinstance(y, pd.DataFrame) or (
        isinstance(y, (np.ndarray, torch.Tensor)) and np.ndim(y) == 2
    ):
        return "indicator"
    if not (len(y) and all(_is_label_list(v) for v in y)):
        return "single"
    rows_ok = all(isinstance(v, (list, tuple, np.ndarray)) for v in y)
    if len({len(v) for v in y}) == 1 and rows_ok:
        rows = np.asarray([list(v) for v in y], dtype=object)
        if rows.size and all(
            isinstance(x, (bool, int, np.bool_, np.integer)) and x in (0, 1)
            for x in rows.ravel()
        ):
            return "indicator"
    return "lists"


def encode_targets(
    y: Any,
    n: int,
    fitted: tuple[np.ndarray, str] | None = None,
    who: str = "the estimator",
    rows: str = "rows",
) -> tuple[str, np.ndarray, torch.Tensor]:
    """``(kind, classes, targets)`` for ``n`` rows (``rows`` names them in errors, and
    ``who`` the estimator).

    ``kind`` is ``"single"`` (targets: class indices), ``"lists"`` (label lists) or
    ``"indicator"`` (a 0/1 matrix or DataFrame whose columns name the labels); for the
    last two the targets are a float indicator matrix. ``classes`` are learned from ``y``
    unless ``fitted=(classes, kind)`` gives them (then a label not in them raises).
    """
    if y is None:
        raise ValueError(f"{who} needs labels: fit(X, y)")
    if isinstance(y, str):
        raise TypeError(f"y must hold one label per row, got a string {y!r}")
    if not isinstance(y, (pd.DataFrame, np.ndarray, torch.Tensor)):
        y = list(y)
    kind = label_kind(y)
    if len(y) != n:
        raise ValueError(f"X has {n} {rows} but y has {len(y)} labels")
    if kind == "indicator":
        columns = list(y.columns) if isinstance(y, pd.DataFrame) else None
        ind = np.asarray(y.detach().cpu() if isinstance(y, torch.Tensor) else y)
        if ind.dtype == object or not np.isin(ind, (0, 1)).all():
            raise ValueError("an indicator matrix y must hold only 0 and 1 (or bools)")
        classes = np.asarray(
            columns if columns is not None else np.arange(ind.shape[1])
        )
    elif kind == "lists":
        lists = [list(v) for v in y]
        check_class_labels([lab for v in lists for lab in v])
        classes = np.asarray(sorted({lab for v in lists for lab in v}, key=str))
    else:
        # Missing labels are looked for before numpy reads them: np.asarray of
        # ["a", nan] makes the string 'nan', a class of its own.
        missing = pd.isna(
            pd.Series(list(y) if isinstance(y, list) else y, dtype=object)
        )
        arr = np.asarray(y)
        if arr.ndim != 1:
            raise ValueError(
                "y must be 1-d labels, label lists or an indicator matrix, got "
                f"shape {arr.shape}"
            )
        if missing.any():
            raise ValueError(
                f"y holds missing labels (NaN/None), first at position "
                f"{int(np.flatnonzero(missing)[0])}"
            )
        check_class_labels(arr)
        classes = np.unique(arr)
    if fitted is None:
        if kind == "single" and len(classes) < 2:
            raise ValueError(f"y has a single class ({classes[0]!r}); need at least 2")
        if kind != "single" and len(classes) == 0:
            raise ValueError("y has no labels at all")
    else:
        classes, fitted_kind = fitted
        if (kind == "single") != (fitted_kind == "single"):
            what = {True: "single-label", False: "multi-label"}
            raise ValueError(
                f"y is {what[kind == 'single']} but the model was fitted on "
                f"{what[fitted_kind == 'single']} targets"
            )
    index = {c: i for i, c in enumerate(classes.tolist())}
    if kind == "indicator":
        if ind.shape[1] != len(classes):
            raise ValueError(
                f"y has {ind.shape[1]} label columns, the model {len(classes)}"
            )
        return kind, classes, torch.as_tensor(ind.astype(np.float32))
    if kind == "lists":
        out = torch.zeros(n, len(classes))
        for i, v in enumerate(lists):
            for lab in v:
                if lab not in index:
                    raise ValueError(f"label {lab!r} (row {i}) was not seen in fit")
                out[i, index[lab]] = 1
        return kind, classes, out
    unknown = [c for c in np.unique(arr).tolist() if c not in index]
    if unknown:
        raise ValueError(f"labels not seen in fit: {unknown[:5]}")
    targets = torch.as_tensor([index[c] for c in arr.tolist()], dtype=torch.long)
    return kind, classes, targets


def weighted_mean(loss: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
    """The mean of per-row ``loss``, weighted by ``w`` when given."""
    return loss.mean() if w is None else (loss * w).sum() / w.sum().clamp_min(1e-12)


def cross_entropy(
    pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy of logits ``(N, C)`` against class indices ``(N,)``."""
    return weighted_mean(
        torch.nn.functional.cross_entropy(pred, y, reduction="none"), w
    )


def binary_cross_entropy(
    pred: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None = None,
    pos_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy of each label's logit ``(N, L)`` against an indicator
    ``(N, L)``, averaged over the labels (``pos_weight``: per label, on positives)."""
    if pos_weight is not None:
        pos_weight = pos_weight.to(pred.device)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        pred, y, pos_weight=pos_weight, reduction="none"
    )
    return weighted_mean(loss.mean(1), w)


def mse(
    pred: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None = None
) -> torch.Tensor:
    """Squared error, averaged over the outputs of a row (if more than one)."""
    err = (pred.float() - y).pow(2)
    return weighted_mean(err.mean(1) if err.dim() > 1 else err, w)


def weighted_cross_entropy(
    pred: torch.Tensor,
    y: torch.Tensor,
    w: torch.Tensor | None = None,
    multilabel: bool = False,
) -> torch.Tensor:
    """:func:`binary_cross_entropy` for a multi-label ``y``, else
    :func:`cross_entropy`."""
    return (binary_cross_entropy if multilabel else cross_entropy)(pred, y, w)


def hits(proba: Any, threshold: float = 0.5) -> Any:
    """The multi-label decision: a label is predicted when its probability reaches
    ``threshold`` (``>=``; numpy arrays or tensors)."""
    return proba >= threshold


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    """Share of rows whose highest logit is the target class."""
    return float((pred.argmax(1) == y).float().mean())


def label_accuracy(
    pred: torch.Tensor, y: torch.Tensor, threshold: float = 0.5
) -> float:
    """Share of (row, label) cells decided right from the logits ``pred`` by
    :func:`hits` at ``threshold``."""
    return float(
        (hits(torch.sigmoid(pred.float()), threshold).float() == y).float().mean()
    )


def labels_from_hits(hits: np.ndarray, classes: np.ndarray, label_format: str) -> Any:
    """Multi-label predictions ``hits`` ``(n, n_classes)`` (bool) in the form ``y`` was
    given: a 0/1 indicator matrix, or an object array of label lists."""
    if label_format == "indicator":
        return hits.astype(np.int64)
    out = np.empty(len(hits), dtype=object)
    for i, row in enumerate(hits):
        out[i] = classes[row].tolist()
    return out


def label_set_accuracy(
    truth: torch.Tensor, hits: np.ndarray, sample_weight: Any = None
) -> float:
    """The share of rows whose whole label set is right (scikit-learn's accuracy on
    indicator matrices); ``truth`` as :func:`encode_targets` gives it."""
    from sklearn.metrics import accuracy_score

    return float(
        accuracy_score(truth.numpy().astype(bool), hits, sample_weight=sample_weight)
    )
