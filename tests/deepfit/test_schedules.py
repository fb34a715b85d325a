from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from deepfit import (
    SGDR,
    Constant,
    History,
    Learner,
    OneCycle,
    TensorBatches,
    get_schedule,
)


def torch_sgdr_lrs(base_lr, n_steps, t0, t_mult, eta_min):
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=base_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=t0, T_mult=t_mult, eta_min=eta_min
    )
    lrs = []
    for _ in range(n_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return lrs


@pytest.mark.parametrize(
    ("cycle_len", "cycle_mult", "min_frac", "epochs", "n_batches"),
    [(1, 1, 0.0, 4, 7), (1, 2, 0.0, 7, 5), (2, 2, 0.1, 14, 3), (1, 3, 0.0, 13, 4)],
)
def test_sgdr_matches_torch_step_for_step(
    cycle_len, cycle_mult, min_frac, epochs, n_batches
):
    base = 0.1
    sched = SGDR(cycle_len=cycle_len, cycle_mult=cycle_mult, min_frac=min_frac)
    total = epochs * n_batches
    ours = [base * sched.lr(i / total, epochs) for i in range(total)]
    ref = torch_sgdr_lrs(
        base, total, cycle_len * n_batches, cycle_mult, min_frac * base
    )
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)


def test_learner_applies_sgdr_every_batch_like_torch():
    """The rates the learner actually put in the optimizer, batch by batch."""
    x, y = torch.randn(60, 3), torch.randn(60, 1)
    batches = TensorBatches(x, y, batch_size=10)  # 6 batches per epoch
    learn = Learner(nn.Linear(3, 1), nn.functional.mse_loss)
    hist = History()
    learn.fit(batches, epochs=3, lr=0.05, schedule=SGDR(1, 2), callbacks=[hist])
    seen = [lrs[0] for lrs in hist.lrs]
    assert seen == pytest.approx(
        torch_sgdr_lrs(0.05, 18, 6, 2, 0.0), rel=1e-9, abs=1e-12
    )


def test_one_cycle_shape():
    s = OneCycle(pct_start=0.25, div=25, final_div=1e4)
    assert s.lr(0.0, 1) == pytest.approx(1 / 25)
    assert s.lr(0.25, 1) == pytest.approx(1.0)
    assert s.lr(1.0, 1) == pytest.approx(1 / 25e4)
    ups = [s.lr(p / 100, 1) for p in range(26)]
    downs = [s.lr(p / 100, 1) for p in range(25, 101)]
    assert ups == sorted(ups) and downs == sorted(downs, reverse=True)
    # Momentum runs against the rate: high, low at the peak, high again.
    assert s.momentum(0.0, 1) == pytest.approx(0.95)
    assert s.momentum(0.25, 1) == pytest.approx(0.85)
    assert s.momentum(1.0, 1) == pytest.approx(0.95)
    assert OneCycle(moms=None).momentum(0.3, 1) is None


def test_one_cycle_sets_adam_beta1_and_sgd_momentum():
    x, y = torch.randn(40, 3), torch.randn(40, 1)
    for opt_func, key in [
        (lambda g: torch.optim.Adam(g), "betas"),
        (lambda g: torch.optim.SGD(g, momentum=0.9), "momentum"),
    ]:
        learn = Learner(nn.Linear(3, 1), nn.functional.mse_loss, opt_func=opt_func)
        learn.fit(TensorBatches(x, y, batch_size=10), 1, 0.01, OneCycle(pct_start=0.5))
        value = learn.opt.param_groups[0][key]
        beta1 = value[0] if key == "betas" else value
        expected = OneCycle(pct_start=0.5).momentum(3 / 4, 1)
        assert beta1 == pytest.approx(expected)


def test_constant_and_lookup():
    assert Constant().lr(0.7, 3) == 1.0
    assert isinstance(get_schedule("sgdr"), SGDR)
    assert isinstance(get_schedule(None), Constant)
    with pytest.raises(ValueError, match="schedule must be one of"):
        get_schedule("cosine-ish")
    with pytest.raises(ValueError, match="cycle_mult"):
        SGDR(cycle_mult=0.5)


def test_sgdr_restarts_fall_where_documented():
    s = SGDR(cycle_len=1, cycle_mult=2)
    # Restarts after epochs 1, 3 and 7: the rate is back at its peak there.
    for epoch in (0, 1, 3, 7):
        assert s.lr(epoch / 15, 15) == pytest.approx(1.0)
        assert s.lr((epoch - 1e-6) / 15, 15) < 1e-3 or epoch == 0
    assert math.isclose(s.lr(2 / 15, 15), 0.5, rel_tol=1e-9)  # middle of the 2nd cycle
