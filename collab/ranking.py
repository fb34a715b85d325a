"""What the two collab estimators share for ranking: the ``k`` check, id lists, the top-k
frame and cosine neighbours of an item's factors."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from collab.data import encode_ids

__all__ = ["check_k", "id_index", "similar_items", "top_k_frame"]


def check_k(k: Any, n_items: int) -> int:
    """``k`` (a positive integer) capped at the number of items."""
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return min(int(k), n_items)


def id_index(ids: Any) -> pd.Index:
    """One id or a collection of them (a list, array, Series, set...) as an Index; a
    tuple is one id (ids may be tuples)."""
    if isinstance(ids, (set, frozenset)):
        ids = list(ids)
    elif isinstance(ids, (str, bytes, tuple)) or np.ndim(ids) == 0:
        ids = [ids]
    return pd.Index(list(ids), tupleize_cols=False)


def top_k_frame(
    ids: pd.Index, items: pd.Index, top: np.ndarray, idx: np.ndarray, k: int
) -> pd.DataFrame:
    """The ``(len(ids), k)`` scores ``top`` and item codes ``idx`` as a frame of
    ``user``, ``item``, ``score``, ``rank`` (1 = best), by user then rank; entries with
    a score of -inf (nothing left to recommend) are left out."""
    rows = np.repeat(np.arange(len(ids)), k)
    keep = np.isfinite(top.ravel())
    return pd.DataFrame(
        {
            "user": ids[rows[keep]],
            "item": items[idx.ravel()[keep]],
            "score": top.ravel()[keep].astype(np.float64),
            "rank": np.tile(np.arange(1, k + 1), len(ids))[keep],
        }
    )


def similar_items(
    items: pd.Index, vectors: torch.Tensor, item: Hashable, k: Any
) -> pd.DataFrame:
    """The ``k`` items whose ``vectors`` (one row per item of ``items``) are closest to
    ``item``'s by cosine similarity, as a frame of ``item``, ``similarity`` (in [-1,
    1]) and ``rank`` (1 = closest); the item itself is left out. ``KeyError`` for an
    unknown item."""
    k = check_k(k, len(items))
    code = int(encode_ids(items, [item])[0])
    if code < 0:
        raise KeyError(f"item {item!r} was not seen in training")
    with torch.inference_mode():
        f = nn.functional.normalize(vectors.float().cpu(), dim=1)
        sims = f @ f[code]  # (I,)
        sims[code] = -math.inf
        top, idx = torch.topk(sims, min(k, len(sims) - 1))
    return pd.DataFrame(
        {
            "item": items[idx.numpy()],
            "similarity": top.numpy().astype(np.float64),
            "rank": np.arange(1, len(idx) + 1),
        }
    )
