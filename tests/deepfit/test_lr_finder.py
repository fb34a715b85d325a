from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from deepfit import Callback, GradientClipping, Learner, TensorBatches, lr_find
from deepfit.lr_finder import (
    LRFinderResult,
    suggest_minimum,
    suggest_steepest,
    suggest_zero_lag,
)


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
    suggestion, reliable = suggest_steepest(lrs, [1.0] * 80)
    assert not reliable and suggestion == suggest_minimum(lrs, [1.0] * 80)[0]


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def before_fit(self, learn):
        self.events.append("before_fit")

    def before_step(self, learn):
        self.events.append(("step", learn.lrs[0]))

    def after_fit(self, learn):
        self.events.append("after_fit")


def test_the_sweep_is_a_fit_so_the_learners_callbacks_apply():
    rec = Recorder()
    _, batches = setup()
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1))
    clip = GradientClipping(1e-3)
    norms = []
    clip.before_step = lambda learn: norms.append(  # record the clipped norm
        float(torch.nn.utils.clip_grad_norm_(learn.model.parameters(), 1e-3))
    )
    learn = Learner(model, nn.functional.mse_loss, callbacks=[rec, clip])
    result = lr_find(learn, batches, end_lr=1e-2, num_it=40)  # more than an epoch
    assert rec.events[0] == "before_fit" and rec.events[-1] == "after_fit"
    steps = [lr for e, lr in (ev for ev in rec.events if isinstance(ev, tuple))]
    assert steps == pytest.approx(result.lrs)  # every step at the sweep's rate
    assert len(steps) == 40 and len(norms) == 40
    assert learn.opt is None  # and the learner is as it was


def test_named_rules_and_a_rule_of_ones_own():
    learn, batches = setup()
    steep = lr_find(learn, batches, num_it=60)
    minimum = lr_find(learn, batches, num_it=60, suggest="minimum")
    assert minimum.suggestion == pytest.approx(minimum.minimum)
    assert steep.suggestion != minimum.suggestion
    mine = lr_find(learn, batches, num_it=20, suggest=lambda *curve: (0.123, True))
    assert mine.suggestion == 0.123 and mine.reliable
    bounded = lr_find(
        learn, batches, num_it=60, suggest="zero_lag", bounds=(1e-6, 2e-6)
    )
    assert 1e-6 <= bounded.suggestion <= 2e-6
    with pytest.raises(ValueError, match="unknown suggestion rule"):
        lr_find(learn, batches, suggest="best")


def test_zero_lag_rule_finds_the_bottom_of_a_noisy_curve():
    rng = torch.Generator().manual_seed(0)
    lrs = [10 ** (-5 + 5 * i / 39) for i in range(40)]
    # A loss that falls until 3e-3 and rises after it, with noise.
    clean = [(torch.log10(torch.tensor(lr)) + 2.5) ** 2 for lr in lrs]
    raw = [float(c + 0.05 * torch.randn(1, generator=rng)) for c in clean]
    lr, reliable = suggest_zero_lag(lrs, raw, raw, bounds=(1e-5, 1.0))
    assert reliable and 1e-3 <= lr <= 1e-2
    assert suggest_zero_lag(lrs, raw, raw)[0] <= 1e-2  # the default bounds
    flat = [1.0] * 40
    assert suggest_zero_lag(lrs, flat, flat, fallback=5e-4) == (5e-4, False)
    assert not suggest_zero_lag(lrs[:8], raw[:8], raw[:8])[1]  # too short
    result = LRFinderResult(lrs, raw, 0, 0, 0, raw_losses=raw)
    assert result.raw_losses == raw


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
