"""Data larger than memory: parquet files and Arrow datasets, streamed.

An estimator that takes a stream source as ``X`` (a ``pyarrow.dataset.Dataset``, a
parquet file or folder, or a list of paths) reads it a record batch at a time and never
holds the table:

- :func:`open_dataset` opens the source, reads each file's schema (its footer) into one
  schema every file is read as, and cuts it into row groups (:class:`Fragment`), the
  units that are shuffled, sharded over ranks and read;
- :class:`Moments`, :class:`RowSample` and :class:`ValueCounts` fit preprocessing in one
  pass: exact counts, means, variances, minima and maxima; medians and quantiles from a
  uniform sample of rows;
- :func:`row_hash` puts each row in the training or validation part by a hash of where
  it lies in the dataset (its row group and offset) and the seed: the same side in every
  pass, on every rank, whatever order the row groups are read in;
- :class:`StreamBatches` yields training batches through a shuffle buffer, with a length
  known up front, as the learner needs.

Shuffle quality. Each epoch reads the row groups in a new random order; the rows go into
a buffer of ``buffer_rows`` rows, which is permuted, and its first half is cut into
batches while the second half stays to mix with the next row groups. Every row is seen
exactly once per epoch; a batch mixes rows of about ``buffer_rows`` consecutive rows of
the (shuffled) read order, so rows sorted by the target within a file are mixed only as
far as the buffer reaches: larger buffers mix more, at ``buffer_rows`` rows of memory.
"""

from __future__ import annotations

import copy
import ctypes
import ctypes.util
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import torch

from deepfit.data import arrow_to_pandas
from deepfit.files import atomic_path, check_not_input

__all__ = [
    "Fragment",
    "Moments",
    "RowSample",
    "StreamBatches",
    "StreamSource",
    "ValueCounts",
    "fit_columns",
    "is_stream",
    "open_dataset",
    "read_frames",
    "row_hash",
    "source_paths",
    "split_batches",
    "valid_share",
    "write_parquet",
]

# Rows per record batch read from a fragment: large enough for vectorised conversion,
# small enough that a few of them are negligible next to the shuffle buffer.
READ_ROWS = 65_536
# At most this many validation rows (expected): a validation loss over more is no more
# informative, and its predictions are held for the metrics (see valid_share).
MAX_VALID_ROWS = 500_000


def _read_pool() -> pa.MemoryPool:
    """The pool record batches are decoded into: jemalloc where pyarrow has it, which
    hands freed pages back to the system (pyarrow's default, mimalloc, keeps them from
    torch: 2M rows of the out-of-core benchmark ended their fit at 1434 MiB resident
    with mimalloc reads, 1371 MiB with jemalloc ones)."""
    try:
        return pa.jemalloc_memory_pool()
    except NotImplementedError:
        return pa.default_memory_pool()


def _trim() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``).
    The buffers a streamed epoch allocates and frees, all of different sizes, otherwise
    leave the heap fragmented, and resident memory grows with the rows read (6M rows of
    the out-of-core benchmark: 1385 -> 1502 MiB from batch 1,000 to 5,000 without it,
    1355 -> 1373 MiB with it)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:  # not glibc (macOS, Windows, musl): nothing to trim
        return None


_LIBC = _load_libc()


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def is_stream(X: Any) -> bool:
    """Whether ``X`` is a stream source: a ``pyarrow.dataset.Dataset``, a path (str or
    ``os.PathLike``) or a non-empty list or tuple of paths."""
    if isinstance(X, ds.Dataset) or _is_path(X):
        return True
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(_is_path(p) for p in X)


@dataclass(frozen=True)
class Fragment:
    """One row group of a parquet file (or one fragment of another dataset): the unit
    that is read, shuffled and given to a rank."""

    fragment: ds.Fragment
    n_rows: int
    name: str
    index: int  # position in the dataset: the first part of each row's identity
    schema: pa.Schema | None = None  # what it is read as: the stream's one schema

    def frames(
        self, columns: Sequence[str], batch_rows: int = READ_ROWS
    ) -> Iterator[tuple[int, pd.DataFrame]]:
        """Its rows as ``(offset, frame)`` pairs: frames as
        :func:`deepfit.data.arrow_to_pandas` makes them, and the position of their
        first row in the fragment."""
        offset = 0
        for batch in self.fragment.to_batches(
            columns=list(columns),
            schema=self.schema,
            batch_size=batch_rows,
            memory_pool=_read_pool(),
        ):
            if batch.num_rows:
                yield offset, arrow_to_pandas(batch)
                offset += batch.num_rows
        # Hand what Arrow's kernels freed back to the system, row group by row group,
        # so torch can have it (resident memory stays bounded by the buffers).
        pa.default_memory_pool().release_unused()


