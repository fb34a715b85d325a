"""What the collab estimators share for ranking (the ``k`` check, id lists, the top-k
frame, cosine neighbours of an item's vector) and the factor API of a factor model
(:class:`FactorModel`: biases, factors and their principal components as frames)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from collab.data import encode_ids

__all__ = ["FactorModel", "check_k", "id_index", "similar_items", "top_k_frame"]


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


class FactorModel:
    """The factor API of a fitted estimator whose ``module_`` has user and item biases
    and vectors (``user_vectors()``, ``item_vectors()``), indexed by ``users_`` and
    ``items_``: what to read a factor model by."""

    def _weights(self, name: str) -> np.ndarray:
        check_is_fitted(self)
        module = self.module_
        with torch.inference_mode():
            if name == "user_factors":
                w = module.user_vectors()
            elif name == "item_factors":
                w = module.item_vectors()
            else:
                w = getattr(module, name).weight
            return w.detach().float().cpu().numpy()

    @property
    def item_bias_(self) -> pd.Series:
        return pd.Series(
            self._weights("item_bias")[:, 0], index=self.items_, name="bias"
        )

    @property
    def user_bias_(self) -> pd.Series:
        return pd.Series(
            self._weights("user_bias")[:, 0], index=self.users_, name="bias"
        )

    @property
    def item_factors_(self) -> pd.DataFrame:
        w = self._weights("item_factors")
        return pd.DataFrame(w, index=self.items_, columns=_factor_names(w.shape[1]))

    @property
    def user_factors_(self) -> pd.DataFrame:
        w = self._weights("user_factors")
        return pd.DataFrame(w, index=self.users_, columns=_factor_names(w.shape[1]))

    def item_components(
        self, n_components: int = 3, items: Sequence[Hashable] | None = None
    ) -> pd.DataFrame:
        """Item factors projected onto their top principal components.

        The first components of the item factors tend to be readable axes of taste
        (say blockbuster vs. art house); sort by one and look at both ends.

        Parameters
        ----------
        n_components : int, default=3
        items : list of ids, optional
            Fit the projection on these items only (say the 1,000 most rated, from
            ``item_counts_``): rarely rated items have noisy factors.

        Returns
        -------
        DataFrame
            One row per item, columns ``pc1 .. pcN``. ``.attrs["explained_variance_ratio"]``
            holds each component's share of the variance.
        """
        from sklearn.decomposition import PCA

        factors = self.item_factors_
        if items is not None:
            missing = [it for it in items if it not in factors.index]
            if missing:
                raise KeyError(f"items not seen in training: {missing[:5]}")
            factors = factors.loc[list(items)]
        pca = PCA(n_components=n_components)
        proj = pca.fit_transform(factors.to_numpy())
        out = pd.DataFrame(
            proj,
            index=factors.index,
            columns=[f"pc{j + 1}" for j in range(proj.shape[1])],
        )
        out.attrs["explained_variance_ratio"] = pca.explained_variance_ratio_.tolist()
        return out


def _factor_names(n: int) -> list[str]:
    return [f"f{j}" for j in range(n)]
