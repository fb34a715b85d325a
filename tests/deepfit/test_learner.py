from __future__ import annotations

import os
import signal

import pytest
import torch
from torch import nn

from deepfit import (
    AdversarialTraining,
    Callback,
    CancelFit,
    Checkpoint,
    EarlyStopping,
    FitInterrupted,
    GradientClipping,
    History,
    Learner,
    TensorBatches,
    discriminative_lrs,
)
from deepfit.callbacks import EVENTS


def linear_data(n=256, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    w = torch.arange(1.0, d + 1).unsqueeze(1)
    return x, x @ w + 0.01 * torch.randn(n, 1, generator=g)


class ThreeGroups(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.b = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU())
        self.c = nn.Linear(8, 1)

    def forward(self, x):
        return self.c(self.b(self.a(x)))


def three_group_learner(**kw):
    m = ThreeGroups()
    return Learner(m, nn.functional.mse_loss, layer_groups=[m.a, m.b, m.c], **kw)


def test_fit_learns_a_linear_function():
    x, y = linear_data()
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    learn.fit(TensorBatches(x, y, batch_size=32, shuffle=True), epochs=20, lr=0.1)
    assert learn.train_loss < 0.01 * float(y.var())  # explains 99% of the variance


def test_lr_float_sequence_and_slice():
    learn = three_group_learner()
    assert learn.lrs_per_group(0.01) == [0.01] * 3
    assert learn.lrs_per_group([1e-3, 2e-3, 3e-3]) == [1e-3, 2e-3, 3e-3]
    # Geometric spread: constant ratio between neighbouring groups, ends exact.
    lrs = learn.lrs_per_group(slice(1e-5, 1e-3))
    assert lrs == pytest.approx([1e-5, 1e-4, 1e-3])
    assert lrs[1] / lrs[0] == pytest.approx(lrs[2] / lrs[1])
    assert learn.lrs_per_group(slice(None, 1e-2)) == pytest.approx([1e-3, 1e-3, 1e-2])
    with pytest.raises(ValueError, match="3 layer groups"):
        learn.lrs_per_group([0.1, 0.2])
    assert discriminative_lrs(0.9, 3, 3.0) == pytest.approx([0.1, 0.3, 0.9])


def test_slice_rates_reach_the_optimizer_per_group():
    x, y = linear_data(64)
    learn = three_group_learner()
    learn.fit(TensorBatches(x, y, batch_size=64), 1, slice(1e-4, 1e-2), schedule=None)
    by_group = {g["layer_group"]: g["lr"] for g in learn.opt.param_groups}
    assert [by_group[i] for i in range(3)] == pytest.approx([1e-4, 1e-3, 1e-2])


def test_freeze_to_flips_requires_grad():
    learn = three_group_learner()
    learn.freeze()
    flags = [[p.requires_grad for p in g] for g in learn.layer_groups]
    assert not any(flags[0]) and not any(flags[1]) and all(flags[2])
    learn.freeze_to(1)
    flags = [[p.requires_grad for p in g] for g in learn.layer_groups]
    assert not any(flags[0]) and all(flags[1]) and all(flags[2])
    learn.unfreeze()
    assert all(p.requires_grad for g in learn.layer_groups for p in g)


def test_user_frozen_parameters_stay_frozen():
    m = ThreeGroups()
    m.a[0].weight.requires_grad_(False)
    learn = Learner(m, nn.functional.mse_loss, layer_groups=[m.a, m.b, m.c])
    learn.freeze()
    learn.unfreeze()
    assert not m.a[0].weight.requires_grad and m.a[0].bias.requires_grad


def test_frozen_epoch_leaves_body_weights_and_batchnorm_statistics_untouched():
    x, y = linear_data()
    learn = three_group_learner()
    learn.freeze()
    body = {k: v.clone() for k, v in learn.model.a.state_dict().items()}
    body.update({f"b.{k}": v.clone() for k, v in learn.model.b.state_dict().items()})
    head = learn.model.c.weight.detach().clone()
    learn.fit(TensorBatches(x, y, batch_size=32, shuffle=True), epochs=1, lr=0.01)
    after = dict(learn.model.a.state_dict())
    after.update({f"b.{k}": v for k, v in learn.model.b.state_dict().items()})
    for k, v in body.items():  # weights, running_mean, running_var, num_batches_tracked
        assert torch.equal(v, after[k]), k
    assert not torch.equal(head, learn.model.c.weight)
    # Once unfrozen, BatchNorm statistics move again.
    learn.unfreeze()
    learn.fit(TensorBatches(x, y, batch_size=32), epochs=1, lr=0.01)
    assert not torch.equal(body["1.running_mean"], learn.model.a[1].running_mean)


def test_batchnorm_in_a_parameter_list_group_is_recognised():
    m = ThreeGroups()
    learn = Learner(
        m, nn.functional.mse_loss, layer_groups=[list(m.a.parameters()), [m.b, m.c]]
    )
    learn.freeze()
    learn.train_mode()
    assert not m.a[1].training and m.b[1].training


def _recorder_class():
    # Hooks must be overridden on the class for the learner to call them.
    def hook(event):
        return lambda self, learn: self.events.append(event)

    ns = {e: hook(e) for e in EVENTS}
    ns["__init__"] = lambda self: setattr(self, "events", [])
    return type("Rec", (Callback,), ns)


def test_callbacks_fire_in_order():
    x, y = linear_data(40)
    rec = _recorder_class()()
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    learn.fit(
        TensorBatches(x, y, batch_size=20),
        epochs=2,
        lr=0.01,
        callbacks=[rec],
        valid=TensorBatches(x, y, batch_size=40),
    )
    batch = ["before_batch", "after_loss", "before_step", "after_batch"]
    epoch = [
        "before_epoch",
        *batch,
        *batch,
        "before_validate",
        "after_validate",
        "after_epoch",
    ]
    assert rec.events == ["before_fit", *epoch, *epoch, "after_fit"]


def test_callback_order_attribute_sorts_callbacks():
    calls = []

    class A(Callback):
        order = 5

        def before_fit(self, learn):
            calls.append("A")

    class B(Callback):
        order = -5

        def before_fit(self, learn):
            calls.append("B")

    x, y = linear_data(8)
    Learner(nn.Linear(4, 1), nn.functional.mse_loss).fit(
        TensorBatches(x, y, batch_size=8), 1, 0.01, callbacks=[A(), B()]
    )
    assert calls == ["B", "A"]


def test_cancel_fit_stops_and_after_fit_still_runs():
    class StopAt3(Callback):
        def __init__(self):
            self.batches, self.finished = 0, False

        def after_batch(self, learn):
            self.batches += 1
            if self.batches == 3:
                raise CancelFit

        def after_fit(self, learn):
            self.finished = True

    x, y = linear_data(100)
    cb = StopAt3()
    Learner(nn.Linear(4, 1), nn.functional.mse_loss).fit(
        TensorBatches(x, y, batch_size=10), 5, 0.01, callbacks=[cb]
    )
    assert cb.batches == 3 and cb.finished


@pytest.fixture
def terminal_sigint():
    """Ctrl-C as a terminal delivers it. A process started in the background without job
    control (``cmd &`` in a script, nohup, some CI runners) inherits SIGINT *ignored*,
    and Python then installs no KeyboardInterrupt handler; such a process never sees a
    Ctrl-C, so the test restores the interactive default for its duration."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


class Snapshot(Callback):
    """Keeps the weights after every completed batch and sends Ctrl-C at one of them."""

    order = 100

    def __init__(self, at):
        self.at, self.count, self.state = at, 0, None

    def after_batch(self, learn):
        self.count += 1
        self.state = {k: v.clone() for k, v in learn.model.state_dict().items()}
        if self.count == self.at:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_stops_cleanly_after_the_current_batch(terminal_sigint):
    x, y = linear_data()
    learn = three_group_learner()
    snap = Snapshot(at=5)
    with pytest.warns(FitInterrupted, match="interrupted at epoch 1, batch 5"):
        learn.fit(
            TensorBatches(x, y, batch_size=16), epochs=3, lr=0.01, callbacks=[snap]
        )
    assert learn.interrupted
    assert snap.count == 5  # no further batch ran
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, snap.state[k]), k  # the weights of the last full step
    learn.model.eval()
    assert torch.isfinite(learn.model(x)).all()
    # The default handler is back once fit returns.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_keyboard_interrupt_with_early_stopping_restores_best_weights():
    x, y = linear_data()
    xv, yv = linear_data(64, seed=1)
    best_states = {}

    class RememberAndInterrupt(Callback):
        order = 50  # after EarlyStopping recorded the epoch

        def after_epoch(self, learn):
            best_states[learn.epoch] = {
                k: v.clone() for k, v in learn.model.state_dict().items()
            }

        def before_step(self, learn):
            if learn.epoch == 3 and learn.iter == 2:
                raise KeyboardInterrupt  # mid-batch, before the optimizer step

    es = EarlyStopping(patience=10)
    learn = three_group_learner()
    with pytest.warns(FitInterrupted):
        learn.fit(
            TensorBatches(x, y, batch_size=16, shuffle=True),
            6,
            0.05,
            callbacks=[es, RememberAndInterrupt()],
            valid=TensorBatches(xv, yv, batch_size=64),
        )
    assert learn.interrupted and es.best_epoch is not None
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, best_states[es.best_epoch][k]), k


def test_early_stopping_stops_and_restores_the_best_epoch():
    x, y = linear_data()
    # Validation targets of the opposite sign: the better the fit, the worse valid_loss.
    valid = TensorBatches(x[:64], -y[:64], batch_size=64)
    hist = History()
    es = EarlyStopping(patience=2)
    states = []

    class Keep(Callback):
        order = 50

        def after_epoch(self, learn):
            states.append({k: v.clone() for k, v in learn.model.state_dict().items()})

    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    learn.fit(
        TensorBatches(x, y, batch_size=16),
        20,
        0.05,
        "constant",
        callbacks=[hist, es, Keep()],
        valid=valid,
    )
    assert len(hist.epochs) == es.best_epoch + 3  # stopped after 2 epochs without gain
    losses = [r["valid_loss"] for r in hist.epochs]
    assert es.best_epoch == losses.index(min(losses))
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, states[es.best_epoch][k])


def test_early_stopping_needs_what_it_monitors():
    x, y = linear_data(32)
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    with pytest.raises(ValueError, match="valid_loss"):
        learn.fit(
            TensorBatches(x, y, batch_size=16), 2, 0.01, callbacks=[EarlyStopping()]
        )


def test_gradient_clipping_caps_the_norm():
    norms = []

    class Measure(Callback):
        order = 10

        def before_step(self, learn):
            grads = [p.grad for p in learn.model.parameters()]
            norms.append(
                float(torch.linalg.vector_norm(torch.cat([g.flatten() for g in grads])))
            )

    x, y = linear_data(64)
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    learn.fit(
        TensorBatches(100 * x, 100 * y, batch_size=16),
        1,
        1e-4,
        callbacks=[GradientClipping(0.5), Measure()],
    )
    assert max(norms) <= 0.5 + 1e-5


def test_checkpoint_writes_loadable_best_weights(tmp_path):
    x, y = linear_data(64)
    path = tmp_path / "ckpt" / "best.pt"
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    learn.fit(
        TensorBatches(x, y, batch_size=16),
        3,
        0.05,
        callbacks=[Checkpoint(path)],
        valid=TensorBatches(x, y, batch_size=64),
    )
    state = torch.load(path, weights_only=True)
    assert set(state) == {"weight", "bias"}


def test_checkpoint_that_cannot_be_written_fails_before_training(tmp_path):
    x, y = linear_data(64)
    model = nn.Linear(4, 1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    (tmp_path / "a_file").write_text("")
    for path, err in (
        (tmp_path, IsADirectoryError),  # a folder, not a file name
        (tmp_path / "a_file" / "best.pt", OSError),  # its folder is a file
    ):
        with pytest.raises(err, match=f"checkpoint to '{path}'"):
            Learner(model, nn.functional.mse_loss).fit(
                TensorBatches(x, y, batch_size=16),
                1,
                0.05,
                callbacks=[Checkpoint(path, save_best_only=False)],
            )
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_metrics_on_the_whole_validation_set():
    x, y = linear_data(64)

    def mae(pred, target):
        return (pred - target).abs().mean()

    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss, metrics=[mae])
    hist = History()
    learn.fit(
        TensorBatches(x, y, batch_size=16),
        2,
        0.05,
        callbacks=[hist],
        valid=TensorBatches(x, y, batch_size=10),
    )
    learn.model.eval()
    with torch.no_grad():
        expected = float((learn.model(x) - y).abs().mean())
    assert hist.epochs[-1]["mae"] == pytest.approx(expected, rel=1e-5)
    assert hist.to_frame().columns.tolist() == [
        "epoch",
        "train_loss",
        "valid_loss",
        "mae",
        "lr",
        "time",
    ]


def test_weighted_loss_receives_the_third_batch_element():
    seen = []

    def weighted(pred, y, w):
        seen.append(w)
        return ((pred - y) ** 2 * w).mean()

    x, y = linear_data(32)
    w = torch.rand(32, 1)
    Learner(nn.Linear(4, 1), weighted).fit(
        TensorBatches(x, y, w, batch_size=32), 1, 0.01
    )
    assert torch.equal(seen[0], w)


def test_layer_group_errors():
    m = ThreeGroups()
    with pytest.raises(ValueError, match="no layer group"):
        Learner(m, nn.functional.mse_loss, layer_groups=[m.a, m.b])
    with pytest.raises(ValueError, match="more than one layer group"):
        Learner(m, nn.functional.mse_loss, layer_groups=[m.a, [m.a, m.b], m.c])


def test_fine_tune_freezes_then_unfreezes_gradually():
    frozen_at_fit = []

    class Spy(Callback):
        def before_fit(self, learn):
            frozen_at_fit.append((learn.n_frozen, list(learn.base_lrs)))

    x, y = linear_data(64)
    learn = three_group_learner()
    learn.fine_tune(
        TensorBatches(x, y, batch_size=16),
        epochs=1,
        lr=0.09,
        freeze_epochs=1,
        lr_ratio=3,
        gradual=True,
        callbacks=[Spy()],
    )
    assert [n for n, _ in frozen_at_fit] == [2, 1, 0]
    assert frozen_at_fit[0][1] == [0.09] * 3
    assert frozen_at_fit[-1][1] == pytest.approx([0.01, 0.03, 0.09])
    frozen_at_fit.clear()
    three_group_learner().fine_tune(
        TensorBatches(x, y, batch_size=16), 1, 0.09, callbacks=[Spy()]
    )
    assert [n for n, _ in frozen_at_fit] == [2, 0]


def test_fit_rejects_unsized_or_empty_batches():
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    with pytest.raises(TypeError, match="length"):
        learn.fit(iter([]), 1, 0.01)
    with pytest.raises(ValueError, match="empty"):
        learn.fit([], 1, 0.01)


def test_amp_is_a_no_op_on_cpu():
    x, y = linear_data(32)
    torch.manual_seed(1)
    a = Learner(nn.Linear(4, 1), nn.functional.mse_loss, amp=True)
    a.fit(TensorBatches(x, y, batch_size=8), 1, 0.01)
    torch.manual_seed(1)
    b = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    b.fit(TensorBatches(x, y, batch_size=8), 1, 0.01)
    assert torch.equal(a.model.weight, b.model.weight)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_amp_bfloat16_on_cuda():
    x, y = linear_data(64)
    seen = []

    class Dtype(Callback):
        def after_loss(self, learn):
            seen.append(learn.pred.dtype)

    learn = Learner(nn.Linear(4, 1).cuda(), nn.functional.mse_loss, amp=True)
    learn.fit(TensorBatches(x, y, batch_size=16), 1, 0.01, callbacks=[Dtype()])
    assert seen[0] == torch.bfloat16 and learn.model.weight.dtype == torch.float32


@pytest.mark.parametrize(("verbose", "shown"), [(0, False), (1, False), (2, True)])
def test_progress_bar_verbosity(verbose, shown, capsys):
    """verbose=1 shows bar and epoch lines only on a terminal; pytest's stderr is not one."""
    from deepfit import ProgressBar

    x, y = linear_data(64)
    Learner(nn.Linear(4, 1), nn.functional.mse_loss).fit(
        TensorBatches(x, y, batch_size=16),
        2,
        0.01,
        callbacks=[ProgressBar(verbose)],
        valid=TensorBatches(x, y, batch_size=64),
    )
    err = capsys.readouterr().err
    assert ("epoch 2/2" in err and "valid_loss" in err) is shown
    if not shown:
        assert err == ""


def test_progress_goes_to_the_deepfit_logger_without_a_terminal(caplog):
    from deepfit import ProgressBar

    x, y = linear_data(64)
    batches = TensorBatches(x, y, batch_size=16)
    for verbose, expected in ((0, 0), (1, 2)):
        caplog.clear()
        with caplog.at_level("INFO", logger="deepfit"):
            Learner(nn.Linear(4, 1), nn.functional.mse_loss).fit(
                batches,
                2,
                0.01,
                callbacks=[ProgressBar(verbose)],
                tags={"stage": "frozen"},
            )
        lines = [r.getMessage() for r in caplog.records if r.name == "deepfit"]
        assert len(lines) == expected
        if expected:
            assert lines[-1].startswith("frozen: epoch 2/2  train_loss")


def test_history_records_every_batch_rate_and_epoch_rows():
    x, y = linear_data(64)
    hist = History()
    Learner(nn.Linear(4, 1), nn.functional.mse_loss).fit(
        TensorBatches(x, y, batch_size=16), 3, 0.01, callbacks=[hist]
    )
    assert len(hist.lrs) == 12 and len(hist.epochs) == 3
    assert hist.epochs[-1]["lr"] == hist.lrs[-1][-1]
    assert all(r["time"] > 0 for r in hist.epochs)


class Embedded(nn.Module):
    """A stand-in for an embedding (``emb``) and a head (``head``), no randomness."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Linear(4, 3)
        self.head = nn.Sequential(nn.Tanh(), nn.Linear(3, 1))

    def forward(self, x):
        return self.head(self.emb(x))


def test_adversarial_training_adds_the_loss_at_the_worst_nearby_embedding():
    x, y = linear_data(16)
    model = Embedded()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    seen = {}

    class Grab(Callback):
        order = 10

        def before_step(self, learn):
            seen["loss"] = float(learn.loss.detach())
            seen["grads"] = [p.grad.clone() for p in learn.model.parameters()]

    learn = Learner(model, nn.functional.mse_loss)
    learn.fit(
        TensorBatches(x, y, batch_size=16),
        1,
        1e-3,
        callbacks=[AdversarialTraining("emb", eps=0.1), Grab()],
    )
    # By hand, from the same starting weights: e + r, r = eps ||e|| g / ||g|| per row.
    ref = Embedded()
    ref.load_state_dict(start)
    e = ref.emb(x)
    clean = nn.functional.mse_loss(ref.head(e), y)
    (g,) = torch.autograd.grad(clean, e, retain_graph=True)
    r = 0.1 * e.detach().norm(dim=1, keepdim=True) * g / g.norm(dim=1, keepdim=True)
    adv = nn.functional.mse_loss(ref.head(e + r), y)
    assert float(adv.detach()) > float(clean.detach())  # r is a step uphill
    want = torch.autograd.grad(clean + adv, list(ref.parameters()))
    assert seen["loss"] == pytest.approx(float(clean.detach()), rel=1e-5)  # clean loss
    for got, w in zip(seen["grads"], want, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-4, atol=1e-6)
    # The hook is gone after fit: evaluation and later fits see the plain model.
    assert not model.emb._forward_hooks


def test_adversarial_training_through_a_frozen_layer():
    x, y = linear_data(32)
    model = Embedded()
    learn = Learner(model, nn.functional.mse_loss, layer_groups=[model.emb, model.head])
    learn.freeze()
    before = model.emb.weight.clone()
    learn.fit(
        TensorBatches(x, y, batch_size=16),
        2,
        1e-2,
        callbacks=[AdversarialTraining("emb")],
    )
    assert torch.equal(model.emb.weight, before)
    assert model.emb.weight.grad is None


@pytest.mark.parametrize("eps", [0, -0.1, True, "0.1"])
def test_adversarial_training_bad_eps(eps):
    with pytest.raises(ValueError, match="eps"):
        AdversarialTraining("emb", eps)


def test_adversarial_training_unknown_module_is_named():
    x, y = linear_data(16)
    learn = Learner(Embedded(), nn.functional.mse_loss)
    with pytest.raises(AttributeError, match="nope"):
        learn.fit(
            TensorBatches(x, y, batch_size=16),
            1,
            1e-3,
            callbacks=[AdversarialTraining("nope")],
        )


class NanAfter(Callback):
    """Poisons a weight with NaN during epoch ``epoch`` (0-based)."""

    def __init__(self, epoch: int) -> None:
        self.at = epoch

    def after_batch(self, learn: Learner) -> None:
        if learn.epoch == self.at and learn.iter == 0:
            with torch.no_grad():
                next(learn.model.parameters()).fill_(float("nan"))


def test_divergence_puts_back_the_last_finite_epoch():
    x, y = linear_data()
    learn = Learner(nn.Linear(4, 1), nn.functional.mse_loss)
    snap = {}

    class Keep(Callback):
        def after_epoch(self, learn):
            snap[learn.epoch] = {
                k: v.clone() for k, v in learn.model.state_dict().items()
            }

    batches = TensorBatches(x, y, batch_size=32)
    history = History()
    with pytest.warns(RuntimeWarning, match="put back the weights of the last finite"):
        learn.fit(batches, 5, 0.05, callbacks=[NanAfter(2), Keep(), history])
    assert learn.diverged and len(history.epochs) == 2
    for k, v in learn.model.state_dict().items():
        assert torch.isfinite(v).all()
        torch.testing.assert_close(v, snap[1][k])
    learn.fit(batches, 1, 0.01)  # the learner trains on afterwards
    assert torch.isfinite(learn.model.weight).all()
