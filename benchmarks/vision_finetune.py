"""Image fine-tuning on real photos, and training from scratch on mnist-tiny.

    python -m benchmarks.vision_finetune [--quick] [--skip-mnist] [--skip-cats]
        [--epochs 4] [--seeds 3]

Results go to ``results/vision_finetune.{json,md}``; a run with ``--skip-cats`` or
``--skip-mnist`` to ``results/vision_finetune_partial.*`` instead (git ignores it), so
that a partial run leaves the full one's figures in place.

Part 1, mnist-tiny (709 training, 699 validation 28x28 digits, 3 vs 7), against fastai
(resnet18 from random initialisation at 32 px, ``fit_one_cycle(5, 1e-3)``), measured on the
same machine by ``benchmarks/peer_fastai_mnist.py`` in a virtual environment of its own:
``ImageClassifier`` with its defaults (lr=None: the finder chooses the rate; 5 epochs;
SGDR), with the built-in ``small_resnet`` at 28 px and with resnet18 at 32 px (several
seeds each), and resnet18 again at a fixed ``lr=1e-3`` (fastai's ``fit_one_cycle``
default; no finder, like the fastai figure). Time is the whole ``fit``, finder included;
the finder's own cost is timed separately with ``lr_find``.

Part 2, cats-and-dogs-filtered (1,000 training, 300 validation photos), resnet34 with
progressive resizing (64, 128, 224 px) and the "side-on" preset:

(a) from random initialisation;
(b) from a body first trained by this pipeline on another real set, mnist-tiny (3 vs 7
    at 32 px, the defaults), written with ``save_body`` and fine-tuned with the recipe
    through ``weights=path`` (head with the body frozen, then discriminative rates). A
    first attempt with a pretext task on the cat/dog photos themselves (predicting a
    rotation by 0/90/180/270 degrees, Gidaris et al. 2018) did not learn from random
    initialisation within a CPU budget (0.25 and 0.36 rotation accuracy after 3 epochs at
    64 and 32 px), so its body would have been no better than a random one;
(c) when ``DEEPFIT_WEIGHTS`` names a resnet34 state dict file (ImageNet weights on a
    machine that has them), the recipe from that file.

Accuracy on the validation photos without and with test-time augmentation; training and
inference images/s at 64, 128 and 224 px; peak memory. The photos are decoded and resized
once (shorter side 256, centre square) and held in memory as uint8 arrays.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks._common import data_dir, md_table, peak_rss_mb, save
from vision import ImageClassifier, image_folder, load_images


def _load(root: Path, split: str, size: int, limit: int | None):
    paths, labels = image_folder(root / split)
    if limit:
        step = max(1, len(paths) // limit)
        paths, labels = paths[::step][:limit], labels[::step][:limit]
    start = time.perf_counter()
    X = load_images(paths, size)
    return X, np.array(labels), time.perf_counter() - start


def _fit(clf: ImageClassifier, X, y) -> float:
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def _timed(f, *args, **kw):
    start = time.perf_counter()
    out = f(*args, **kw)
    return out, time.perf_counter() - start


def mnist(root: Path, seeds: int, quick: bool) -> list[dict]:
    X28, y, decode = _load(root, "train", 28, 200 if quick else None)
    V28, yv, _ = _load(root, "valid", 28, 200 if quick else None)
    X32, V32 = load_images(X28, 32), load_images(V28, 32)
    print(f"mnist-tiny: {len(X28)} train, {len(V28)} valid, decoded in {decode:.1f} s")
    rows = []
    runs = [("small_resnet", 28, X28, V28, s, None) for s in range(seeds)]
    runs += [("resnet18", 32, X32, V32, s, None) for s in range(seeds)]
    # The same without the finder, at fastai's fit_one_cycle default rate (1e-3): the
    # setting of the fastai figure, whose 14 s left its finder out.
    runs += [("resnet18", 32, X32, V32, s, 1e-3) for s in range(seeds)]
    for arch, size, X, V, seed, lr in runs:
        params = {
            "sizes": size,
            "augment": None,
            "random_state": seed,
            "verbose": 0,
            "lr": lr,
        }
        if quick:
            params["epochs"] = 2
        clf = ImageClassifier(arch, **params)
        seconds = _fit(clf, X, y)
        finder = None
        if lr is None:
            _, finder = _timed(ImageClassifier(arch, **params).lr_find, X, y)
        rows.append(
            {
                "set": "mnist-tiny",
                "model": f"{arch} {size}px seed {seed}"
                + ("" if lr is None else f" lr={lr:g}"),
                "accuracy": clf.score(V, yv),
                "fit_s": seconds,
                "finder_s": finder,
                "finder_share": None if finder is None else finder / seconds,
                "lr": clf.lr_,
                "epochs": clf.n_epochs_,
            }
        )
        print(rows[-1], flush=True)
    return rows


def _evaluate(name: str, clf: ImageClassifier, seconds: float, V, yv) -> dict:
    (proba, predict_s) = _timed(clf.predict_proba, V)
    tta, tta_s = _timed(clf.predict_proba, V, tta=True)
    truth = np.searchsorted(clf.classes_, yv)
    row = {
        "set": "cats-and-dogs",
        "model": name,
        "accuracy": float((proba.argmax(1) == truth).mean()),
        "accuracy_tta": float((tta.argmax(1) == truth).mean()),
        "fit_s": seconds,
        "predict_s": predict_s,
        "predict_tta_s": tta_s,
        "lr": clf.lr_ if isinstance(clf.lr_, float) else str(clf.lr_),
        "epochs": clf.n_epochs_,
    }
    print(row, flush=True)
    return row


def throughput(X, y, sizes, n: int) -> list[dict]:
    """Training images/s from the epoch's own time (``history_``: batches, augmentation
    and optimizer steps, not building the model) and inference images/s of
    ``predict_proba``, on ``n`` photos of both classes."""
    rows = []
    idx = np.linspace(0, len(X) - 1, n).astype(int)
    for size in sizes:
        clf = ImageClassifier(
            "resnet34", sizes=size, epochs=1, lr=1e-3, random_state=0, verbose=0
        )
        clf.fit(X[idx], y[idx])
        _, infer = _timed(clf.predict_proba, X[idx])
        rows.append(
            {
                "size": size,
                "train_img_s": n / float(clf.history_["time"].iloc[-1]),
                "infer_img_s": n / infer,
                "images": n,
            }
        )
        print(rows[-1], flush=True)
    return rows


def cats(root: Path, epochs: int, quick: bool) -> dict:
    limit = 64 if quick else None
    X, y, decode = _load(root, "train", 256, limit)
    V, yv, decode_v = _load(root, "validation", 256, limit)
    print(f"cats-and-dogs: {len(X)} train, {len(V)} valid, decoded once in "
          f"{decode + decode_v:.1f} s")  # fmt: skip
    sizes = (32, 48, 64) if quick else (64, 128, 224)
    common = {"sizes": sizes, "augment": "side-on", "epochs": epochs, "verbose": 0}
    rows = []

    clf = ImageClassifier("resnet34", random_state=0, **common)
    rows.append(_evaluate("(a) resnet34, random init", clf, _fit(clf, X, y), V, yv))

    digits, digit_labels = image_folder(root.parent / "mnist-tiny" / "train")
    X_digits = load_images(digits, 32)
    pretrain = ImageClassifier(
        "resnet34", sizes=32, augment=None, epochs=2 if quick else 5, random_state=0,
        verbose=0,
    )  # fmt: skip
    pretrain_s = _fit(pretrain, X_digits, digit_labels)
    body = Path(os.environ.get("TMPDIR", "/tmp")) / "deepfit_resnet34_mnist_body.pt"
    pretrain.save_body(body)
    print(f"mnist-tiny pretraining: {pretrain_s:.0f} s", flush=True)
    clf = ImageClassifier("resnet34", weights=body, random_state=0, **common)
    row = _evaluate("(b) resnet34, body from mnist-tiny", clf, _fit(clf, X, y), V, yv)
    row["pretrain_s"] = pretrain_s
    rows.append(row)

    weights = os.environ.get("DEEPFIT_WEIGHTS")
    if weights:
        clf = ImageClassifier("resnet34", weights=weights, random_state=0, **common)
        name = f"(c) resnet34 from {Path(weights).name}"
        rows.append(_evaluate(name, clf, _fit(clf, X, y), V, yv))

    speed = throughput(X, y, sizes, 32 if quick else 128)
    return {"decode_s": decode + decode_v, "runs": rows, "throughput": speed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="tiny subsets (a smoke run)"
    )
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--skip-cats", action="store_true")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        raise SystemExit(
            "real data not found: set DEEPFIT_DATA or provide ../shared/data"
        )
    load = os.getloadavg()
    start = time.perf_counter()
    payload: dict = {"args": vars(args), "load_before": load}
    if not args.skip_mnist:
        payload["mnist"] = mnist(root / "mnist-tiny", args.seeds, args.quick)
    if not args.skip_cats:
        payload["cats"] = cats(
            root / "cats-and-dogs-filtered",
            args.epochs,
            args.quick,
        )
    payload["total_s"] = time.perf_counter() - start
    payload["peak_rss_mb"] = peak_rss_mb()
    payload["load_after"] = os.getloadavg()
    tables = []
    if "mnist" in payload:
        tables.append(
            "mnist-tiny (the fastai peer: results/peer_fastai_mnist.md)\n\n"
            + md_table(
                payload["mnist"],
                [
                    "model",
                    "accuracy",
                    "fit_s",
                    "finder_s",
                    "finder_share",
                    "lr",
                    "epochs",
                ],
            )
        )
    if "cats" in payload:
        tables.append(
            "cats-and-dogs-filtered, resnet34, sizes (64, 128, 224), side-on\n\n"
            + md_table(
                payload["cats"]["runs"],
                ["model", "accuracy", "accuracy_tta", "fit_s", "lr", "epochs"],
            )
        )
        tables.append(
            "resnet34 throughput (images/s)\n\n"
            + md_table(
                payload["cats"]["throughput"], ["size", "train_img_s", "infer_img_s"]
            )
        )
    footer = (
        f"total {payload['total_s']:.0f} s, peak RSS {payload['peak_rss_mb']:.0f} MiB, "
        f"{torch.get_num_threads()} threads, load average before {load[0]:.1f}, after "
        f"{payload['load_after'][0]:.1f}"
    )
    print("\n\n".join([*tables, footer]))
    if not args.quick:  # a smoke run's figures mean nothing: not saved
        partial = args.skip_cats or args.skip_mnist
        save("vision_finetune", payload, "\n\n".join([*tables, footer]), partial)


if __name__ == "__main__":
    main()
