"""AWD-LSTM pieces: each dropout on in train and off in eval, deterministic eval, tied
weights, carried state, padding-blind pooling and the splitters."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from text import (
    AWD_LSTM,
    EmbeddingDropout,
    LMModel,
    LMOutput,
    PoolingClassifier,
    RNNDropout,
    TextClassifierModel,
    WeightDropout,
    classifier_splitter,
    lm_splitter,
)
from text.awd_lstm import masked_concat_pool


def encoder(**kw) -> AWD_LSTM:
    return AWD_LSTM(50, emb_size=8, hidden_size=16, n_layers=3, **kw)


def test_locked_dropout_masks_whole_channels_in_train_only():
    dp = RNNDropout(0.5)
    x = torch.ones(4, 10, 32)
    out = dp(x)
    assert set(out.unique().tolist()) == {0.0, 2.0}
    # One mask per sequence, the same at every time step.
    assert torch.equal(out, out[:, :1].expand_as(out))
    dp.eval()
    assert torch.equal(dp(x), x)


def test_embedding_dropout_drops_whole_words_in_train_only():
    emb = nn.Embedding(20, 6)
    dp = EmbeddingDropout(emb, 0.5)
    words = torch.arange(20).repeat(2, 1)  # every word twice
    out = dp(words)
    zero = (out == 0).all(-1)
    assert zero.any() and not zero.all()
    assert torch.equal(zero[0], zero[1])  # a dropped word is dropped everywhere
    kept = ~zero[0]
    assert torch.allclose(out[0, kept], 2 * emb.weight[kept])
    dp.eval()
    assert torch.equal(dp(words), emb(words))


def test_weight_dropout_in_train_and_deterministic_raw_weights_in_eval():
    lstm = nn.LSTM(4, 8, batch_first=True)
    wd = WeightDropout(lstm, 0.5)
    raw = lstm.weight_hh_l0.detach().clone()
    x = torch.randn(3, 5, 4)
    a, _ = wd(x)
    b, _ = wd(x)
    assert not torch.allclose(a, b)  # a new DropConnect mask each call
    assert torch.equal(lstm.weight_hh_l0, raw)  # the raw weights are untouched
    a.sum().backward()
    assert lstm.weight_hh_l0.grad is not None and lstm.weight_hh_l0.grad.abs().sum() > 0
    wd.eval()
    e1, _ = wd(x)
    e2, _ = wd(x)
    assert torch.equal(e1, e2) and torch.equal(e1, lstm(x)[0])


def test_weight_dropout_uses_one_mask_for_the_whole_sequence():
    lstm = nn.LSTM(2, 3, batch_first=True)
    wd = WeightDropout(lstm, 0.5)
    x = torch.randn(2, 6, 2)
    torch.manual_seed(7)
    out, _ = wd(x)
    torch.manual_seed(7)
    dropped = nn.functional.dropout(lstm.weight_hh_l0, 0.5)
    with torch.no_grad():
        lstm.weight_hh_l0.copy_(dropped)
    # A plain LSTM whose hidden-to-hidden weight is that one fixed draw gives the same
    # outputs at every step: the mask did not change along the sequence.
    assert torch.allclose(lstm(x)[0], out, atol=1e-6)


def test_awd_lstm_dropouts_off_in_eval_and_output_deterministic():
    enc = encoder()
    x = torch.randint(0, 50, (2, 9))
    enc.train()
    a, b = enc(x)[1][-1], enc(x)[1][-1]
    assert not torch.allclose(a, b)
    enc.eval()
    c, d = enc(x)[1][-1], enc(x)[1][-1]
    assert torch.equal(c, d)
    assert all(not m.training for m in enc.modules())


def test_shapes_and_identity_init():
    enc = encoder(identity_init=True)
    raw, out, hidden = enc(torch.randint(0, 50, (2, 7)))
    assert [r.shape for r in raw] == [(2, 7, 16), (2, 7, 16), (2, 7, 8)]
    assert len(out) == 3 and hidden[0][0].shape == (1, 2, 16)
    w = enc.rnns[0].module.weight_hh_l0
    assert torch.equal(w, torch.eye(16).repeat(4, 1))


def test_decoder_is_tied_to_the_embedding():
    lm = LMModel(encoder())
    assert lm.decoder.decoder.weight is lm.encoder.encoder.weight
    n_unique = len({id(p) for p in lm.parameters()})
    assert n_unique == len(list(lm.parameters()))
    lm.train()
    logits, _, _ = lm(torch.randint(0, 50, (2, 5)))
    logits.sum().backward()
    assert lm.encoder.encoder.weight.grad.abs().sum() > 0
    assert (
        len(lm.state_dict()) == len(dict(lm.named_parameters())) + 1
    )  # + decoder alias


def test_lm_carries_detached_state_and_resets():
    lm = LMModel(encoder()).eval()
    x = torch.randint(0, 50, (2, 6))
    first = lm(x).logits
    carried = lm(x).logits
    assert not torch.allclose(first, carried)
    assert not lm.hidden[0][0].requires_grad
    lm.reset()
    assert torch.equal(lm(x).logits, first)
    lm(torch.randint(0, 50, (3, 6)))  # another batch size starts afresh
    assert lm.hidden[0][0].shape[1] == 3


def test_lm_returns_one_type_in_training_and_eval():
    lm = LMModel(encoder())
    for mode in (lm.train, lm.eval):
        out = mode()(torch.randint(0, 50, (2, 4)))
        assert isinstance(out, LMOutput)
        assert out.logits.shape == (2, 4, 50) and out.raw.shape == out.dropped.shape
    assert torch.equal(out.raw, out.dropped)  # no dropout in eval


def test_concat_pool_ignores_padding():
    out = torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 2])
    pooled = masked_concat_pool(out, lengths)
    assert torch.equal(pooled[1, :3], out[1, 1])
    assert torch.allclose(pooled[1, 3:6], out[1, :2].max(0).values)
    assert torch.allclose(pooled[1, 6:], out[1, :2].mean(0))
    garbage = out.clone()
    garbage[1, 2:] = 100.0
    assert torch.equal(masked_concat_pool(garbage, lengths), pooled)


def test_classifier_prediction_does_not_depend_on_padding():
    model = TextClassifierModel(encoder(), PoolingClassifier(8, 3)).eval()
    short = torch.randint(2, 50, (1, 4))
    alone = model(short, torch.tensor([4]))
    padded = torch.cat([short, torch.ones(1, 6, dtype=torch.long)], 1)
    other = torch.randint(2, 50, (1, 10))
    both = model(torch.cat([padded, other]), torch.tensor([4, 10]))
    assert torch.allclose(both[0], alone[0], atol=1e-5)


def test_splitters_cover_every_parameter_once():
    lm = LMModel(encoder())
    groups = lm_splitter(lm)
    assert len(groups) == 4
    clf = TextClassifierModel(encoder(), PoolingClassifier(8, 2))
    groups = classifier_splitter(clf)
    assert len(groups) == 5
    ids = [id(p) for g in groups for m in g for p in m.parameters()]
    assert sorted(ids) == sorted(id(p) for p in clf.parameters())


def test_head_needs_one_dropout_per_layer():
    with pytest.raises(ValueError, match="dropout"):
        PoolingClassifier(8, 2, lin_sizes=(50,), ps=(0.1,))
