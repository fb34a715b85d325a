"""Streamed data: row groups, exact one-pass moments, the row sample, the hash split and
the shuffle buffer (every row once per epoch, mixed across row groups, sharded)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from deepfit.stream import (
    Moments,
    RowSample,
    StreamBatches,
    is_stream,
    open_dataset,
    row_hash,
)


def write_ids(folder, n_files: int = 3, rows: int = 1000, group: int = 250) -> None:
    """Parquet files of an ``id`` column (0 .. n_files * rows - 1), in row groups."""
    folder.mkdir(exist_ok=True)
    for f in range(n_files):
        ids = np.arange(f * rows, (f + 1) * rows)
        table = pa.table({"id": ids, "x": ids * 0.5})
        pq.write_table(table, folder / f"part-{f}.parquet", row_group_size=group)


def id_batches(frags, counts=None, keep=None, **kwargs) -> StreamBatches:
    def convert(df: pd.DataFrame) -> list[torch.Tensor]:
        ids = torch.as_tensor(np.array(df["id"], dtype=np.int64))
        return [ids.float()[:, None], ids]

    counts = [f.n_rows for f in frags] if counts is None else counts
    return StreamBatches(frags, ["id"], convert, 1, counts, keep, **kwargs)


def test_moments_match_numpy_with_missing_values_and_filling():
    rng = np.random.default_rng(0)
    x = rng.normal(1e4, 3, size=(5000, 3))
    x[rng.random(x.shape) < 0.2] = np.nan
    m = Moments(3)
    for part in np.array_split(x, 7):
        m.update(part)
    fill = np.array([1.0, 2.0, 3.0])
    filled = np.where(np.isnan(x), fill, x)
    mean, std, low, high = m.filled(fill)
    np.testing.assert_allclose(mean, filled.mean(0), rtol=1e-12)
    np.testing.assert_allclose(std, filled.std(0), rtol=1e-9)
    np.testing.assert_array_equal(low, filled.min(0))
    np.testing.assert_array_equal(high, filled.max(0))
    np.testing.assert_array_equal(m.n, (~np.isnan(x)).sum(0))


def test_row_sample_is_uniform_and_bounded():
    sample = RowSample(500, seed=0)
    for lo in range(0, 20_000, 1000):
        sample.update(pd.DataFrame({"v": np.arange(lo, lo + 1000)}))
    values = sample.frame["v"].to_numpy()
    assert len(values) == 500 and len(np.unique(values)) == 500
    # Uniform over the stream: its median's rank is near the middle (se ~ 0.022).
    assert abs(np.median(values) / 20_000 - 0.5) < 0.09
    assert values.min() < 2000 and values.max() > 18_000  # early and late rows


def test_open_dataset_splits_row_groups_and_names_bad_paths(tmp_path):
    write_ids(tmp_path / "d")
    frags = open_dataset(tmp_path / "d").fragments
    assert [f.n_rows for f in frags] == [250] * 12
    assert [f.index for f in frags] == list(range(12))
    assert is_stream(tmp_path / "d") and is_stream([str(tmp_path / "d")])
    assert not is_stream(pd.DataFrame({"a": [1]})) and not is_stream([1, 2])
    with pytest.raises(FileNotFoundError, match=r"nope\.parquet"):
        open_dataset(tmp_path / "nope.parquet")


def test_every_row_is_seen_once_per_epoch_in_a_new_order(tmp_path):
    write_ids(tmp_path / "d")
    frags = open_dataset(tmp_path / "d").fragments
    batches = id_batches(
        frags,
        batch_size=64,
        buffer_rows=600,
        generator=torch.Generator().manual_seed(0),
    )
    orders = []
    for _ in range(2):
        seen = [yb for _, yb in batches]
        assert len(seen) == len(batches) == -(-3000 // 64)
        ids = torch.cat(seen).numpy()
        np.testing.assert_array_equal(np.sort(ids), np.arange(3000))
        orders.append(ids)
    assert not np.array_equal(orders[0], orders[1])
    # The buffer mixes row groups: the first batch holds rows of more than one.
    assert len(np.unique(orders[0][:64] // 250)) > 1


def test_last_batch_of_one_row_is_dropped_and_counted(tmp_path):
    write_ids(tmp_path / "d", n_files=1, rows=129, group=129)
    frags = open_dataset(tmp_path / "d").fragments
    batches = id_batches(frags, batch_size=64)
    assert len(batches) == 2 == len(list(batches))


def test_hash_split_is_disjoint_stable_and_counted(tmp_path):
    write_ids(tmp_path / "d")
    frags = open_dataset(tmp_path / "d").fragments

    def part(valid):
        return lambda i, off, df: (row_hash(i, off, len(df), 7) < 0.2) == valid

    counts = {
        v: [int(part(v)(f.index, 0, np.empty(f.n_rows)).sum()) for f in frags]
        for v in (False, True)
    }
    ids = {}
    for v in (False, True):
        b = id_batches(frags, counts[v], part(v), batch_size=50, shuffle=v is False)
        got = torch.cat([yb for _, yb in b]).numpy()
        assert len(got) == sum(counts[v])
        ids[v] = np.sort(got)
        again = torch.cat([yb for _, yb in b]).numpy()
        np.testing.assert_array_equal(np.sort(again), ids[v])
    assert not set(ids[True]) & set(ids[False])
    assert len(ids[True]) + len(ids[False]) == 3000
    assert 0.15 < len(ids[True]) / 3000 < 0.25


def test_shards_read_their_own_row_groups_in_the_same_number_of_steps(tmp_path):
    write_ids(tmp_path / "d", n_files=1, rows=1000, group=300)  # 300, 300, 300, 100
    frags = open_dataset(tmp_path / "d").fragments
    whole = id_batches(frags, batch_size=50, generator=torch.Generator().manual_seed(0))
    parts = [whole.shard(r, 2) for r in range(2)]
    assert len(parts[0]) == len(parts[1]) == 400 // 50  # the smaller rank's steps
    seen = [set(torch.cat([yb for _, yb in p]).tolist()) for p in parts]
    assert not seen[0] & seen[1]
    assert {i // 300 for i in seen[1]} <= {1, 3}  # rank 1: row groups 1 and 3
    with pytest.raises(ValueError, match="row groups"):
        whole.shard(0, 5)


def test_validation_share_is_capped_in_rows(tmp_path, monkeypatch):
    import deepfit.stream as stream

    write_ids(tmp_path / "d")  # 3000 rows
    frags = open_dataset(tmp_path / "d").fragments
    assert stream.valid_share(0.1, frags) == 0.1
    monkeypatch.setattr(stream, "MAX_VALID_ROWS", 150)
    assert stream.valid_share(0.1, frags) == pytest.approx(0.05)
    assert stream.valid_share(0.0, frags) == 0.0
