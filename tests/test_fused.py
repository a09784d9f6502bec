"""The fused fast path against the textbook: same outputs and the same gradients, in every configuration.

Oracles: the textbook NumPy LSTM for values, and JAX's autodiff of the plain ``lax.scan`` over ``lstm_step``
(itself checked against finite differences in test_layers.py) for gradients.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.config import preset
from jaxlstm.nn.cell import LSTMParams, LSTMState, lstm_update
from jaxlstm.nn.fused import lstm_sequence, slab_update
from jaxlstm.nn.layers import scan_lstm
from jaxlstm.nn.models import Forecaster
from tests import numpy_lstm


def problem(seed: int = 0, batch: int = 4, time: int = 11, n_in: int = 3, hidden: int = 6):
    rng = np.random.default_rng(seed)

    def normal(*shape):
        return jnp.asarray(rng.normal(0, 0.5, shape), jnp.float32)

    params = LSTMParams(normal(n_in, 4 * hidden), normal(hidden, 4 * hidden), normal(4 * hidden))
    state = LSTMState(normal(batch, hidden), normal(batch, hidden))
    return params, normal(batch, time, n_in), state, normal(batch, time, hidden)


CONFIGS = [(reverse, unroll, hoist) for reverse in (False, True) for unroll in (1, 3) for hoist in (False, True)]


@pytest.mark.parametrize(("reverse", "unroll", "hoist_input"), CONFIGS)
def test_values_equal_textbook(reverse: bool, unroll: int, hoist_input: bool) -> None:
    params, x, state, _ = problem()
    outputs, final = lstm_sequence(params, jnp.swapaxes(x, 0, 1), state, reverse, unroll, hoist_input)
    ref_outputs, ref_h, ref_c = numpy_lstm.run(*params, x, *state, reverse=reverse)
    np.testing.assert_allclose(jnp.swapaxes(outputs, 0, 1), ref_outputs, atol=1e-5)
    np.testing.assert_allclose(final.h, ref_h, atol=1e-5)
    np.testing.assert_allclose(final.c, ref_c, atol=1e-5)


@pytest.mark.parametrize(("reverse", "unroll", "hoist_input"), CONFIGS)
def test_gradients_equal_autodiff_of_the_textbook_scan(reverse: bool, unroll: int, hoist_input: bool) -> None:
    params, x, state, weights = problem(seed=1)

    def objective(outputs, final):  # uses every output, so every cotangent is non-zero
        return jnp.sum(outputs * weights) + jnp.sum(jnp.sin(final.h)) + jnp.sum(final.c**2)

    def textbook(params, x, state):
        return objective(*scan_lstm(params, x, state, reverse=reverse))

    def fused(params, x, state):
        outputs, final = lstm_sequence(params, jnp.swapaxes(x, 0, 1), state, reverse, unroll, hoist_input)
        return objective(jnp.swapaxes(outputs, 0, 1), final)

    expected = jax.grad(textbook, argnums=(0, 1, 2))(params, x, state)
    actual = jax.grad(fused, argnums=(0, 1, 2))(params, x, state)
    for name, a, e in zip(
        ("W", "U", "b", "x", "h0", "c0"), jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True
    ):
        np.testing.assert_allclose(a, e, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("arch", ["stacked", pytest.param("bidirectional", marks=pytest.mark.slow)])
def test_model_gradients_equal_between_implementations(arch: str) -> None:
    """The tutorial models, end to end: the same loss gradient whichever implementation the layers use."""
    x = jnp.asarray(np.random.default_rng(2).random((8, 20, 1)), jnp.float32)
    y = x[:, -1, 0]

    def gradients(implementation: str):
        model = Forecaster(preset(arch, units=10, implementation=implementation), rngs=nnx.Rngs(0))
        graphdef, params = nnx.split(model, nnx.Param)
        return jax.jit(jax.grad(lambda p: jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2)))(params)

    for fused, textbook in zip(
        jax.tree.leaves(gradients("fused")), jax.tree.leaves(gradients("textbook")), strict=True
    ):
        np.testing.assert_allclose(fused, textbook, atol=1e-5)


def test_slab_update_equals_the_textbook_update_in_values_and_gradients() -> None:
    """The one-tanh slab is only a faster way to evaluate the textbook equations: the same state, the same gates,
    and the same gradients (JAX's autodiff of each), over pre-activations well into the sigmoid's tails."""
    rng = np.random.default_rng(5)
    z = jnp.asarray(rng.normal(0, 4, (6, 4 * 7)), jnp.float32)
    c = jnp.asarray(rng.normal(0, 2, (6, 7)), jnp.float32)
    for fast, textbook in zip(jax.tree.leaves(slab_update(z, c)), jax.tree.leaves(lstm_update(z, c)), strict=True):
        np.testing.assert_allclose(fast, textbook, atol=1e-6)
    weights = jnp.asarray(rng.normal(size=(2, 6, 7)), jnp.float32)

    def objective(update):
        return lambda z, c: jnp.sum(jnp.stack(update(z, c)[0]) * weights)

    fast = jax.grad(objective(slab_update), argnums=(0, 1))(z, c)
    textbook = jax.grad(objective(lstm_update), argnums=(0, 1))(z, c)
    for a, b in zip(fast, textbook, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
