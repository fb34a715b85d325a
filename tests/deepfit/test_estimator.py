from __future__ import annotations

import pickle
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from deepfit import NeuralEstimator, resolve_device
from deepfit.estimator import _PackedModule
from tests.deepfit.toy import TiedNet, ToyRegressor


def data(n=400, d=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, X @ np.arange(1, d + 1) + 0.1 * rng.normal(size=n)


@parametrize_with_checks([ToyRegressor(epochs=30, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_fit_returns_self_and_learns():
    X, y = data()
    est = ToyRegressor(epochs=20, random_state=0)
    assert est.fit(X, y) is est
    assert est.score(X, y) > 0.95
    assert list(est.history_.columns[:2]) == ["epoch", "train_loss"]
    assert est.n_epochs_ == 20 and not est.interrupted_


def test_not_fitted_error():
    with pytest.raises(NotFittedError):
        ToyRegressor().predict(np.zeros((2, 5)))


def test_same_random_state_same_predictions_different_state_differs():
    X, y = data()
    a = ToyRegressor(random_state=1).fit(X, y).predict(X)
    b = ToyRegressor(random_state=1).fit(X, y).predict(X)
    c = ToyRegressor(random_state=2).fit(X, y).predict(X)
    assert np.array_equal(a, b) and not np.allclose(a, c)


def test_fit_leaves_global_torch_rng_alone():
    X, y = data()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ToyRegressor(random_state=0).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def test_clone_and_params_round_trip():
    est = ToyRegressor(n_hidden=7, epochs=2, lr=slice(1e-3, 1e-2))
    params = est.get_params()
    assert params["n_hidden"] == 7 and params["epochs"] == 2
    twin = clone(est)
    assert twin.get_params() == params and twin is not est
    twin.set_params(epochs=4)
    assert twin.epochs == 4 and est.epochs == 2


@pytest.mark.parametrize("dumper", ["pickle", "joblib"])
def test_pickle_round_trip_predicts_the_same(dumper, tmp_path):
    X, y = data()
    est = ToyRegressor(random_state=0).fit(X, y)
    if dumper == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "m.joblib")
        loaded = joblib.load(tmp_path / "m.joblib")
    assert np.array_equal(loaded.predict(X), est.predict(X))
    # Weights travel as a CPU state dict beside a weightless skeleton.
    state = est.__getstate__()
    assert isinstance(state["module_"], _PackedModule)
    assert all(t.device.type == "cpu" for t in state["module_"].state.values())
    assert all(p.device.type == "meta" for p in state["module_"].skeleton.parameters())


def test_packed_module_keeps_tied_weights_tied():
    net = TiedNet(4)
    back = pickle.loads(pickle.dumps(_PackedModule(net))).unpack()
    assert back.enc.weight is back.dec.weight
    x = torch.randn(2, 4)
    assert torch.equal(back(x), net(x))


def test_warm_start_continues_from_current_weights():
    X, y = data()
    est = ToyRegressor(epochs=1, random_state=0, warm_start=True).fit(X, y)
    first = est.module_
    est.fit(X, y)
    assert est.module_ is first
    assert est.history_["epoch"].tolist() == [0, 1]
    cold = ToyRegressor(epochs=1, random_state=0).fit(X, y)
    cold_module = cold.module_
    cold.fit(X, y)
    assert cold.module_ is not cold_module and len(cold.history_) == 1


def test_lr_none_uses_the_finder_suggestion():
    X, y = data()
    est = ToyRegressor(lr=None, epochs=5, random_state=0).fit(X, y)
    assert est.lr_ == est.lr_find_.suggestion
    assert est.score(X, y) > 0.9


def test_public_lr_find_leaves_the_estimator_unfitted():
    X, y = data()
    est = ToyRegressor()
    result = est.lr_find(X, y)
    assert len(result.lrs) > 10 and result.suggestion > 0
    assert not hasattr(est, "module_")


def test_early_stopping_uses_a_validation_fraction():
    X, y = data()
    est = ToyRegressor(epochs=50, early_stopping=2, lr=0.05, random_state=0).fit(X, y)
    assert "valid_loss" in est.history_.columns
    assert est.n_epochs_ <= 50


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("epochs", 0, "epochs must be an int >= 1, got 0"),
        ("batch_size", 2.5, "batch_size must be an int >= 1"),
        ("validation_fraction", 1.0, "validation_fraction"),
        ("early_stopping", 0, "early_stopping"),
        ("lr", -1.0, "lr must be a number > 0"),
        ("schedule", "warp", "schedule must be one of"),
    ],
)
def test_bad_common_parameters_fail_before_training(param, value, message):
    X, y = data()
    with pytest.raises(ValueError, match=message):
        ToyRegressor(**{param: value}).fit(X, y)


def test_pipeline_and_grid_search():
    X, y = data(200)
    pipe = make_pipeline(StandardScaler(), ToyRegressor(epochs=2, random_state=0))
    search = GridSearchCV(pipe, {"toyregressor__n_hidden": [4, 8]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["toyregressor__n_hidden"] in (4, 8)


def test_resolve_device(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if hasattr(torch.backends, "mps"):
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
        assert resolve_device("auto") == torch.device("mps")
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")


def test_base_class_hooks_are_abstract():
    with pytest.raises(NotImplementedError):
        NeuralEstimator().fit(np.zeros((4, 2)), np.zeros(4))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_fitted_on_gpu_unpickles_on_cpu():
    X, y = data()
    est = ToyRegressor(device="cuda", random_state=0, amp=True).fit(X, y)
    blob = pickle.dumps(est)
    code = (
        "import pickle, sys, torch, numpy as np; "
        "torch.cuda.is_available = lambda: False; "
        "est = pickle.loads(sys.stdin.buffer.read()); est.device = 'cpu'; "
        "print(est.predict(np.zeros((2, 5))).shape)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=blob,
        capture_output=True,
        check=True,
        env={"CUDA_VISIBLE_DEVICES": "", "PATH": ""},
    )
    assert b"(2,)" in out.stdout


def test_engine_imports_no_domain_package():
    code = (
        "import importlib, pkgutil, sys, deepfit\n"
        "for m in pkgutil.iter_modules(deepfit.__path__):\n"
        "    if m.name != '__main__':\n"
        "        importlib.import_module('deepfit.' + m.name)\n"
        "bad = [d for d in ('tabular', 'collab', 'text', 'vision') if d in sys.modules]\n"
        "print(bad)\n"
        "assert not bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_demo_command_runs_the_engine_step():
    res = subprocess.run(
        [sys.executable, "-m", "deepfit", "demo", "--only", "engine"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "train_loss" in res.stdout and "valid_loss" in res.stdout


def test_divergence_is_rolled_back_and_reported(monkeypatch):
    from deepfit.callbacks import Callback

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])

    class Poison(Callback):
        def __init__(self, epoch):
            self.at = epoch

        def after_batch(self, learn):
            if learn.epoch == self.at:
                with torch.no_grad():
                    next(learn.model.parameters()).fill_(float("nan"))

    with pytest.warns(RuntimeWarning, match="last finite epoch"):
        est = ToyRegressor(epochs=4, random_state=0, callbacks=[Poison(2)]).fit(X, y)
    assert est.diverged_ and est.n_epochs_ == 2
    assert np.isfinite(est.predict(X)).all()
    good = ToyRegressor(epochs=4, random_state=0).fit(X, y)
    assert not good.diverged_
    with (
        pytest.raises(FloatingPointError, match="first epoch"),
        pytest.warns(RuntimeWarning),
    ):
        good.set_params(callbacks=[Poison(0)]).fit(X, y)
    assert good.callbacks is not None and np.isfinite(good.predict(X)).all()
    assert not good.diverged_  # the failed fit left the previous model as it was
