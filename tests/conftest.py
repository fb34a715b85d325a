"""Shared fixtures: a fixed seed for every test and the location of the real data sets."""

from __future__ import annotations

import os
import random
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
