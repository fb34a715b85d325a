"""Data-parallel training on ``torch.distributed``, with no change to the user's ``fit``.

Under ``torchrun --nproc_per_node=N script.py`` (or any launcher that sets ``RANK``,
``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``) every estimator's ``fit`` joins the
default process group (initialising it when the script has not: gloo on CPU, NCCL on
CUDA, each rank on its ``LOCAL_RANK`` GPU) and trains one model:

- every rank builds the same batches (the seed is rank 0's) and keeps its share of the
  rows of each one, so ``batch_size`` is the batch over all ranks and N processes take
  the steps one process takes;
- ``DistributedDataParallel`` averages the gradients; batch normalisation uses the
  statistics of the whole batch (:func:`sync_batchnorm`: torch's ``SyncBatchNorm`` runs
  on GPUs only), so a fit on N processes follows a one-process fit step for step;
- losses that decide something (the epoch's training loss, the finder's curve) are
  averaged over the ranks, and every rank validates on the whole validation set, so
  early stopping, the finder's rate and ``history_`` are the same everywhere;
- rank 0 alone prints progress and writes files.

A rank that raises ends the others: gloo reports the lost peer, and every collective
operation has a timeout (``DEEPFIT_DIST_TIMEOUT`` seconds, default 600) for a peer that
hangs instead. A rank that never starts is reported after ``DEEPFIT_RENDEZVOUS_TIMEOUT``
seconds (default 60), naming it and the variables read. Validation and prediction run
whole on every rank (each gets the same answer); image files are decoded whole on every
rank, which keeps its share.

Recipes (the script is the same in each: it builds ``X, y`` and calls ``est.fit(X, y)``):

- one machine, N processes: ``torchrun --nproc_per_node=N train.py``; on CPUs give each
  process its share of the cores (``OMP_NUM_THREADS``);
- several machines: on each, ``torchrun --nnodes=M --nproc_per_node=N
  --rdzv_backend=c10d --rdzv_endpoint=HOST:29400 --rdzv_id=JOB train.py`` (torchrun's
  rendezvous, elastic restarts with ``--max_restarts``);
- Ray Train: ``TorchTrainer(train_func, scaling_config=ScalingConfig(num_workers=N))``
  where ``train_func`` is the script's body: Ray starts the process group, which ``fit``
  joins;
- Spark: ``TorchDistributor(num_processes=N, local_mode=False).run(train_func)``, which
  sets the same environment variables as torchrun.

In the script, :func:`is_main_process` guards what one process should do (save the
model, print a score) and :func:`barrier` waits for the others.
"""

from __future__ import annotations

import contextlib
import datetime
import inspect
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = [
    "barrier",
    "broadcast_object",
    "init_from_env",
    "is_active",
    "is_main_process",
    "rank",
    "rendezvous_timeout",
    "shard_batches",
    "sparse_gradients_ok",
    "sync_batchnorm",
    "world_size",
]


def is_active() -> bool:
    """Whether a process group of more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Processes in the default group (1 outside one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's rank (0 outside a group)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main_process() -> bool:
    """True on rank 0 (and outside a group): the process that prints and writes."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing outside a group)."""
    if is_active():
        dist.barrier()


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", rank()))


def timeout() -> datetime.timedelta:
    return datetime.timedelta(
        seconds=float(os.environ.get("DEEPFIT_DIST_TIMEOUT", 600))
    )


def rendezvous_timeout() -> float:
    """Seconds the ranks wait for each other to join: ``DEEPFIT_RENDEZVOUS_TIMEOUT``,
    default 60 (torch's own default, 10 minutes, looks like a hang)."""
    return float(os.environ.get("DEEPFIT_RENDEZVOUS_TIMEOUT", 60))


