"""Writing torch files: a folder that cannot take the file fails with an error naming the
path, and callers that write during training (``Checkpoint``) check it before training
starts. In a distributed fit rank 0 alone writes."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch

import deepfit.distributed as distributed

__all__ = ["check_writable", "save_torch"]


def check_writable(path: str | Path, what: str = "the file") -> Path:
    """``path`` as a ``Path`` once a file can be written there: not a folder, its folder
    created if needed and accepting a new file. ``OSError`` naming ``path`` (and
    ``what``) otherwise."""
    p = Path(path)
    if not distributed.is_main_process():  # rank 0 alone writes
        return p
    if p.is_dir():
        raise IsADirectoryError(
            f"cannot write {what} to {str(p)!r}: it is a folder; give a file name"
        )
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=p.parent, prefix=f".{p.name}."):
            pass
    except OSError as err:
        raise OSError(
            f"cannot write {what} to {str(p)!r}: {err.strerror or err}"
        ) from err
    return p


def save_torch(obj: Any, path: str | Path, what: str = "the file") -> None:
    """``torch.save(obj, path)``, its errors naming ``path`` (torch's name neither the
    path nor, for a folder, the cause in plain words)."""
    p = check_writable(path, what)
    if not distributed.is_main_process():  # rank 0 alone writes
        return
    try:
        torch.save(obj, p)
    except (OSError, RuntimeError) as err:
        raise OSError(f"cannot write {what} to {str(p)!r}: {err}") from err
