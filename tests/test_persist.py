"""``est.save(path)`` / ``deepfit.load(path)``: every estimator round trips, and a file
that is not a deepfit model (a pickle with code in it, a tampered description) is
refused without running anything."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.persist import FORMAT, VERSION
from tests.test_estimator_contract import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_every_estimator_round_trips(case: Case, tmp_path):
    X, y = case.data()
    est = case.make(0)
    path = tmp_path / "model.deepfit"
    est.save(path)  # unfitted: its parameters
    assert deepfit.load(path).get_params().keys() == est.get_params().keys()
    est.fit(X) if y is None else est.fit(X, y)
    est.save(path)
    back = deepfit.load(path)
    assert type(back) is type(est)
    np.testing.assert_allclose(case.output(back, X), case.output(est, X), atol=1e-6)
    pd.testing.assert_frame_equal(back.history_, est.history_)


def test_tz_aware_dates_and_callbacks(tmp_path):
    from tabular import TabularRegressor

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "when": pd.date_range(
                "2024-01-01", periods=200, freq="D", tz="Europe/Paris"
            ),
            "shop": rng.choice(["a", "b", "c"], 200),
        }
    )
    y = np.arange(200) % 7 + (X["shop"] == "a")
    est = TabularRegressor(
        epochs=2, verbose=0, random_state=0, callbacks=[deepfit.History()]
    ).fit(X, y)
    with pytest.warns(UserWarning, match="callbacks are code"):
        est.save(tmp_path / "m")
    back = deepfit.load(tmp_path / "m")
    assert back.callbacks is None
    assert str(back.preprocessor_.date_tz_["when"]) == "Europe/Paris"
    np.testing.assert_allclose(back.predict(X), est.predict(X), atol=1e-6)


class _Boom:
    def __reduce__(self):
        import pathlib

        return (pathlib.Path.touch, (pathlib.Path(_Boom.marker),))


def test_a_pickle_with_code_in_it_is_refused_unrun(tmp_path):
    _Boom.marker = str(tmp_path / "ran")
    for write in (pickle.dump, torch.save):
        path = tmp_path / "evil.pt"
        with open(path, "wb") as f:
            write({"meta": _Boom()}, f)
        with pytest.raises(ValueError, match="not a deepfit model"):
            deepfit.load(path)
        assert not (tmp_path / "ran").exists()


def _write(path, meta, tensors=None):
    torch.save({"meta": json.dumps(meta), **(tensors or {})}, path)


def test_tampered_or_foreign_files_are_refused(tmp_path, capsys):
    from tabular import TabularClassifier

    path = tmp_path / "m"
    good = {"format": FORMAT, "version": VERSION, "class": "", "state": []}
    cases = [
        ({**good, "format": "other"}, "not a deepfit model"),
        ({**good, "version": VERSION + 1}, "format version"),
        ({**good, "class": "os.system"}, "never loads"),
        ({**good, "class": "subprocess.Popen"}, "never loads"),
        (
            {
                **good,
                "class": f"{TabularClassifier.__module__}.TabularClassifier",
                "state": [["x", {"object": "builtins.eval", "state": []}]],
            },
            "never loads",
        ),
        (
            {
                **good,
                "class": f"{TabularClassifier.__module__}.TabularClassifier",
                "state": [["x", {"tensor": "t9"}]],
            },
            "missing",
        ),
    ]
    for meta, match in cases:
        _write(path, meta)
        with pytest.raises(ValueError, match=match):
            deepfit.load(path)
    path.write_text("not even a torch file")
    with pytest.raises(ValueError, match="not a deepfit model"):
        deepfit.load(path)
    with pytest.raises(FileNotFoundError, match="no model file"):
        deepfit.load(tmp_path / "absent")
