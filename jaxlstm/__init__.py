"""jaxlstm: an LSTM whose gates are written out by hand in JAX, trained fast under ``jax.jit``.

The public API, importable from here::

    from jaxlstm import LSTM, Bidirectional, Stacked, Forecaster, fit, preset, TrainConfig, load_prices, prepare

Each name lives in the subpackage of its concern (``jaxlstm.nn``, ``jaxlstm.data``, ``jaxlstm.training``,
``jaxlstm.forecasting``, ``jaxlstm.introspect``, ``jaxlstm.runs``; docs/architecture.md draws them) and is loaded on
first use, so that ``import jaxlstm.data`` or ``jaxlstm --help`` does not import JAX (the benchmarks prepare the
peers' data with it, and a Keras-TensorFlow or PyTorch process should not pay for JAX).

``jaxlstm.__version__`` is the installed package's version (``jaxlstm --version`` prints it).

>>> import jaxlstm
>>> jaxlstm.preset("stacked").units
50
"""

from importlib import import_module, metadata
from typing import Any


def _installed_version() -> str:
    """The version of the installed distribution; ``0+unknown`` for a source tree that was never installed."""
    try:
        return metadata.version("jaxlstm")
    except metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()

_HOMES = {
    "BacktestConfig": "jaxlstm.config",
    "DataConfig": "jaxlstm.config",
    "ModelConfig": "jaxlstm.config",
    "RunConfig": "jaxlstm.config",
    "TrainConfig": "jaxlstm.config",
    "preset": "jaxlstm.config",
    "ConfigError": "jaxlstm.errors",
    "DataError": "jaxlstm.errors",
    "JaxlstmError": "jaxlstm.errors",
    "RunError": "jaxlstm.errors",
    "TrainingError": "jaxlstm.errors",
    "Gates": "jaxlstm.nn",
    "LSTMParams": "jaxlstm.nn",
    "LSTMState": "jaxlstm.nn",
    "lstm_step": "jaxlstm.nn",
    "lstm_update": "jaxlstm.nn",
    "LSTM": "jaxlstm.nn",
    "Bidirectional": "jaxlstm.nn",
    "Stacked": "jaxlstm.nn",
    "ConvLSTM1D": "jaxlstm.nn",
    "ConvLSTM2D": "jaxlstm.nn",
    "ConvLSTM3D": "jaxlstm.nn",
    "Forecaster": "jaxlstm.nn",
    "count_parameters": "jaxlstm.nn",
    "Dataset": "jaxlstm.data",
    "load_dataset": "jaxlstm.data",
    "load_prices": "jaxlstm.data",
    "prepare": "jaxlstm.data",
    "fetch_prices": "jaxlstm.data",
    "History": "jaxlstm.training",
    "fit": "jaxlstm.training",
    "fit_ensemble": "jaxlstm.training",
    "evaluate": "jaxlstm.forecasting",
    "forecast_scaled": "jaxlstm.forecasting",
    "make_folds": "jaxlstm.forecasting",
    "run_backtest": "jaxlstm.forecasting",
    "summarize": "jaxlstm.forecasting",
    "calibrate": "jaxlstm.forecasting",
    "trading_days": "jaxlstm.forecasting",
    "gradient_flow": "jaxlstm.introspect",
    "trace_gates": "jaxlstm.introspect",
    "load_run": "jaxlstm.runs",
    "load_backtest": "jaxlstm.runs",
    "forecast_run": "jaxlstm.runs",
    "forecast_refit": "jaxlstm.runs",
    "train_run": "jaxlstm.runs",
    "backtest_run": "jaxlstm.runs",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'jaxlstm' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return [*__all__, "__version__"]
