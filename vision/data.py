"""Images in: file paths (a list, a Series, a DataFrame column, a class-per-folder tree)
or arrays held in memory, decoded to RGB tensors and batched for the learner.

Files are decoded by Pillow in DataLoader worker processes, every epoch (JPEGs at a
reduced scale when the training size is small, which Pillow's ``draft`` mode makes far
cheaper). Arrays are converted once to ``(N, 3, H, W)`` tensors; at each training size
they are resized once, and batches are cut from them without reading anything again.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageDataset",
    "Images",
    "as_images",
    "check_readable",
    "default_workers",
    "image_folder",
    "load_images",
    "make_loader",
    "read_image",
    "to_rgb",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def image_folder(
    root: str | Path, extensions: Sequence[str] = IMAGE_EXTENSIONS
) -> tuple[list[str], list[str]]:
    """Paths and labels of a folder laid out ``root/<class>/<file>``.

    Returns
    -------
    paths : list of str
        Image files (by extension, case-insensitive), sorted by class then name.
    labels : list of str
        The name of each file's class folder.

    Example
    -------
    >>> paths, labels = image_folder("data/mnist-tiny/train")  # doctest: +SKIP
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    exts = {e.lower() for e in extensions}
    paths, labels = [], []
    for cls in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(cls.iterdir()):
            if f.is_file() and f.suffix.lower() in exts:
                paths.append(str(f))
                labels.append(cls.name)
    if not paths:
        raise ValueError(
            f"no images found in {str(root)!r}: expected root/<class>/<file> with "
            f"extensions {sorted(exts)}"
        )
    return paths, labels


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    # Transparent pixels often hold arbitrary (usually black) colour: show what a viewer
    # shows, the image over a white page.
    a = alpha.astype(np.float32)[..., None] / 255.0
    out = rgb.astype(np.float32) * a + 255.0 * (1.0 - a)
    return np.rint(out).astype(np.uint8)


def to_rgb(img: Any) -> np.ndarray:
    """A Pillow image as an ``(H, W, 3)`` uint8 RGB array.

    Grey images are repeated over the three channels; palette images go through their
    palette (and transparency); CMYK, YCbCr, LAB and HSV are converted by Pillow;
    transparent images (RGBA, LA, PA) are composited over white; 16-bit and float greys
    are scaled to 8 bits.
    """

    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "La", "RGBa"):
        img = img.convert("RGBA" if mode != "La" else "LA")
    mode = img.mode
    if mode in ("I", "F") or mode.startswith("I;16"):
        a = np.asarray(img, dtype=np.float64)
        hi = float(a.max()) if a.size else 0.0
        if mode == "F":
            if hi <= 1:
                a = a * 255  # float greys in [0, 1]
        elif mode != "I" or hi <= 65535:
            # 16-bit greys (Pillow reads 16-bit PNGs as "I" or "I;16"): scaled by the
            # bit depth, never by the image's own maximum, so a dark image stays dark.
            a = a * (255 / 65535)
        else:
            a = a * (255 / hi)  # 32-bit integers beyond 16 bits: their range
        grey = np.clip(np.rint(a), 0, 255)
        return np.repeat(grey.astype(np.uint8)[..., None], 3, axis=2)
    if mode == "RGBA":
        a = np.asarray(img)
        return _composite_on_white(a[..., :3], a[..., 3])
    if mode == "LA":
        a = np.asarray(img)
        grey = _composite_on_white(a[..., :1], a[..., 1])
        return np.repeat(grey, 3, axis=2)
    if mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.array(img, dtype=np.uint8)


def read_image(path: str | Path, min_size: int | None = None) -> torch.Tensor:
    """Decode an image file to a ``(3, H, W)`` uint8 RGB tensor (see :func:`to_rgb`),
    upright according to its EXIF orientation.

    ``min_size`` lets JPEG decoding skip detail: the image is decoded at the smallest of
    1/2, 1/4 or 1/8 scale whose sides are still at least ``min_size``.
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            if min_size is not None and img.format == "JPEG":
                img.draft(None, (min_size, min_size))
            img = ImageOps.exif_transpose(img)
            arr = to_rgb(img)
    except FileNotFoundError:
        raise FileNotFoundError(f"image file not found: {str(path)!r}") from None
    except Exception as err:
        raise ValueError(f"cannot read image {str(path)!r}: {err}") from err
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _unreadable(path: str, decode: bool) -> str | None:
    """Why ``path`` cannot be read (``None`` when it can)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            if decode:
                if img.format == "JPEG":
                    # The smallest scale still reads every byte of the file: a
                    # truncated one fails here, at about a third of a full decode.
                    img.draft(None, (1, 1))
                img.load()
    except Exception as err:
        return f"{path!r} ({type(err).__name__}: {err})"
    return None


