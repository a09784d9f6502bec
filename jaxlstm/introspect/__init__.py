"""Looking inside the LSTM: every gate over a real window (:mod:`~jaxlstm.introspect.gates`), and how far back a
gradient reaches (:mod:`~jaxlstm.introspect.gradients`).
"""

from jaxlstm.introspect.gates import GATE_NAMES, GateTrace, trace_gates
from jaxlstm.introspect.gradients import (
    curve_summary,
    decay_per_step,
    fresh_curves,
    gradient_flow,
    set_forget_bias,
    trained_rnn_curves,
)
from jaxlstm.introspect.statistics import LEFT, RIGHT, Saturation, connectivity, last_hidden_states, saturation

__all__ = [
    "GATE_NAMES",
    "LEFT",
    "RIGHT",
    "GateTrace",
    "Saturation",
    "connectivity",
    "curve_summary",
    "decay_per_step",
    "fresh_curves",
    "gradient_flow",
    "last_hidden_states",
    "saturation",
    "set_forget_bias",
    "trace_gates",
    "trained_rnn_curves",
]
