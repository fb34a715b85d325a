"""Augmentation presets (torchvision.transforms.v2), evaluation resizing and the views of
test-time augmentation.

Every transform here takes one image as a ``(3, H, W)`` tensor (uint8, or float in
[0, 1]) and returns a ``(3, size, size)`` tensor of the same dtype; normalisation with the
backbone's statistics happens inside the model (:class:`vision.model.Normalize`), so what
travels through the data loader stays compact uint8.

Presets (Howard & Gugger 2020, "fastai: a layered API for deep learning", section on
data augmentation):

- ``"side-on"``: photos taken from the side (animals, objects, people): random resized
  crop, horizontal flip, a small rotation and lighting changes. Never flips vertically:
  an upside-down cat is not a cat photo.
- ``"top-down"``: satellite, microscope or medical images with no natural "up": the
  eight symmetries of the square (flips, 90-degree rotations and their combinations) with
  equal probability, plus crops, a small rotation and lighting.
- ``None``: no augmentation (resize and centre crop only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

__all__ = [
    "AUGMENT_PRESETS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RandomDihedral",
    "dihedral",
    "eval_transform",
    "presize",
    "resize_batch",
    "resized",
    "train_transform",
    "tta_views",
]

# torchvision's ImageNet weights (all of them) were trained on inputs normalised so.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

AUGMENT_PRESETS = ("side-on", "top-down")

# The crops keep at least this share of the image: small data sets rarely survive the
# 8% of torchvision's ImageNet default, and a digit or an animal must stay in the frame.
CROP_SCALE = (0.35, 1.0)
MAX_ROTATE = 10.0
LIGHTING = 0.2


def presize(size: int) -> int:
    """The shorter side images are reduced to before a random crop of ``size``: a margin
    for the crop, so that it resizes down (sharp) rather than up (blurred), while decoding
    and cropping stay cheap."""
    return round(size * 1.25)


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th (0..7) symmetry of the square applied to ``(..., H, W)``: ``k & 4``
    transposes, ``k & 2`` flips vertically, ``k & 1`` flips horizontally (in that order).
    ``k = 0`` is the identity."""
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    return x


class RandomDihedral(torch.nn.Module):
    """One of the eight symmetries of the square, each with probability 1/8 (square
    inputs keep their shape; others swap height and width under a transpose)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = int(torch.randint(8, ()))
        return dihedral(x, k).contiguous()


def _lighting() -> v2.Transform:
    return v2.RandomApply(
        [v2.ColorJitter(brightness=LIGHTING, contrast=LIGHTING)], 0.75
    )


def _rotation() -> v2.Transform:
    return v2.RandomApply(
        [v2.RandomRotation(MAX_ROTATE, interpolation=v2.InterpolationMode.BILINEAR)],
        0.75,
    )


def train_transform(
    augment: str | None,
    size: int,
    crop_scale: tuple[float, float] = CROP_SCALE,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training transform of a preset at ``size`` pixels (square output); crops
    keep a share of the image's area drawn from ``crop_scale``."""
    if augment is None:
        return eval_transform(size)
    crop = v2.RandomResizedCrop(size, scale=crop_scale, antialias=True)
    if augment == "side-on":
        return v2.Compose([crop, v2.RandomHorizontalFlip(), _rotation(), _lighting()])
    if augment == "top-down":
        return v2.Compose([crop, RandomDihedral(), _rotation(), _lighting()])
    raise ValueError(
        f"augment must be one of {list(AUGMENT_PRESETS)} or None, got {augment!r}"
    )


def eval_transform(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Resize the shorter side to ``size`` and keep the centre square (also works on a
    batch ``(N, 3, H, W)``)."""
    return v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size)])


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`eval_transform` on a batch ``(N, 3, H, W)``; a no-op at the right size."""
    if x.shape[-2:] == (size, size):
        return x
    return TF.center_crop(TF.resize(x, size, antialias=True), size)


def tta_views(augment: str | None) -> list[Callable[[torch.Tensor], torch.Tensor]]:
    """The deterministic views of test-time augmentation for a preset, identity first;
    each maps a batch ``(N, 3, S, S)`` to one of the same shape. ``"side-on"``: the image
    and its mirror; ``"top-down"``: the eight symmetries of the square; ``None``: the image
    alone (no augmentation was learned to be harmless)."""
    if augment == "side-on":
        return [lambda x: x, lambda x: x.flip(-1)]
    if augment == "top-down":
        return [lambda x, k=k: dihedral(x, k) for k in range(8)]
    return [lambda x: x]


def resized(
    images: torch.Tensor,
    size: int,
    margin: bool = False,
    cache: dict[Any, torch.Tensor] | None = None,
) -> torch.Tensor:
    """An in-memory set of images ``(N, C, H, W)`` resized: to ``size`` (centre
    square), or with ``margin`` only shrunk to :func:`presize` (keeping the aspect
    ratio), 256 images at a time. A fit passes its own ``cache`` (each size is resized
    once per fit); prediction, none."""
    cache = {} if cache is None else cache
    key = (id(images), size, margin)
    if key not in cache:
        t = images
        if margin:
            target = presize(size)
            if min(t.shape[-2:]) > target:
                from torchvision.transforms.v2 import functional as TF

                t = torch.cat(
                    [
                        TF.resize(t[i : i + 256], target, antialias=True)
                        for i in range(0, len(t), 256)
                    ]
                )
        else:
            t = torch.cat(
                [resize_batch(t[i : i + 256], size) for i in range(0, len(t), 256)]
            )
        cache[key] = t
    return cache[key]
