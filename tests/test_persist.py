"""``est.save(path)`` / ``deepfit.load(path)``: every estimator round trips, and a file
that is not a deepfit model (a pickle with code in it, a tampered description) is
refused without running anything."""

from __future__ import annotations

import hashlib
import json
import pickle
import re

import numpy as np
import pandas as pd
import pytest
import torch

import deepfit
from deepfit.persist import FORMAT, VERSION, _digest, _Writer
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
    """A file with ``meta`` and ``tensors`` and checksums that match them: what a
    tampering hand (not a flipped bit) would write."""
    tensors = tensors or {}
    meta = {**meta, "checksums": {k: _digest(t) for k, t in tensors.items()}}
    text = json.dumps(meta)
    digest = hashlib.sha256(text.encode()).hexdigest()
    torch.save({"meta": text, "meta_sha256": digest, **tensors}, path)


def _read(path):
    payload = torch.load(path, weights_only=True)
    meta = json.loads(payload.pop("meta"))
    payload.pop("meta_sha256")
    meta.pop("checksums")
    return meta, payload


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A fitted classifier, its file, and data to predict."""
    from tabular import TabularClassifier
    from tests.tabular.test_estimator import FAST, make_data

    X, y = make_data(300)
    est = TabularClassifier(**FAST).fit(X, y)
    path = tmp_path_factory.mktemp("persist") / "clf.deepfit"
    est.save(path)
    return est, path, X


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


def test_a_class_a_deepfit_module_merely_imports_is_refused(tmp_path, fitted):
    """The allow-list is exact: the estimators and the value types the format writes,
    named where they are defined. scikit-learn's Pipeline is importable as
    ``text.demo.Pipeline``, sklearn's BaseEstimator as ``deepfit.estimator.BaseEstimator``;
    deepfit's own Checkpoint callback is no value a model file holds."""
    meta, tensors = _read(fitted[1])
    for name in (
        "text.demo.Pipeline",
        "deepfit.estimator.BaseEstimator",
        "deepfit.callbacks.Checkpoint",
        "deepfit.files.Path",
    ):
        _write(tmp_path / "m", {**meta, "class": name}, tensors)
        with pytest.raises(ValueError, match=f"{name}.*never loads"):
            deepfit.load(tmp_path / "m")
        nested = [*meta["state"], ["extra_", {"object": name, "state": []}]]
        _write(tmp_path / "m", {**meta, "state": nested}, tensors)
        with pytest.raises(ValueError, match="never loads"):
            deepfit.load(tmp_path / "m")


def test_a_flipped_bit_or_an_edited_description_is_refused(tmp_path, fitted):
    est, path, X = fitted
    payload = torch.load(path, weights_only=True)
    key = next(k for k, v in payload.items() if k.startswith("t") and v.numel() > 10)
    flipped = payload[key].clone()
    flipped.view(torch.int32).view(-1)[3] ^= 1 << 20  # one bit of one weight
    torch.save({**payload, key: flipped}, tmp_path / "bit")
    with pytest.raises(ValueError, match=f"bit: tensor '{key}' does not match"):
        deepfit.load(tmp_path / "bit")
    edited = re.sub(r'\["epochs", (\d+)\]', r'["epochs", 1\1]', payload["meta"])
    assert edited != payload["meta"]
    torch.save({**payload, "meta": edited}, tmp_path / "desc")
    with pytest.raises(ValueError, match="desc: the description does not match"):
        deepfit.load(tmp_path / "desc")
    rest = {k: v for k, v in payload.items() if k != key}
    torch.save(rest, tmp_path / "short")
    with pytest.raises(ValueError, match="tensors are not the ones"):
        deepfit.load(tmp_path / "short")
    # The untouched file still loads and predicts as the estimator does.
    np.testing.assert_allclose(
        deepfit.load(path).predict_proba(X), est.predict_proba(X), atol=1e-6
    )