@dataclass(frozen=True)
class StreamSource:
    """A stream source, opened (:func:`open_dataset`): its row groups, its columns (the
    first file's, then those later files add; a pandas index stored as a column is the
    index, as ``pandas.read_parquet`` reads it, not a column), and, per column that
    cannot be read as one, why: a file lacks it, or files give it types that do not
    convert to one (digit strings in one file and integers in another would otherwise
    be two categories, ``'5'`` and ``5``)."""

    fragments: list[Fragment]
    names: list[str]
    problems: dict[str, str]

    def check_columns(self, columns: Sequence[str], what: str) -> None:
        """Raise naming the ``columns`` (``what`` says what they are for) that the
        stream lacks or cannot read as one column (naming the files)."""
        missing = [c for c in columns if c not in self.names]
        if missing:
            raise ValueError(
                f"{what} names column(s) {missing} that the dataset does not have; it "
                f"has {self.names}"
            )
        for c in columns:
            if c in self.problems:
                raise ValueError(f"{what}: column {c!r} {self.problems[c]}")


def _index_columns(schema: pa.Schema) -> set[str]:
    """The columns that hold a pandas index (written by ``DataFrame.to_parquet``)."""
    meta = schema.pandas_metadata or {}
    return {c for c in meta.get("index_columns", []) if isinstance(c, str)}


def _one_type(column: str, seen: list[tuple[str, pa.DataType]]) -> Any:
    """The type every file's ``column`` converts to (integers widen, integers and
    floats give floats, a dictionary and its values give the values), or a string
    saying which two files disagree."""
    types = [t for _, t in seen]
    if len({pa.types.is_dictionary(t) for t in types}) > 1:  # categorical in some
        types = [t.value_type if pa.types.is_dictionary(t) else t for t in types]
    try:
        unified = pa.unify_schemas(
            [pa.schema([(column, t)]) for t in types], promote_options="permissive"
        )
        return unified.field(column).type
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        typed = [s for s in seen if not pa.types.is_null(s[1])]
        (f0, t0), (f1, t1) = typed[0], next(s for s in typed if s[1] != typed[0][1])
        return (
            f"is {t0} in {f0} but {t1} in {f1}: write it with one type in every file "
            "(ids or categories as strings, say)"
        )


def open_dataset(X: Any) -> StreamSource:
    """The stream source ``X`` names, opened: its row groups, read as one schema.
    Raises ``FileNotFoundError`` naming a path that does not exist and ``ValueError``
    for a dataset without rows."""
    if isinstance(X, ds.Dataset):
        dataset = X
    else:
        paths = [os.fspath(p) for p in ([X] if _is_path(X) else X)]
        for p in paths:
            if not os.path.exists(p):
                raise FileNotFoundError(f"no such parquet file or folder: {p!r}")
        try:
            dataset = ds.dataset(
                paths if len(paths) > 1 else paths[0], format="parquet"
            )
        except (pa.ArrowInvalid, OSError) as err:
            raise ValueError(f"cannot read {paths} as parquet: {err}") from err
    # Each file's own schema (its footer): the columns and types it holds.
    files = []
    for frag in dataset.get_fragments():
        name = getattr(frag, "path", type(frag).__name__)
        try:
            files.append((frag, name, frag.physical_schema))
        except (pa.ArrowInvalid, OSError) as err:
            raise ValueError(f"cannot read {name} as parquet: {err}") from err
    seen: dict[str, list[tuple[str, pa.DataType]]] = {}
    index = set()
    for _, name, schema in files:
        index |= _index_columns(schema)
        for field in schema:
            seen.setdefault(field.name, []).append((name, field.type))
    fields, problems = [], {}
    for col, types in seen.items():
        if col in index:
            continue
        kind = _one_type(col, types)
        if isinstance(kind, str):
            problems[col] = kind
            continue
        fields.append(pa.field(col, kind))
        lacking = [n for _, n, s in files if col not in s.names]
        if lacking:
            problems[col] = f"is in {types[0][0]} but not in {lacking[0]}"
    schema = pa.schema(fields)
    fragments = []
    for frag, name, _ in files:
        parts = (
            frag.split_by_row_group()
            if isinstance(frag, ds.ParquetFileFragment)
            else [frag]
        )
        for k, part in enumerate(parts):
            groups = getattr(part, "row_groups", None)  # metadata: no rows read
            n = sum(g.num_rows for g in groups) if groups else part.count_rows()
            if n:
                fragments.append(
                    Fragment(part, int(n), f"{name}[{k}]", len(fragments), schema)
                )
    if not fragments:
        raise ValueError(f"the dataset {X!r} has no rows")
    names = [c for c in seen if c not in index]
    return StreamSource(fragments, names, problems)


