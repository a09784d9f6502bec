"""ConvLSTM against a NumPy convolutional LSTM written with explicit loops (one kernel per gate), against Keras 3's
ConvLSTM1D/ConvLSTM2D/Bidirectional on the JAX backend with Keras's weights loaded, and the `conv` forecaster."""

import itertools
import json
import math
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.commands import main
from jaxlstm.config import preset
from jaxlstm.introspect import trace_gates
from jaxlstm.nn.convlstm import ConvLSTM1D, ConvLSTM2D, conv_output_length, convolve
from jaxlstm.nn.layers import Bidirectional, Stacked
from jaxlstm.nn.models import Forecaster, count_parameters

keras = pytest.importorskip("keras")


# --- the NumPy oracle ----------------------------------------------------------------------------------------


def numpy_conv(x: np.ndarray, kernel: np.ndarray, strides, padding: str, dilation) -> np.ndarray:
    """Channels-last convolution by explicit loops over output positions and kernel taps (TensorFlow's padding)."""
    rank = kernel.ndim - 2
    sizes, taps = x.shape[1:-1], kernel.shape[:rank]
    pads, outs = [], []
    for n, k, s, d in zip(sizes, taps, strides, dilation, strict=True):
        span = (k - 1) * d + 1
        if padding == "same":
            out = math.ceil(n / s)
            total = max((out - 1) * s + span - n, 0)
            pads.append((total // 2, total - total // 2))
        else:
            out = (n - span) // s + 1
            pads.append((0, 0))
        outs.append(out)
    padded = np.pad(x, [(0, 0), *pads, (0, 0)])
    y = np.zeros((x.shape[0], *outs, kernel.shape[-1]))
    for position in np.ndindex(*outs):
        for tap in np.ndindex(*taps):
            source = tuple(p * s + q * d for p, q, s, d in zip(position, tap, strides, dilation, strict=True))
            y[(slice(None), *position)] += padded[(slice(None), *source)] @ kernel[tap]
    return y


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def numpy_convlstm(kernel, recurrent, bias, x, *, strides, padding, dilation, reverse=False) -> np.ndarray:
    """The ConvLSTM of Shi et al. (2015), one convolution pair per gate, i, f, g (Keras's c), o; every h."""
    kernel, recurrent, bias, x = (np.asarray(a, np.float64) for a in (kernel, recurrent, bias, x))
    ks, rs, bs = (np.split(a, 4, axis=-1) for a in (kernel, recurrent, bias))
    ones = (1,) * (kernel.ndim - 2)

    def preactivation(k: int, x_t: np.ndarray, h: np.ndarray) -> np.ndarray:
        return numpy_conv(x_t, ks[k], strides, padding, dilation) + bs[k] + numpy_conv(h, rs[k], ones, "same", ones)

    time = x.shape[1]
    first = numpy_conv(x[:, 0], ks[0], strides, padding, dilation)
    h, c = np.zeros(first.shape), np.zeros(first.shape)
    outputs = np.zeros((x.shape[0], time, *first.shape[1:]))
    for t in range(time - 1, -1, -1) if reverse else range(time):
        i = sigmoid(preactivation(0, x[:, t], h))
        f = sigmoid(preactivation(1, x[:, t], h))
        g = np.tanh(preactivation(2, x[:, t], h))
        o = sigmoid(preactivation(3, x[:, t], h))
        c = f * c + i * g
        h = o * np.tanh(c)
        outputs[:, t] = h
    return outputs


ZEROS = nnx.initializers.zeros_init()


def make(cls, *args, seed: int | None = 0, **kwargs):
    """A layer built without JAX's random initialisers (each new shape costs a compile), then NumPy weights."""
    layer = cls(*args, kernel_init=ZEROS, recurrent_init=ZEROS, bias_init=ZEROS, rngs=nnx.Rngs(0), **kwargs)
    if seed is not None:
        rng = np.random.default_rng(seed)
        for param, scale in ((layer.kernel, 0.4), (layer.recurrent_kernel, 0.3), (layer.bias, 0.5)):
            param[...] = jnp.asarray(rng.normal(0, scale, param.shape), jnp.float32)
    return layer


def load(layer, keras_layer) -> None:
    """Keras's weights, as they are: kernel, recurrent_kernel, bias."""
    kernel, recurrent, bias = keras_layer.get_weights()
    layer.kernel[...], layer.recurrent_kernel[...], layer.bias[...] = kernel, recurrent, bias


# --- against the NumPy oracle --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("padding", "strides", "dilation", "reverse"),
    [("valid", 1, 1, False), ("same", 2, 1, True), ("valid", 1, 2, False)],
)
def test_convlstm1d_equals_numpy_loops(padding: str, strides: int, dilation: int, reverse: bool) -> None:
    layer = make(ConvLSTM1D, 2, 3, 3, strides=strides, padding=padding, dilation_rate=dilation, reverse=reverse)
    x = np.random.default_rng(1).normal(size=(2, 4, 11, 2)).astype(np.float32)
    expected = numpy_convlstm(
        *layer.params, x, strides=(strides,), padding=padding, dilation=(dilation,), reverse=reverse
    )
    assert layer(x).shape == expected.shape
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


@pytest.mark.parametrize("implementation", ["gemm", "xla"])
def test_convlstm2d_equals_numpy_loops(implementation: str) -> None:
    layer = make(ConvLSTM2D, 2, 3, (3, 2), strides=(2, 1), padding="same", convolution=implementation)
    x = np.random.default_rng(2).normal(size=(2, 3, 7, 5, 2)).astype(np.float32)
    expected = numpy_convlstm(*layer.params, x, strides=(2, 1), padding="same", dilation=(1, 1))
    assert expected.shape == (2, 3, 4, 5, 3)
    np.testing.assert_allclose(layer(x), expected, atol=1e-5)


@pytest.mark.parametrize("rank", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_matmul_convolution_equals_xla_convolution(rank: int) -> None:
    rng = np.random.default_rng(rank)
    x = rng.normal(size=(2, *(9, 8, 7)[:rank], 3)).astype(np.float32)
    kernel = rng.normal(size=(*(3, 2, 3)[:rank], 3, 5)).astype(np.float32)
    for padding, strides, dilation in itertools.product(("valid", "same"), (1, 2, 3), (1, 2)):
        if strides > 1 and dilation > 1:
            continue  # Keras refuses the combination
        options = {"strides": strides, "padding": padding, "dilation": dilation}
        ours = convolve(x, kernel, convolution="gemm", **options)
        np.testing.assert_allclose(ours, convolve(x, kernel, convolution="xla", **options), atol=2e-5)
        if rank == 1:
            expected = numpy_conv(x, kernel, (strides,), padding, (dilation,))
            np.testing.assert_allclose(ours, expected, atol=2e-5)


def test_output_shape_and_lengths() -> None:
    layer = make(ConvLSTM1D, 1, 4, 3, strides=2, padding="valid")
    assert layer.output_shape((15,)) == (7, 4) == layer(jnp.ones((1, 2, 15, 1))).shape[2:]
    assert [conv_output_length(15, 3, s, p) for s in (1, 2) for p in ("valid", "same")] == [13, 15, 7, 8]


# --- against Keras -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"padding": "valid", "return_sequences": True},
        {"padding": "same", "strides": 2, "return_sequences": False, "go_backwards": True},
    ],
)
def test_convlstm1d_equals_keras_with_its_weights(options: dict) -> None:
    x = np.random.default_rng(3).normal(size=(3, 5, 11, 2)).astype(np.float32)
    theirs = keras.layers.ConvLSTM1D(4, 3, **options)
    expected = np.asarray(theirs(x))
    mine = {k: v for k, v in options.items() if k != "go_backwards"}
    ours = make(ConvLSTM1D, 2, 4, 3, reverse=options.get("go_backwards", False), seed=None, **mine)
    load(ours, theirs)
    assert np.abs(np.asarray(ours(x)) - expected).max() < 1e-5  # measured: 1.2e-7


