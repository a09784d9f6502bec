"""Presets against the tutorial's Keras models: the same parameter counts, layer by layer."""

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.config import ModelConfig, preset
from jaxlstm.errors import ConfigError
from jaxlstm.nn.models import Forecaster, count_parameters
from tests import numpy_lstm

keras = pytest.importorskip("keras")


def keras_tutorial_model(arch: str) -> "keras.Model":
    """The tutorial's Keras code: LSTM(50) layers, Dropout(0.2) after each, Dense(1)."""
    layers = [keras.Input((60, 1))]
    n_layers = 1 if arch == "vanilla" else 4
    for index in range(n_layers):
        lstm = keras.layers.LSTM(50, return_sequences=index < n_layers - 1)
        layers += [keras.layers.Bidirectional(lstm) if arch == "bidirectional" else lstm, keras.layers.Dropout(0.2)]
    return keras.Sequential([*layers, keras.layers.Dense(1)])


@pytest.mark.parametrize(("arch", "expected"), [("vanilla", 10_451), ("stacked", 71_051), ("bidirectional", 202_101)])
def test_parameter_count_equals_keras(arch: str, expected: int) -> None:
    ours = count_parameters(Forecaster(preset(arch), rngs=nnx.Rngs(0)))
    assert ours == keras_tutorial_model(arch).count_params() == expected


@pytest.mark.parametrize("arch", ["vanilla", "stacked", "bidirectional"])
def test_forecast_without_dropout_equals_the_textbook_chain(arch: str) -> None:
    """Oracle: the textbook NumPy LSTM run layer by layer (both directions concatenated), then the Dense head."""
    model = Forecaster(preset(arch, units=8), rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).random((5, 12, 1)).astype(np.float32)
    hidden = x
    for index, layer in enumerate(model.recurrent.layers):
        last = index == len(model.recurrent.layers) - 1
        directions = (
            [(layer, False)]
            if arch != "bidirectional"
            else [(layer.forward_layer, False), (layer.backward_layer, True)]
        )
        runs = [numpy_lstm.run(*part.params, hidden, reverse=reverse) for part, reverse in directions]
        hidden = np.concatenate([h if last else outputs for outputs, h, _ in runs], axis=-1)
    expected = hidden @ np.asarray(model.head.kernel[...]) + np.asarray(model.head.bias[...])
    np.testing.assert_allclose(model(jnp.asarray(x)), expected[:, 0], atol=1e-5)


def test_initialisation_follows_keras() -> None:
    """Unit forget bias, orthogonal recurrent kernel, glorot-uniform bounds, as Keras's LSTM defaults."""
    layer = Forecaster(preset("vanilla"), rngs=nnx.Rngs(0)).recurrent.layers[0]
    b, U, W = np.asarray(layer.b[...]), np.asarray(layer.U[...]), np.asarray(layer.W[...])
    np.testing.assert_array_equal(b, np.r_[np.zeros(50), np.ones(50), np.zeros(100)])
    np.testing.assert_allclose(U @ U.T, np.eye(50), atol=1e-5)
    assert np.abs(W).max() <= np.sqrt(6 / (1 + 200))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layers": 0}, "--layers 0: must be a whole number >= 1"),
        ({"units": -3}, "--units -3: must be a whole number >= 1"),
        ({"dropout": 1.0}, r"--dropout 1.0: must be at least 0 and below 1"),
        ({"arch": "vanilla", "layers": 2}, "vanilla architecture has one layer"),
        ({"arch": "gru"}, "--arch 'gru': unknown arch; use one of vanilla, stacked"),
    ],
)
def test_bad_config_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)