def fit_columns(
    y: Any, sample_weight: Any, eval_set: Any, several: bool = False
) -> tuple[list[str], list[str]]:
    """The target and weight columns that ``fit(X, y, sample_weight=...)`` names when
    ``X`` is streamed: ``y`` a column name (or, with ``several``, a list of them),
    ``sample_weight`` a column name or ``None``; no ``eval_set`` (the validation rows
    are a hash split of ``X``). Raises ``ValueError`` otherwise."""
    targets = list(y) if several and isinstance(y, (list, tuple)) else [y]
    if not targets or not all(isinstance(t, str) for t in targets):
        raise ValueError(
            "with a streamed X (a parquet path or an Arrow dataset), y names the target "
            f"column inside it (a str), got {type(y).__name__}; for data in memory, "
            "pass X as a DataFrame"
        )
    if sample_weight is not None and not isinstance(sample_weight, str):
        raise ValueError(
            "with a streamed X, sample_weight names a weight column inside it (a str), "
            f"got {type(sample_weight).__name__}"
        )
    if eval_set is not None:
        raise ValueError(
            "eval_set is not supported with a streamed X: the validation rows are a "
            "hash split of X (validation_fraction)"
        )
    if sample_weight in targets:
        raise ValueError(
            f"sample_weight names {sample_weight!r}, which y names as a target column; "
            "give the weights their own column"
        )
    return targets, [] if sample_weight is None else [sample_weight]


def read_frames(
    fragments: Sequence[Fragment], columns: Sequence[str]
) -> Iterator[pd.DataFrame]:
    """Every row of ``fragments``, in order, as frames of ``columns``."""
    for frag in fragments:
        for _, df in frag.frames(columns):
            yield df


def valid_share(fraction: float, fragments: Sequence[Fragment]) -> float:
    """The share of rows a streamed fit validates on: ``fraction`` (the estimator's
    ``validation_fraction``), but no more than :data:`MAX_VALID_ROWS` rows in all; the
    rest train. Rows whose :func:`row_hash` falls below it are the validation rows."""
    n = sum(f.n_rows for f in fragments)
    return min(float(fraction), MAX_VALID_ROWS / n) if n else float(fraction)


def source_paths(X: Any) -> list[str]:
    """The files and folders a stream source reads (those of a
    ``pyarrow.dataset.FileSystemDataset``, or the paths given)."""
    if isinstance(X, ds.Dataset):
        return list(getattr(X, "files", []))
    return [os.fspath(p) for p in ([X] if _is_path(X) else X)]


def write_parquet(frames: Iterable[pd.DataFrame], path: Any, source: Any) -> Any:
    """Write ``frames`` (same columns each) to one parquet file at ``path``, a frame
    at a time; returns ``path``. Refused before the first frame is made when ``path``
    is (or lies inside) a file or folder of ``source``, the stream the frames are read
    from; written to a temporary file that replaces ``path`` once complete."""
    check_not_input(path, source_paths(source), "the parquet file")
    with atomic_path(path, "the parquet file") as tmp:
        writer = None
        try:
            for df in frames:
                table = pa.Table.from_pandas(df, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    return path


def row_hash(fragment: int, offset: int, n: int, seed: int) -> np.ndarray:
    """A number in [0, 1) for each of rows ``offset .. offset + n`` of fragment
    ``fragment``: splitmix64 of the row's position and ``seed``, so a row gets the same
    number in every pass and on every rank (hashing the values would cost a
    microsecond a row; this costs a few nanoseconds)."""
    with np.errstate(over="ignore"):
        z = np.arange(offset, offset + n, dtype=np.uint64)
        z += np.uint64(fragment) << np.uint64(40)
        z ^= np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) / float(2**53)


