from __future__ import annotations

import subprocess
import sys

import pytest

from tabular import TabularClassifier
from tabular.demo import load_adult, make_adult_like


def test_adult_slice_learns_with_defaults(data_dir):
    X, y = load_adult(data_dir / "adult", "data")
    X_test, y_test = load_adult(data_dir / "adult", "test")
    assert len(X) == 32_561 and len(X_test) == 16_281
    assert y.mean() == pytest.approx(7841 / 32561)
    assert X["workclass"].isna().sum() > 0  # "?" read as missing
    clf = TabularClassifier(epochs=2, random_state=0, verbose=0).fit(X[:6000], y[:6000])
    # Majority class: 0.76. The full benchmark reaches ~0.87.
    assert clf.score(X_test[:3000], y_test[:3000]) > 0.83
    assert "workclass_emb0" in clf.transform(X_test[:5]).columns


def test_generated_stand_in_has_signal():
    X, y = make_adult_like(3000)
    clf = TabularClassifier(epochs=3, random_state=0, verbose=0).fit(X, y)
    assert clf.score(X, y) > 0.7


@pytest.mark.slow
def test_demo_step_runs():
    res = subprocess.run(
        [sys.executable, "-m", "deepfit", "demo", "--only", "tabular"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "test accuracy" in res.stdout
