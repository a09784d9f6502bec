"""The forecaster: a stack of (bidirectional) LSTM layers, dropout after each, and a Dense(1) head.

Presets reproduce the tutorial's Keras models, parameter for parameter:

==============  ====================================================================  ==========
preset          layers                                                                parameters
==============  ====================================================================  ==========
vanilla         LSTM(50), Dropout(0.2), Dense(1)                                          10,451
stacked         4 x [LSTM(50), Dropout(0.2)], Dense(1)                                    71,051
bidirectional   4 x [Bidirectional(LSTM(50)), Dropout(0.2)], Dense(1)                    202,101
conv            4 x 15 days, ConvLSTM1D(64, 3), Dropout(0.2), Flatten, Dense(1)           51,009
==============  ====================================================================  ==========

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> model = Forecaster(preset("stacked"), rngs=nnx.Rngs(0))
>>> count_parameters(model)
71051
>>> model(jnp.ones((32, 60, 1))).shape
(32,)
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal, get_args

import jax
from flax import nnx

from jaxlstm.convlstm import ConvLSTM1D, to_subsequences
from jaxlstm.errors import ConfigError
from jaxlstm.layers import LSTM, Bidirectional, Stacked

Array = jax.Array
Architecture = Literal["vanilla", "stacked", "bidirectional", "conv"]
ARCHITECTURES: tuple[str, ...] = get_args(Architecture)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a :class:`Forecaster`; saved with every run.

    Attributes:
        arch: ``vanilla`` (one LSTM layer), ``stacked``, ``bidirectional`` or ``conv`` (ConvLSTM1D layers over
            sub-sequences of the window, see :mod:`jaxlstm.convlstm`).
        layers: number of recurrent layers.
        units: H, the units of each LSTM (per direction); the filters of each ConvLSTM.
        dropout: rate of the dropout after every recurrent layer.
        n_features: size of each input vector (1 for the tutorial's ``Open`` column).
        subsequence_length: ``conv`` only: days per ConvLSTM step (a 60-day window is read as 4 steps of 15 days).
        kernel_size: ``conv`` only: width of the ConvLSTM kernels, in days ("valid" padding).
    """

    arch: Architecture = "stacked"
    layers: int = 4
    units: int = 50
    dropout: float = 0.2
    n_features: int = 1
    subsequence_length: int = 15  # conv only, like kernel_size; repr shows them for the conv architecture alone
    kernel_size: int = 3

    def __repr__(self) -> str:
        shown = [f.name for f in dataclasses.fields(self) if self.arch == "conv" or f.name in _LSTM_FIELDS]
        return f"ModelConfig({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ConfigError(f"unknown architecture {self.arch!r}; use one of {', '.join(ARCHITECTURES)}")
        for name in ("layers", "units", "n_features", "subsequence_length", "kernel_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.arch == "vanilla" and self.layers != 1:
            raise ConfigError(f"the vanilla architecture has one layer, got layers={self.layers}; use --arch stacked")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.arch == "conv" and self.subsequence_length - self.layers * (self.kernel_size - 1) < 1:
            raise ConfigError(
                f"{self.layers} ConvLSTM layer(s) with kernel {self.kernel_size} leave no day of a "
                f"{self.subsequence_length}-day sub-sequence; use fewer layers or a smaller kernel"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


_LSTM_FIELDS = ("arch", "layers", "units", "dropout", "n_features")


def preset(
    arch: Architecture,
    *,
    layers: int | None = None,
    units: int | None = None,
    dropout: float | None = None,
    n_features: int = 1,
) -> ModelConfig:
    """The tutorial's model for ``arch`` (see the table above), with any field overridden."""
    default_layers = 1 if arch in ("vanilla", "conv") else 4
    return ModelConfig(
        arch=arch,
        layers=default_layers if layers is None else layers,
        units=(64 if arch == "conv" else 50) if units is None else units,
        dropout=0.2 if dropout is None else dropout,
        n_features=n_features,
    )


class Forecaster(nnx.Module):
    """Maps windows (batch, time, n_features) to one scaled next-day value per window, (batch,)."""

    def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
        self.config = config
        if config.arch == "conv":  # issue 5: ConvLSTM1D layers over sub-sequences, then Flatten
            self._init_conv(config, rngs)
            return
        layers = []
        in_features = config.n_features
        for index in range(config.layers):
            return_sequences = index < config.layers - 1

            def lstm(reverse: bool, in_features: int = in_features, return_sequences: bool = return_sequences) -> LSTM:
                return LSTM(in_features, config.units, return_sequences=return_sequences, reverse=reverse, rngs=rngs)

            layer = Bidirectional(lstm(False), lstm(True)) if config.arch == "bidirectional" else lstm(False)
            layers.append(layer)
            in_features = layer.out_features
        self.recurrent = Stacked(layers, dropout=config.dropout)
        self.head = nnx.Linear(in_features, 1, kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)

    def _init_conv(self, config: ModelConfig, rngs: nnx.Rngs) -> None:
        layers, shape = [], (config.subsequence_length, config.n_features)
        for index in range(config.layers):
            layer = ConvLSTM1D(
                shape[-1], config.units, config.kernel_size, return_sequences=index < config.layers - 1, rngs=rngs
            )
            layers.append(layer)
            shape = layer.output_shape(shape[:-1])
        self.recurrent = Stacked(layers, dropout=config.dropout)
        self.head = nnx.Linear(math.prod(shape), 1, kernel_init=nnx.initializers.glorot_uniform(), rngs=rngs)

    def __call__(self, x: Array, *, dropout_key: Array | None = None) -> Array:
        """Scaled predictions (batch,); dropout is active only when ``dropout_key`` is given."""
        if self.config.arch == "conv":
            x = to_subsequences(x, self.config.subsequence_length)
            features = self.recurrent(x, dropout_key=dropout_key)
            return self.head(features.reshape(features.shape[0], -1))[..., 0]
        return self.head(self.recurrent(x, dropout_key=dropout_key))[..., 0]


def count_parameters(model: nnx.Module) -> int:
    """Number of trainable scalars, counted as Keras's ``model.count_params()`` does."""
    return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
