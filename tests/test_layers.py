"""Layers against the textbook NumPy LSTM, a Python loop over the cell, and finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.test_util import check_grads

from jaxlstm.nn.cell import LSTMState, lstm_step
from jaxlstm.nn.layers import LSTM, Bidirectional, Stacked, dropout_masks, scan_lstm
from tests import numpy_lstm


def make_layer(n_in: int = 3, hidden: int = 5, seed: int = 0, **kwargs) -> LSTM:
    layer = LSTM(n_in, hidden, rngs=nnx.Rngs(seed), **kwargs)
    rng = np.random.default_rng(seed)
    layer.b[...] = jnp.asarray(rng.normal(0, 0.5, layer.b.shape), jnp.float32)  # a non-trivial bias
    return layer


def inputs(batch: int = 4, time: int = 9, n_in: int = 3, seed: int = 1) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).normal(size=(batch, time, n_in)), jnp.float32)


def test_scan_equals_python_loop_over_the_cell() -> None:
    layer, x = make_layer(), inputs()
    state = LSTMState(jnp.full((4, 5), 0.3), jnp.full((4, 5), -0.2))
    outputs, final = layer.scan(x, state)
    for t in range(x.shape[1]):
        state = lstm_step(layer.params, state, x[:, t])
        np.testing.assert_allclose(outputs[:, t], state.h, atol=1e-6)
    np.testing.assert_allclose(final.c, state.c, atol=1e-6)


@pytest.mark.parametrize("reverse", [False, True])
def test_layer_equals_textbook(reverse: bool) -> None:
    layer, x = make_layer(reverse=reverse), inputs()
    ref_outputs, ref_h, ref_c = numpy_lstm.run(*layer.params, x, reverse=reverse)
    outputs, final = layer.scan(x)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    np.testing.assert_allclose(final.h, ref_h, atol=1e-5)
    np.testing.assert_allclose(final.c, ref_c, atol=1e-5)


def test_return_sequences_false_gives_the_last_state() -> None:
    layer, x = make_layer(return_sequences=False), inputs()
    _, ref_h, _ = numpy_lstm.run(*layer.params, x)
    np.testing.assert_allclose(layer(x), ref_h, atol=1e-5)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_backward_half_is_the_forward_layer_on_the_reversed_sequence(return_sequences: bool) -> None:
    forward = make_layer(seed=0, return_sequences=return_sequences)
    backward = make_layer(seed=1, reverse=True, return_sequences=return_sequences)
    x = inputs()
    merged = Bidirectional(forward, backward)(x)

    twin = make_layer(seed=1, return_sequences=return_sequences)  # same weights as `backward`, reading forwards
    on_reversed = twin(x[:, ::-1])
    expected_backward = on_reversed[:, ::-1] if return_sequences else on_reversed
    np.testing.assert_allclose(merged[..., 5:], expected_backward, atol=1e-6)
    np.testing.assert_allclose(merged[..., :5], forward(x), atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "combine"),
    [("sum", np.add), ("mul", np.multiply), ("ave", lambda a, b: (a + b) / 2)],
)
def test_merge_modes(mode: str, combine) -> None:
    forward, backward = make_layer(seed=0), make_layer(seed=1, reverse=True)
    x = inputs()
    ref_forward, _, _ = numpy_lstm.run(*forward.params, x)
    ref_backward, _, _ = numpy_lstm.run(*backward.params, x, reverse=True)
    np.testing.assert_allclose(Bidirectional(forward, backward, mode)(x), combine(ref_forward, ref_backward), atol=1e-5)


def test_bidirectional_rejects_two_forward_layers() -> None:
    with pytest.raises(ValueError, match="reverse=True"):
        Bidirectional(make_layer(), make_layer())


def test_stacked_without_dropout_key_chains_the_layers() -> None:
    first, second = make_layer(3, 5, seed=0), make_layer(5, 4, seed=2, return_sequences=False)
    x = inputs()
    hidden, _, _ = numpy_lstm.run(*first.params, x)
    _, expected, _ = numpy_lstm.run(*second.params, hidden)
    np.testing.assert_allclose(Stacked([first, second], dropout=0.5)(x), expected, atol=1e-5)


def test_stacked_dropout_zeroes_and_rescales() -> None:
    layer = make_layer()
    x = inputs()
    clean = np.asarray(layer(x))
    dropped = np.asarray(Stacked([layer], dropout=0.5)(x, dropout_key=jax.random.key(0)))
    kept = dropped != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(dropped[kept], 2 * clean[kept], rtol=1e-6)


@pytest.mark.parametrize("rate", [1.0, -0.1])
def test_stacked_rejects_a_dropout_rate_outside_0_1(rate: float) -> None:
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        Stacked([make_layer()], dropout=rate)


def test_dropout_masks_keep_the_right_fraction_independently() -> None:
    """One draw serves every layer: each mask keeps 1 - rate of its elements, and the masks are not copies."""
    shapes = [(32, 60, 50), (32, 60, 50), (32, 50)]
    masks = [np.asarray(mask) for mask in dropout_masks(jax.random.key(3), shapes, 0.2)]
    assert [mask.shape for mask in masks] == shapes
    for mask in masks:
        tolerance = 5 * np.sqrt(0.2 * 0.8 / mask.size)  # five binomial standard deviations
        assert abs(mask.mean() - 0.8) < tolerance
    agreement = np.mean(masks[0] == masks[1])  # independent: 0.8**2 + 0.2**2 = 0.68, identical: 1
    assert abs(agreement - 0.68) < 0.01
    repeat = dropout_masks(jax.random.key(3), shapes, 0.2)
    assert all(np.array_equal(mask, again) for mask, again in zip(masks, repeat, strict=True))


def test_gradients_match_finite_differences() -> None:
    """In float64, so that central differences are accurate enough for a tight tolerance."""
    layer = make_layer(2, 3)
    with jax.enable_x64(True):
        params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), layer.params)
        x = jnp.asarray(inputs(2, 6, 2), jnp.float64)
        state = LSTMState(jnp.zeros((2, 3), jnp.float64), jnp.zeros((2, 3), jnp.float64))

        def loss(params, x):
            outputs, final = scan_lstm(params, x, state)
            return jnp.sum(outputs**2) + jnp.sum(final.c)

        check_grads(loss, (params, x), order=2, modes=["rev"], eps=1e-4, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("implementation", ["fused", "textbook"])
@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.float16, jnp.bfloat16])
def test_integer_and_half_inputs_compute_in_float32(implementation: str, dtype) -> None:
    """Inputs are promoted to the weights' float32 (they used to crash the scan): the outputs are the NumPy textbook
    LSTM's on the same values."""
    layer = LSTM(3, 4, implementation=implementation, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(1).integers(0, 4, (2, 5, 3)), dtype)
    outputs = layer(x)
    assert outputs.dtype == jnp.float32
    expected, _, _ = numpy_lstm.run(*layer.params, np.asarray(x, np.float64))
    np.testing.assert_allclose(outputs, expected, atol=1e-6)


