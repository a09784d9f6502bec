"""Cells and layers, no training and no prices: the LSTM's gate equations (:mod:`~jaxlstm.nn.cell`), the other cells
of the family, each written out once (the GRU, :mod:`~jaxlstm.nn.gru`; the tanh RNN, :mod:`~jaxlstm.nn.rnn`; Greff et
al.'s LSTM variants, :mod:`~jaxlstm.nn.variants`), the one time loop (:mod:`~jaxlstm.nn.scan`), the LSTM's fast path
(:mod:`~jaxlstm.nn.fused`), the layers and their wrappers (:mod:`~jaxlstm.nn.layers`, :mod:`~jaxlstm.nn.convlstm`)
and the forecaster the presets build (:mod:`~jaxlstm.nn.models`).
"""

from jaxlstm.nn.cell import Gates, LSTMParams, LSTMState, lstm_gates, lstm_state, lstm_step, lstm_update
from jaxlstm.nn.convlstm import ConvLSTM, ConvLSTM1D, ConvLSTM2D, ConvLSTM3D
from jaxlstm.nn.fused import lstm_sequence
from jaxlstm.nn.gru import GRU, GRUGates, GRUParams, gru_update
from jaxlstm.nn.layers import LSTM, Bidirectional, CellLayer, LayerTrace, RecurrentLayer, Stacked, scan_layer, scan_lstm
from jaxlstm.nn.models import Forecaster, PerStepModel, count_parameters
from jaxlstm.nn.rnn import HiddenState, RNNForecaster, SimpleRNN, rnn_update
from jaxlstm.nn.scan import scan_cell, scan_steps
from jaxlstm.nn.variants import VARIANTS, LSTMVariant, VariantState, variant_update

__all__ = [
    "GRU",
    "LSTM",
    "VARIANTS",
    "Bidirectional",
    "CellLayer",
    "ConvLSTM",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "Forecaster",
    "GRUGates",
    "GRUParams",
    "Gates",
    "HiddenState",
    "LSTMParams",
    "LSTMState",
    "LSTMVariant",
    "LayerTrace",
    "PerStepModel",
    "RNNForecaster",
    "RecurrentLayer",
    "SimpleRNN",
    "Stacked",
    "VariantState",
    "count_parameters",
    "gru_update",
    "lstm_gates",
    "lstm_sequence",
    "lstm_state",
    "lstm_step",
    "lstm_update",
    "rnn_update",
    "scan_cell",
    "scan_layer",
    "scan_lstm",
    "scan_steps",
    "variant_update",
]