class ValueCounts:
    """Counts of the values of a stream of Series (missing values left out), exact.
    Each Series is counted on its own and the counts are merged in one group-by once
    they add up to more entries than the merged counts (aligning two count Series per
    record batch cost most of a fitting pass)."""

    def __init__(self) -> None:
        self._merged: pd.Series | None = None
        self._parts: list[pd.Series] = []
        self._pending = 0

    def update(self, values: pd.Series) -> None:
        counts = values.value_counts(dropna=True, sort=False)
        if isinstance(counts.index, pd.CategoricalIndex):  # by value, not by code
            counts.index = pd.Index(
                np.asarray(counts.index), dtype=counts.index.categories.dtype
            )
        self._parts.append(counts)
        self._pending += len(counts)
        merged = 0 if self._merged is None else len(self._merged)
        if self._pending > max(2**20, 2 * merged):
            self.total()

    def total(self) -> pd.Series:
        """The counts so far, by value (an empty Series before any)."""
        if self._parts:
            parts = [p for p in (self._merged, *self._parts) if p is not None]
            merged = parts[0] if len(parts) == 1 else pd.concat(parts)
            codes, uniques = pd.factorize(merged.index)
            sums = np.bincount(codes, merged.to_numpy(np.float64), len(uniques))
            self._merged = pd.Series(sums.astype(np.int64), index=uniques)
            self._parts, self._pending = [], 0
        return pd.Series(dtype=np.int64) if self._merged is None else self._merged

    def __len__(self) -> int:
        return len(self.total())


