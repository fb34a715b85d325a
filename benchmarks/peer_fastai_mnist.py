"""fastai on mnist-tiny, measured on this machine: the peer figure of ``vision_finetune``.

    python -m benchmarks.peer_fastai_mnist [--seeds 3] [--first-seed 0] [--epochs 5]
        [--threads 2] [--no-finder] [--num-workers 0]

fastai is not a dependency of deepfit: run this from a separate virtual environment that
has it (``pip install torch==2.14.1 torchvision==0.29.1 fastai==2.8.12``) and the repository root
as the working directory. The setting is the issue's: resnet18 from random initialisation
(``pretrained=False``), 32 px (``Resize(32)``), no augmentation, batch 64,
``fit_one_cycle(epochs, lr)`` at fastai's default rate 1e-3, the 699 validation digits.
Images are decoded in the main process (``--num-workers 0``); fastai's own default of
worker processes (``--num-workers -1``) took the same time (49.5 s against 49.6 s, seed 0).
Each seed is one ``fit``, timed on its own; ``lr_find()`` (fastai's default sweep, 100
full batches) is timed once per seed on a fresh learner. Results go to
``results/peer_fastai_mnist.{json,md}``.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks._common import data_dir, md_table, peak_rss_mb, save


def main() -> None:
    from fastai import __version__ as fastai_version
    from fastai.vision.all import (
        ImageDataLoaders,
        Resize,
        accuracy,
        resnet18,
        set_seed,
        vision_learner,
    )

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-finder", action="store_true")
    p.add_argument("--num-workers", type=int, default=0, help="-1: fastai's default")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = data_dir()
    if root is None:
        raise SystemExit(
            "real data not found: set DEEPFIT_DATA or provide ../shared/data"
        )
    path = root / "mnist-tiny"

    def learner(seed: int):
        set_seed(seed, reproducible=True)
        dls = ImageDataLoaders.from_folder(
            path,
            train="train",
            valid="valid",
            item_tfms=Resize(32),
            bs=64,
            seed=seed,
            **({} if args.num_workers < 0 else {"num_workers": args.num_workers}),
        )
        return vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)

    rows = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        learn = learner(seed)
        with learn.no_bar(), learn.no_logging():
            start = time.perf_counter()
            learn.fit_one_cycle(args.epochs, args.lr)
            fit_s = time.perf_counter() - start
            _, acc = learn.validate()
        finder_s = suggestion = None
        if not args.no_finder:
            learn = learner(seed)
            with learn.no_bar(), learn.no_logging():
                start = time.perf_counter()
                suggestion = float(learn.lr_find(show_plot=False).valley)
                finder_s = time.perf_counter() - start
        n_valid = len(learn.dls.valid_ds)
        rows.append(
            {
                "model": f"fastai {fastai_version} resnet18 32px seed {seed}",
                "accuracy": float(acc),
                "errors": round((1 - float(acc)) * n_valid),
                "fit_s": fit_s,
                "finder_s": finder_s,
                "finder_valley": suggestion,
            }
        )
        print(rows[-1], flush=True)
    table = md_table(
        rows, ["model", "accuracy", "errors", "fit_s", "finder_s", "finder_valley"]
    )
    table += (
        f"\n\nfit_one_cycle({args.epochs}, {args.lr:g}), batch 64, "
        f"{torch.get_num_threads()} threads, peak RSS {peak_rss_mb():.0f} MiB"
    )
    print(table)
    save("peer_fastai_mnist", {"args": vars(args), "rows": rows}, table)


if __name__ == "__main__":
    main()
