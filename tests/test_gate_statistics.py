"""Gate statistics (jaxlstm.introspect.statistics) against independent oracles: saturation shares counted by hand on
made-up traces, the connectivity against central finite differences of the layers' own forward pass (not the traced
loop it differentiates) and against closed forms (a cumulative sum; a tanh RNN in its linear regime, whose
``d h_t / d x_s`` is ``W U^(t-s)``); and the figures written as PNGs."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.introspect import GateTrace, connectivity, saturation, trace_gates
from jaxlstm.nn import GRU, LSTM, Bidirectional, LSTMVariant, SimpleRNN, Stacked
from jaxlstm.runs.plots import plot_connectivity, plot_saturation

PNG = b"\x89PNG\r\n\x1a\n"


def hand_made_trace(layer: int = 0, direction: str = "forward") -> GateTrace:
    """2 windows x 5 steps x 3 units. Input gate: unit 0 always 0.05 (left 1, right 0); unit 1 steps
    0.05, 0.5, 0.95, 0.95, 0.5 (left 1/5, right 2/5); unit 2 exactly at the thresholds, 0.1 and 0.9 (neither). Forget
    gate: window 0 all 0.01, window 1 all 0.99 (left 1/2, right 1/2 for every unit). Output gate: a removed gate's
    ones (right 1). The candidate and states are near -1: never counted, though below 0.1."""
    steps = np.array([0.05, 0.5, 0.95, 0.95, 0.5])
    thresholds = np.array([0.1, 0.9, 0.1, 0.9, 0.1])
    input_gate = np.stack([np.full(5, 0.05), steps, thresholds], axis=-1)[None].repeat(2, axis=0)  # (2, 5, 3)
    forget_gate = np.stack([np.full((5, 3), 0.01), np.full((5, 3), 0.99)])
    near_minus_one = np.full((2, 5, 3), -0.99)
    gates = {"input": input_gate, "forget": forget_gate, "candidate": near_minus_one, "output": np.ones((2, 5, 3))}
    return GateTrace(layer, direction, "lstm", gates, {"c": near_minus_one, "h": near_minus_one})


def test_saturation_shares_counted_by_hand() -> None:
    records = saturation([hand_made_trace(), hand_made_trace(1, "backward")])
    assert [(r.layer, r.direction, r.gate) for r in records] == [
        (layer, direction, gate)
        for layer, direction in ((0, "forward"), (1, "backward"))
        for gate in ("input", "forget", "output")
    ]
    input_gate, forget_gate, output_gate = records[:3]
    assert input_gate.label == "input gate i" and input_gate.cell == "lstm"
    np.testing.assert_allclose(input_gate.left, [1.0, 0.2, 0.0])
    np.testing.assert_allclose(input_gate.right, [0.0, 0.4, 0.0])
    np.testing.assert_allclose(forget_gate.left, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(forget_gate.right, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(output_gate.left, [0.0, 0.0, 0.0])
    np.testing.assert_allclose(output_gate.right, [1.0, 1.0, 1.0])


def test_saturation_of_real_cells() -> None:
    """A variant without a forget gate is right-saturated on it at every step; the GRU's gates are z and r; the tanh
    RNN has none; shares lie in [0, 1] and a unit is never both."""
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, 7, 2)), jnp.float32)
    nfg = saturation(trace_gates(LSTMVariant(2, 3, "nfg", rngs=nnx.Rngs(0)), x))
    assert [r.gate for r in nfg] == ["input", "forget", "output"] and [r.cell for r in nfg] == ["nfg"] * 3
    np.testing.assert_array_equal(nfg[1].right, np.ones(3))
    gru = saturation(trace_gates(GRU(2, 3, rngs=nnx.Rngs(0)), x))
    assert [r.label for r in gru] == ["update gate z", "reset gate r"]
    assert saturation(trace_gates(SimpleRNN(2, 3, rngs=nnx.Rngs(0)), x)) == []
    for record in nfg + gru:
        assert record.left.shape == (3,) and np.all(record.left + record.right <= 1.0)


def finite_differences(sequence_fn, x: np.ndarray, epsilon: float = 1e-2) -> np.ndarray:
    """(steps, time): the mean over windows of the norm over units and features of the central differences of
    ``sequence_fn`` (windows to (batch, steps, units)) in each input x[b, s, f]."""

    def h(x: np.ndarray) -> np.ndarray:
        return np.asarray(sequence_fn(jnp.asarray(x, jnp.float32)), np.float64)

    columns = []
    for s in range(x.shape[1]):
        squares = 0.0
        for f in range(x.shape[2]):
            step = np.zeros_like(x)
            step[:, s, f] = epsilon  # every window at once: each one's h depends on its own inputs only
            derivative = (h(x + step) - h(x - step)) / (2 * epsilon)  # (batch, steps, units)
            squares = squares + np.sum(derivative**2, axis=-1)
        columns.append(np.sqrt(squares).mean(axis=0))  # (steps,)
    return np.stack(columns, axis=1)


def test_connectivity_equals_finite_differences_and_is_causal() -> None:
    """Two stacked LSTM layers; the last one's h from the stack's own call (the fused path, not the trace)."""
    stack = Stacked([LSTM(2, 4, rngs=nnx.Rngs(0)), LSTM(4, 3, rngs=nnx.Rngs(1))])
    x = np.random.default_rng(1).normal(size=(2, 6, 2)).astype(np.float32)
    matrix = connectivity(stack, x)
    assert matrix.shape == (6, 6) and matrix.dtype == np.float64
    np.testing.assert_allclose(matrix, finite_differences(stack, x), rtol=2e-3, atol=1e-5)
    assert np.all(matrix[np.triu_indices(6, 1)] == 0.0)  # h_t reads no later input, exactly
    assert np.all(matrix[np.tril_indices(6)] > 0.0)


def test_connectivity_of_a_bidirectional_layer_is_its_forward_direction() -> None:
    forward, backward = LSTM(2, 3, rngs=nnx.Rngs(0)), LSTM(2, 3, reverse=True, rngs=nnx.Rngs(1))
    layer = Bidirectional(forward, backward)
    x = np.random.default_rng(2).normal(size=(2, 5, 2)).astype(np.float32)
    matrix = connectivity(layer, x)
    np.testing.assert_allclose(matrix, finite_differences(lambda x: layer(x)[..., :3], x), rtol=2e-3, atol=1e-5)
    reversed_matrix = connectivity(backward, x)  # a reversed layer alone: its h_t reads x_t .. x_end
    np.testing.assert_allclose(reversed_matrix, finite_differences(backward, x), rtol=2e-3, atol=1e-5)
    assert np.all(reversed_matrix[np.tril_indices(5, -1)] == 0.0)


def test_connectivity_of_a_cumulative_sum() -> None:
    """h_t = sum_{s <= t} x_s A: d h_t / d x_s = A for s <= t, 0 after, so the matrix is ||A||_F below the diagonal."""
    weights = jnp.asarray(np.random.default_rng(3).normal(size=(3, 4)), jnp.float32)
    x = np.random.default_rng(4).normal(size=(3, 7, 3))
    matrix = connectivity(lambda x: jnp.cumsum(x, axis=1) @ weights, x)
    expected = np.tril(np.full((7, 7), np.linalg.norm(np.asarray(weights, np.float64))))
    np.testing.assert_allclose(matrix, expected, rtol=1e-5)


def test_connectivity_of_a_tanh_rnn_decays_with_the_lag() -> None:
    """h_t = tanh(x_t W + h_{t-1} U) with U = 0.1 Q (Q orthogonal, Keras's init) and inputs so small that tanh is
    the identity: d h_t / d x_s = W U^(t-s), whose norm is ||W||_F 0.1^(t-s)."""
    rnn = SimpleRNN(2, 4, rngs=nnx.Rngs(0))
    orthogonal = np.asarray(rnn.U[...], np.float64)
    np.testing.assert_allclose(orthogonal.T @ orthogonal, np.eye(4), atol=1e-5)
    rnn.U[...] = 0.1 * rnn.U[...]
    x = 1e-4 * np.random.default_rng(5).normal(size=(2, 6, 2))
    matrix = connectivity(rnn, x)
    lag = np.subtract.outer(np.arange(6), np.arange(6))
    expected = np.where(lag >= 0, np.linalg.norm(np.asarray(rnn.W[...], np.float64)) * 0.1 ** np.abs(lag), 0.0)
    np.testing.assert_allclose(matrix, expected, rtol=1e-3)
    assert np.all(np.diff(matrix[-1]) > 0)  # the last step's dependence falls with every step back


@pytest.mark.parametrize("markers", [None, [1, 4]])
def test_figures_are_pngs(tmp_path: Path, markers: list[int] | None) -> None:
    records = saturation([hand_made_trace(), hand_made_trace(1), hand_made_trace(1, "backward")])
    plot_saturation(records, tmp_path / "saturation.png", title="hand-made")
    matrix = np.tril(np.random.default_rng(6).uniform(1e-6, 1.0, size=(6, 6)))
    plot_connectivity(matrix, tmp_path / "connectivity.png", title="random", markers=markers)
    assert (tmp_path / "saturation.png").read_bytes()[:8] == PNG
    assert (tmp_path / "connectivity.png").read_bytes()[:8] == PNG