def test_convlstm2d_equals_keras_with_its_weights() -> None:
    x = np.random.default_rng(4).normal(size=(2, 3, 7, 6, 3)).astype(np.float32)
    theirs = keras.layers.ConvLSTM2D(5, (3, 2), padding="same", strides=(2, 1), return_sequences=True)
    expected = np.asarray(theirs(x))
    ours = make(ConvLSTM2D, 3, 5, (3, 2), padding="same", strides=(2, 1), seed=None)
    load(ours, theirs)
    assert np.abs(np.asarray(ours(x)) - expected).max() < 1e-5


def test_bidirectional_and_stacked_wrap_convlstm_unchanged() -> None:
    x = np.random.default_rng(5).normal(size=(2, 4, 9, 1)).astype(np.float32)
    first = Bidirectional(
        make(ConvLSTM1D, 1, 3, 3, padding="same", seed=0),
        make(ConvLSTM1D, 1, 3, 3, padding="same", reverse=True, seed=1),
    )
    second = make(ConvLSTM1D, 6, 2, 3, return_sequences=False, seed=2)
    stack = Stacked([first, second])
    assert first.out_features == 6 and stack.out_features == 2
    options = {"strides": (1,), "dilation": (1,)}
    forward = numpy_convlstm(*first.forward_layer.params, x, padding="same", **options)
    backward = numpy_convlstm(*first.backward_layer.params, x, padding="same", reverse=True, **options)
    merged = np.concatenate([forward, backward], axis=-1)  # channels-last: concat along the filters
    np.testing.assert_allclose(first(x), merged, atol=1e-5)
    expected = numpy_convlstm(*second.params, merged, padding="valid", **options)[:, -1]
    np.testing.assert_allclose(stack(x), expected, atol=1e-5)
    traces = trace_gates(stack, x)  # the traces follow the same layers
    assert [(t.layer, t.direction) for t in traces] == [(0, "forward"), (0, "backward"), (1, "forward")]
    assert traces[0].forget.shape == (2, 4, 9, 3) and traces[-1].h.shape == (2, 4, 7, 2)
    np.testing.assert_allclose(traces[1].h, backward, atol=1e-5)
    np.testing.assert_allclose(traces[-1].h[:, -1], expected, atol=1e-5)