_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def init_from_env(device: torch.device, wait: float | None = None) -> bool:
    """Join the launcher's process group unless the script already has: gloo for a CPU
    ``device``, NCCL for CUDA. Returns whether training is distributed.

    The ranks meet at ``MASTER_ADDR:MASTER_PORT``; each waits at most ``wait`` seconds
    (default :func:`rendezvous_timeout`) for all ``WORLD_SIZE`` of them, then raises a
    ``RuntimeError`` naming the ranks that never came and the variables it read.
    Under torchrun, whose agent has already gathered the ranks, its store is used."""
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return dist.get_world_size() > 1
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    if device.type == "cuda":
        torch.cuda.set_device(local_rank())
    backend = "nccl" if device.type == "cuda" else "gloo"
    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True":
        dist.init_process_group(backend, timeout=timeout())
    else:
        r, world, store = _rendezvous(rendezvous_timeout() if wait is None else wait)
        dist.init_process_group(
            backend, store=store, rank=r, world_size=world, timeout=timeout()
        )
    return dist.get_world_size() > 1


def _rendezvous(wait: float) -> tuple[int, int, dist.Store]:
    """This rank, the world size and a store every rank has joined (rank 0 hosts it),
    within ``wait`` seconds."""
    read = {k: os.environ.get(k) for k in _ENV}
    where = ", ".join(f"{k}={v}" for k, v in read.items())
    absent = [k for k, v in read.items() if not v]
    if absent:
        raise RuntimeError(
            f"a distributed fit needs {absent} set besides the others ({where})"
        )
    try:
        r, world, port = (int(read[k]) for k in ("RANK", "WORLD_SIZE", "MASTER_PORT"))
    except ValueError as err:
        raise RuntimeError(
            f"RANK, WORLD_SIZE and MASTER_PORT must be integers ({where})"
        ) from err
    if not 0 <= r < world:
        raise RuntimeError(f"RANK must be in [0, WORLD_SIZE) ({where})")
    try:
        store = dist.TCPStore(
            read["MASTER_ADDR"],
            port,
            world,
            is_master=r == 0,
            timeout=datetime.timedelta(seconds=wait),
            wait_for_workers=False,
        )
    except (RuntimeError, OSError) as err:  # DistNetworkError, DistStoreError
        raise RuntimeError(
            f"rank {r} could not "
            + ("open" if r == 0 else "reach rank 0's")
            + f" rendezvous at {read['MASTER_ADDR']}:{port} within {wait:g} s "
            f"({where}): {err}"
        ) from err
    keys = [f"deepfit/joined/{k}" for k in range(world)]
    store.set(keys[r], "1")
    deadline = time.monotonic() + wait
    while not store.check(keys):
        if time.monotonic() > deadline:
            missing = [k for k in range(world) if not store.check([keys[k]])]
            raise RuntimeError(
                f"rank(s) {missing} of {world} never joined within {wait:g} s "
                f"(DEEPFIT_RENDEZVOUS_TIMEOUT); this is rank {r}, which read {where}. "
                "Start one process per rank, each with its own RANK"
            )
        time.sleep(0.05)
    return r, world, store


def sparse_gradients_ok() -> bool:
    """Whether the backend reduces sparse gradients (gloo does, NCCL does not: sparse
    embeddings then train with dense gradients)."""
    return not is_active() or dist.get_backend() == "gloo"


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself outside a group)."""
    if not is_active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """``t`` summed over the ranks (a new tensor)."""
    t = t.detach().clone()
    if is_active():
        dist.all_reduce(t)
    return t


def broadcast_module(module: nn.Module) -> None:
    """Rank 0's weights and buffers on every rank."""
    if is_active():
        for t in module.state_dict().values():
            dist.broadcast(t, src=0)


# ---- batches -----------------------------------------------------------------------


def _rows(obj: Any) -> int | None:
    """Rows of the first tensor in a (nested) batch."""
    if isinstance(obj, torch.Tensor):
        return len(obj) if obj.dim() else None
    if isinstance(obj, (tuple, list)):
        for o in obj:
            n = _rows(o)
            if n is not None:
                return n
    return None


def _part(obj: Any, lo: int, hi: int, m: int) -> Any:
    """Rows ``lo:hi`` of every tensor with ``m`` rows (or a multiple of ``m``: a target
    flattened from ``(m, seq_len)`` keeps the rows of its inputs)."""
    if isinstance(obj, torch.Tensor) and obj.dim() and len(obj) % m == 0:
        c = len(obj) // m
        return obj[lo * c : hi * c]
    if isinstance(obj, (tuple, list)):
        return type(obj)(_part(o, lo, hi, m) for o in obj)
    return obj


