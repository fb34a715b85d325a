"""deepfit: the shared training engine (learner, schedules, finder, callbacks, batching,
the scikit-learn base class, shared layers and optimizers). Domain code lives in ``tabular``,
``collab``, ``text`` and ``vision``; this package imports none of them."""

from __future__ import annotations

from deepfit.callbacks import (
    AdversarialTraining,
    Callback,
    CancelFit,
    Checkpoint,
    EarlyStopping,
    GradientClipping,
    History,
    ProgressBar,
)
from deepfit.data import TensorBatches, to_device, train_valid_split
from deepfit.estimator import Decided, FitData, NeuralEstimator, resolve_device
from deepfit.layers import (
    AdaptiveConcatPool2d,
    Dropout,
    LinBnDrop,
    SigmoidRange,
    mlp_blocks,
)
from deepfit.learner import FitInterrupted, Learner, discriminative_lrs
from deepfit.lr_finder import SUGGESTIONS, LRFinder, LRFinderResult, lr_find
from deepfit.optim import SparseAdamW
from deepfit.persist import load
from deepfit.schedules import SGDR, Constant, OneCycle, Schedule, get_schedule

__version__ = "0.1.0"

__all__ = [
    "SGDR",
    "SUGGESTIONS",
    "AdaptiveConcatPool2d",
    "AdversarialTraining",
    "Callback",
    "CancelFit",
    "Checkpoint",
    "Constant",
    "Decided",
    "Dropout",
    "EarlyStopping",
    "FitData",
    "FitInterrupted",
    "GradientClipping",
    "History",
    "LRFinder",
    "LRFinderResult",
    "Learner",
    "LinBnDrop",
    "NeuralEstimator",
    "OneCycle",
    "ProgressBar",
    "Schedule",
    "SigmoidRange",
    "SparseAdamW",
    "TensorBatches",
    "discriminative_lrs",
    "get_schedule",
    "load",
    "lr_find",
    "mlp_blocks",
    "resolve_device",
    "to_device",
    "train_valid_split",
]
