"""The command line and the package's metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

import deepfit
from deepfit.__main__ import main

ROOT = Path(__file__).resolve().parents[2]


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"deepfit {deepfit.__version__}"


def test_every_package_is_typed():
    for pkg in ("deepfit", "tabular", "collab", "text", "vision"):
        assert (ROOT / pkg / "py.typed").is_file(), pkg
