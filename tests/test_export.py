"""The tabular and collab networks exported with ``torch.export`` for serving: the
exported program, fed what the docs say, gives what ``predict`` gives."""

from __future__ import annotations

import numpy as np
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
