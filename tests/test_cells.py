"""The cell family (GRU, tanh RNN, Greff et al.'s LSTM variants) against the independent NumPy cells of
tests/numpy_cells.py: outputs, final states, masks, reverse reading, initial states, traced gates, and gradients
against central finite differences of the NumPy oracle; every cell in Stacked, Bidirectional (merge_mode=None
too) and the Forecaster, trained by fit."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.config import CELLS, TrainConfig, preset
from jaxlstm.nn import GRU, LSTM, VARIANTS, Bidirectional, Forecaster, LSTMVariant, SimpleRNN, Stacked
from jaxlstm.nn.layers import LayerTrace
from jaxlstm.training import fit
from tests import numpy_cells, numpy_lstm

ATOL = 2e-5
CASES = ["gru", "gru-reset-before", "rnn", *VARIANTS]


def build(case: str, in_features: int, hidden: int, seed: int = 0, **options):
    """A layer of ``case`` with every weight random (peepholes and the gate recurrence start at zero otherwise)."""
    rngs = nnx.Rngs(seed)
    if case.startswith("gru"):
        layer = GRU(in_features, hidden, reset_after=case == "gru", rngs=rngs, **options)
    elif case == "rnn":
        layer = SimpleRNN(in_features, hidden, rngs=rngs, **options)
    else:
        layer = LSTMVariant(in_features, hidden, case, rngs=rngs, **options)
    rng = np.random.default_rng(seed + 100)
    for variable in jax.tree.leaves(nnx.state(layer, nnx.Param), is_leaf=lambda v: isinstance(v, nnx.Param)):
        variable[...] = rng.normal(0, 0.5, variable.shape).astype(np.float32)
    return layer


def oracle_step(case: str, layer):
    """The NumPy cell of ``case`` with ``layer``'s weights: ``step(x, *state) -> (*state, gates)``."""
    weights = numpy_cells.float64(*layer.params)
    if case.startswith("gru"):
        return lambda x, h: numpy_cells.gru_step(*weights, x, h)
    if case == "rnn":
        return lambda x, h: numpy_cells.rnn_step(*weights, x, h)
    return lambda x, h, c, gates: numpy_cells.variant_step(case, *weights, x, h, c, gates)


def random_state(layer, batch: int, seed: int) -> tuple:
    rng = np.random.default_rng(seed)
    zeros = layer.zeros(batch, jnp.float32)
    return tuple(rng.uniform(-0.5, 0.5, zero.shape).astype(np.float32) for zero in zeros)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("reverse", [False, True])
