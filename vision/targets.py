"""The multi-label metric reported while training an image classifier (its labels,
losses and accuracy are :mod:`deepfit.targets`', shared with every classifier)."""

from __future__ import annotations

import torch

from deepfit.targets import hits

__all__ = ["fbeta"]


def fbeta(
    pred: torch.Tensor,
    target: torch.Tensor,
    beta: float = 2.0,
    threshold: float = 0.5,
    eps: float = 1e-9,
) -> torch.Tensor:
    """Multi-label F-beta, averaged over samples (sklearn's ``average="samples"``), of
    ``sigmoid(pred) >= threshold`` against an indicator ``target``."""
    p = hits(torch.sigmoid(pred), threshold).float()
    t = target.float()
    tp = (p * t).sum(1)
    precision = tp / (p.sum(1) + eps)
    recall = tp / (t.sum(1) + eps)
    b2 = beta**2
    return ((1 + b2) * precision * recall / (b2 * precision + recall + eps)).mean()
