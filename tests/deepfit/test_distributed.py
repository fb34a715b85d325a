"""Data-parallel fits on 2 processes (gloo, one thread each), launched as a launcher
would: each rank a subprocess with ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set, running ``tests/deepfit/dist_worker.py`` with an unchanged ``fit``;
on the first rows of Adult and ML-100K u1, or generated stand-ins where the real data is
absent (so the multi-process path is always tested)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, _find_data


@pytest.fixture
def data() -> str:
    found = _find_data()
    return "-" if found is None else str(found)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(
    case: str,
    data: str,
    out: Path,
    world: int = 2,
    timeout: float = 240,
    device: str = "cpu",
    ranks: list[int] | None = None,
    **extra_env: str,
):
    """Run ``world`` ranks of ``case`` (or only ``ranks`` of them); their return codes
    and standard errors."""
    port = free_port()
    procs = []
    for rank in range(world) if ranks is None else ranks:
        env = {
            **os.environ,
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(world),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "DEEPFIT_DIST_TIMEOUT": "60",
            "DEEPFIT_TEST_DEVICE": device,
            "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(ROOT),
            **extra_env,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.deepfit.dist_worker", case, data, out],
                cwd=ROOT,
                env=env,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for p in procs:
            _, err = p.communicate(timeout=timeout)
            results.append((p.returncode, err))
    finally:
        for p in procs:
            p.kill()
    return results


def one_process(case: str, data: str, out: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    subprocess.run(
        [sys.executable, "-m", "tests.deepfit.dist_worker", case, data, out],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=240,
    )
    return torch.load(out / "rank0.pt", weights_only=False)


@pytest.mark.parametrize("case", ["tabular", "collab"])
def test_two_ranks_train_one_model_equal_to_one_process(case, data, tmp_path):
    multi, single = tmp_path / "multi", tmp_path / "single"
    multi.mkdir()
    single.mkdir()
    results = launch(case, data, multi)
    for code, err in results:
        assert code == 0, err[-3000:]
    r0, r1 = (torch.load(multi / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    # One fitted estimator on every rank: the same weights, rate, history.
    assert r0["state"].keys() == r1["state"].keys()
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["lr"] == r1["lr"] and r0["history"] == r1["history"]
    np.testing.assert_array_equal(r0["pred"], r1["pred"])
    # The same fit as one process over the same global batches: DDP averages the two
    # halves' gradients and batch norm uses both halves' statistics. Float sums in
    # another order are the only difference, which Adam's normalised steps let grow a
    # little over a few epochs (a bias before a batch norm takes noise-sized steps).
    ref = one_process(case, data, single)
    np.testing.assert_allclose(r0["pred"], ref["pred"], atol=5e-3)
    loss = "train_loss"
    np.testing.assert_allclose(
        list(r0["history"][loss].values()),
        list(ref["history"][loss].values()),
        rtol=1e-3,
    )


def test_the_finder_chooses_one_rate_for_every_rank(data, tmp_path):
    results = launch("finder", data, tmp_path)
    for code, err in results:
        assert code == 0, err[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["sweep"] == r1["sweep"] and r0["lr"] == r1["lr"]
    assert r0["history"] == r1["history"]
    # The curve is one process's (the mean of the two halves' losses) until the rate
    # gets high enough for float noise to matter.
    ref = one_process("finder", data, tmp_path)
    np.testing.assert_allclose(r0["sweep"][:50], ref["sweep"][:50], rtol=1e-4)


def test_ranks_streaming_their_own_row_groups_train_one_model(data, tmp_path):
    for code, err in launch("stream", data, tmp_path):
        assert code == 0, err[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
    assert r0["history"] == r1["history"]  # the losses of every rank's rows
    np.testing.assert_array_equal(r0["pred"], r1["pred"])


def test_a_rank_that_raises_ends_every_rank(data, tmp_path):
    results = launch("fail", data, tmp_path, timeout=180)
    (code0, _), (code1, err1) = results
    assert code1 != 0 and "missing" in err1  # the bad input, named
    assert code0 != 0, "rank 0 should fail when its peer is gone, not hang"


def test_a_rank_that_never_starts_is_named_within_the_rendezvous_timeout(
    data, tmp_path
):
    """Rank 0 alone: it used to wait torch's 10 minutes, silently."""
    start = time.monotonic()
    ((code, err),) = launch(
        "tabular", data, tmp_path, ranks=[0], DEEPFIT_RENDEZVOUS_TIMEOUT="2"
    )
    assert code != 0
    assert "rank(s) [1] of 2 never joined within 2 s" in err
    assert "WORLD_SIZE=2" in err and "MASTER_ADDR=127.0.0.1" in err
    assert time.monotonic() - start < 60


@pytest.mark.gpu
@pytest.mark.parametrize("case", ["tabular", "collab"])
def test_two_gpus_on_nccl(case, data, tmp_path):
    """The CUDA path: NCCL, one GPU per rank, sparse embeddings trained dense."""
    if torch.cuda.device_count() < 2:
        pytest.skip("needs 2 CUDA devices (NCCL takes one GPU per rank)")
    for code, err in launch(case, data, tmp_path, device="cuda"):
        assert code == 0, err[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for k in r0["state"]:
        assert torch.equal(r0["state"][k], r1["state"][k]), k
