"""Generated images with a known answer, for the vision tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

COLOURS = ("red", "green", "blue")


def colour_classes(n: int = 64, size: int = 24, seed: int = 0):
    """(N, size, size, 3) uint8 noisy images whose class is the colour of a square
    somewhere in them (red, green or blue), and the labels."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 60, size=(n, size, size, 3), dtype=np.uint8)
    y = rng.integers(0, 3, size=n)
    side = size // 2
    for i, c in enumerate(y):
        r, col = rng.integers(0, size - side, size=2)
        X[i, r : r + side, col : col + side, c] = 230
    return X, np.array(COLOURS)[y]


def colour_sets(n: int = 96, size: int = 24, seed: int = 0):
    """Multi-label: each image holds squares of a random non-empty subset of the three
    colours, one per quadrant row; the labels are the subset."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 40, size=(n, size, size, 3), dtype=np.uint8)
    labels = []
    half = size // 2
    for i in range(n):
        present = [c for c in range(3) if rng.random() < 0.5] or [int(rng.integers(3))]
        for c in present:
            r = rng.integers(0, size - half)
            col = rng.integers(0, size - half)
            X[i, r : r + half, col : col + half, c] = 230
        labels.append([COLOURS[c] for c in present])
    return X, labels


def write_pngs(X: np.ndarray, folder: Path, labels=None) -> list[str]:
    """Write each image as a PNG under ``folder`` (``folder/<label>/`` with labels)."""
    from PIL import Image

    paths = []
    for i, img in enumerate(X):
        sub = folder if labels is None else folder / str(labels[i])
        sub.mkdir(parents=True, exist_ok=True)
        p = sub / f"img{i:04d}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    return paths