def test_default_initialisation_is_keras_s() -> None:
    theirs = keras.layers.ConvLSTM1D(8, 3)
    theirs.build((None, 4, 15, 2))
    ours = ConvLSTM1D(2, 8, 3, rngs=nnx.Rngs(0))
    for kernel, recurrent, bias in (theirs.get_weights(), [np.asarray(a) for a in ours.params]):
        # unit_forget_bias=True: zeros, with the forget slice at 1
        np.testing.assert_array_equal(bias, np.repeat([0.0, 1.0, 0.0, 0.0], 8))
        # orthogonal recurrent kernel: flattened to (3 * 8, 32), its rows are orthonormal
        flat = recurrent.reshape(-1, recurrent.shape[-1])
        np.testing.assert_allclose(flat @ flat.T, np.eye(24), atol=1e-5)
        # glorot-uniform kernel: fan_in = 3 * 2, fan_out = 3 * 32
        assert np.abs(kernel).max() <= math.sqrt(6 / (3 * 2 + 3 * 32))
        assert kernel.shape == (3, 2, 32) and recurrent.shape == (3, 8, 32)


# --- the conv forecaster -------------------------------------------------------------------------------------


def test_conv_preset_equals_keras_convlstm1d_flatten_dense() -> None:
    theirs = keras.Sequential(
        [
            keras.Input((4, 15, 1)),
            keras.layers.ConvLSTM1D(64, 3),
            keras.layers.Dropout(0.2),
            keras.layers.Flatten(),
            keras.layers.Dense(1),
        ]
    )
    model = Forecaster(preset("conv"), rngs=nnx.Rngs(0))
    assert count_parameters(model) == theirs.count_params() == 51009
    conv, _, _, dense = theirs.layers
    load(model.recurrent.layers[0], conv)
    model.head.kernel[...], model.head.bias[...] = dense.get_weights()
    x = np.random.default_rng(6).uniform(size=(5, 60, 1)).astype(np.float32)  # the tutorial's windows
    expected = np.asarray(theirs(x.reshape(5, 4, 15, 1)))[:, 0]
    np.testing.assert_allclose(model(x), expected, atol=1e-5)


@pytest.mark.slow
def test_conv_runs_through_train_predict_and_gates(tmp_path: Path, capsys) -> None:
    out = tmp_path / "conv"
    assert main(["train", "--arch", "conv", "--units", "4", "--epochs", "1", "--quiet", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())["model"]
    assert config["arch"] == "conv" and config["subsequence_length"] == 15 and config["kernel_size"] == 3
    assert main(["predict", "--run", str(out), "--out", str(tmp_path / "p.csv")]) == 0
    assert main(["gates", "--run", str(out), "--out", str(tmp_path / "gates")]) == 0
    assert {p.name for p in (tmp_path / "gates").iterdir()} == {"gates-layer0-forward.png", "states-layer0-forward.png"}
    capsys.readouterr()
    assert main(["train", "--arch", "conv", "--window", "50", "--epochs", "1", "--out", str(tmp_path / "bad")]) == 2
    assert "cannot be cut into ConvLSTM steps of 15 days" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()
