from __future__ import annotations

import pytest
import torch
from torch import nn

from deepfit import (
    AdaptiveConcatPool2d,
    LinBnDrop,
    SigmoidRange,
    TensorBatches,
    mlp_blocks,
)
from deepfit.layers import Dropout


def test_every_row_exactly_once_per_epoch_in_a_new_order():
    x = torch.arange(103).unsqueeze(1).float()
    y = torch.arange(103)
    batches = TensorBatches(
        x, y, batch_size=10, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    assert len(batches) == 11
    orders = []
    for _ in range(2):
        seen = torch.cat([yb for _, yb in batches])
        assert sorted(seen.tolist()) == list(range(103))
        orders.append(seen.tolist())
    assert orders[0] != orders[1]
    for xb, yb in batches:  # rows stay aligned across tensors
        assert torch.equal(xb[:, 0].long(), yb)


def test_same_generator_seed_same_batches_and_no_shuffle_keeps_order():
    x = torch.randn(50, 3)
    a = [
        b[0]
        for b in TensorBatches(
            x, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3)
        )
    ]
    b = [
        b[0]
        for b in TensorBatches(
            x, batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(3)
        )
    ]
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    plain = torch.cat([b[0] for b in TensorBatches(x, batch_size=8)])
    assert torch.equal(plain, x)


def test_tuple_inputs_weights_and_drop_last():
    xc, xn = torch.randint(0, 5, (21, 2)), torch.randn(21, 3)
    y, w = torch.randn(21), torch.rand(21)
    batches = TensorBatches((xc, xn), y, w, batch_size=5, drop_last=True)
    assert len(batches) == 4
    (bc, bn), by, bw = next(iter(batches))
    assert (
        bc.shape == (5, 2)
        and bn.shape == (5, 3)
        and by.shape == (5,)
        and bw.shape == (5,)
    )
    assert sum(len(b[1]) for b in batches) == 20


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="same number of rows"):
        TensorBatches(torch.randn(5, 2), torch.randn(4))


def test_layers():
    x = torch.randn(2, 3, 7, 5)
    assert AdaptiveConcatPool2d()(x).shape == (2, 6, 1, 1)
    out = SigmoidRange(1.0, 5.0)(torch.tensor([-100.0, 0.0, 100.0]))
    assert out.tolist() == pytest.approx([1.0, 3.0, 5.0])
    with pytest.raises(ValueError):
        SigmoidRange(2, 1)
    head = LinBnDrop(8, 4, p=0.5, act=torch.nn.ReLU())
    assert [type(m).__name__ for m in head] == [
        "BatchNorm1d",
        "Dropout",
        "Linear",
        "ReLU",
    ]
    block = LinBnDrop(8, 4, p=0.5, act=torch.nn.ReLU(), lin_first=True)
    assert [type(m).__name__ for m in block] == [
        "Linear",
        "BatchNorm1d",
        "ReLU",
        "Dropout",
    ]
    assert block[0].bias is None  # the batchnorm after it has the bias
    mlp = mlp_blocks(10, (20, 5), ps=(0.1, 0.2))
    assert mlp(torch.randn(4, 10)).shape == (4, 5)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_drops_a_share_p_of_each_lane_and_rescales(p):
    drop = Dropout(p).train()
    x = torch.ones(999, 401, requires_grad=True)  # an odd count: the last draw is cut
    out = drop(x)
    keep = out != 0
    # Each of the four 16-bit lanes of a draw decides every fourth element.
    lanes = keep.reshape(-1)[: 4 * (keep.numel() // 4)].reshape(-1, 4).float()
    se = (p * (1 - p) / lanes.shape[0]) ** 0.5
    assert ((lanes.mean(0) - (1 - p)).abs() < 5 * se).all()
    assert torch.allclose(out[keep], torch.tensor(1 / (1 - p)))
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # the gradient is the scaled mask
    assert torch.equal(drop.eval()(x), x)
    torch.manual_seed(3)
    a = Dropout(p).train()(torch.ones(50, 7))
    torch.manual_seed(3)
    assert torch.equal(a, Dropout(p).train()(torch.ones(50, 7)))
    y = torch.ones(64, 9)
    torch.manual_seed(3)
    ref = Dropout(p).train()(y)
    torch.manual_seed(3)
    assert torch.equal(Dropout(p, inplace=True).train()(y), ref) and torch.equal(y, ref)
    assert isinstance(drop, nn.Dropout)
