"""Vision tests train tiny models on tiny images, where intra-op threads buy nothing and,
on a shared machine, cost up to thirty-fold (OpenMP workers spin while waiting for a
core). Each test runs single-threaded; the setting is restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
