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


def test_parameters_and_attributes_of_every_kind_round_trip(tmp_path):
    from sklearn.frozen import FrozenEstimator

    from tabular import TabularClassifier
    from tests.tabular.test_estimator import FAST, make_data
    from tests.text.test_estimator import TINY, clf, reviews
    from text import LanguageModel

    X, y = make_data(300)
    sliced = TabularClassifier(**{**FAST, "lr": slice(1e-3, 1e-2)}).fit(X, y)
    found = TabularClassifier(**{**FAST, "lr": None}).fit(X, y)  # an LRFinderResult
    texts, labels = reviews(40)
    lm = LanguageModel(
        epochs=1, batch_size=8, bptt=16, min_freq=1, random_state=0, **TINY
    ).fit(texts)
    text = clf(epochs=1, language_model=FrozenEstimator(lm)).fit(texts, labels)
    for est, data in ((sliced, X), (found, X), (text, texts)):
        est.save(tmp_path / "m")
        back = deepfit.load(tmp_path / "m")
        np.testing.assert_allclose(back.predict_proba(data), est.predict_proba(data))
    assert deepfit.load(tmp_path / "m").language_model.estimator.vocab_.itos_ == (
        lm.vocab_.itos_
    )
    found.save(tmp_path / "f")
    assert deepfit.load(tmp_path / "f").lr_find_.suggestion == found.lr_find_.suggestion
