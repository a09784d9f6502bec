"""The shape of the package: a public API, ``__all__`` everywhere, commands that start without JAX, and figures that
leave Matplotlib's global state alone. (The import layering is checked by import-linter in ``make test``.)"""

import importlib
import pkgutil
import subprocess
import sys

import pytest

import jaxlstm

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(jaxlstm.__path__, "jaxlstm.") if info.name != "jaxlstm.__main__"
)


def test_the_public_api_imports_from_the_package() -> None:
    from jaxlstm import LSTM, Bidirectional, Forecaster, Stacked, TrainConfig, fit, load_prices, prepare, preset

    assert all(callable(name) for name in (LSTM, Bidirectional, Stacked, Forecaster, TrainConfig, fit, prepare))
    assert load_prices.__module__ == "jaxlstm.data.prices" and preset.__module__ == "jaxlstm.config"
    assert all(getattr(jaxlstm, name) is not None for name in jaxlstm.__all__)


@pytest.mark.parametrize("name", MODULES)
def test_every_module_declares_what_it_exports(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), list), f"{name} has no __all__"
    missing = [export for export in module.__all__ if not hasattr(module, export)]
    assert not missing, f"{name}.__all__ names {missing}, which it does not define"


def run_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip()


@pytest.mark.subprocess
def test_help_and_argument_errors_import_no_jax() -> None:
    """`jaxlstm --help`, `jaxlstm train --help` and an out-of-range option answer before JAX (or NumPy's heavy
    neighbours) is imported: the parser and the checks need only the config types."""
    code = """
import contextlib, io, sys
from jaxlstm.commands import main
for argv in (["--help"], ["train", "--help"], ["gates", "--help"]):
    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        main(argv)
with contextlib.redirect_stderr(io.StringIO()) as err:
    status = main(["train", "--epochs", "0"])
heavy = sorted(m for m in ("jax", "flax", "optax", "pandas", "sklearn", "matplotlib") if m in sys.modules)
print(status, err.getvalue().strip(), heavy)
"""
    assert run_python(code) == "2 jaxlstm: error: --epochs 0: must be a whole number >= 1, e.g. --epochs 100 []"


@pytest.mark.subprocess
def test_importing_every_module_leaves_matplotlibs_backend_alone() -> None:
    """No module calls ``matplotlib.use`` (the figures use the object API): a program that chose its backend
    keeps it after importing jaxlstm, and a figure can still be written."""
    code = f"""
import matplotlib
matplotlib.use("svg")
import importlib
for name in {MODULES!r}:
    importlib.import_module(name)
print(matplotlib.get_backend())
"""
    assert run_python(code) == "svg"