def check_readable(paths: Sequence[str], decode: bool = True) -> None:
    """Fail on a missing, undecodable or truncated file before any training.

    With ``decode`` each file is decoded once (JPEGs at 1/8 scale; about 0.5 ms for a
    500x375 JPEG), on :func:`default_workers` threads, since a header can be intact in a
    file cut short; without it only headers are read (prediction, where
    :func:`read_image` names a bad file anyway)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = list(paths)
    with ThreadPoolExecutor(default_workers() if decode else 1) as pool:
        bad = [r for r in pool.map(_unreadable, paths, [decode] * len(paths)) if r]
    if bad:
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            f"cannot read {len(bad)} image file(s): " + "; ".join(bad[:5]) + more
        )


def _array_to_tensor(X: Any) -> torch.Tensor:
    """``(N, H, W[, C])`` images (C in 1..4; uint8 0-255, other integers in 0-255, or
    float in [0, 1]) as an ``(N, 3, H, W)`` tensor: uint8, or float32 for float input.
    A 3-D array whose last side is 3 or 4 is refused as ambiguous (one colour image, or
    grey images that narrow?)."""
    if isinstance(X, torch.Tensor):
        t = X.detach().cpu()
    else:
        a = np.asarray(X)
        if a.dtype.kind in "ui" and a.dtype != np.uint8:  # torch lacks ops on uint16/32
            a = a.astype(np.int64)
        # a copy where the strides are negative or odd (a flipped view, say)
        t = torch.from_numpy(np.ascontiguousarray(a))
    if t.dim() == 3:
        if t.shape[-1] in (3, 4):
            raise ValueError(
                f"X has shape {tuple(t.shape)}: one {t.shape[-1]}-channel image, or "
                f"{t.shape[0]} grey images {t.shape[-1]} pixels wide? Pass X[None] for "
                "one image, X[..., None] for grey images"
            )
        t = t.unsqueeze(-1)
    if t.dim() != 4 or t.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"image arrays must have shape (N, H, W) or (N, H, W, C) with C in 1..4 "
            f"(channels last), got {tuple(t.shape)}"
            + (
                "; for channels-first data use np.moveaxis(X, 1, -1)"
                if t.dim() == 4 and t.shape[1] in (1, 3, 4)
                else ""
            )
        )
    if len(t) == 0:
        raise ValueError("got an empty image array (0 images)")
    if t.dtype == torch.bool or t.is_complex():
        raise ValueError(f"image arrays must be uint8 or float, got {t.dtype}")
    if t.is_floating_point():
        t = t.float()
        lo, hi = float(t.min()), float(t.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ValueError("the image array holds NaN or infinite values")
        if lo < 0 or hi > 1:
            raise ValueError(
                f"float images must lie in [0, 1], got values in [{lo:g}, {hi:g}]; "
                "divide 0-255 data by 255, or pass uint8"
            )
    elif t.dtype != torch.uint8:
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi > 255:
            dtype = t.dtype if isinstance(X, torch.Tensor) else np.asarray(X).dtype
            raise ValueError(
                f"integer images must lie in 0-255, got values in [{lo}, {hi}] "
                f"({dtype}); scale them to uint8 or to floats in [0, 1]"
            )
        t = t.to(torch.uint8)
    c = t.shape[-1]
    if c in (2, 4):  # grey + alpha, RGB + alpha: over white, as for files
        a = t[..., -1:].float() / (255.0 if t.dtype == torch.uint8 else 1.0)
        white = 255.0 if t.dtype == torch.uint8 else 1.0
        rgb = t[..., :-1].float() * a + white * (1 - a)
        t = rgb.round().to(torch.uint8) if t.dtype == torch.uint8 else rgb
        c -= 1
    if c == 1:
        t = t.expand(*t.shape[:-1], 3)
    return t.permute(0, 3, 1, 2).contiguous()


class Images:
    """A set of images: file paths, or an ``(N, 3, H, W)`` tensor in memory."""

    def __init__(
        self, paths: list[str] | None = None, tensor: torch.Tensor | None = None
    ) -> None:
        self.paths, self.tensor = paths, tensor

    @property
    def in_memory(self) -> bool:
        return self.tensor is not None

    def __len__(self) -> int:
        return len(self.tensor) if self.tensor is not None else len(self.paths)

    def subset(self, idx: np.ndarray) -> Images:
        if self.tensor is not None:
            return Images(tensor=self.tensor[torch.as_tensor(idx, dtype=torch.long)])
        return Images(paths=[self.paths[i] for i in idx])

    def get(self, i: int, min_size: int | None = None) -> torch.Tensor:
        if self.tensor is not None:
            return self.tensor[i]
        return read_image(self.paths[i], min_size)


def as_images(
    X: Any, path_col: str | None = None, root: str | Path | None = None
) -> Images:
    """``X`` as :class:`Images`: a list, tuple, Series or 1-d array of paths; a DataFrame
    and its column of paths (``path_col``; not needed when it has one column); or an
    array / tensor of images ``(N, H, W[, C])``. Relative paths are read from ``root``
    when given. Arrays are copied, never modified."""
    if isinstance(X, pd.DataFrame):
        if path_col is None:
            if X.shape[1] != 1:
                raise ValueError(
                    f"X is a DataFrame with columns {list(X.columns)}; set path_col to "
                    "the column that holds the image paths"
                )
            path_col = X.columns[0]
        if path_col not in X.columns:
            raise ValueError(
                f"path_col {path_col!r} is not a column of X (columns: {list(X.columns)})"
            )
        X = X[path_col]
    if isinstance(X, (str, Path)):
        raise TypeError(
            f"X is a single path ({str(X)!r}); pass a list of image paths (for a folder "
            "of class folders, paths, labels = vision.image_folder(root))"
        )
    if isinstance(X, torch.Tensor) or (
        isinstance(X, np.ndarray) and X.dtype.kind in "biuf"
    ):
        return Images(tensor=_array_to_tensor(X))
    if isinstance(X, (pd.Series, np.ndarray, list, tuple)):
        values = list(X)
        if not values:
            raise ValueError("X holds no images")
        if all(isinstance(v, np.ndarray) for v in values):
            return Images(tensor=_array_to_tensor(np.stack(values)))
        paths = []
        for i, v in enumerate(values):
            if not isinstance(v, (str, Path, os.PathLike)):
                raise TypeError(
                    f"X[{i}] is {v!r} ({type(v).__name__}); expected an image path"
                )
            p = Path(v)
            if root is not None and not p.is_absolute():
                p = Path(root) / p
            paths.append(str(p))
        return Images(paths=paths)
    raise TypeError(
        f"X must be image paths (list, Series, DataFrame column) or an image array, "
        f"got {type(X).__name__}"
    )


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    # Per-image transforms are tiny tensor ops; intra-op threads only add overhead
    # (tenfold on a busy 2-core machine). Workers already run single-threaded.
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class ImageDataset(Dataset):
    """Items ``(image, target[, weight])`` (or ``(image,)`` without targets): image
    ``i`` of ``images`` through ``transform``, a ``(3, S, S)`` tensor.

    Parameters
    ----------
    images : Images
    transform : callable
        ``(3, H, W) tensor -> (3, S, S) tensor``.
    targets : Tensor, optional
    min_size : int, optional
        Passed to :func:`read_image` for files (JPEG draft decoding).
    weights : Tensor, optional
        Per-image weights, after the target (the loss receives them).
    """

    def __init__(
        self,
        images: Images,
        transform: Callable[[torch.Tensor], torch.Tensor],
        targets: torch.Tensor | None = None,
        min_size: int | None = None,
        weights: torch.Tensor | None = None,
    ) -> None:
        self.images, self.transform = images, transform
        self.targets, self.min_size, self.weights = targets, min_size, weights

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, ...]:
        x = self.transform(self.images.get(i, self.min_size))
        if self.targets is None:
            return (x,)
        if self.weights is None:
            return (x, self.targets[i])
        return (x, self.targets[i], self.weights[i])

    def __getitems__(self, idx: list[int]) -> list[tuple[torch.Tensor, ...]]:
        with _one_thread():
            return [self[i] for i in idx]


def make_loader(
    dataset: ImageDataset,
    batch_size: int,
    shuffle: bool = False,
    drop_last: bool = False,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
    pin_memory: bool = False,
    persistent: bool = False,
) -> DataLoader:
    """A DataLoader over ``dataset``; with workers, each runs single-threaded and its
    random transforms are seeded from ``generator`` (reproducible epochs)."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        drop_last=drop_last and len(dataset) >= batch_size,
        num_workers=num_workers,
        generator=generator,
        pin_memory=pin_memory,
        persistent_workers=persistent and num_workers > 0,
    )