def test_outputs_and_final_state_equal_the_numpy_cell(case: str, reverse: bool) -> None:
    layer = build(case, 2, 4, reverse=reverse)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 7, 2)).astype(np.float32)
    mask = np.ones((3, 7), bool)
    mask[1, 5:] = False  # a shorter sequence
    mask[2, 2] = False  # a skipped step
    state = random_state(layer, 3, 2)
    outputs, final = layer(x, state, mask=mask, return_state=True)
    expected, expected_final = numpy_cells.run(oracle_step(case, layer), x, state, reverse=reverse, mask=mask)
    np.testing.assert_allclose(outputs, expected, atol=ATOL)
    assert type(final)._fields[0] == "h" and len(final) == len(expected_final)
    for ours, theirs in zip(final, expected_final, strict=True):
        np.testing.assert_allclose(ours, theirs, atol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_traced_gates_equal_the_numpy_cells(case: str) -> None:
    layer = build(case, 2, 3)
    x = np.random.default_rng(3).normal(size=(2, 5, 2)).astype(np.float32)
    trace = layer.trace(x)
    assert isinstance(trace, LayerTrace)
    step, state = oracle_step(case, layer), [np.zeros(zero.shape) for zero in layer.zeros(2, jnp.float32)]
    for t in range(5):
        *state, gates = step(x[:, t].astype(np.float64), *state)
        for name, value in gates.items():
            np.testing.assert_allclose(getattr(trace.gates, name)[:, t], value, atol=ATOL, err_msg=name)
        np.testing.assert_allclose(trace.states.h[:, t], state[0], atol=ATOL)


@pytest.mark.parametrize("case", CASES)
def test_gradients_equal_finite_differences_of_the_numpy_cell(case: str) -> None:
    """The directional derivative of a loss along a random direction in weight space: JAX's gradient (float32)
    against a central difference of the NumPy cell (float64)."""
    layer = build(case, 2, 3, seed=4)
    x = np.random.default_rng(5).normal(size=(2, 6, 2)).astype(np.float32)
    target = np.random.default_rng(6).normal(size=(2, 6, 3))
    graphdef, params = nnx.split(layer, nnx.Param)

    def loss(params):
        return jnp.mean((nnx.merge(graphdef, params)(x) - target) ** 2)

    grads = jax.grad(loss)(params)
    rng = np.random.default_rng(7)
    direction = jax.tree.map(lambda p: rng.normal(size=p.shape), params)
    along = sum(float(jnp.sum(g * d)) for g, d in zip(jax.tree.leaves(grads), jax.tree.leaves(direction), strict=True))

    def numpy_loss(epsilon: float) -> float:
        moved = nnx.merge(
            graphdef, jax.tree.map(lambda p, d: np.asarray(p, np.float64) + epsilon * d, params, direction)
        )
        state = [np.zeros(zero.shape) for zero in layer.zeros(2, jnp.float32)]
        outputs, _ = numpy_cells.run(oracle_step(case, moved), x, state)
        return float(np.mean((outputs - target) ** 2))

    epsilon = 1e-5
    expected = (numpy_loss(epsilon) - numpy_loss(-epsilon)) / (2 * epsilon)
    assert along == pytest.approx(expected, rel=2e-3, abs=1e-6)
    assert abs(expected) > 1e-3  # the comparison is not between zeros


def test_the_no_peephole_variant_is_jaxlstms_lstm() -> None:
    lstm = LSTM(2, 4, rngs=nnx.Rngs(0))
    variant = LSTMVariant(2, 4, "np", rngs=nnx.Rngs(1))
    variant.W[...], variant.U[...], variant.b[...] = lstm.W[...], lstm.U[...], lstm.b[...]
    x = np.random.default_rng(0).normal(size=(3, 9, 2)).astype(np.float32)
    np.testing.assert_allclose(variant(x), lstm(x), atol=1e-6)
    expected = numpy_lstm.run(*lstm.params, x)[0]
    np.testing.assert_allclose(variant(x), expected, atol=ATOL)

    def grad(layer):
        graphdef, params = nnx.split(layer, nnx.Param)
        return jax.grad(lambda p: jnp.sum(nnx.merge(graphdef, p)(x) ** 2))(params)

    ours, theirs = grad(variant), grad(lstm)
    for name in ("W", "U", "b"):
        np.testing.assert_allclose(ours[name][...], theirs[name][...], atol=1e-5)


def test_parameter_counts_follow_the_removed_gates() -> None:
    """Greff et al.'s variants drop a removed gate's weights: 4 blocks of (in + H + 1) H and 3 peepholes for the
    peephole LSTM; one block fewer (and one peephole) without a gate; ``fgr`` adds (3H)^2."""
    in_features, hidden = 3, 5
    block = (in_features + hidden + 1) * hidden

    def count(variant: str) -> int:
        layer = LSTMVariant(in_features, hidden, variant, rngs=nnx.Rngs(0))
        return sum(leaf.size for leaf in jax.tree.leaves(nnx.state(layer, nnx.Param)))

    assert count("peephole") == 4 * block + 3 * hidden
    assert count("np") == 4 * block
    assert count("niaf") == count("noaf") == count("peephole")
    for removed in ("nig", "nfg", "nog", "cifg"):
        assert count(removed) == 3 * block + 2 * hidden, removed
    assert count("fgr") == 4 * block + 3 * hidden + (3 * hidden) ** 2
    gru = GRU(in_features, hidden, rngs=nnx.Rngs(0))
    assert (
        sum(leaf.size for leaf in jax.tree.leaves(nnx.state(gru, nnx.Param))) == 3 * (in_features + hidden + 2) * hidden
    )


@pytest.mark.parametrize("case", ["gru", "rnn", "cifg", "fgr"])
def test_every_cell_stacks_and_reads_both_ways(case: str) -> None:
    """A two-layer stack of bidirectional layers equals the NumPy cells run forward and backward, merged, layer
    after layer; merge_mode=None returns the two directions apart."""
    first = Bidirectional(build(case, 2, 3, seed=1), build(case, 2, 3, seed=2, reverse=True))
    second = Bidirectional(build(case, 6, 3, seed=3), build(case, 6, 3, seed=4, reverse=True), merge_mode=None)
    stack = Stacked([first, second])
    x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype(np.float32)

    def numpy_layer(layer, inputs):
        state = [np.zeros(zero.shape) for zero in layer.zeros(2, jnp.float32)]
        return numpy_cells.run(oracle_step(case, layer), inputs, state, reverse=layer.reverse)[0]

    merged = np.concatenate([numpy_layer(first.forward_layer, x), numpy_layer(first.backward_layer, x)], -1)
    forward, backward = stack(x)
    np.testing.assert_allclose(forward, numpy_layer(second.forward_layer, merged), atol=ATOL)
    np.testing.assert_allclose(backward, numpy_layer(second.backward_layer, merged), atol=ATOL)
    with pytest.raises(ValueError, match="merge_mode=None"):
        Stacked([second, first])
    with pytest.raises(ValueError, match="dropout needs merged outputs"):
        Stacked([first, second], dropout=0.2)


def test_initial_states_take_keras_forms_and_refuse_wrong_shapes() -> None:
    gru = build("gru", 2, 3)
    x = np.ones((2, 4, 2), np.float32)
    h = np.full((2, 3), 0.3, np.float32)
    np.testing.assert_array_equal(gru(x, h), gru(x, [h]))
    with pytest.raises(ValueError, match=r"initial_state h must be \(batch, H\) = \(2, 3\), got \(2, 4\)"):
        gru(x, np.ones((2, 4)))
    fgr = build("fgr", 2, 3)
    with pytest.raises(ValueError, match=r"initial_state must be \(h, c, gates\), got 2 arrays"):
        fgr(x, (h, h))
    with pytest.raises(ValueError, match=r"initial_state gates must be \(batch, 3H\) = \(2, 9\)"):
        fgr(x, (h, h, h))


@pytest.mark.parametrize("cell", [cell for cell in CELLS if cell != "lstm"])
def test_every_cell_trains_in_a_forecaster(cell: str) -> None:
    """fit trains a stacked Forecaster of each cell, dropout on, on a smooth series: the loss falls."""
    series = np.sin(np.linspace(0, 12, 140)).astype(np.float32)
    x = np.stack([series[i : i + 20] for i in range(120)])[..., None]
    y = series[20:140]
    model = Forecaster(preset("stacked", cell=cell, layers=2, units=8), rngs=nnx.Rngs(0))
    history = fit(model, x, y, TrainConfig(epochs=4, batch_size=30, seed=0, learning_rate=0.01))
    assert np.isfinite(history.loss).all() and history.loss[-1] < history.loss[0]


def test_the_conv_architecture_refuses_other_cells() -> None:
    from jaxlstm.errors import ConfigError

    with pytest.raises(ConfigError, match="--cell gru needs --arch vanilla, stacked or bidirectional"):
        preset("conv", cell="gru")


def test_the_configuration_names_every_cell_of_the_family() -> None:
    """config.py imports no JAX, so it lists the cells itself: the same as the family's."""
    assert ("lstm", "gru", "rnn", *VARIANTS) == CELLS


@pytest.mark.parametrize("cell", ["gru", "rnn", "np", "cifg", "fgr"])
def test_every_cell_trains_in_the_many_models_program(cell: str) -> None:
    """fit_ensemble trains two seeds of each cell in one program, and model 1 is fit of seed 1 alone."""
    from jaxlstm.training import fit_ensemble

    x = np.random.default_rng(0).normal(size=(40, 6, 2)).astype(np.float32)
    y = x[:, 0, 0] + x[:, -1, 1]
    model_config = preset("vanilla", cell=cell, units=4, dropout=0.0, n_features=2)
    ensemble = fit_ensemble(model_config, x, y, TrainConfig(epochs=2, batch_size=20, learning_rate=0.01), [0, 1])
    alone = Forecaster(model_config, rngs=nnx.Rngs(1))
    fit(alone, x, y, TrainConfig(epochs=2, batch_size=20, learning_rate=0.01, seed=1, devices=1), progress=False)
    np.testing.assert_allclose(ensemble.models[1](x), alone(x), atol=1e-5)
