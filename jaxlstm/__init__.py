"""jaxlstm: an LSTM whose gates are written out by hand in JAX, trained fast under ``jax.jit``.

The public API, importable from here::

    from jaxlstm import LSTM, Bidirectional, Stacked, Forecaster, fit, preset, TrainConfig, load_prices, prepare

The names are loaded on first use, so that ``import jaxlstm.data`` or ``jaxlstm --help`` does not import JAX (the
benchmarks prepare the peers' data with it, and a Keras-TensorFlow or PyTorch process should not pay for JAX).

>>> import jaxlstm
>>> jaxlstm.preset("stacked").units
50
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "make_folds": "jaxlstm.backtest",
    "run_backtest": "jaxlstm.backtest",
    "summarize": "jaxlstm.backtest",
    "calibrate": "jaxlstm.calibration",
    "Gates": "jaxlstm.cell",
    "LSTMParams": "jaxlstm.cell",
    "LSTMState": "jaxlstm.cell",
    "lstm_step": "jaxlstm.cell",
    "lstm_update": "jaxlstm.cell",
    "BacktestConfig": "jaxlstm.config",
    "DataConfig": "jaxlstm.config",
    "ModelConfig": "jaxlstm.config",
    "RunConfig": "jaxlstm.config",
    "TrainConfig": "jaxlstm.config",
    "preset": "jaxlstm.config",
    "ConvLSTM1D": "jaxlstm.convlstm",
    "ConvLSTM2D": "jaxlstm.convlstm",
    "ConvLSTM3D": "jaxlstm.convlstm",
    "Dataset": "jaxlstm.data",
    "load_dataset": "jaxlstm.data",
    "load_prices": "jaxlstm.data",
    "prepare": "jaxlstm.data",
    "fit_ensemble": "jaxlstm.ensemble",
    "fetch_prices": "jaxlstm.fetch",
    "ConfigError": "jaxlstm.errors",
    "DataError": "jaxlstm.errors",
    "JaxlstmError": "jaxlstm.errors",
    "RunError": "jaxlstm.errors",
    "TrainingError": "jaxlstm.errors",
    "evaluate": "jaxlstm.evaluate",
    "forecast_scaled": "jaxlstm.evaluate",
    "forecast_refit": "jaxlstm.forecast",
    "forecast_run": "jaxlstm.forecast",
    "trading_days": "jaxlstm.forecast",
    "gradient_flow": "jaxlstm.introspect",
    "trace_gates": "jaxlstm.introspect",
    "LSTM": "jaxlstm.layers",
    "Bidirectional": "jaxlstm.layers",
    "Stacked": "jaxlstm.layers",
    "Forecaster": "jaxlstm.models",
    "count_parameters": "jaxlstm.models",
    "load_backtest": "jaxlstm.runs",
    "load_run": "jaxlstm.runs",
    "History": "jaxlstm.train",
    "fit": "jaxlstm.train",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'jaxlstm' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return __all__
