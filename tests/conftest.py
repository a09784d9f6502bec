"""Shared fixtures: paths to the bundled data and to the real Yahoo CSVs in ../shared/data (when present)."""

import os
from pathlib import Path

import pytest

from jaxlstm.runtime import CACHE_ENV, use_cpu_cores

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"

os.environ[CACHE_ENV] = ""  # no compilation cache in ~/.cache: each test compiles (tests/test_cli.py covers it)
os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 on JAX: a peer that needs no TensorFlow
use_cpu_cores()  # as the CLI does: fit splits batches over the cores, and the tests cover that path


def shared_csv(name: str) -> Path:
    """A real Yahoo CSV from ../shared/data; the test is skipped when the folder is absent."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is absent (real Yahoo data lives outside the project)")
    return path
