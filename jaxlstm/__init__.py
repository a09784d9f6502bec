"""jaxlstm: an LSTM whose gates are written out by hand in JAX, trained fast under ``jax.jit``."""

from jaxlstm.cell import Gates, LSTMParams, LSTMState, lstm_step, lstm_update
from jaxlstm.errors import ConfigError, DataError, JaxlstmError, RunError, TrainingError

__all__ = [
    "ConfigError",
    "DataError",
    "Gates",
    "JaxlstmError",
    "LSTMParams",
    "LSTMState",
    "RunError",
    "TrainingError",
    "lstm_step",
    "lstm_update",
]