def load_images(
    X: Any,
    size: int,
    path_col: str | None = None,
    root: str | Path | None = None,
    num_workers: int | None = None,
) -> np.ndarray:
    """Decode images once into memory: ``(N, size, size, 3)`` uint8, each resized so
    its shorter side is ``size`` and centre-cropped to a square.

    Useful to fit several models (or several epochs at small sizes) without decoding the
    files again: pass the array to ``ImageClassifier.fit``.

    Example
    -------
    >>> paths, labels = image_folder("data/cats-and-dogs/train")  # doctest: +SKIP
    >>> X = load_images(paths, 256)  # doctest: +SKIP
    """
    from vision.transforms import eval_transform, resize_batch

    if not isinstance(size, numbers.Integral) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    images = as_images(X, path_col, root)
    if images.in_memory:
        out = torch.cat(
            [
                resize_batch(images.tensor[i : i + 256], size)
                for i in range(0, len(images), 256)
            ]
        )
    else:
        check_readable(images.paths, decode=False)  # decoded just below
        workers = default_workers() if num_workers is None else num_workers
        ds = ImageDataset(images, eval_transform(size), min_size=size)
        out = torch.cat([b[0] for b in make_loader(ds, 64, num_workers=workers)])
    if out.is_floating_point():
        out = (out * 255).round().clamp(0, 255).to(torch.uint8)
    return out.permute(0, 2, 3, 1).numpy()


def default_workers() -> int:
    """Worker processes for decoding files: the CPU count, at most 8."""
    return max(1, min(8, os.cpu_count() or 1))