class SplitBatches:
    """This rank's share of each batch of ``batches``: rows ``lo:hi`` of an even split
    (batches with fewer rows than ranks are skipped, on every rank alike)."""

    def __init__(self, batches: Iterable, rank: int, world: int) -> None:
        self.batches, self.rank, self.world = batches, rank, world

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[Any]:
        r, w = self.rank, self.world
        for batch in self.batches:
            m = _rows(batch)
            if m is None or m < w:
                continue
            yield _part(batch, (r * m) // w, ((r + 1) * m) // w, m)


def shard_batches(batches: Iterable) -> Iterable:
    """``batches`` as this rank reads them: its own rows of every batch (all of them
    outside a group). Batches that know how to gather only their share
    (``TensorBatches``) do so; others are split after they are made."""
    if not is_active():
        return batches
    own = getattr(batches, "shard", None)
    if own is not None:
        return own(rank(), world_size())
    return SplitBatches(batches, rank(), world_size())


# ---- batch normalisation over all ranks ----------------------------------------------


class _SyncBatchNormMixin:
    """Batch statistics over every rank's rows in training (two all-reduces, through
    ``torch.distributed.nn`` so gradients flow to every rank's inputs); plain batch
    normalisation otherwise. Mixed into a BatchNorm layer's own class, so the layer
    (and the parameters the optimizer holds) stay the same objects."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_active()):
            return super().forward(x)
        with warnings.catch_warnings():  # its successor is private; this one works
            warnings.simplefilter("ignore", FutureWarning)
            from torch.distributed.nn.functional import all_reduce

        dims = [0, *range(2, x.dim())]
        total = all_reduce(
            torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])])
        )
        mean, count = total[:-1] / total[-1], total[-1]
        shape = (1, -1, *[1] * (x.dim() - 2))
        centred = x - mean.view(shape)
        var = all_reduce((centred * centred).sum(dims)) / count
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * count / (count - 1).clamp_min(1)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * unbiased.detach())
        out = centred * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out


_SYNC_CLASSES: dict[type, type] = {}


@contextlib.contextmanager
def sync_batchnorm(module: nn.Module) -> Iterator[None]:
    """Within the block, every batch-norm layer of ``module`` normalises with the
    statistics of all ranks' rows (outside a group: nothing changes)."""
    if not is_active():
        yield
        return
    swapped = []
    for m in module.modules():
        cls = type(m)
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(
            m, _SyncBatchNormMixin
        ):
            if cls not in _SYNC_CLASSES:
                _SYNC_CLASSES[cls] = type(
                    f"Sync{cls.__name__}", (_SyncBatchNormMixin, cls), {}
                )
            m.__class__ = _SYNC_CLASSES[cls]
            swapped.append((m, cls))
    try:
        yield
    finally:
        for m, cls in swapped:
            m.__class__ = cls


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence what ``DistributedDataParallel`` and the autograd-aware all-reduce say on
    every fit and is no news here."""
    if not is_active():
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*distributed.nn.functional")
        warnings.filterwarnings("ignore", message="Grad strides do not match")
        yield


def data_parallel(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` wrapped in ``DistributedDataParallel`` for this fit (its trainable
    parameters as they are now: a new stage of gradual unfreezing wraps again)."""
    from torch.nn.parallel import DistributedDataParallel

    # No buffer broadcast before each forward: batch norm's statistics are already the
    # same on every rank (torch 2.14 renamed the flag).
    params = inspect.signature(DistributedDataParallel).parameters
    no_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in params
        else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(
        module,
        device_ids=[device.index] if device.type == "cuda" else None,
        **no_sync,
        # Every trainable parameter of deepfit's models gets a gradient at every step
        # (checked for each estimator); frozen ones are left out when DDP wraps.
        find_unused_parameters=False,
    )
