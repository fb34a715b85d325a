"""In-memory batching for data that fits in memory as tensors (tabular, collaborative),
and the input checks every domain shares (class labels, sample weights, frames from
polars and pyarrow).

Peers wrap such data in a per-row ``Dataset`` and a ``collate`` function, which costs a
Python call per row. Here each epoch draws one permutation, gathers every tensor in that
order once, and yields contiguous slices (views), so a batch costs a few tensor slices.
"""

from __future__ import annotations

import copy
import itertools
import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "TensorBatches",
    "arrow_to_pandas",
    "as_pandas",
    "check_class_labels",
    "check_sample_weight",
    "is_frame",
    "to_device",
    "train_valid_split",
]

Tensors = torch.Tensor | Sequence[torch.Tensor]


def check_class_labels(y: Any, regressor: str = "a regressor") -> None:
    """Refuse labels a classifier cannot take, naming why: continuous numbers (a
    regression target; ``regressor`` names what to use instead) and labels of mixed
    types (``1`` beside ``"a"``, which cannot be sorted into classes)."""
    arr = np.asarray(y, dtype=object if isinstance(y, list) else None).ravel()
    if arr.dtype == object:
        kinds = {
            "number"
            if isinstance(v, (numbers.Number, np.number))
            else "str"
            if isinstance(v, str)  # numpy's str_ too
            else type(v).__name__
            for v in arr
            if v is not None and not (isinstance(v, float) and np.isnan(v))
        }
        if len(kinds) > 1:
            raise ValueError(
                f"y mixes label types ({', '.join(sorted(kinds))}); give every label the "
                "same type (say all strings)"
            )
    kind = type_of_target(arr, input_name="y")
    if kind.startswith("continuous"):
        raise ValueError(
            f"Unknown label type: {kind} (y holds non-integer numbers; use {regressor} "
            "for regression)"
        )


def is_frame(X: Any) -> bool:
    """A table with column names: pandas, polars, pyarrow or an interchange frame."""
    return (
        isinstance(X, (pd.DataFrame, pa.Table))
        or type(X).__module__.split(".")[0] == "polars"
        or (hasattr(X, "__dataframe__") and not isinstance(X, np.ndarray))
    )


def _arrow_dtype(t: pa.DataType) -> Any:
    # Dictionary columns become pandas categoricals, which pandas sorts and counts
    # (an Arrow-backed dictionary column it cannot).
    return None if pa.types.is_dictionary(t) else pd.ArrowDtype(t)


def arrow_to_pandas(table: pa.Table | pa.RecordBatch) -> pd.DataFrame:
    """An Arrow table or record batch as a pandas DataFrame with Arrow-backed columns
    (no copy of numeric data), dictionary columns as categoricals."""
    return table.to_pandas(types_mapper=_arrow_dtype)


def as_pandas(X: Any) -> pd.DataFrame | None:
    """A polars DataFrame, a pyarrow Table or another interchange-protocol frame as a
    pandas DataFrame (see :func:`arrow_to_pandas`); ``None`` for anything else."""
    if isinstance(X, pa.Table):
        return arrow_to_pandas(X)
    if type(X).__module__.split(".")[0] == "polars" and hasattr(X, "to_arrow"):
        return arrow_to_pandas(X.to_arrow())
    if hasattr(X, "__dataframe__") and not isinstance(X, np.ndarray):
        return pd.api.interchange.from_dataframe(X)
    return None