def test_a_description_that_does_not_fit_its_class_is_refused(tmp_path, fitted):
    """Checked before anything is built, naming the file and the field."""
    from tabular import TabularRegressor

    meta, tensors = _read(fitted[1])
    fields = dict(meta["state"])

    def write(state, cls=meta["class"]):
        _write(tmp_path / "m", {**meta, "class": cls, "state": state}, tensors)

    renamed = [["layer" if k == "layers" else k, v] for k, v in meta["state"]]
    write(renamed)
    with pytest.raises(ValueError, match=r"m: .*missing field\(s\) \['layers'\]"):
        deepfit.load(tmp_path / "m")
    write([[k, v] for k, v in meta["state"] if k != "classes_"])
    with pytest.raises(ValueError, match=r"missing fitted attribute\(s\) \['classes_'"):
        deepfit.load(tmp_path / "m")
    write([[k, -3 if k == "epochs" else v] for k, v in meta["state"]])
    with pytest.raises(ValueError, match="m: field epochs must be"):
        deepfit.load(tmp_path / "m")
    # A classifier's description under the regressor's name (the regressor's own
    # parameters given their defaults, so only the fitted attributes tell).
    defaults = TabularRegressor().get_params()
    write(
        [[k, v] for k, v in meta["state"] if k in defaults or k.endswith("_")]
        + [[p, _Writer().encode(v, p)] for p, v in defaults.items() if p not in fields],
        f"{TabularRegressor.__module__}.TabularRegressor",
    )
    with pytest.raises(ValueError, match=r"m: .*TabularRegressor.*y_mean_"):
        deepfit.load(tmp_path / "m")


def test_a_version_1_file_without_checksums_still_loads(tmp_path, fitted):
    est, path, X = fitted
    meta, tensors = _read(path)
    torch.save({"meta": json.dumps({**meta, "version": 1}), **tensors}, tmp_path / "v1")
    back = deepfit.load(tmp_path / "v1")
    np.testing.assert_allclose(back.predict_proba(X), est.predict_proba(X), atol=1e-6)


def test_save_replaces_a_file_whole_or_not_at_all(tmp_path, fitted, monkeypatch):
    """The model goes to a temporary name and is renamed into place: a write that
    fails leaves the previous file as it was, and no temporary file behind."""
    est = fitted[0]
    target = tmp_path / "model.deepfit"
    est.save(target)
    before = target.read_bytes()

    def broken(obj, f, *args, **kwargs):
        with open(f, "wb") as out:
            out.write(b"half a fi")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError, match="disk full"):
        est.save(target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.deepfit"]


def test_time_of_day_and_date_columns_round_trip(tmp_path):
    """datetime.time and datetime.date values (categories of an object column) were
    written as time zones, and loading raised ZoneInfoNotFoundError."""
    import datetime

    from tabular import TabularRegressor

    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {
            "at": [datetime.time(h) for h in rng.integers(0, 4, n)],
            "on": [datetime.date(2024, 1, d) for d in rng.integers(1, 5, n)],
            "x": rng.normal(size=n),
        }
    )
    y = X["x"] + [t.hour for t in X["at"]]
    est = TabularRegressor(epochs=2, verbose=0, random_state=0, n_members=1).fit(X, y)
    est.save(tmp_path / "m")
    back = deepfit.load(tmp_path / "m")
    assert list(back.preprocessor_.categories_["at"]) == sorted(set(X["at"]))
    np.testing.assert_allclose(back.predict(X), est.predict(X), atol=1e-6)


def test_a_file_naming_a_class_where_it_was_defined_before_it_moved_loads(tmp_path):
    """TabularRegressor moved from tabular.estimator to tabular.regressor: files
    written before name the old place."""
    from tabular import TabularRegressor
    from tests.tabular.test_estimator import FAST, make_data

    X, _ = make_data(200)
    est = TabularRegressor(**FAST).fit(X, X["x"] * 2)
    est.save(tmp_path / "m")
    meta, tensors = _read(tmp_path / "m")
    assert meta["class"] == "tabular.regressor.TabularRegressor"
    _write(
        tmp_path / "old",
        {**meta, "class": "tabular.estimator.TabularRegressor"},
        tensors,
    )
    back = deepfit.load(tmp_path / "old")
    assert type(back) is TabularRegressor
    np.testing.assert_allclose(back.predict(X), est.predict(X), atol=1e-6)
