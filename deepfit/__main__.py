"""Command line: ``python -m deepfit demo`` tours the engine and each installed domain.

Each domain package may provide ``<domain>/demo.py`` with ``run(data_dir: Path | None)``;
the tour imports it here, at run time, so the engine itself never imports a domain.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

DOMAINS = ("tabular", "collab", "text", "vision")


def data_dir() -> Path | None:
    """The real data sets: ``$DEEPFIT_DATA``, else ``../shared/data`` from the current
    directory or from the repository root; ``None`` when absent."""
    candidates = []
    if os.environ.get("DEEPFIT_DATA"):
        candidates.append(Path(os.environ["DEEPFIT_DATA"]))
    candidates.append(Path.cwd() / ".." / "shared" / "data")
    candidates.append(Path(__file__).resolve().parents[2] / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return None


def engine_demo() -> None:
    """A small MLP on generated data (y = a noisy linear function of x) trained through
    the Learner with the learning-rate finder and one-cycle; prints its history."""
    import torch
    from torch import nn

    from deepfit import History, Learner, TensorBatches

    g = torch.Generator().manual_seed(0)
    x = torch.randn(4096, 8, generator=g)
    w = torch.randn(8, 1, generator=g)
    y = x @ w + 0.1 * torch.randn(4096, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 1))
    train = TensorBatches(x[:3584], y[:3584], batch_size=128, shuffle=True, generator=g)
    valid = TensorBatches(x[3584:], y[3584:], batch_size=512)
    learn = Learner(model, nn.functional.mse_loss)
    found = learn.lr_find(train)
    print(f"learning-rate finder suggests {found.suggestion:.2e}")
    history = History()
    learn.fit(train, epochs=5, lr=found.suggestion, callbacks=[history], valid=valid)
    print(history.to_frame().to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"(noise variance 0.0100; target variance {y.var().item():.2f})")


def demo(only: list[str] | None = None) -> int:
    data = data_dir()
    print(
        f"deepfit demo; data sets: {data or 'not found (generated data will be used)'}"
    )
    steps = ["engine", *DOMAINS] if not only else only
    for step in steps:
        print(f"\n== {step} ==")
        start = time.perf_counter()
        if step == "engine":
            engine_demo()
        else:
            try:
                module = importlib.import_module(f"{step}.demo")
            except ModuleNotFoundError as err:
                print(f"skipped: {err}")
                continue
            module.run(data)
        print(f"({step}: {time.perf_counter() - start:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="deepfit", description=__doc__.splitlines()[0]
    )
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = version("deepfit")
    except PackageNotFoundError:  # run from a checkout without installing
        from deepfit import __version__ as installed
    parser.add_argument("--version", action="version", version=f"deepfit {installed}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="a quick tour: the engine, then each domain")
    p_demo.add_argument(
        "--only", nargs="+", choices=["engine", *DOMAINS], help="run only these steps"
    )
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.only)
    return 2


if __name__ == "__main__":
    sys.exit(main())
