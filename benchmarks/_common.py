"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def data_dir() -> Path | None:
    """``$DEEPFIT_DATA`` or ``../shared/data`` beside the repository; None when absent."""
    for c in (
        os.environ.get("DEEPFIT_DATA"),
        Path(__file__).resolve().parents[2] / "shared" / "data",
    ):
        if c and Path(c).is_dir():
            return Path(c)
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict:
    return {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
    }


def save(name: str, payload: dict, table: str, partial: bool = False) -> None:
    """Write ``results/<name>.json`` and ``results/<name>.md``: each script keeps one
    current result under its own name. A run with other settings than the script's
    full one (``partial``) writes ``<name>_partial.*`` instead, which git ignores, so
    it never replaces the current result."""
    if partial:
        name += "_partial"
    RESULTS.mkdir(exist_ok=True)
    payload = {**payload, "machine": machine()}
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    (RESULTS / f"{name}.md").write_text(table.rstrip() + "\n")
    print(f"\nwrote {RESULTS / name}.json and .md")


def md_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows
    ]
    return "\n".join(lines)


def parse_config(text: str) -> tuple[str, dict]:
    """``name=key:value,key:value`` -> (name, params), the ``--config`` argument of the
    scripts that compare settings; values parsed as Python literals (numbers, tuples,
    strings), else kept as text."""
    import ast

    name, _, rest = text.partition("=")
    params = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition(":")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return name, params
