"""LM stream batching (coverage, carried rows, varied BPTT) and sortish padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from text import LMBatches, SortishBatches, pad_batch
from text.data import text_windows


def test_bptt_windows_cover_the_stream_exactly_once_per_epoch():
    stream = np.arange(1000)
    bs = 7
    batches = LMBatches(
        stream,
        bs,
        bptt=20,
        random_bptt=True,
        generator=torch.Generator().manual_seed(0),
    )
    row_len = (len(stream) - 1) // bs
    seen_lengths = []
    for _ in range(3):
        xs, ys = [], []
        for x, y in batches:
            assert x.shape[0] == bs and y.shape == (x.numel(),)
            xs.append(x)
            ys.append(y.view(bs, -1))
        assert len(xs) == len(batches)
        x, y = torch.cat(xs, 1), torch.cat(ys, 1)
        # Row i reads one contiguous stretch of the stream, the next tokens as targets.
        expected = torch.arange(bs * row_len).view(bs, row_len)
        assert torch.equal(x, expected) and torch.equal(y, expected + 1)
        seen_lengths.append([t.shape[1] for t in xs])
    # Window lengths vary within and across epochs (AWD-LSTM), around bptt.
    assert len({tuple(s) for s in seen_lengths}) == 3
    assert len(set(seen_lengths[0])) > 1
    assert 15 < np.mean(seen_lengths[0]) < 25


def test_fixed_bptt_and_the_last_short_window():
    batches = LMBatches(np.arange(101), 4, bptt=10)
    lengths = [x.shape[1] for x, _ in batches]
    assert lengths == [10, 10, 5] and len(batches) == 3


def test_shuffled_documents_keep_every_token_each_epoch():
    docs = [np.full(n, i) for i, n in enumerate([5, 9, 13, 7, 30])]
    batches = LMBatches(
        docs, 2, bptt=6, shuffle=True, generator=torch.Generator().manual_seed(1)
    )
    firsts = set()
    for _ in range(4):
        stream = batches.stream()
        firsts.add(int(stream[0]))
        assert sorted(stream.tolist()) == sorted(np.concatenate(docs).tolist())
    assert len(firsts) > 1


def test_document_weights_follow_each_target_token_and_average_one():
    docs = [np.full(n, i) for i, n in enumerate([5, 9, 13, 7, 30])]
    weights = np.array([0.0, 2.0, 1.0, 4.0, 1.0])

    def batches(w=None):
        g = torch.Generator().manual_seed(1)
        return LMBatches(docs, 2, bptt=6, shuffle=True, generator=g, weights=w)

    plain, weighted = batches(), batches(weights)
    scale = (weights * [len(d) for d in docs]).sum() / sum(len(d) for d in docs)
    for _ in range(2):  # epochs: a new document order each
        all_w = []
        for (x0, y0), (x, y, w) in zip(plain, weighted, strict=True):
            assert torch.equal(x, x0) and torch.equal(y, y0)  # the same stream
            # A token's document is its value: the target's weight is its document's.
            torch.testing.assert_close(w, torch.as_tensor(weights[y] / scale).float())
            all_w.append(w)
        assert abs(float(torch.cat(all_w).mean()) - 1) < 0.05  # less the dropped end
    with pytest.raises(ValueError, match="one per document"):
        LMBatches(docs, 2, weights=weights[:-1])
    with pytest.raises(ValueError, match="positive weight"):
        LMBatches(docs, 2, weights=np.zeros(5))


def test_too_short_stream_is_a_clear_error():
    import pytest

    with pytest.raises(ValueError, match="too few"):
        LMBatches(np.arange(3), 8)


def test_pad_batch_pads_at_the_end_and_truncates_keeping_bos():
    ids, lengths = pad_batch([np.array([2, 5, 6]), np.array([2, 7])], pad_idx=1)
    assert ids.tolist() == [[2, 5, 6], [2, 7, 1]] and lengths.tolist() == [3, 2]
    ids, lengths = pad_batch([np.array([2, 5, 6, 7, 8])], pad_idx=1, max_len=3)
    assert ids.tolist() == [[2, 7, 8]] and lengths.tolist() == [3]


def test_sortish_batches_see_each_text_once_with_little_padding():
    rng = np.random.default_rng(0)
    seqs = [np.full(int(n), i + 10) for i, n in enumerate(rng.integers(1, 200, 500))]
    y = torch.arange(500)
    batches = SortishBatches(
        seqs,
        y,
        batch_size=10,
        pad_idx=1,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
    )
    seen, pads, cells = [], 0, 0
    for (ids, lengths), yb in batches:
        for row, n, target in zip(ids, lengths, yb, strict=True):
            assert (row[:n] == int(target) + 10).all() and (row[n:] == 1).all()
        seen += yb.tolist()
        pads += int((ids == 1).sum())
        cells += ids.numel()
    assert sorted(seen) == list(range(500))
    assert pads / cells < 0.05  # random batches of these lengths pad about half


def test_unshuffled_batches_run_longest_first_and_order_maps_back():
    seqs = [np.arange(n) for n in [3, 9, 1, 5]]
    batches = SortishBatches(seqs, batch_size=2, pad_idx=1)
    rows = [lengths.tolist() for ((_, lengths),) in batches]
    assert rows == [[9, 5], [3, 1]]
    assert batches.order.tolist() == [1, 3, 0, 2]


def _crop_batches(seqs, **kw):
    return SortishBatches(
        seqs,
        torch.arange(len(seqs)),
        batch_size=8,
        pad_idx=1,
        shuffle=True,
        generator=torch.Generator().manual_seed(0),
        **kw,
    )


def test_crops_are_contiguous_spans_after_bos_new_every_epoch():
    rng = np.random.default_rng(0)
    # Text i: xxbos (2), then the ids 1000 * (i + 1) + 0 .. n - 1.
    sizes = rng.integers(0, 300, 60)
    seqs = [np.r_[2, 1000 * (i + 1) + np.arange(n)] for i, n in enumerate(sizes)]
    batches = _crop_batches(seqs, crop=0.25)
    spans = []
    for _ in range(3):
        epoch = {}
        for (ids, lengths), yb in batches:
            for row, n, i in zip(
                ids.tolist(), lengths.tolist(), yb.tolist(), strict=True
            ):
                body = sizes[i]
                assert row[0] == 2 and all(t == 1 for t in row[n:])
                span = np.array(row[1:n], dtype=int) - 1000 * (i + 1)
                # One contiguous stretch of the text, of at least a quarter of it (or
                # MIN_CROP tokens, or all of a shorter text).
                assert len(span) >= min(body, max(round(0.25 * body), 20))
                if body == 0:
                    assert len(span) == 0
                    epoch[i] = (0, 0)
                    continue
                start = int(span[0])
                assert np.array_equal(span, np.arange(start, start + len(span)))
                assert 0 <= start and span[-1] < body
                epoch[i] = (start, len(span))
        assert sorted(epoch) == list(range(60))  # every text once per epoch
        spans.append(epoch)
    long = [i for i in range(60) if sizes[i] > 100]
    assert any(spans[0][i] != spans[1][i] for i in long)  # new crops each epoch
    starts = [spans[0][i][0] for i in long]
    lens = [spans[0][i][1] / sizes[i] for i in long]
    assert min(starts) == 0 or max(starts) > 50  # crops fall anywhere in the text
    assert min(lens) < 0.5 and max(lens) > 0.9  # and their lengths vary


def test_crops_are_reproducible_and_cut_to_max_len_first():
    seqs = [np.r_[2, np.arange(10, 10 + n)] for n in (40, 400, 90)]
    a = [ids.tolist() for (ids, _), _ in _crop_batches(seqs, crop=0.5, max_len=50)]
    b = [ids.tolist() for (ids, _), _ in _crop_batches(seqs, crop=0.5, max_len=50)]
    assert a == b
    for row in (r for batch in a for r in batch):
        real = [t for t in row if t != 1]
        assert len(real) <= 50
        # The 400-token text is read as prediction reads it: its last 49 tokens.
        if real[-1] > 100:
            assert real[1] >= 10 + 400 - 49


def test_crop_needs_training_batches_and_a_share():
    seqs = [np.arange(5)]
    with pytest.raises(ValueError, match="crop"):
        SortishBatches(seqs, batch_size=2, pad_idx=1, crop=0.5)  # no shuffle
    for bad in (0, 1.5, -0.1):
        with pytest.raises(ValueError, match="crop"):
            SortishBatches(seqs, batch_size=2, pad_idx=1, shuffle=True, crop=bad)


def test_an_integer_crop_is_a_length_in_tokens():
    sizes = [0, 5, 19, 20, 60, 300, 1000]
    seqs = [np.r_[2, 1000 * (i + 1) + np.arange(n)] for i, n in enumerate(sizes)]
    batches = _crop_batches(seqs, crop=50)
    lens = {i: [] for i in range(len(sizes))}
    for _ in range(20):
        for (ids, lengths), yb in batches:
            for row, n, i in zip(
                ids.tolist(), lengths.tolist(), yb.tolist(), strict=True
            ):
                span = np.array(row[1:n], dtype=int) - 1000 * (i + 1)
                body = sizes[i]
                # MIN_CROP to 50 tokens, or all of a shorter text; contiguous.
                assert min(body, 20) <= len(span) <= min(body, 50)
                if len(span):
                    assert np.array_equal(span, np.arange(span[0], span[0] + len(span)))
                    assert span[-1] < body
                lens[i].append(len(span))
    assert set(lens[1]) == {5} and set(lens[3]) == {20}  # short texts stay whole
    for i in (5, 6):  # long texts: lengths spread over 20..50, whatever the text's size
        assert min(lens[i]) < 30 and max(lens[i]) > 40


def test_crop_values_are_checked():
    seqs = [np.arange(5)]
    for bad in (1, 19, True, "0.5"):
        with pytest.raises(ValueError, match="crop"):
            SortishBatches(seqs, batch_size=2, pad_idx=1, shuffle=True, crop=bad)
    for good in (1.0, 0.1, 20, np.int64(64)):
        SortishBatches(seqs, batch_size=2, pad_idx=1, shuffle=True, crop=good)


def test_text_windows_cover_each_text_half_overlapping():
    docs = [np.arange(1, 12), np.array([2, 5, 6]), np.arange(100, 121)]  # 10, 2, 20
    wins, owner = text_windows(docs, 6)
    assert owner.tolist() == [0, 0, 0, 1, 2, 2, 2, 2, 2, 2]
    for w, k in zip(wins, owner, strict=True):
        assert w[0] == docs[k][0] and len(w) <= 7  # the text's first token, 6 more
    # 10 tokens: starts 0, 3 and the last window ending at the end (4).
    assert [w[1:].tolist() for w in wins[:3]] == [
        list(range(2, 8)),
        list(range(5, 11)),
        list(range(6, 12)),
    ]
    assert wins[3].tolist() == [2, 5, 6]  # short: the text itself
    assert wins[-1][-1] == 120 and wins[4][1] == 101
    # Cut to max_len first, as pad_batch cuts: xxbos and the last 7 tokens.
    wins, owner = text_windows([np.arange(1, 12)], 4, max_len=8)
    assert wins[0].tolist() == [1, 5, 6, 7, 8]
    assert wins[-1].tolist() == [1, 8, 9, 10, 11]
