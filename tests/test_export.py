"""The tabular and collab networks exported with ``torch.export`` and to ONNX for
serving: the exported program (or onnxruntime on the ONNX file), fed what the docs say,
gives what ``predict`` gives, at a batch size other than the one traced."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from collab import CollabRegressor
from tabular import TabularClassifier, TabularRegressor
from tests.collab.test_estimator import low_rank_ratings
from tests.tabular.test_estimator import FAST, make_data


def test_tabular_export_matches_predict_proba_and_predict(tmp_path):
    X, y = make_data(300)
    clf = TabularClassifier(**{**FAST, "n_members": 2}).fit(X, y)
    path = tmp_path / "tab.pt2"
    clf.export(path)
    program = torch.export.load(path)
    codes, cont = clf.preprocessor_.transform_arrays(X.iloc[:37])  # any batch size
    logits = program.module()(torch.from_numpy(codes), torch.from_numpy(cont))
    np.testing.assert_allclose(
        torch.softmax(logits, 1).detach().numpy(),
        clf.predict_proba(X.iloc[:37]),
        atol=1e-5,
    )
    reg = TabularRegressor(**FAST).fit(X, np.exp(X["x"]) * 10)
    codes, cont = reg.preprocessor_.transform_arrays(X)
    out = reg.export().module()(torch.from_numpy(codes), torch.from_numpy(cont))
    pred = out.detach().numpy().astype(np.float64) * reg.y_scale_ + reg.y_mean_
    pred = np.where(reg.log_target_, np.expm1(pred), pred).ravel()
    np.testing.assert_allclose(pred, reg.predict(X), rtol=1e-4)


def test_collab_export_with_the_implicit_term_matches_predict():
    X, y, _ = low_rank_ratings(40, 30, density=0.5, seed=1)
    est = CollabRegressor(n_factors=8, epochs=2, verbose=0, random_state=0).fit(X, y)
    assert est.implicit  # the default, whose sparse term exports as a gather
    users = torch.as_tensor(est.users_.get_indexer(X["user"]))
    items = torch.as_tensor(est.items_.get_indexer(X["item"]))
    out = est.export().module()(users, items)
    np.testing.assert_allclose(out.detach().numpy(), est.predict(X), atol=1e-5)


def _onnx_run(path, **inputs):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(inputs)
    assert all(i.shape[0] == "batch" for i in session.get_inputs())
    (out,) = session.run(None, inputs)
    return out


def test_tabular_onnx_matches_predict_proba_and_predict(tmp_path):
    pytest.importorskip("onnxruntime")
    X, y = make_data(300)
    clf = TabularClassifier(**{**FAST, "n_members": 2}).fit(X, y)
    clf.export_onnx(tmp_path / "clf.onnx")
    codes, cont = clf.preprocessor_.transform_arrays(X.iloc[:37])  # traced with 2 rows
    logits = _onnx_run(tmp_path / "clf.onnx", codes=codes, cont=cont)
    proba = torch.softmax(torch.from_numpy(logits), 1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X.iloc[:37]), atol=1e-5)

    reg = TabularRegressor(**FAST).fit(X, np.exp(X["x"]) * 10)
    reg.export_onnx(tmp_path / "reg.onnx")
    codes, cont = reg.preprocessor_.transform_arrays(X.iloc[:53])
    out = _onnx_run(tmp_path / "reg.onnx", codes=codes, cont=cont)
    pred = out.astype(np.float64) * reg.y_scale_ + reg.y_mean_
    pred = np.where(reg.log_target_, np.expm1(pred), pred).ravel()
    np.testing.assert_allclose(pred, reg.predict(X.iloc[:53]), rtol=1e-4)


def test_collab_onnx_with_the_implicit_term_matches_predict(tmp_path):
    pytest.importorskip("onnxruntime")
    X, y, _ = low_rank_ratings(40, 30, density=0.5, seed=1)
    est = CollabRegressor(n_factors=8, epochs=2, verbose=0, random_state=0).fit(X, y)
    assert est.implicit  # the default: its sparse sums export as a gather
    est.export_onnx(tmp_path / "collab.onnx")
    X = X.iloc[:71].copy()
    # Ids never seen in training have code -1 and get predict's fallback.
    X.iloc[[3, 7], X.columns.get_loc("user")] = 10**6
    X.iloc[[5, 7], X.columns.get_loc("item")] = 10**6
    users = est.users_.get_indexer(X["user"]).astype(np.int64)
    items = est.items_.get_indexer(X["item"]).astype(np.int64)
    assert (users < 0).sum() == (items < 0).sum() == 2
    out = _onnx_run(tmp_path / "collab.onnx", users=users, items=items)
    expected = est.predict(X)
    np.testing.assert_allclose(out, expected, atol=1e-5)
    program = est.export().module()
    out = program(torch.from_numpy(users), torch.from_numpy(items))
    np.testing.assert_allclose(out.detach().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("missing", ["onnx", "onnxscript"])
def test_onnx_export_without_onnx_names_the_package(tmp_path, monkeypatch, missing):
    X, y, _ = low_rank_ratings(20, 15, density=0.5, seed=1)
    est = CollabRegressor(n_factors=4, epochs=1, verbose=0, random_state=0).fit(X, y)
    monkeypatch.setitem(sys.modules, missing, None)  # import fails as if not installed
    with pytest.raises(ImportError, match=rf"'{missing}'.*deepfit\[export\]"):
        est.export_onnx(tmp_path / "collab.onnx")
    assert not (tmp_path / "collab.onnx").exists()
