"""Cells and layers, no training and no prices: the LSTM's gate equations (:mod:`~jaxlstm.nn.cell`), the one time
loop (:mod:`~jaxlstm.nn.scan`), the fast path (:mod:`~jaxlstm.nn.fused`), the layers and their wrappers
(:mod:`~jaxlstm.nn.layers`, :mod:`~jaxlstm.nn.convlstm`), the tanh RNN (:mod:`~jaxlstm.nn.rnn`) and the forecaster
the presets build (:mod:`~jaxlstm.nn.models`).
"""

from jaxlstm.nn.cell import Gates, LSTMParams, LSTMState, lstm_gates, lstm_state, lstm_step, lstm_update
from jaxlstm.nn.convlstm import ConvLSTM, ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from jaxlstm.nn.fused import lstm_sequence
from jaxlstm.nn.layers import LSTM, Bidirectional, LayerTrace, RecurrentLayer, Stacked, scan_lstm
from jaxlstm.nn.models import Forecaster, count_parameters
from jaxlstm.nn.rnn import RNNCell, RNNForecaster
from jaxlstm.nn.scan import scan_cell

__all__ = [
    "LSTM",
    "Bidirectional",
    "ConvLSTM",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Forecaster",
    "Gates",
    "LSTMParams",
    "LSTMState",
    "LayerTrace",
    "RNNCell",
    "RNNForecaster",
    "RecurrentLayer",
    "Stacked",
    "count_parameters",
    "lstm_gates",
    "lstm_sequence",
    "lstm_state",
    "lstm_step",
    "lstm_update",
    "scan_cell",
    "scan_lstm",
]
