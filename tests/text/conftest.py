"""Text tests train tiny models: one intra-op thread is faster for them than two, and much
faster on a busy machine (two OpenMP threads contend with every other process)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
