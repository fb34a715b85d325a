"""The vision step of ``python -m deepfit demo``: the built-in small residual network
trained from scratch on mnist-tiny (3s and 7s), learning rate from the finder."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _generated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 28x28 images of a bright horizontal or vertical bar: the class is the bar's
    direction."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 50, size=(n, 28, 28), dtype=np.uint8)
    y = rng.integers(0, 2, size=n)
    for i, c in enumerate(y):
        at = rng.integers(6, 22)
        if c:
            X[i, :, at - 2 : at + 2] = 220
        else:
            X[i, at - 2 : at + 2, :] = 220
    return X, np.array(["horizontal", "vertical"])[y]


def run(data_dir: Path | None) -> None:
    from vision import ImageClassifier, image_folder, load_images

    root = None if data_dir is None else data_dir / "mnist-tiny"
    if root is not None and root.is_dir():
        start = time.perf_counter()
        train, y_train = image_folder(root / "train")
        valid, y_valid = image_folder(root / "valid")
        X_train, X_valid = load_images(train, 28), load_images(valid, 28)
        print(
            f"mnist-tiny: {len(X_train)} training and {len(X_valid)} validation images "
            f"(28x28, grey repeated to RGB), decoded in {time.perf_counter() - start:.1f} s"
        )
    else:
        print(
            "mnist-tiny not found: using generated bar images (horizontal vs vertical)"
        )
        X_train, y_train = _generated(600, 0)
        X_valid, y_valid = _generated(300, 1)
    clf = ImageClassifier(
        "small_resnet", sizes=28, augment=None, random_state=0, verbose=0
    )
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    print(
        f"ImageClassifier('small_resnet', sizes=28): {clf.n_epochs_} epochs in "
        f"{seconds:.1f} s, learning rate {clf.lr_:.2e} from the finder"
    )
    print(clf.history_.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    accuracy = clf.score(X_valid, y_valid)
    print(f"validation accuracy {accuracy:.4f} ({len(X_valid)} images)")
