"""The forecaster: a stack of recurrent layers, dropout after each, and a Dense head on the last output: Dense(1)
for the next day, Dense(H) for a direct H-day forecast (``ModelConfig.outputs``).

:class:`Forecaster` builds the model a :class:`~jaxlstm.config.ModelConfig` describes; the presets of
:func:`~jaxlstm.config.preset` reproduce the tutorial's Keras models parameter for parameter (vanilla 10,451,
stacked 71,051, bidirectional 202,101, conv 51,009).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> model = Forecaster(preset("stacked"), rngs=nnx.Rngs(0))
>>> count_parameters(model)
71051
>>> model(jnp.ones((32, 60, 1))).shape
(32,)
>>> Forecaster(preset("vanilla", outputs=5), rngs=nnx.Rngs(0))(jnp.ones((32, 60, 1))).shape
(32, 5)
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.config import ModelConfig
from jaxlstm.nn.convlstm import ConvLSTM1D, to_subsequences
from jaxlstm.nn.gru import GRU
from jaxlstm.nn.layers import LSTM, Bidirectional, CellLayer, LayerTrace, RecurrentLayer, Stacked
from jaxlstm.nn.rnn import SimpleRNN
from jaxlstm.nn.variants import LSTMVariant

__all__ = ["Forecaster", "cell_layer", "count_parameters", "recurrent_layers"]

Array = jax.Array


def recurrent_layers(
    config: ModelConfig, rngs: nnx.Rngs, *, last_returns_sequences: bool = False
) -> tuple[list[RecurrentLayer], int]:
    """The recurrent layers of ``config``'s model, in order, and the width of the last one's output, flattened.

    ``vanilla``/``stacked``: layers of ``config.cell`` (:func:`cell_layer`); ``bidirectional``: each in a
    :class:`~jaxlstm.nn.Bidirectional`;
    ``conv``: ConvLSTM1D layers reading sub-sequences of ``subsequence_length`` days. Every layer but the last
    returns sequences (the last too with ``last_returns_sequences``; not for ``conv``).
    """
    layers: list[RecurrentLayer] = []
    mixed = {} if config.precision == "float32" else {"dtype": config.precision, "cell_dtype": jnp.float32}
    if config.arch == "conv":
        shape = (config.subsequence_length, config.n_features)
        for index in range(config.layers):
            layer = ConvLSTM1D(
                shape[-1],
                config.units,
                config.kernel_size,
                return_sequences=index < config.layers - 1,
                unroll=config.unroll,
                convolution=config.convolution,
                **mixed,
                rngs=rngs,
            )
            layers.append(layer)
            shape = layer.output_shape(shape[:-1])
        return layers, math.prod(shape)
    in_features = config.n_features
    for index in range(config.layers):
        sequences = last_returns_sequences or index < config.layers - 1
        options = {"return_sequences": sequences, "unroll": config.unroll, **mixed, "rngs": rngs}
        layer: RecurrentLayer = cell_layer(config, in_features, **options)
        if config.arch == "bidirectional":
            layer = Bidirectional(layer, cell_layer(config, in_features, reverse=True, **options))
        layers.append(layer)
        in_features = layer.out_features
    return layers, in_features


def cell_layer(config: ModelConfig, in_features: int, **options: Any) -> CellLayer:
    """One layer of ``config.cell`` reading ``in_features``, with ``config.units`` units and the layer ``options``:
    an :class:`~jaxlstm.nn.LSTM` (with the fast-path choices), a :class:`~jaxlstm.nn.GRU`, a
    :class:`~jaxlstm.nn.SimpleRNN` or an :class:`~jaxlstm.nn.LSTMVariant`."""
    if config.cell == "lstm":
        fast_path = {"implementation": config.implementation, "hoist_input": config.hoist_input}
        return LSTM(in_features, config.units, **fast_path, **options)
    if config.cell in ("gru", "rnn"):
        options.pop("cell_dtype", None)  # no cell state
        return (GRU if config.cell == "gru" else SimpleRNN)(in_features, config.units, **options)
    return LSTMVariant(in_features, config.units, config.cell, **options)


class Forecaster(nnx.Module):
    """Maps windows (batch, time, n_features) to scaled forecasts: (batch,), the next day, for one output;
    (batch, outputs), the next ``outputs`` days, for more. Forecasts are float32 whatever the compute precision
    (``ModelConfig.precision``).

    Dropout runs exactly when a call passes a ``dropout_key`` (training and Monte Carlo dropout draw their masks from
    explicit keys, so that every training step is a pure function); a call without one is inference. There is no
    training mode to switch: ``model.train()`` raises, saying so, rather than do nothing.

    >>> model = Forecaster(ModelConfig(units=4), rngs=nnx.Rngs(0))
    >>> x = jnp.ones((2, 60, 1))
    >>> bool(jnp.all(model(x) == model(x))), bool(jnp.all(model(x) == model(x, dropout_key=jax.random.key(0))))
    (True, False)

    Attributes:
        config: the :class:`~jaxlstm.config.ModelConfig` it was built from.
        recurrent: the :class:`~jaxlstm.nn.Stacked` layers, with the dropout after each.
        head: Dense(outputs) on the last layer's output (flattened: a ConvLSTM's final state has positions).
    """

    last_returns_sequences = False  # PerStepModel's head reads every step

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        layers, width = recurrent_layers(config, rngs, last_returns_sequences=self.last_returns_sequences)
        self.recurrent = Stacked(layers, dropout=config.dropout)
        self.head = nnx.Linear(
            width,
            config.outputs,
            kernel_init=nnx.initializers.glorot_uniform(),
            dtype=None if config.precision == "float32" else config.precision,
            rngs=rngs,
        )

    def train(self, **attributes: Any) -> None:
        """Raises: a Forecaster has no training mode; its dropout runs when a call passes a ``dropout_key``."""
        raise TypeError(
            "a jaxlstm Forecaster has no training mode: its dropout runs when a call passes a key, "
            "model(x, dropout_key=jax.random.key(seed)), and a call without one is inference (fit draws its own keys)"
        )

    def stack_inputs(self, x: Array) -> Array:
        """What the recurrent stack reads: the windows (batch, time, features) themselves, or for ``conv`` the
        windows cut into sub-sequences (batch, time // length, length, features)."""
        return to_subsequences(x, self.config.subsequence_length) if self.config.arch == "conv" else x

    def __call__(
        self,
        x: Array,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
        dropout_key: Array | None = None,
    ) -> Array:
        """Scaled forecasts (batch,) or (batch, outputs) for windows x (batch, time, n_features); dropout only with a
        key. A ``mask`` (batch, time) or ``lengths`` (batch,) lets windows of different lengths share a batch (each
        padded at its end; see :class:`~jaxlstm.nn.LSTM`); ``conv`` reads days in blocks and refuses them.

        Raises:
            ValueError: a mask or lengths for the ``conv`` architecture.
        """
        if self.config.arch == "conv" and (mask is not None or lengths is not None):
            raise ValueError(
                "the conv architecture reads its window in blocks of days, which a per-day mask or lengths cannot "
                "skip; pad the windows to full length instead"
            )
        features = self.recurrent(self.stack_inputs(x), mask=mask, lengths=lengths, dropout_key=dropout_key)
        forecasts = self.head(features.reshape(features.shape[0], -1))
        if self.config.precision != "float32":
            forecasts = forecasts.astype(jnp.float32)
        return forecasts[..., 0] if self.config.outputs == 1 else forecasts

    def trace(self, x: Array) -> list[LayerTrace]:
        """Every gate and state of every recurrent layer and direction over windows x (batch, time, n_features), as
        :meth:`~jaxlstm.nn.Stacked.trace` gives them (a ``conv`` model's windows cut into sub-sequences
        first)."""
        return self.recurrent.trace(self.stack_inputs(x))


class PerStepModel(Forecaster):
    """A :class:`Forecaster` whose head reads every step: windows (batch, time, n_features) -> (batch, time, outputs)
    (Keras's ``return_sequences=True`` and ``TimeDistributed(Dense(outputs))``), for tasks with a target at every
    step such as the copy task. Built from the same :class:`~jaxlstm.config.ModelConfig` (``conv`` excepted).

    >>> model = PerStepModel(ModelConfig(arch="vanilla", layers=1, units=4, outputs=3, dropout=0.0), rngs=nnx.Rngs(0))
    >>> model(jnp.ones((2, 7, 1))).shape
    (2, 7, 3)
    """

    last_returns_sequences = True

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        if config.arch == "conv":
            raise ValueError("a per-step head reads one output per input step; the conv architecture reads blocks")
        super().__init__(config, rngs=rngs)

    def __call__(
        self, x: Array, *, mask: Array | None = None, lengths: Array | None = None, dropout_key: Array | None = None
    ) -> Array:
        """Outputs (batch, time, outputs) for x (batch, time, n_features); see :meth:`Forecaster.__call__`."""
        features = self.recurrent(x, mask=mask, lengths=lengths, dropout_key=dropout_key)
        return self.head(features).astype(jnp.float32)


def count_parameters(model: nnx.Module) -> int:
    """Number of trainable scalars, counted as Keras's ``model.count_params()`` does."""
    return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
