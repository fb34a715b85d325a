"""One rank of the distributed tests, run as ``python -m tests.deepfit.dist_worker CASE
DATA OUT`` (``DATA`` is ``-`` for generated data) with ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR`` and ``MASTER_PORT`` set (by ``tests/deepfit/test_distributed.py``, or by
``torchrun``); without them it is the one-process fit the distributed one is compared
with. Each rank writes its fitted weights, chosen rate, history and predictions to
``OUT/rank<r>.pt``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROWS = 3000
DEVICE = os.environ.get("DEEPFIT_TEST_DEVICE", "cpu")  # "cuda": NCCL, a GPU per rank


def adult(data: Path | None) -> tuple[pd.DataFrame, pd.Series]:
    """Adult's first rows, or (without the real data) the demo's generated stand-in."""
    from tabular.demo import load_adult, make_adult_like

    if data is None:
        X, y = make_adult_like(ROWS)
        return X, pd.Series(y)
    X, y = load_adult(data / "adult")
    return X.iloc[:ROWS], y.iloc[:ROWS]


def ratings(data: Path | None) -> tuple[pd.DataFrame, np.ndarray]:
    """ML-100K u1's first ratings, or the demo's generated low-rank ones."""
    if data is None:
        from collab.demo import _generated

        df = _generated()[0]
    else:
        names = ["user", "item", "rating", "timestamp"]
        df = pd.read_csv(data / "movielens-100k" / "u1.base", sep="\t", names=names)
        df = df.iloc[: 4 * ROWS]
    return df[["user", "item"]], df["rating"].to_numpy(np.float32)


def fit(case: str, data: Path):
    """``(estimator, X)`` fitted for ``case``; regularisation that draws random numbers
    (dropout, unknown-token replacement) is off, so that a 2-process fit can equal a
    one-process fit."""
    if case in ("tabular", "finder"):
        from tabular import TabularClassifier

        X, y = adult(data)
        est = TabularClassifier(
            epochs=3 if case == "tabular" else 1,
            # The finder's rate is the same on every rank; it may differ from one
            # process's, whose curve ends (where the loss blows up) on other noise.
            lr=1e-2 if case == "tabular" else None,
            # One member for the comparison with one process: Adam's normalised steps
            # grow float-order noise with the ensemble's many small-gradient weights
            # (up to 0.01 in probability after 3 epochs); the finder case keeps 8.
            n_members=1 if case == "tabular" else 8,
            batch_size=256,
            dropout=0.0,
            embed_dropout=0.0,
            unknown_rate=0.0,
            random_state=0,
            verbose=0,
            device=DEVICE,
        )
        return est.fit(X, y), X
    if case == "collab":
        from collab import CollabRegressor

        X, y = ratings(data)
        est = CollabRegressor(
            n_factors=16,
            epochs=3,
            lr=1e-2,
            batch_size=1024,
            random_state=0,
            verbose=0,
            device=DEVICE,
        )
        return est.fit(X, y), X
    if case == "stream":  # parquet row groups, each rank reading its own share
        import pyarrow as pa
        import pyarrow.parquet as pq

        from tabular import TabularClassifier

        X, y = adult(data)
        folder = Path(sys.argv[3]) / f"data-rank{os.environ.get('RANK', 0)}"
        folder.mkdir(exist_ok=True)
        table = pa.Table.from_pandas(X.assign(label=y.to_numpy()), preserve_index=False)
        pq.write_table(table, folder / "adult.parquet", row_group_size=ROWS // 6)
        est = TabularClassifier(
            epochs=2, lr=1e-2, n_members=2, random_state=0, verbose=0, device=DEVICE
        )
        return est.fit(folder, "label"), X
    if case == "fail":  # rank 1 gets bad input: every rank must exit, none hang
        from tabular import TabularClassifier

        X, y = adult(data)
        if int(os.environ.get("RANK", 0)) == 1:
            y = y.astype(float).where(np.arange(len(y)) != 5)  # a missing label
        est = TabularClassifier(epochs=2, lr=1e-2, verbose=0, device=DEVICE)
        return est.fit(X, y), X
    raise ValueError(f"unknown case {case!r}")


def main() -> None:
    case, out = sys.argv[1], Path(sys.argv[3])
    data = None if sys.argv[2] == "-" else Path(sys.argv[2])
    torch.set_num_threads(1)
    est, X = fit(case, data)
    rank = int(os.environ.get("RANK", 0))
    torch.save(
        {
            "state": {k: v.cpu() for k, v in est.module_.state_dict().items()},
            "lr": est.lr_,
            "sweep": getattr(getattr(est, "lr_find_", None), "raw_losses", None),
            "history": est.history_.drop(columns="time", errors="ignore").to_dict(),
            "pred": (
                est.predict_proba(X)
                if hasattr(est, "predict_proba")
                else est.predict(X)
            ),
        },
        out / f"rank{rank}.pt",
    )


if __name__ == "__main__":
    main()
