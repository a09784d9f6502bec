"""jaxlstm: an LSTM whose gates are written out by hand in JAX, trained fast under ``jax.jit``.

The names below are loaded on first use, so that ``import jaxlstm.data`` does not import JAX (the benchmarks
prepare the peers' data with it, and a Keras-TensorFlow or PyTorch process should not pay for importing JAX).
"""

from importlib import import_module
from typing import Any

_HOMES = {
    "Gates": "jaxlstm.cell",
    "LSTMParams": "jaxlstm.cell",
    "LSTMState": "jaxlstm.cell",
    "lstm_step": "jaxlstm.cell",
    "lstm_update": "jaxlstm.cell",
    "ConfigError": "jaxlstm.errors",
    "DataError": "jaxlstm.errors",
    "JaxlstmError": "jaxlstm.errors",
    "RunError": "jaxlstm.errors",
    "TrainingError": "jaxlstm.errors",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'jaxlstm' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
