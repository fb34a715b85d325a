from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from deepfit import Learner, TensorBatches, lr_find
from deepfit.lr_finder import suggest


def setup(n=512):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 6, generator=g)
    y = x @ torch.randn(6, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    model = nn.Sequential(
        nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 1)
    )
    return Learner(model, nn.functional.mse_loss), TensorBatches(
        x, y, batch_size=32, shuffle=True
    )


def test_finder_restores_weights_buffers_and_optimizer_state_exactly():
    learn, batches = setup()
    learn.fit(batches, 1, 0.01)  # so there is optimizer state (Adam moments) to keep
    model_before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    opt_before = learn.opt.state_dict()
    moments = {
        k: {n: t.clone() if torch.is_tensor(t) else t for n, t in v.items()}
        for k, v in opt_before["state"].items()
    }
    groups = [dict(g) for g in opt_before["param_groups"]]
    result = lr_find(learn, batches, num_it=50)
    assert len(result.lrs) > 10
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, model_before[k]), k  # BatchNorm running stats included
    after = learn.opt.state_dict()
    for k, v in moments.items():
        for n, t in v.items():
            assert (
                torch.equal(after["state"][k][n], t)
                if torch.is_tensor(t)
                else after["state"][k][n] == t
            )
    assert after["param_groups"] == groups


def test_finder_without_optimizer_leaves_none_and_keeps_train_mode():
    learn, batches = setup()
    learn.model.eval()
    lr_find(learn, batches, num_it=20)
    assert learn.opt is None and not learn.model.training


def test_finder_curve_and_suggestion():
    learn, batches = setup()
    result = learn.lr_find(batches)
    assert result.lrs == sorted(result.lrs)
    assert result.lrs[0] == pytest.approx(1e-7)
    assert result.reliable
    i_min = min(range(len(result.losses)), key=result.losses.__getitem__)
    assert result.lrs[i_min] / 100 <= result.suggestion <= result.lrs[i_min] / 2
    assert result.minimum == pytest.approx(result.lrs[i_min] / 10)
    # The suggestion trains: a fit at that rate reduces the loss a lot.
    learn.fit(batches, 3, result.suggestion)
    assert learn.train_loss < 0.1 * float(batches.tensors[1].var())


def test_finder_keeps_the_raw_losses_behind_the_smoothed_curve():
    learn, batches = setup()
    result = lr_find(learn, batches, num_it=30, beta=0.9)
    assert len(result.raw_losses) == len(result.losses) == len(result.lrs)
    avg = 0.0
    for i, (raw, smooth) in enumerate(
        zip(result.raw_losses, result.losses, strict=True)
    ):
        avg = 0.9 * avg + 0.1 * raw
        assert smooth == pytest.approx(avg / (1 - 0.9 ** (i + 1)))
    no_smoothing = lr_find(learn, batches, num_it=10, beta=0.0)
    assert no_smoothing.raw_losses == pytest.approx(no_smoothing.losses)


def test_finder_stops_on_divergence():
    learn, batches = setup()
    result = lr_find(learn, batches, start_lr=1e-4, end_lr=1e6, num_it=200)
    assert result.diverged and len(result.lrs) < 200


def test_suggestion_falls_back_when_loss_is_flat():
    lrs = [10 ** (-7 + i / 10) for i in range(80)]
    suggestion, _, minimum, reliable = suggest(lrs, [1.0] * 80)
    assert not reliable and suggestion == minimum


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    learn, batches = setup()
    result = learn.lr_find(batches, num_it=30)
    path = tmp_path / "lr.png"
    result.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_says_how_to_get_it(monkeypatch):
    learn, batches = setup()
    result = learn.lr_find(batches, num_it=10)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"deepfit\[plot\]"):
        result.plot()