class Moments:
    """Count, mean, sum of squared deviations, minimum and maximum of each column of
    the float arrays it is given, missing values (NaN) left out; merged batch by batch
    (Chan et al.'s parallel update), so the mean and variance are those of the whole
    stream up to rounding."""

    def __init__(self, n_cols: int) -> None:
        self.n = np.zeros(n_cols)
        self.mean = np.zeros(n_cols)
        self.m2 = np.zeros(n_cols)
        self.low = np.full(n_cols, np.inf)
        self.high = np.full(n_cols, -np.inf)
        self.rows = 0

    def update(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        self.rows += len(x)
        ok = ~np.isnan(x)
        n_b = ok.sum(0).astype(np.float64)
        filled = np.where(ok, x, 0.0)
        mean_b = filled.sum(0) / np.maximum(n_b, 1)
        m2_b = (np.where(ok, x - mean_b, 0.0) ** 2).sum(0)
        n = self.n + n_b
        delta = mean_b - self.mean
        safe = np.maximum(n, 1)
        self.mean = self.mean + delta * n_b / safe
        self.m2 = self.m2 + m2_b + delta**2 * self.n * n_b / safe
        self.n = n
        with np.errstate(invalid="ignore"):
            self.low = np.fmin(self.low, np.where(ok, x, np.inf).min(0))
            self.high = np.fmax(self.high, np.where(ok, x, -np.inf).max(0))

    def filled(
        self, fill: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Mean, standard deviation (``ddof=0``), minimum and maximum of each column
        once its missing values are replaced by ``fill``."""
        n_miss = self.rows - self.n
        total = float(self.rows)
        mean = (self.n * self.mean + n_miss * fill) / total
        delta = fill - self.mean
        m2 = self.m2 + delta**2 * self.n * n_miss / total
        has = n_miss > 0
        low = np.where(has, np.fmin(self.low, fill), self.low)
        high = np.where(has, np.fmax(self.high, fill), self.high)
        return mean, np.sqrt(m2 / total), low, high


class RowSample:
    """A uniform sample without replacement of at most ``size`` rows of a stream of
    frames: each row draws a random key and the ``size`` smallest keys are kept
    (a vectorised reservoir). Quantiles read from it are approximate: the rank of a
    sample median in the whole stream has a standard error of about
    ``0.5 / sqrt(size)`` (0.16% of the rows for 100,000)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = int(size)
        self.rng = np.random.default_rng(seed)
        self.keys = np.empty(0)
        self.frame: pd.DataFrame | None = None

    def update(self, df: pd.DataFrame) -> None:
        keys = self.rng.random(len(df))
        if self.frame is not None and len(self.keys) >= self.size:
            cut = self.keys.max()
            take = keys < cut
            if not take.any():
                return
            df, keys = df[take], keys[take]
        frame = df if self.frame is None else pd.concat([self.frame, df])
        keys = np.concatenate([self.keys, keys])
        if len(keys) > self.size:
            keep = np.argpartition(keys, self.size - 1)[: self.size]
            keep.sort()
            frame, keys = frame.iloc[keep], keys[keep]
        self.frame, self.keys = frame.reset_index(drop=True), keys


# convert(frame) -> the tensors of its rows: inputs first (n_x of them), then targets
# and weights; keep(fragment index, offset, frame) -> a boolean mask of the rows to use.
Convert = Callable[[pd.DataFrame], list[torch.Tensor]]
Keep = Callable[[int, int, pd.DataFrame], np.ndarray]


class StreamBatches:
    """Training batches streamed from row groups through a shuffle buffer (see the
    module's docstring for what the shuffle mixes).

    Parameters
    ----------
    fragments : sequence of Fragment
    columns : sequence of str
        The columns read.
    convert : callable
        ``convert(frame) -> [x_1, ..., x_k, y, (w)]``: tensors of the frame's rows.
    n_x : int
        How many of ``convert``'s tensors are inputs (yielded as a tuple when more
        than one).
    counts : sequence of int
        Rows each fragment contributes (after ``keep``): the batch count is known before
        reading, and ranks of a distributed fit take the same number of steps.
    keep : callable, optional
        ``keep(fragment_index, offset, frame)``: the mask of rows to use (the training
        part of a hash split, see :func:`row_hash`).
    batch_size : int
    shuffle : bool, default=True
    buffer_rows : int, default=262144
    generator : torch.Generator, optional
        Source of the fragment orders and buffer permutations.
    """

    def __init__(
        self,
        fragments: Sequence[Fragment],
        columns: Sequence[str],
        convert: Convert,
        n_x: int,
        counts: Sequence[int],
        keep: Keep | None = None,
        *,
        batch_size: int = 256,
        shuffle: bool = True,
        buffer_rows: int = 262_144,
        generator: torch.Generator | None = None,
    ) -> None:
        if len(counts) != len(fragments):
            raise ValueError("counts needs one entry per fragment")
        self.fragments, self.counts = list(fragments), [int(c) for c in counts]
        self.columns, self.convert, self.keep, self.n_x = (
            list(columns),
            convert,
            keep,
            n_x,
        )
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.buffer_rows = max(int(buffer_rows), 2 * self.batch_size)
        self.generator = generator
        self._steps: int | None = None  # a rank's step count (see shard)

    @property
    def n(self) -> int:
        return sum(self.counts)

    def _n_batches(self, n: int) -> int:
        bs = self.batch_size
        # A last batch of one row would break batch norm: it is dropped (a new order
        # every epoch, so no row is left out for good).
        return n // bs if n % bs == 1 and n > 1 else -(-n // bs)

    def __len__(self) -> int:
        return self._n_batches(self.n) if self._steps is None else self._steps

    def shard(self, rank: int, world: int) -> StreamBatches:
        """The batches rank ``rank`` of ``world`` reads: its own row groups (every
        ``world``-th), cut short to the step count of the rank with the fewest rows, so
        every rank takes the same number of steps (the rows past it, on ranks with more,
        are left out of that epoch)."""
        if world > len(self.fragments):
            raise ValueError(
                f"{world} processes but only {len(self.fragments)} row groups: write the "
                "data in more row groups (or files) than processes"
            )
        out = copy.copy(self)
        out.fragments, out.counts = (
            self.fragments[rank::world],
            self.counts[rank::world],
        )
        out._steps = min(
            self._n_batches(sum(self.counts[r::world])) for r in range(world)
        )
        return out

    def _chunks(self) -> Iterator[list[torch.Tensor]]:
        """The converted rows of each record batch, row groups in epoch order."""
        order = (
            torch.randperm(len(self.fragments), generator=self.generator).tolist()
            if self.shuffle
            else range(len(self.fragments))
        )
        for i in order:
            frag = self.fragments[i]
            for offset, df in frag.frames(self.columns):
                if self.keep is not None:
                    mask = self.keep(frag.index, offset, df)
                    if not mask.any():
                        continue
                    df = df[mask]
                yield self.convert(df)

    def _batch(self, parts: list[torch.Tensor]) -> tuple[Any, ...]:
        xs = parts[: self.n_x]
        x = tuple(xs) if self.n_x > 1 else xs[0]
        return (x, *parts[self.n_x :])

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        bs, steps, done = self.batch_size, len(self), 0
        held: list[list[torch.Tensor]] = []
        n_held = 0

        def emit(
            tensors: list[torch.Tensor], order: torch.Tensor | None, n_rows: int
        ) -> Iterator[tuple[Any, ...]]:
            # Each batch gathers its rows of the buffer (no permuted copy of it all:
            # the buffer is the largest thing a streamed fit holds).
            nonlocal done
            for lo in range(0, n_rows, bs):
                if done == steps:
                    return
                done += 1
                rows = slice(lo, lo + bs) if order is None else order[lo : lo + bs]
                yield self._batch([t[rows] for t in tensors])

        def merge() -> tuple[list[torch.Tensor], torch.Tensor | None]:
            tensors = [torch.cat(ts) for ts in zip(*held, strict=True)]
            held.clear()  # the chunks go as soon as they are one tensor
            order = (
                torch.randperm(n_held, generator=self.generator)
                if self.shuffle
                else None
            )
            return tensors, order

        for chunk in self._chunks():
            held.append(chunk)
            n_held += len(chunk[0])
            if n_held < self.buffer_rows:
                continue
            tensors, order = merge()
            # Emit whole batches from the first half; the rest mixes with what comes.
            n_out = (n_held // 2) // bs * bs
            yield from emit(tensors, order, n_out)
            rest = slice(n_out, None) if order is None else order[n_out:]
            held.append(
                [t[rest].clone() if order is None else t[rest] for t in tensors]
            )
            n_held -= n_out
            del tensors
            _trim()
            if done == steps:
                return
        if n_held:
            tensors, order = merge()
            yield from emit(tensors, order, n_held)


def split_batches(
    fragments: Sequence[Fragment],
    columns: Sequence[str],
    convert: Convert,
    n_x: int,
    counts: np.ndarray,
    valid_fraction: float,
    seed: int,
    *,
    batch_size: int,
    valid_batch_size: int,
    generator: torch.Generator,
    valid_keep: Keep | None = None,
) -> tuple[StreamBatches, StreamBatches | None]:
    """Training batches (shuffled) and validation batches (in order, ``None`` when
    there are none) over a :func:`row_hash` split at ``valid_fraction``. ``counts``
    ``(n_fragments, 2)`` holds each fragment's training and validation rows;
    ``valid_keep`` narrows the validation rows further (say to known ids)."""

    def train_rows(index: int, offset: int, df: pd.DataFrame) -> np.ndarray:
        return row_hash(index, offset, len(df), seed) >= valid_fraction

    def valid_rows(index: int, offset: int, df: pd.DataFrame) -> np.ndarray:
        held = ~train_rows(index, offset, df)
        return held if valid_keep is None else held & valid_keep(index, offset, df)

    n_train = int(counts[:, 0].sum())
    train = StreamBatches(
        fragments,
        columns,
        convert,
        n_x,
        counts[:, 0],
        train_rows,
        batch_size=min(batch_size, n_train),
        generator=generator,
    )
    if not counts[:, 1].sum():
        return train, None
    valid = StreamBatches(
        fragments,
        columns,
        convert,
        n_x,
        counts[:, 1],
        valid_rows,
        batch_size=valid_batch_size,
        shuffle=False,
    )
    return train, valid