def check_sample_weight(
    sample_weight: Any, n: int, part: bool = False
) -> np.ndarray | None:
    """``sample_weight`` as float64 of shape ``(n,)`` (``None`` stays ``None``); a clear
    error for another shape, a NaN, infinite or negative weight (naming its position)
    or all zeros (allowed with ``part``: weights of one part of a stream, whose caller
    checks the total)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(
            f"sample_weight has shape {w.shape}, expected ({n},) to match X"
        )
    bad = ~np.isfinite(w) | (w < 0)
    if bad.any():
        i = int(bad.argmax())
        raise ValueError(
            f"sample_weight must be finite and >= 0; position {i} holds {w[i]}"
        )
    if w.sum() <= 0 and not part:
        raise ValueError("sample_weight is zero in every row: nothing would be learned")
    return w


def to_device(obj: Any, device: torch.device, non_blocking: bool = False) -> Any:
    """Move a tensor, or the tensors in a tuple/list/dict, to ``device``."""
    if isinstance(obj, torch.Tensor):
        return (
            obj if obj.device == device else obj.to(device, non_blocking=non_blocking)
        )
    if isinstance(obj, (tuple, list)):
        return type(obj)(to_device(o, device, non_blocking) for o in obj)
    if isinstance(obj, dict):
        return {k: to_device(v, device, non_blocking) for k, v in obj.items()}
    return obj


def _flat(x: Tensors | None) -> list[torch.Tensor]:
    if x is None:
        return []
    return [x] if isinstance(x, torch.Tensor) else list(x)


class TensorBatches:
    """Batches ``(x, y[, w])`` cut from tensors held in memory.

    Parameters
    ----------
    x : Tensor or sequence of Tensors
        Inputs; a sequence (say categorical codes and continuous values) is yielded as a
        tuple, which the learner unpacks into the model's arguments.
    y : Tensor, optional
        Targets. Without them each batch is ``(x,)`` (for prediction).
    w : Tensor, optional
        Per-row weights, yielded third (the loss receives them).
    batch_size : int, default=256
    shuffle : bool, default=False
        Draw a new permutation every epoch.
    drop_last : bool, default=False
        Drop a last partial batch (useful with BatchNorm when it would hold one row).
    generator : torch.Generator, optional
        Source of the permutations, for reproducible epochs.
    device : str or torch.device, optional
        Move all tensors there once, up front.
    """

    def __init__(
        self,
        x: Tensors,
        y: torch.Tensor | None = None,
        w: torch.Tensor | None = None,
        *,
        batch_size: int = 256,
        shuffle: bool = False,
        drop_last: bool = False,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        xs = _flat(x)
        if not xs:
            raise ValueError("TensorBatches needs at least one input tensor")
        self._x_is_tuple = not isinstance(x, torch.Tensor)
        tensors = [*xs, *_flat(y), *_flat(w)]
        if device is not None:
            tensors = [t.to(device) for t in tensors]
        n = len(tensors[0])
        for t in tensors:
            if len(t) != n:
                raise ValueError(
                    f"all tensors must have the same number of rows, got "
                    f"{[len(t) for t in tensors]}"
                )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.tensors, self.n_x = tensors, len(xs)
        self.n, self.batch_size = n, int(batch_size)
        self.shuffle, self.drop_last, self.generator = shuffle, drop_last, generator

    _part: tuple[int, int] = (0, 1)  # (rank, world): see shard()

    def shard(self, rank: int, world: int) -> TensorBatches:
        """These batches as rank ``rank`` of ``world`` reads them in a distributed fit:
        its rows of an even split of each batch, gathered alone (batches with fewer
        rows than ranks are skipped). The permutations stay those of the whole."""
        out = copy.copy(self)
        out._part = (int(rank), int(world))
        return out

    def _bounds(self) -> list[tuple[int, int]]:
        """Row ranges (in epoch order) of this part of each batch."""
        stop = min(len(self._whole()) * self.batch_size, self.n)
        r, w = self._part
        out = []
        for i in range(0, stop, self.batch_size):
            m = min(self.batch_size, stop - i)
            if m >= w:
                out.append((i + (r * m) // w, i + ((r + 1) * m) // w))
        return out

    def _whole(self) -> range:
        if self.drop_last and self.n >= self.batch_size:
            return range(self.n // self.batch_size)
        return range(math.ceil(self.n / self.batch_size))

    def __len__(self) -> int:
        return len(self._whole()) if self._part[1] == 1 else len(self._bounds())

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        tensors = self.tensors
        bounds = self._bounds()
        if self._part[1] > 1:  # gather this rank's rows only
            order = (
                torch.randperm(self.n, generator=self.generator)
                if self.shuffle
                else torch.arange(self.n)
            ).to(tensors[0].device)
            index = torch.cat([order[lo:hi] for lo, hi in bounds])
            tensors = [t[index] for t in tensors]
            ends = list(itertools.accumulate(hi - lo for lo, hi in bounds))
            bounds = list(zip([0, *ends[:-1]], ends, strict=True))
        elif self.shuffle:
            perm = torch.randperm(self.n, generator=self.generator)
            perm = perm.to(tensors[0].device)
            tensors = [t[perm] for t in tensors]  # one gather per tensor per epoch
        for lo, hi in bounds:
            parts = [t[lo:hi] for t in tensors]
            xs = parts[: self.n_x]
            x = tuple(xs) if self._x_is_tuple else xs[0]
            yield (x, *parts[self.n_x :])


def train_valid_split(
    n: int,
    valid_fraction: float,
    random_state: np.random.RandomState | int | None = None,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of a shuffled train/validation split (stratified when asked)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(n)
    if stratify is not None:
        # Stratify only when every class can appear in both parts.
        _, counts = np.unique(stratify, return_counts=True)
        if counts.min() < 2 or round(n * valid_fraction) < len(counts):
            stratify = None
    train, valid = train_test_split(
        idx, test_size=valid_fraction, random_state=random_state, stratify=stratify
    )
    return np.sort(train), np.sort(valid)
