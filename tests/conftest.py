"""Shared fixtures: paths to the bundled data and to the real Yahoo CSVs in ../shared/data (when present); the tiers
(a test marked ``subprocess`` or ``processes`` is in the slow tier, as one marked ``slow``); one compilation cache
for the session and its child processes."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from jaxlstm.training.runtime import CACHE_ENV, use_compilation_cache, use_cpu_cores

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "data"
SHARED = ROOT.parent / "shared" / "data"

# The tests compile hundreds of small programs and run each briefly, so compilation is most of their time. XLA's LLVM
# optimisations and XLA:CPU's fusion emitters cost more compile time than they save here (docs/performance.md, "Tests
# in tiers"). The results agree with the default build within the tests' tolerances; tests of bit-identical results
# compare runs under the same flags. Subprocesses inherit the setting.
FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")


def _accepted(flags: tuple[str, ...]) -> str:
    """The flags this XLA accepts quietly (it aborts at start-up on a flag it does not know, and warns on one it no
    longer supports, which would break the tests of a one-line stderr), tried in a child process once per session;
    the workers of ``pytest -n`` inherit the answer."""
    known = os.environ.get("JAXLSTM_TEST_XLA_FLAGS")
    if known is not None:
        return known

    def works(chosen: list[str]) -> bool:
        environment = {**os.environ, "XLA_FLAGS": " ".join([os.environ.get("XLA_FLAGS", ""), *chosen])}
        probe = [sys.executable, "-c", "import jax.numpy as jnp; jnp.zeros(1).block_until_ready()"]
        result = subprocess.run(probe, env=environment, capture_output=True, text=True, check=False)
        return result.returncode == 0 and not result.stderr.strip()

    chosen = list(flags) if works(list(flags)) else [flag for flag in flags if works([flag])]
    os.environ["JAXLSTM_TEST_XLA_FLAGS"] = " ".join(chosen)
    return os.environ["JAXLSTM_TEST_XLA_FLAGS"]


os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_accepted(FAST_COMPILE)}".strip()
# The session keeps its compiled programs in a folder of its own, removed at exit: a program that another test already
# compiled (the same model, shapes and settings) is loaded instead of compiled again, in this process and in the
# child processes it starts (they inherit the variable; never ~/.cache). Tests of the cache itself set their own.
os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="jaxlstm-tests-xla-")
atexit.register(shutil.rmtree, os.environ[CACHE_ENV], ignore_errors=True)
use_compilation_cache()
os.environ.setdefault("KERAS_BACKEND", "jax")  # Keras 3 on JAX: a peer that needs no TensorFlow
use_cpu_cores()  # as the CLI does: fit splits batches over the cores, and the tests cover that path


SLOW_KINDS = ("subprocess", "processes")
"""Markers that put a test in the slow tier: a run of the command in a child process, several processes."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks the tests of the slow kinds ``slow`` too, before ``-m "not slow"`` deselects them."""
    for item in items:
        if any(item.get_closest_marker(kind) for kind in SLOW_KINDS):
            item.add_marker(pytest.mark.slow)


def shared_csv(name: str) -> Path:
    """A real Yahoo CSV from ../shared/data; the test is skipped when the folder is absent."""
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is absent (real Yahoo data lives outside the project)")
    return path
