"""Choosing small-image defaults by cross-validation on mnist-tiny's *training* images.

    python -m benchmarks.vision_mnist_cv [--folds 5] [--seeds 2] [--first-seed 0]
        [--configs base,bs32] [--arch small_resnet] [--size 28] [--no-save]

The validation images (what ``vision_finetune`` reports) are never read here: each
configuration is scored by stratified k-fold cross-validation on the 709 training
digits at 28 px (``augment=None``, ``lr=None``), and errors are summed over folds and
seeds. Each configuration changes one thing (``epochs8_bs32``: two) relative to the
current defaults of ``ImageClassifier("small_resnet", sizes=28, augment=None)``;
``--arch`` and ``--size`` change the model (say ``--arch resnet18 --size 32 --configs
base,lr1e-3``: the finder against fastai's fixed rate). Results go to
``results/vision_mnist_cv.*`` (the model and size are in the JSON's ``args`` and the
table's footer).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold
from torch import nn

from benchmarks._common import data_dir, md_table, save
from vision import ImageClassifier, image_folder, load_images

# name -> (ImageClassifier params, label smoothing or None)
CONFIGS: dict[str, tuple[dict, float | None]] = {
    "base": ({}, None),
    "lr1e-3": ({"lr": 1e-3}, None),
    "ls0.1": ({}, 0.1),
    "one_cycle": ({"schedule": "one_cycle"}, None),
    "bs32": ({"batch_size": 32}, None),
    "epochs8": ({"epochs": 8}, None),
    "width48": ({"arch_kwargs": {"width": 48}}, None),
    "depth2": ({"arch_kwargs": {"depth": 2}}, None),
    "epochs8_bs32": ({"epochs": 8, "batch_size": 32}, None),
    "side-on": ({"augment": "side-on"}, None),
    "dropout0.25": ({"dropout": 0.25}, None),
}


class _Smoothed(ImageClassifier):
    """The estimator with label-smoothed cross-entropy (single-label only)."""

    smoothing: float = 0.0

    def _loss_func(self):
        return nn.CrossEntropyLoss(label_smoothing=self.smoothing)


def run(
    name: str, X, y, folds: int, seeds: range, arch: str = "small_resnet", size=28
) -> dict:
    params, ls = CONFIGS[name]
    cls = ImageClassifier
    if ls is not None:
        cls = type("S", (_Smoothed,), {"smoothing": ls})
    errors, seconds, lrs = 0, [], []
    for seed in seeds:
        kf = StratifiedKFold(folds, shuffle=True, random_state=seed)
        for train, test in kf.split(X, y):
            kwargs = {"sizes": size, "augment": None, "random_state": seed}
            clf = cls(arch, verbose=0, **{**kwargs, **params})
            start = time.perf_counter()
            clf.fit(X[train], y[train])
            seconds.append(time.perf_counter() - start)
            wrong = int((clf.predict(X[test]) != y[test]).sum())
            errors += wrong
            lrs.append(clf.lr_)
            print(
                f"  {name} seed {seed}: {wrong} errors, {seconds[-1]:.1f} s", flush=True
            )
    n = len(y) * len(seeds)
    row = {
        "config": name,
        "errors": errors,
        "of": n,
        "cv_accuracy": 1 - errors / n,
        "fit_s": float(np.mean(seconds)),
        "lr_median": float(np.median(lrs)),
    }
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--arch", default="small_resnet")
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    root = data_dir()
    if root is None:
        raise SystemExit("real data not found")
    paths, labels = image_folder(root / "mnist-tiny" / "train")
    X, y = load_images(paths, args.size), np.array(labels)
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    rows = [
        run(c, X, y, args.folds, seeds, args.arch, args.size)
        for c in args.configs.split(",")
    ]
    table = md_table(
        rows, ["config", "errors", "of", "cv_accuracy", "fit_s", "lr_median"]
    )
    print(table)
    if not args.no_save:
        footer = f"\n{args.arch} at {args.size} px, {args.folds} folds, seeds {seeds}\n"
        save("vision_mnist_cv", {"args": vars(args), "rows": rows}, table + footer)


if __name__ == "__main__":
    main()
