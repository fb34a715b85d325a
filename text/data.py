"""Texts and labels checked and coded, and the batches of the language model (a token
stream read in BPTT windows) and of the classifier (texts of similar length padded
together)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from deepfit.data import check_class_labels
from deepfit.targets import check_no_missing

__all__ = [
    "LMBatches",
    "SortishBatches",
    "as_texts",
    "class_codes",
    "pad_batch",
    "target_array",
    "text_windows",
]


# ---- texts and labels --------------------------------------------------------------


def as_texts(X: Any, text_col: Any = None, name: str = "X") -> list[str]:
    """A list of str from a list, array, Series or DataFrame column; a clear error for
    anything else (None/NaN entries are named, not silently turned into text)."""
    if isinstance(X, str):
        raise TypeError(f"{name} is a single string; pass a list or Series of texts")
    if isinstance(X, pd.DataFrame):
        if text_col is not None:
            if text_col not in X.columns:
                raise KeyError(f"text_col {text_col!r} is not a column of {name}")
            X = X[text_col]
        elif X.shape[1] == 1:
            X = X.iloc[:, 0]
        else:
            raise ValueError(
                f"{name} has {X.shape[1]} columns {list(X.columns)[:5]}; set text_col "
                "to name the one holding the texts"
            )
    if isinstance(X, pd.Series):
        col = X.name if X.name is not None else name
        if pd.api.types.is_numeric_dtype(X.dtype) or pd.api.types.is_bool_dtype(
            X.dtype
        ):
            raise TypeError(f"column {col!r} holds {X.dtype} values, not text")
        values = X.tolist()
    elif isinstance(X, np.ndarray):
        if X.ndim != 1:
            raise ValueError(
                f"{name} must be 1-D (one text per row), got shape {X.shape}"
            )
        values = X.tolist()
    elif isinstance(X, Sequence) or hasattr(X, "__iter__"):
        values = list(X)
    else:
        raise TypeError(f"{name} must be a list, array, Series or DataFrame of texts")
    bad = [i for i, v in enumerate(values) if not isinstance(v, str)]
    if bad:
        kinds = sorted({type(values[i]).__name__ for i in bad})
        raise ValueError(
            f"{name} has {len(bad)} entries that are not text ({', '.join(kinds)}) at "
            f"positions {bad[:10]}{' ...' if len(bad) > 10 else ''}; drop or fill them "
            "(an empty string is accepted)"
        )
    return values


def target_array(y: Any, n: int, who: str) -> np.ndarray:
    """``y`` as an array of ``n`` rows (a one-column 2-D ``y`` made 1-D)."""
    if y is None:
        raise ValueError(f"{who} needs targets y")
    if isinstance(y, list):
        check_no_missing(y)
    arr = y.to_numpy() if isinstance(y, (pd.Series, pd.DataFrame)) else np.asarray(y)
    if len(arr) != n:
        raise ValueError(f"X has {n} texts but y has {len(arr)} rows")
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    return arr


def class_codes(
    arr: np.ndarray, classes: np.ndarray | None
) -> tuple[np.ndarray, torch.Tensor]:
    """The classes (learned from ``arr`` when ``classes`` is None) and the class index
    of each label of a 1-D ``arr``; labels must be among known ``classes``."""
    if arr.ndim != 1:
        raise ValueError(f"y must be 1-D or 2-D (multi-label), got shape {arr.shape}")
    if pd.isna(arr).any():
        raise ValueError(
            f"y has missing values at rows {np.flatnonzero(pd.isna(arr))[:10].tolist()}"
        )
    if classes is None:
        check_class_labels(arr)
        classes = np.unique(arr)
        if len(classes) < 2:
            raise ValueError(f"y has a single class {classes[0]!r}; need at least 2")
    codes = np.searchsorted(classes, arr)
    codes = np.clip(codes, 0, len(classes) - 1)
    unseen = classes[codes] != arr
    if unseen.any():
        raise ValueError(
            f"y has classes unseen in the first fit: {np.unique(arr[unseen])[:5]}"
        )
    return classes, torch.as_tensor(codes, dtype=torch.long)


# ---- batches -------------------------------------------------------------------------


class LMBatches:
    """Language-model batches: ``(x, y)`` with ``x`` of shape ``(batch_size, seq_len)``
    and ``y`` the next tokens, flattened to ``(batch_size * seq_len,)`` so that the
    learner weighs each batch by its number of tokens.

    The documents are concatenated into one stream (in a new random order every epoch when
    ``shuffle``), the stream is cut into ``batch_size`` contiguous rows, and the rows are
    read left to right in windows, so row ``i`` of one batch continues row ``i`` of the
    previous one and the model can carry its hidden state across batches. With
    ``random_bptt`` the window lengths vary as in AWD-LSTM (Merity et al. 2017, sec. 4.1):
    ``bptt`` with probability 0.95, else ``bptt / 2``, then jittered with a normal of
    standard deviation 5; they are rescaled so that every epoch has the same number of
    windows and covers the stream exactly once. The last ``(len - 1) % batch_size``
    tokens of the stream are dropped.

    With ``weights`` (one per document) the batches are ``(x, y, w)``: ``w``, shaped as
    ``y``, is the weight of the document each target token belongs to, scaled so that
    the stream's tokens average 1 (a batch's mean of ``w`` times the token losses is then
    its share of the stream's weighted mean, whatever the weights' scale).

    Parameters
    ----------
    docs : sequence of 1-D int arrays or tensors
        Token ids of each document (or one array holding the whole stream).
    batch_size : int
    bptt : int, default=70
    random_bptt : bool, default=False
    shuffle : bool, default=False
        Concatenate the documents in a new random order every epoch.
    generator : torch.Generator, optional
    device : str or torch.device, optional
    weights : sequence of float, optional
        A non-negative weight per document, not all of the tokens' zero.
    """

    def __init__(
        self,
        docs: Sequence[Any],
        batch_size: int,
        bptt: int = 70,
        random_bptt: bool = False,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        if isinstance(docs, (np.ndarray, torch.Tensor)) and np.ndim(docs) == 1:
            docs = [docs]
        self.docs = [torch.as_tensor(np.asarray(d), dtype=torch.long) for d in docs]
        self.n_tokens = sum(len(d) for d in self.docs)
        self.weights = None
        if weights is not None:
            w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
            lengths = torch.tensor([len(d) for d in self.docs], dtype=torch.float64)
            if w.shape != lengths.shape:
                raise ValueError(
                    f"weights has shape {tuple(w.shape)}, expected ({len(self.docs)},): "
                    "one per document"
                )
            mean = float((w * lengths).sum()) / max(self.n_tokens, 1)
            if not (torch.isfinite(w).all() and (w >= 0).all() and mean > 0):
                raise ValueError(
                    "weights must be finite and non-negative, and give some token a "
                    "positive weight"
                )
            self.weights = (w / mean).float()
        if batch_size < 1 or bptt < 1:
            raise ValueError(
                f"batch_size and bptt must be >= 1, got {batch_size}, {bptt}"
            )
        self.batch_size, self.bptt = int(batch_size), int(bptt)
        self.row_len = (self.n_tokens - 1) // self.batch_size
        if self.row_len < 1:
            raise ValueError(
                f"{self.n_tokens} tokens are too few for batch_size={batch_size}: each "
                "row needs at least 2 tokens"
            )
        self.random_bptt, self.shuffle = random_bptt, shuffle
        self.generator = generator
        self.device = torch.device(device) if device is not None else None

    def __len__(self) -> int:
        return math.ceil(self.row_len / self.bptt)

    def stream(self) -> torch.Tensor:
        """This epoch's stream (documents in a new order when shuffling)."""
        return self._streams()[0]

    def _streams(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This epoch's stream and, with ``weights``, its tokens' weights."""
        order = list(range(len(self.docs)))
        if self.shuffle and len(self.docs) > 1:
            order = torch.randperm(len(self.docs), generator=self.generator).tolist()
        docs = [self.docs[i] for i in order]
        s = torch.cat(docs) if len(docs) > 1 else docs[0]
        if self.weights is None:
            return s, None
        lengths = torch.tensor([len(d) for d in docs])
        return s, torch.repeat_interleave(self.weights[order], lengths)

    def window_lengths(self) -> list[int]:
        """This epoch's window lengths: ``len(self)`` of them summing to ``row_len``."""
        n = len(self)
        if not self.random_bptt or n == 1:
            return [self.bptt] * (n - 1) + [self.row_len - self.bptt * (n - 1)]
        g = self.generator
        halve = torch.rand(n, generator=g) >= 0.95
        base = torch.where(halve, self.bptt / 2, float(self.bptt))
        raw = (base + 5 * torch.randn(n, generator=g)).clamp(min=5)
        # Cumulative cut points scaled to the row length keep the count and coverage exact.
        cuts = torch.round(torch.cumsum(raw, 0) / raw.sum() * self.row_len).long()
        cuts = torch.cat([torch.zeros(1, dtype=torch.long), cuts])
        lengths = (cuts[1:] - cuts[:-1]).clamp(min=1)
        lengths[-1] = self.row_len - int(lengths[:-1].sum())
        if int(lengths[-1]) < 1:  # pathological rounding: fall back to fixed windows
            return [self.bptt] * (n - 1) + [self.row_len - self.bptt * (n - 1)]
        return lengths.tolist()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        s, ws = self._streams()
        bs, n = self.batch_size, self.row_len
        x = s[: bs * n].view(bs, n)  # (B, row_len): row i is one contiguous stretch
        y = s[1 : bs * n + 1].view(bs, n)
        w = None if ws is None else ws[1 : bs * n + 1].view(bs, n)  # y's documents
        if self.device is not None:
            x, y = x.to(self.device), y.to(self.device)
            w = None if w is None else w.to(self.device)
        i = 0
        for length in self.window_lengths():
            window = slice(i, i + length)
            if w is None:
                yield x[:, window], y[:, window].reshape(-1)
            else:
                yield x[:, window], y[:, window].reshape(-1), w[:, window].reshape(-1)
            i += length


def _kept_from(n: int, max_len: int | None) -> int:
    """Index of the first token after ``xxbos`` that a text of ``n`` tokens keeps when
    it is cut to ``max_len`` (its last ``max_len - 1`` tokens)."""
    return 1 if max_len is None or n <= max_len else n - max_len + 1


def pad_batch(
    seqs: Sequence[np.ndarray], pad_idx: int, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``(B, L)`` and the true lengths ``(B,)``. Sequences longer than
    ``max_len`` keep their first token (``xxbos``) and their last ``max_len - 1``."""
    if max_len is not None:
        seqs = [
            s
            if len(s) <= max_len
            else np.concatenate([s[:1], s[_kept_from(len(s), max_len) :]])
            for s in seqs
        ]
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), pad_idx, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = torch.as_tensor(s)
    return out, lengths


def text_windows(
    docs: Sequence[np.ndarray], size: int, max_len: int | None = None
) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut each text into windows of ``size`` tokens after its ``xxbos``, half
    overlapping (``size // 2`` apart), the last one ending where the text ends; a text
    no longer than ``size`` is one window. Texts are first cut to ``max_len`` as
    :func:`pad_batch` cuts them. Every window starts with the text's first token.

    Returns the windows and, for each, the index of its text.
    """
    wins, owner = [], []
    stride = max(1, size // 2)
    for k, d in enumerate(docs):
        d = np.asarray(d)
        body = d[_kept_from(len(d), max_len) :]
        starts = list(range(0, max(len(body) - size, 0) + 1, stride))
        if starts[-1] + size < len(body):
            starts.append(len(body) - size)
        wins += [np.concatenate([d[:1], body[st : st + size]]) for st in starts]
        owner += [k] * len(starts)
    return wins, np.asarray(owner, dtype=np.int64)


def check_crop(crop: Any) -> None:
    """``crop`` must be None, a share in (0, 1] or a whole number of tokens >= MIN_CROP."""
    if crop is None:
        return
    if isinstance(crop, bool) or not isinstance(crop, numbers.Real):
        raise ValueError(f"crop must be a number or None, got {crop!r}")
    if isinstance(crop, numbers.Integral):
        if crop < SortishBatches.MIN_CROP:
            raise ValueError(
                f"an integer crop is a length in tokens and must be >= "
                f"{SortishBatches.MIN_CROP}, got {crop!r} (pass a float for a share)"
            )
    elif not 0 < crop <= 1:
        raise ValueError(f"a float crop is a share and must be in (0, 1], got {crop!r}")


class SortishBatches:
    """Classification batches ``((ids, lengths), y)`` of texts of similar length.

    Padding goes at the end (the classifier reads each text's last real position and pools
    over real positions only). Training order is *sortish* (fastai): shuffle, cut into
    chunks of 50 batches, sort each chunk by length, shuffle the batches; so batches hold
    similar lengths yet differ every epoch. Without ``shuffle`` the texts are sorted by
    length, longest first, and :attr:`order` maps the batches' rows back to the input
    order.

    With ``crop`` (training only), every epoch each text is replaced by a random
    contiguous span of its tokens: the first token (``xxbos``) and, of the rest, a span
    whose length is drawn uniformly between ``crop`` and all of it (at least
    ``MIN_CROP`` tokens, or the whole text when it is shorter), at a random place. An
    integer ``crop`` is a length in tokens instead of a share (as scikit-learn's
    ``max_features``): spans of ``MIN_CROP`` to ``crop`` tokens, whatever the text's
    length. The label stays the text's. A classifier that sees a different part of each
    review every epoch cannot fit the labels by recognising whole reviews; it has to read
    what the parts say. Texts are cut to ``max_len`` before they are cropped, as they are
    read at prediction time.

    Parameters
    ----------
    seqs : sequence of 1-D int arrays
    y : Tensor, optional
        Targets (rows aligned with ``seqs``); without them batches are ``((ids, lengths),)``.
    w : Tensor, optional
        Per-text weights, yielded after the targets (the loss receives them).
    batch_size : int
    pad_idx : int
    max_len : int, optional
        Longer texts keep ``xxbos`` and their last ``max_len - 1`` tokens.
    shuffle : bool, default=False
    generator : torch.Generator, optional
    device : str or torch.device, optional
    crop : float in (0, 1] or int >= MIN_CROP, optional
        The shortest share of a text that a training crop keeps, or (an int) the longest
        crop in tokens; needs ``shuffle``.
    """

    MIN_CROP = 20

    def __init__(
        self,
        seqs: Sequence[np.ndarray],
        y: torch.Tensor | None = None,
        w: torch.Tensor | None = None,
        *,
        batch_size: int,
        pad_idx: int,
        max_len: int | None = None,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: str | torch.device | None = None,
        crop: float | int | None = None,
    ) -> None:
        check_crop(crop)
        if crop is not None and not shuffle:
            raise ValueError(f"crop needs shuffle=True (training), got crop={crop!r}")
        self.seqs, self.y, self.w = list(seqs), y, w
        self.batch_size, self.pad_idx, self.max_len = int(batch_size), pad_idx, max_len
        self.shuffle, self.generator, self.crop = shuffle, generator, crop
        self.device = torch.device(device) if device is not None else None
        self.lengths = np.array([len(s) for s in self.seqs])
        if max_len is not None:
            self.lengths = np.minimum(self.lengths, max_len)
        # Stable sort, longest first: deterministic order for prediction.
        self.order = np.argsort(-self.lengths, kind="stable")

    def __len__(self) -> int:
        return math.ceil(len(self.seqs) / self.batch_size)

    def _crops(self) -> list[np.ndarray]:
        """This epoch's crop of every text (see the class docstring)."""
        n = len(self.seqs)
        tokens = isinstance(self.crop, numbers.Integral)
        draw = torch.rand(n, generator=self.generator)
        share = draw if tokens else self.crop + (1 - self.crop) * draw
        place = torch.rand(n, generator=self.generator)
        out = []
        for s, sh, pl in zip(self.seqs, share.tolist(), place.tolist(), strict=True):
            first = _kept_from(len(s), self.max_len)  # cut to max_len first
            body = len(s) - first
            low = min(body, self.MIN_CROP)
            if tokens:  # MIN_CROP to crop tokens
                keep = low + round((min(body, self.crop) - low) * sh)
            else:
                keep = max(low, round(body * sh))
            start = first + int(pl * (body - keep + 1))  # uniform over where it fits
            out.append(np.concatenate([s[:1], s[start : start + keep]]))
        return out

    def _batches(self, lengths: np.ndarray) -> list[np.ndarray]:
        bs = self.batch_size
        if not self.shuffle:
            return [self.order[i : i + bs] for i in range(0, len(self.order), bs)]
        perm = torch.randperm(len(self.seqs), generator=self.generator).numpy()
        chunk = bs * 50
        idx = np.concatenate(
            [
                c[np.argsort(-lengths[c], kind="stable")]
                for c in (perm[i : i + chunk] for i in range(0, len(perm), chunk))
            ]
        )
        batches = [idx[i : i + bs] for i in range(0, len(idx), bs)]
        order = torch.randperm(len(batches), generator=self.generator).tolist()
        return [batches[i] for i in order]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        seqs, lengths = self.seqs, self.lengths
        if self.crop is not None:
            seqs = self._crops()
            lengths = np.array([len(s) for s in seqs])
        for rows in self._batches(lengths):
            ids, lengths_b = pad_batch(
                [seqs[i] for i in rows], self.pad_idx, self.max_len
            )
            if self.device is not None:
                ids, lengths_b = ids.to(self.device), lengths_b.to(self.device)
            if self.y is None:
                yield ((ids, lengths_b),)
            else:
                picked = torch.as_tensor(rows)
                out = [self.y[picked]]
                if self.w is not None:
                    out.append(self.w[picked])
                if self.device is not None:
                    out = [t.to(self.device) for t in out]
                yield ((ids, lengths_b), *out)
