"""The cell against the textbook NumPy LSTM (tests/numpy_lstm.py)."""

import jax.numpy as jnp
import numpy as np
import pytest

from jaxlstm.nn.cell import LSTMParams, LSTMState, lstm_step, lstm_update
from tests import numpy_lstm


def random_params(rng: np.random.Generator, n_in: int, hidden: int) -> LSTMParams:
    return LSTMParams(
        W=rng.normal(0, 0.5, (n_in, 4 * hidden)).astype(np.float32),
        U=rng.normal(0, 0.5, (hidden, 4 * hidden)).astype(np.float32),
        b=rng.normal(0, 0.5, 4 * hidden).astype(np.float32),
    )


@pytest.mark.parametrize(("n_in", "hidden", "batch"), [(1, 50, 32), (3, 7, 1), (50, 50, 5)])
def test_step_equals_textbook(n_in: int, hidden: int, batch: int) -> None:
    rng = np.random.default_rng(n_in * 100 + hidden)
    params = random_params(rng, n_in, hidden)
    x = rng.normal(size=(batch, n_in)).astype(np.float32)
    h = rng.normal(size=(batch, hidden)).astype(np.float32)
    c = rng.normal(size=(batch, hidden)).astype(np.float32)

    state = lstm_step(params, LSTMState(jnp.asarray(h), jnp.asarray(c)), jnp.asarray(x))
    h_ref, c_ref, _ = numpy_lstm.step(numpy_lstm.split_gates(*params), x, h, c)

    np.testing.assert_allclose(state.h, h_ref, atol=1e-6)
    np.testing.assert_allclose(state.c, c_ref, atol=1e-6)


def test_update_returns_the_textbook_gates() -> None:
    rng = np.random.default_rng(1)
    params = random_params(rng, 2, 4)
    x, h, c = (rng.normal(size=(3, n)).astype(np.float32) for n in (2, 4, 4))

    _, gates = lstm_update(jnp.asarray(x @ params.W + h @ params.U + params.b), jnp.asarray(c))
    _, _, ref = numpy_lstm.step(numpy_lstm.split_gates(*params), x, h, c)

    for name in ("input", "forget", "candidate", "output"):
        np.testing.assert_allclose(getattr(gates, name), ref[name], atol=1e-6, err_msg=name)


def test_zero_weights_give_half_open_gates() -> None:
    """With all weights 0, every sigmoid gate is 0.5 and the candidate is 0: c decays by half each step."""
    params = LSTMParams(jnp.zeros((1, 8)), jnp.zeros((2, 8)), jnp.zeros(8))
    state = lstm_step(params, LSTMState(jnp.zeros(2), jnp.full(2, 4.0)), jnp.ones(1))
    np.testing.assert_allclose(state.c, [2.0, 2.0])
    np.testing.assert_allclose(state.h, 0.5 * np.tanh(2.0), rtol=1e-6)
