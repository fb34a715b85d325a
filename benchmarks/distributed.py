"""Data-parallel training: 2 processes x 1 thread against 1 process x 2 threads.

    python -m benchmarks.distributed [--rows 200000] [--epochs 2] [--no-same-answer]

Throughput: the table of ``benchmarks.tabular_throughput`` (8 string categorical columns
of cardinality 2 to 100,000, 6 continuous), its estimator settings, batch 1024; each
rank a subprocess started the way ``torchrun`` starts one (``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``, ``MASTER_PORT``), with an unchanged ``fit``. Reported: fit seconds
(preprocessing included: every rank preprocesses the whole table), training rows/s
(epochs alone, from ``history_``), test log loss and accuracy on 50,000 held-out rows.

Then (unless ``--no-same-answer``, and when the real data is there)
``TabularClassifier()`` on Adult (test split) and ``CollabRegressor()``
on ML-100K u1 with their defaults, in 1 process and in 2; the issue asks for accuracy
within 0.005 and RMSE within 0.01.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, log_loss

from benchmarks._common import data_dir, md_table, save

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: list[str], world: int, threads: int) -> dict:
    """Run this script's worker on ``world`` ranks; rank 0's JSON report."""
    out = Path(f"/tmp/deepfit_dist_{os.getpid()}.json")
    port = _port()
    procs = []
    for rank in range(world):
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
        if world > 1:
            env.update(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE=str(world),
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=str(port),
            )
        cmd = [sys.executable, "-m", "benchmarks.distributed", "--worker", *args]
        cmd += ["--threads", str(threads), "--report", str(out)]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env))
    codes = [p.wait() for p in procs]
    if any(codes):
        raise RuntimeError(f"a rank failed: return codes {codes}")
    report = json.loads(out.read_text())
    out.unlink()
    return report


def worker(a: argparse.Namespace) -> None:
    torch.set_num_threads(a.threads)
    from deepfit import distributed

    report: dict = {}
    if a.task == "throughput":
        from benchmarks.tabular_throughput import estimator, make_frame

        X, y = make_frame(a.rows, seed=0)
        Xt, yt = make_frame(50_000, seed=1)
        est = estimator("auto", a.epochs, seed=0)
        start = time.perf_counter()
        est.fit(X, y)
        fit_s = time.perf_counter() - start
        proba = est.predict_proba(Xt)[:, 1]
        train_s = float(est.history_["time"].sum())
        report = {
            "fit_s": fit_s,
            "train_s": train_s,
            "rows_per_s": a.rows * a.epochs / train_s,
            "log_loss": log_loss(yt, proba),
            "accuracy": accuracy_score(yt, proba > 0.5),
        }
    elif a.task == "adult":
        from tabular import TabularClassifier
        from tabular.demo import load_adult

        X, y = load_adult(a.data / "adult")
        Xt, yt = load_adult(a.data / "adult", "test")
        start = time.perf_counter()
        est = TabularClassifier(random_state=0, verbose=0).fit(X, y)
        report = {
            "fit_s": time.perf_counter() - start,
            "accuracy": est.score(Xt, yt),
            "log_loss": log_loss(yt, est.predict_proba(Xt)[:, 1]),
            "epochs": est.n_epochs_,
        }
    elif a.task == "ml100k":
        import pandas as pd

        from collab import CollabRegressor

        names = ["user", "item", "rating", "timestamp"]
        folder = a.data / "movielens-100k"
        train = pd.read_csv(folder / "u1.base", sep="\t", names=names)
        test = pd.read_csv(folder / "u1.test", sep="\t", names=names)
        start = time.perf_counter()
        est = CollabRegressor(random_state=0, verbose=0).fit(train, train["rating"])
        pred = est.predict(test)
        report = {
            "fit_s": time.perf_counter() - start,
            "rmse": float(np.sqrt(np.mean((pred - test["rating"].to_numpy()) ** 2))),
        }
    if distributed.is_main_process():
        a.report.write_text(json.dumps(report))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--no-same-answer", dest="same_answer", action="store_false")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--task", default="throughput", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, default=data_dir(), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(a)
        return
    rows = []
    for world, threads in ((1, 2), (2, 1)):
        args = ["--rows", str(a.rows), "--epochs", str(a.epochs)]
        r = launch(args, world, threads)
        rows.append(
            {"task": "throughput", "processes x threads": f"{world} x {threads}"}
        )
        rows[-1].update(r)
        print(rows[-1], flush=True)
    if a.same_answer and a.data is not None:
        for task in ("adult", "ml100k"):
            for world, threads in ((1, 2), (2, 1)):
                r = launch(["--task", task, "--data", str(a.data)], world, threads)
                rows.append(
                    {"task": task, "processes x threads": f"{world} x {threads}"}
                )
                rows[-1].update(r)
                print(rows[-1], flush=True)
    cols = ["task", "processes x threads", "fit_s", "train_s", "rows_per_s"]
    table = md_table(rows, [*cols, "log_loss", "accuracy", "rmse"])
    table += (
        f"\nthroughput: {a.rows:,} generated rows, {a.epochs} epochs, 50,000 test rows; "
        "adult: TabularClassifier() on the test split; ml100k: CollabRegressor() on u1.\n"
    )
    partial = (a.rows, a.epochs, a.same_answer) != (200_000, 2, True)
    print("\n" + table)
    args = {k: str(v) for k, v in vars(a).items()}
    save("distributed", {"args": args, "rows": rows}, table, partial=partial)


if __name__ == "__main__":
    main()