def test_numpy_integers_size_a_layer() -> None:
    layer = LSTM(np.int64(3), np.int32(4), rngs=nnx.Rngs(0))
    assert layer(jnp.ones((2, 5, 3))).shape == (2, 5, 4)


def test_initial_state_as_a_tuple_or_list() -> None:
    layer = LSTM(3, 4, rngs=nnx.Rngs(0))
    x = np.random.default_rng(2).normal(size=(2, 5, 3)).astype(np.float32)
    h0, c0 = np.full((2, 4), 0.3, np.float32), np.full((2, 4), -0.2, np.float32)
    expected, _, _ = numpy_lstm.run(*layer.params, x, h0=h0, c0=c0)
    for state in (LSTMState(h0, c0), (h0, c0), [h0, c0]):
        np.testing.assert_allclose(layer(x, state), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LSTM(10, 0, rngs=nnx.Rngs(0)), "LSTM(in_features=10, hidden_size=0): both must be whole numbers >= 1"),
        (lambda: LSTM(2.5, 4, rngs=nnx.Rngs(0)), "LSTM(in_features=2.5, hidden_size=4): both must be whole numbers"),
        (lambda: Stacked([]), "Stacked needs at least one layer"),
        (
            lambda: LSTM(3, 4, rngs=nnx.Rngs(0))(jnp.ones((6, 3))),
            "LSTM inputs must be (batch, time, 3), got (6, 3); add a batch axis, x[None]",
        ),
        (lambda: LSTM(3, 4, rngs=nnx.Rngs(0))(jnp.ones((3, 3))), "LSTM inputs must be (batch, time, 3), got (3, 3)"),
        (
            lambda: LSTM(3, 4, rngs=nnx.Rngs(0))(jnp.ones((2, 6, 4))),
            "LSTM inputs must be (batch, time, 3), got (2, 6, 4)",
        ),
        (lambda: LSTM(3, 4, rngs=nnx.Rngs(0))(jnp.ones((2, 0, 3))), "LSTM inputs (2, 0, 3) hold no time step"),
        (
            lambda: LSTM(3, 4, rngs=nnx.Rngs(0))(jnp.ones((2, 6, 3)), (jnp.zeros((3, 4)), jnp.zeros((2, 4)))),
            "initial_state h must be (batch, H) = (2, 4), got (3, 4)",
        ),
        (
            lambda: LSTM(3, 4, rngs=nnx.Rngs(0))(jnp.ones((2, 6, 3)), (jnp.zeros((2, 4)),)),
            "initial_state must be (h, c), got 1 arrays",
        ),
    ],
)
def test_bad_calls_are_one_line_errors(make, message: str) -> None:
    """Issue 13's list: each used to be a raw XLA error, a ZeroDivisionError or IndexError, or a silently wrong
    (time, time, H) array for an unbatched input whose time equals its feature count."""
    with pytest.raises(ValueError) as error:
        make()
    assert message in str(error.value) and "\n" not in str(error.value)


def test_forward_mode_derivatives_on_the_textbook_path_match_finite_differences() -> None:
    """The textbook path differentiated by JAX in forward mode (the fused path: tests/test_layer_options.py)."""
    layer = LSTM(2, 3, implementation="textbook", rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(8).normal(size=(2, 4, 2)), jnp.float32)
    direction = jnp.asarray(np.random.default_rng(9).normal(size=x.shape), jnp.float32)
    _, tangent = jax.jvp(layer, (x,), (direction,))
    step = 1e-2
    difference = (layer(x + step * direction) - layer(x - step * direction)) / (2 * step)
    np.testing.assert_allclose(tangent, difference, atol=2e-3)
