"""Writing files. Every file the library writes (a model, predictions, a checkpoint, an
export) goes to a temporary name in the target's folder and is renamed into place when it
is complete: a failure, or a reader at the same time, never sees a half-written file. A
folder that cannot take the file fails with an error naming the path, before any work
(callers that write during training, ``Checkpoint``, check it before training starts). In
a distributed fit rank 0 alone writes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

import deepfit.distributed as distributed

__all__ = ["atomic_path", "check_not_input", "check_writable", "save_torch"]


def _read_umask() -> int:
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


_UMASK = _read_umask()


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
        if p.exists() and not os.access(p, os.W_OK):
            raise PermissionError(13, "the file is read-only")
    except OSError as err:
        raise OSError(
            f"cannot write {what} to {str(p)!r}: {err.strerror or err}"
        ) from err
    return p


def check_not_input(path: str | Path, inputs: Iterable[str | Path], what: str) -> None:
    """Refuse to write ``what`` to ``path`` when it is one of ``inputs`` (files or
    folders being read) or lies inside an input folder: the write would destroy the
    data, or the next read would take the output for data. ``ValueError`` naming both."""
    out = Path(path).resolve()
    for source in inputs:
        src = Path(source).resolve()
        same = out == src or (
            out.exists() and src.exists() and os.path.samefile(out, src)
        )
        if same or (src.is_dir() and out.is_relative_to(src)):
            raise ValueError(
                f"cannot write {what} to {str(path)!r}: it "
                + ("is" if same else "lies inside")
                + f" the input {str(source)!r}, which is being read; write it elsewhere"
            )


@contextlib.contextmanager
def atomic_path(path: str | Path, what: str = "the file") -> Iterator[Path]:
    """A temporary path beside ``path`` to write ``what`` to; renamed onto ``path``
    when the block ends, removed if it raises. The folder is checked first
    (:func:`check_writable`)."""
    p = check_writable(path, what)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".part")
    os.close(fd)
    # mkstemp makes the file private (0600); the file in place gets the mode a plain
    # open() would give it: the replaced file's, or 0666 less the umask.
    mode = p.stat().st_mode & 0o777 if p.exists() else 0o666 & ~_UMASK
    os.chmod(tmp, mode)
    try:
        yield Path(tmp)
        os.replace(tmp, p)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_torch(obj: Any, path: str | Path, what: str = "the file") -> None:
    """``torch.save(obj, path)`` through :func:`atomic_path`, its errors naming ``path``
    (torch's name neither the path nor, for a folder, the cause in plain words)."""
    if not distributed.is_main_process():  # rank 0 alone writes
        return
    with atomic_path(path, what) as tmp:
        try:
            torch.save(obj, tmp)
        except (OSError, RuntimeError) as err:
            raise OSError(f"cannot write {what} to {str(path)!r}: {err}") from err
