"""Ratings and interaction DataFrames -> integer codes and batches: input checks, the
id vocabularies, and batches of users' interaction rows.

Ids may be any hashable values (ints, strings, a mix). A vocabulary is a
:class:`pandas.Index` of the distinct ids seen in training, sorted when the ids can be
sorted (so the same ratings in another row order give the same codes) and in order of
first appearance otherwise; an id's code is its position, and ids never seen get ``-1``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import sparse
from sklearn.exceptions import DataConversionWarning

from deepfit.data import as_pandas, check_sample_weight
from deepfit.params import warn
from deepfit.persist import persistable
from deepfit.stream import (
    Fragment,
    StreamBatches,
    ValueCounts,
    row_hash,
    split_batches,
)

__all__ = [
    "AttributeCodes",
    "InteractionRows",
    "StreamedRatings",
    "check_attribute_overlap",
    "check_rating_range",
    "check_ratings",
    "encode_ids",
    "id_column",
    "id_vocabulary",
    "rating_batches",
    "scan_ratings",
    "warn_cold",
]


def _as_frame(X: Any) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        return X
    frame = as_pandas(X)  # polars, pyarrow: their column names kept
    if frame is not None:
        return frame
    if hasattr(X, "toarray"):
        raise TypeError(
            "sparse input is not supported: X holds user and item ids, pass them as a "
            "DataFrame or a dense 2-D array"
        )
    arr = None if isinstance(X, (pd.Series, str, bytes)) else np.asarray(X)
    if arr is None or arr.ndim != 2:
        raise ValueError(
            "X must be a DataFrame (or a 2-D array) holding the user and item id columns, "
            f"got {type(X).__name__}"
        )
    return pd.DataFrame(arr)


def id_column(X: Any, col: Hashable, role: str) -> pd.Series:
    """The ``col`` column of ``X`` as an object or string Series, checked: present, no
    missing ids, hashable values. ``role`` ("user" or "item") names it in errors."""
    frame = _as_frame(X)
    if col not in frame.columns:
        raise ValueError(
            f"X has no {role} id column {col!r} (set {role}_col); its columns are "
            f"{list(frame.columns)[:10]}"
        )
    values = frame[col]
    if isinstance(values, pd.DataFrame):
        raise ValueError(f"X has more than one column named {col!r}")
    missing = values.isna()
    if missing.any():
        raise ValueError(
            f"{role} id column {col!r} has {int(missing.sum())} missing (NaN/None) ids, "
            f"first at row {values.index[missing.to_numpy().argmax()]!r}; drop or fill "
            "them before fitting or predicting"
        )
    try:
        pd.unique(values)
    except TypeError as err:
        raise ValueError(
            f"{role} id column {col!r} holds unhashable ids: {err}"
        ) from err
    return values


def id_vocabulary(values: pd.Series) -> pd.Index:
    """The distinct ids: sorted when they sort, else in order of first appearance."""
    uniq = pd.Index(pd.unique(values), tupleize_cols=False)
    try:
        return uniq.sort_values()
    except TypeError:  # ids of mixed types (say ints and strings) do not sort
        return uniq


def encode_ids(vocab: pd.Index, values: pd.Series | Any) -> np.ndarray:
    """Codes of ``values`` in ``vocab`` (int64); ``-1`` for ids not in it."""
    if not isinstance(values, pd.Index):
        values = pd.Index(values, tupleize_cols=False)
    return np.asarray(vocab.get_indexer(values), dtype=np.int64)


def warn_cold(vocab: pd.Index, values: pd.Series, codes: np.ndarray, role: str) -> None:
    """Warn when ids unseen in training look like a mistake: ids of another type than
    training's (``"196"`` for ``196``), or most rows of a call of 20 or more. Those rows
    are served by the fallback, which is right for new users, not for mistyped ids."""
    cold = codes < 0
    if not cold.any():
        return
    seen = vocab.inferred_type
    here = pd.Index(values[cold].unique()[:1000]).inferred_type
    if {seen, here} <= {"integer", "floating", "mixed-integer-float"}:
        here = seen  # 196.0 and 196 are one id
    if here != seen and here not in ("empty", "mixed") and seen != "mixed":
        warn(
            f"{cold.sum()} of {len(codes)} rows have {role} ids of another type than "
            f"training's ({here} here, {seen} in fit), all unseen in training: they are "
            f"scored by the fallback. Convert the {role} ids to training's type",
            UserWarning,
        )
    elif len(codes) >= 20 and cold.mean() > 0.5:
        warn(
            f"{cold.sum()} of {len(codes)} rows have a {role} unseen in training and are "
            "scored by the fallback (cold_rows(X) says which)",
            UserWarning,
        )


def check_ratings(y: Any, n_rows: int) -> np.ndarray:
    """``y`` as a finite float32 vector with one rating per row of X."""
    if y is None:
        raise ValueError(
            "CollabRegressor requires y to be passed, but the target y is None (y holds "
            "the ratings)"
        )
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"y must be one column of ratings, got {y.shape[1]}")
        y = y.iloc[:, 0]
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        warn(
            "A column-vector y was passed when a 1d array was expected; using its only "
            "column as the ratings",
            DataConversionWarning,
        )
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y must be a vector of ratings, got shape {arr.shape}")
    if len(arr) != n_rows:
        raise ValueError(
            f"X and y have different lengths: {n_rows} rows in X, {len(arr)} ratings in y"
        )
    try:
        out = arr.astype(np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"ratings y must be numeric: {err}") from err
    bad = ~np.isfinite(out)
    if bad.any():
        i = int(bad.argmax())
        raise ValueError(
            f"ratings y hold {int(bad.sum())} NaN or infinite values, first at position "
            f"{i} ({out[i]})"
        )
    check_rating_range(out, "ratings y")
    return out.astype(np.float32)


# Ratings are learned as they are, in float32: beyond this, squared errors overflow.
MAX_RATING = 1e15


def check_rating_range(ratings: np.ndarray, what: str) -> None:
    """Refuse ratings too large to learn in float32, naming the first."""
    big = np.abs(ratings) > MAX_RATING
    if big.any():
        i = int(big.argmax())
        raise ValueError(
            f"{what} hold values too large to learn (position {i}: {ratings[i]:.3g}; "
            f"at most {MAX_RATING:.0e} in absolute value): rescale them"
        )


@persistable
class AttributeCodes:
    """A frame of user or item attributes (one row per id, the ids as its index) ->
    categorical codes and standardised numbers, for :class:`~collab.model.
    AttributeEmbedding`.

    Numeric columns (bools aside) are numbers: missing values get the median, then
    standardisation. Every other column is categorical: code 0 for missing or unseen
    values, 1.. for the values seen in ``fit``. Ids absent from the frame get all codes
    0 and the medians.
    """

    def fit(self, frame: pd.DataFrame, role: str) -> AttributeCodes:
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(
                f"{role}_features must be a DataFrame indexed by {role} id, got "
                f"{type(frame).__name__}"
            )
        if frame.index.has_duplicates:
            dup = frame.index[frame.index.duplicated()][0]
            raise ValueError(f"{role}_features lists {role} {dup!r} more than once")
        if frame.index.hasnans:
            raise ValueError(
                f"{role}_features' index (the {role} ids) holds a missing id at "
                f"position {int(np.flatnonzero(frame.index.isna())[0])}"
            )
        if frame.shape[1] == 0:
            raise ValueError(f"{role}_features has no columns")
        self.role = role
        self.cat_cols_, self.cont_cols_, self.levels_ = [], [], []
        self.medians_, self.means_, self.scales_ = [], [], []
        for col in frame.columns:
            values = frame[col]
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(
                values
            ):
                v = values.astype(np.float64)
                if v.isna().all():
                    raise ValueError(f"{role}_features column {col!r} is all missing")
                med = float(v.median())
                filled = v.fillna(med)
                with np.errstate(all="ignore"):  # 1e300 squared: checked below
                    spread = float(filled.std(ddof=0))
                if not np.isfinite(filled).all() or not np.isfinite(spread):
                    bad = filled[~np.isfinite(filled)]
                    raise ValueError(
                        f"{role}_features column {col!r} holds "
                        + (
                            f"{bad.iloc[0]} ({role} {bad.index[0]!r})"
                            if len(bad)
                            else "values too large to standardise"
                        )
                        + "; give finite values in a usable range, or missing ones"
                    )
                self.cont_cols_.append(col)
                self.medians_.append(med)
                self.means_.append(float(filled.mean()))
                self.scales_.append(spread or 1.0)
            else:
                self.cat_cols_.append(col)
                self.levels_.append(pd.Index(pd.unique(values.dropna())))
        self.cardinalities_ = [len(lv) + 1 for lv in self.levels_]
        self.frame_ = frame
        return self

    def transform(self, ids: pd.Index, frame: pd.DataFrame | None = None):
        """Codes ``(n, n_cat)`` and numbers ``(n, n_cont)`` of ``ids``, read from
        ``frame`` (default: the fitted one), as tensors."""
        frame = self.frame_ if frame is None else frame
        missing = [
            c for c in self.cat_cols_ + self.cont_cols_ if c not in frame.columns
        ]
        if missing:
            raise ValueError(
                f"{self.role}_features lacks column(s) {missing} seen in fit"
            )
        rows = frame.reindex(ids)
        codes = np.zeros((len(ids), len(self.cat_cols_)), dtype=np.int64)
        for j, (col, levels) in enumerate(
            zip(self.cat_cols_, self.levels_, strict=True)
        ):
            codes[:, j] = levels.get_indexer(rows[col]) + 1  # -1 (unseen, NaN) -> 0
        cont = np.zeros((len(ids), len(self.cont_cols_)), dtype=np.float32)
        for j, col in enumerate(self.cont_cols_):
            try:
                v = pd.to_numeric(rows[col]).astype(np.float64)
            except (TypeError, ValueError) as err:
                raise ValueError(
                    f"{self.role}_features column {col!r} is numeric in fit but holds "
                    f"non-numbers now ({err})"
                ) from err
            v = v.fillna(self.medians_[j])
            cont[:, j] = (v - self.means_[j]) / self.scales_[j]
        return torch.from_numpy(codes), torch.from_numpy(cont)


class InteractionRows:
    """Batches of users' interaction rows, dense ``(batch, n_items)`` float32, cut from
    a sparse ``(n_users, n_items)`` matrix one batch at a time (the whole matrix is
    never made dense). Each batch is ``(rows, rows)``: an autoencoder's input is its
    target; with ``targets=False``, ``(rows,)`` for prediction. With ``extras`` (tensors
    with a row per user, say their attribute codes), the inputs are the tuple
    ``(rows, *extras)``.

    Parameters
    ----------
    matrix : scipy.sparse matrix
    batch_size : int
    shuffle : bool, default=False
        A new order of the users every epoch.
    generator : torch.Generator, optional
    device : str or torch.device, optional
    targets : bool, default=True
    extras : sequence of Tensor, optional
    """

    def __init__(
        self,
        matrix: sparse.spmatrix,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        targets: bool = True,
        extras: tuple[torch.Tensor, ...] = (),
    ) -> None:
        self.matrix = sparse.csr_matrix(matrix, dtype=np.float32)
        self.batch_size, self.shuffle, self.generator = (
            int(batch_size),
            shuffle,
            generator,
        )
        self.device, self.targets, self.extras = device, targets, tuple(extras)

    def __len__(self) -> int:
        return math.ceil(self.matrix.shape[0] / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        n = self.matrix.shape[0]
        order = (
            torch.randperm(n, generator=self.generator).numpy()
            if self.shuffle
            else np.arange(n)
        )
        for i in range(0, n, self.batch_size):
            idx = order[i : i + self.batch_size]
            rows = torch.from_numpy(self.matrix[idx].toarray())
            extras = [t[torch.from_numpy(idx)] for t in self.extras]
            if self.device is not None:
                rows = rows.to(self.device)
                extras = [t.to(self.device) for t in extras]
            inputs = (rows, *extras) if extras else rows
            yield (inputs, rows) if self.targets else (inputs,)


@dataclass
class StreamedRatings:
    """What one scan of a streamed ratings table gives (see :func:`scan_ratings`)."""

    users: pd.Index
    items: pd.Index
    global_mean: float
    low: float
    high: float
    seen: sparse.csr_matrix  # the training pairs, (n_users, n_items), boolean
    counts: np.ndarray  # rows per fragment: training, validation (known ids only)


def _vocabulary(counts: ValueCounts) -> pd.Index:
    return id_vocabulary(pd.Series(np.asarray(counts.total().index)))


def scan_ratings(
    fragments: Sequence[Fragment],
    user_col: str,
    item_col: str,
    rating_col: str,
    weight_col: str | None,
    valid_fraction: float,
    seed: int,
    vocabularies: tuple[pd.Index, pd.Index] | None = None,
) -> StreamedRatings:
    """Vocabularies, rating statistics and the seen pairs of a streamed ratings table.

    A first pass checks every row (ids present, ratings finite, weights valid) and
    counts the ids of the training rows (those that :func:`deepfit.stream.row_hash`
    does not put in the validation part), the weighted mean rating and its range; with
    ``vocabularies`` (a warm start) it only checks. A second pass reads the two id
    columns alone and records the training pairs as codes (8 bytes a pair: the implicit
    term and ``exclude_seen`` need them) and how many rows of each part have known ids.
    """
    users, items = ValueCounts(), ValueCounts()
    total = weight = 0.0
    low, high = np.inf, -np.inf
    cols = [user_col, item_col, rating_col, *([weight_col] if weight_col else [])]
    for frag in fragments:
        for offset, df in frag.frames(cols):
            where = f"{frag.name}, rows {offset}-{offset + len(df) - 1}"
            for col, role in ((user_col, "user"), (item_col, "item")):
                if df[col].isna().any():
                    raise ValueError(
                        f"{role} id column {col!r} has missing ids (in {where}); drop "
                        "or fill them"
                    )
            r = df[rating_col].to_numpy(np.float64, na_value=np.nan)
            if not np.isfinite(r).all():
                raise ValueError(
                    f"rating column {rating_col!r} holds NaN or infinite values (in "
                    f"{where})"
                )
            check_rating_range(r, f"rating column {rating_col!r} (in {where})")
            w = None
            if weight_col:
                w = check_sample_weight(
                    df[weight_col].to_numpy(np.float64, na_value=np.nan),
                    len(df),
                    part=True,
                )
            if vocabularies is not None:
                continue
            train = row_hash(frag.index, offset, len(df), seed) >= valid_fraction
            users.update(df[user_col][train])
            items.update(df[item_col][train])
            wt = np.ones(int(train.sum())) if w is None else w[train]
            total += float((r[train] * wt).sum())
            weight += float(wt.sum())
            if train.any():
                low, high = min(low, r[train].min()), max(high, r[train].max())
    if vocabularies is None:
        vocabularies = (_vocabulary(users), _vocabulary(items))
        if weight <= 0:
            raise ValueError("no training rows (or all their weights are zero)")
    vu, vi = vocabularies
    pairs_u, pairs_i = [], []
    counts = np.zeros((len(fragments), 2), dtype=np.int64)
    for frag in fragments:
        for offset, df in frag.frames([user_col, item_col]):
            u, i = encode_ids(vu, df[user_col]), encode_ids(vi, df[item_col])
            train = row_hash(frag.index, offset, len(df), seed) >= valid_fraction
            known = (u >= 0) & (i >= 0)
            if (train & ~known).any():  # only possible when warm-starting
                role, col = (
                    ("user", user_col) if (u[train] < 0).any() else ("item", item_col)
                )
                raise ValueError(
                    f"warm_start: {role} ids not seen in the first fit in column {col!r} "
                    f"(in {frag.name}); their embeddings do not exist. Refit with "
                    "warm_start=False"
                )
            pairs_u.append(u[train].astype(np.int32))
            pairs_i.append(i[train].astype(np.int32))
            counts[frag.index] += (int(train.sum()), int((~train & known).sum()))
    pu, pi = np.concatenate(pairs_u), np.concatenate(pairs_i)
    seen = sparse.csr_matrix(
        (np.ones(len(pu), dtype=bool), (pu, pi)), shape=(len(vu), len(vi)), dtype=bool
    )
    mean = total / weight if weight > 0 else float("nan")
    return StreamedRatings(vu, vi, mean, float(low), float(high), seen, counts)


def rating_batches(
    fragments: Sequence[Fragment],
    scan: StreamedRatings,
    ids: Sequence[str],
    rating_col: str,
    weight_col: str | None,
    valid_fraction: float,
    seed: int,
    batch_size: int,
    generator: torch.Generator,
) -> tuple[StreamBatches, StreamBatches | None]:
    """Training and validation batches ``((users, items), ratings[, weights])`` of a
    streamed ratings table, coded with ``scan``'s vocabularies. Validation pairs with an
    id the model has no embedding for stay out, as in memory."""
    user_col, item_col = ids
    columns = [*ids, rating_col, *([weight_col] if weight_col else [])]

    def convert(df: pd.DataFrame) -> list[torch.Tensor]:
        out = [
            torch.from_numpy(encode_ids(scan.users, df[user_col])),
            torch.from_numpy(encode_ids(scan.items, df[item_col])),
            torch.from_numpy(df[rating_col].to_numpy(np.float32)),
        ]
        if weight_col:
            out.append(torch.from_numpy(df[weight_col].to_numpy(np.float32)))
        return out

    def known(index: int, offset: int, df: pd.DataFrame) -> np.ndarray:
        return (encode_ids(scan.users, df[user_col]) >= 0) & (
            encode_ids(scan.items, df[item_col]) >= 0
        )

    return split_batches(
        fragments,
        columns,
        convert,
        2,
        scan.counts,
        valid_fraction,
        seed,
        batch_size=batch_size,
        valid_batch_size=8192,
        generator=generator,
        valid_keep=known,
    )


def check_attribute_overlap(
    frame: pd.DataFrame | None, ids: pd.Index, role: str
) -> None:
    """Refuse attributes that describe none of the ids of the interactions: nothing
    could learn what they mean (often ids of another type, ``'196'`` for ``196``)."""
    if frame is None or not len(frame) or ids.isin(frame.index).any():
        return
    raise ValueError(
        f"{role}_features' index matches none of the {len(ids)} {role}s of X (its ids "
        f"look like {frame.index[0]!r}, X's like {ids[0]!r}): index it by the {role} "
        "ids of X, with their type"
    )
