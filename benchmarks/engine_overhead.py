"""Engine overhead: the same MLP, the same tensors, the same threads, trained through
``Learner`` and through a bare torch loop.

    python benchmarks/engine_overhead.py [--rows 200000] [--batch-size 256] [--repeats 3]

The bare loop is what a careful user writes by hand: a shuffled permutation per epoch,
contiguous slices, forward, backward, AdamW step. The Learner run adds everything the
engine does per batch (one-cycle schedule setting rate and beta1, callbacks, the history
callback recording rates, loss bookkeeping). Target: Learner within 1.10x of the bare loop.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from benchmarks._common import md_table, save
from deepfit import History, Learner, TensorBatches


def make_model(d: int) -> nn.Module:
    return nn.Sequential(
        nn.Linear(d, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1)
    )


def make_opt(params):
    return torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.01)


def bare(x, y, epochs, bs, seed):
    torch.manual_seed(seed)
    model = make_model(x.shape[1])
    opt = make_opt(model.parameters())
    g = torch.Generator().manual_seed(seed)
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        xs, ys = x[perm], y[perm]
        for i in range(0, len(x), bs):
            loss = nn.functional.mse_loss(model(xs[i : i + bs]), ys[i : i + bs])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    return time.perf_counter() - start, float(loss.detach())


def engine(x, y, epochs, bs, seed):
    torch.manual_seed(seed)
    model = make_model(x.shape[1])
    learn = Learner(model, nn.functional.mse_loss, opt_func=make_opt)
    g = torch.Generator().manual_seed(seed)
    batches = TensorBatches(x, y, batch_size=bs, shuffle=True, generator=g)
    start = time.perf_counter()
    learn.fit(batches, epochs, lr=1e-3, schedule="one_cycle", callbacks=[History()])
    return time.perf_counter() - start, learn.train_loss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(args.rows, args.features, generator=g)
    y = x[:, :8].sum(1, keepdim=True) + 0.1 * torch.randn(args.rows, 1, generator=g)
    times = {"bare": [], "learner": []}
    for r in range(args.repeats):  # alternate, so drift hits both alike
        for name, fn in (("bare", bare), ("learner", engine)):
            sec, loss = fn(x, y, args.epochs, args.batch_size, seed=r)
            times[name].append(sec)
            print(f"repeat {r}: {name:8s} {sec:6.2f} s  (last loss {loss:.4f})")
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["learner"] / med["bare"]
    n_batches = args.epochs * -(-args.rows // args.batch_size)
    rows = [
        {
            "loop": k,
            "median s": med[k],
            "rows/s": args.epochs * args.rows / med[k],
            "us/batch": 1e6 * med[k] / n_batches,
        }
        for k in ("bare", "learner")
    ]
    table = md_table(rows, ["loop", "median s", "rows/s", "us/batch"])
    table += f"\n\nLearner / bare = {ratio:.3f} (target <= 1.10); {vars(args)}, "
    table += f"{torch.get_num_threads()} threads\n"
    print("\n" + table)
    save("engine_overhead", {"args": vars(args), "times": times, "ratio": ratio}, table)


if __name__ == "__main__":
    main()
