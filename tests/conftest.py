"""Shared fixtures: a fixed seed for every test and the location of the real data sets."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _find_data() -> Path | None:
    for c in (os.environ.get("DEEPFIT_DATA"), ROOT.parent / "shared" / "data"):
        if c and Path(c).is_dir():
            return Path(c)
    return None


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread for the whole suite. The tests train tiny models, where a
    second thread buys nothing, and on a shared machine two OpenMP threads spin while
    waiting for a core: tests ran up to 75 times slower next to another job (1 s vs 79 s
    measured for one tabular test). Session scope, so module-scoped fits and the refits
    that compare with them use the same thread count (float sums differ across counts)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """``$DEEPFIT_DATA`` or ``../shared/data``; tests that need it skip when absent."""
    found = _find_data()
    if found is None:
        pytest.skip("real data not found: set DEEPFIT_DATA or provide ../shared/data")
    return found
