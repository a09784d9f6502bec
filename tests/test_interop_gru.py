"""Keras's GRU (JAX backend) and PyTorch's nn.GRU are the oracles of jaxlstm's GRU: weights copied either way give
their outputs, final states and gradients; round trips are exact; what a peer cannot hold is refused in one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.interop import InteropError, gru_torch_state_dict, keras_gru_weights, load_keras_gru, load_torch_gru
from jaxlstm.nn import GRU, Bidirectional, Stacked

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FORWARD_ATOL = 1e-5
GRADIENT_ATOL = 1e-4


def max_difference(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def inputs(batch: int = 4, time: int = 9, features: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(batch, time, features)).astype(np.float32)


def randomised(layer: GRU, seed: int) -> GRU:
    """Random biases too (Keras and our GRU start them at zero, which would hide a swapped bias)."""
    layer.b[...] = np.random.default_rng(seed).normal(0, 0.3, layer.b.shape).astype(np.float32)
    return layer


@pytest.mark.parametrize("reset_after", [True, False])
def test_keras_gru_weights_give_keras_outputs_and_gradients(reset_after: bool) -> None:
    keras = pytest.importorskip("keras")
    if keras.backend.backend() != "jax":  # pragma: no cover - conftest sets KERAS_BACKEND=jax
        pytest.skip("differentiates Keras with jax.grad: KERAS_BACKEND must be jax")
    x = inputs()
    theirs = keras.layers.GRU(5, return_sequences=True, return_state=True, reset_after=reset_after)
    theirs.build((None, 9, 3))
    rng = np.random.default_rng(1)
    theirs.set_weights([rng.normal(0, 0.4, w.shape).astype(np.float32) for w in theirs.get_weights()])
    ours = load_keras_gru(GRU(3, 5, reset_after=reset_after, rngs=nnx.Rngs(0)), theirs)
    their_outputs, their_h = theirs(x)
    outputs, final = ours(x, return_state=True)
    assert max_difference(outputs, their_outputs) < FORWARD_ATOL
    assert max_difference(final.h, their_h) < FORWARD_ATOL

    variables = [v.value for v in theirs.trainable_variables]
    assert [v.shape for v in variables] == [w.shape for w in theirs.get_weights()]

    non_trainable = [v.value for v in theirs.non_trainable_variables]

    def their_loss(variables):
        return jnp.mean(theirs.stateless_call(variables, non_trainable, x)[0][0] ** 2)

    graphdef, params = nnx.split(ours, nnx.Param)
    our_grads = jax.grad(lambda p: jnp.mean(nnx.merge(graphdef, p)(x) ** 2))(params)
    expected = jax.grad(their_loss)(variables)
    for mine, reference in zip(keras_gru_weights(nnx.merge(graphdef, our_grads)), expected, strict=True):
        assert max_difference(mine, reference) < GRADIENT_ATOL
    assert max(float(np.abs(g).max()) for g in expected) > 1e-2

    exported = keras.layers.GRU(5, return_sequences=True, reset_after=reset_after)
    exported.build((None, 9, 3))
    exported.set_weights(keras_gru_weights(randomised(ours, 2)))
    assert max_difference(exported(x), ours(x)) < FORWARD_ATOL


def test_keras_grus_that_compute_otherwise_are_refused() -> None:
    keras = pytest.importorskip("keras")
    other = keras.layers.GRU(5, reset_after=False)
    other.build((None, 9, 3))
    with pytest.raises(InteropError, match="reset_after=False, the jaxlstm GRU reset_after=True"):
        load_keras_gru(GRU(3, 5, rngs=nnx.Rngs(0)), other)
    relu = keras.layers.GRU(5, activation="relu")
    relu.build((None, 9, 3))
    with pytest.raises(InteropError, match="activation='relu'"):
        load_keras_gru(GRU(3, 5, rngs=nnx.Rngs(0)), relu)
    wider = keras.layers.GRU(6)
    wider.build((None, 9, 3))
    layer = GRU(3, 5, rngs=nnx.Rngs(0))
    before = np.asarray(layer.W[...]).copy()
    with pytest.raises(InteropError, match=r"\(3, 18\).*\(3, 15\)"):
        load_keras_gru(layer, wider)
    np.testing.assert_array_equal(layer.W[...], before)  # nothing loaded


def gru_stack(num_layers: int, bidirectional: bool, hidden: int = 5, features: int = 3) -> Stacked:
    layers, width = [], features
    for index in range(num_layers):
        forward = GRU(width, hidden, rngs=nnx.Rngs(index))
        layer = (
            Bidirectional(forward, GRU(width, hidden, reverse=True, rngs=nnx.Rngs(10 + index)))
            if bidirectional
            else forward
        )
        layers.append(layer)
        width = layer.out_features
    return Stacked(layers)


@pytest.mark.parametrize(("num_layers", "bidirectional"), [(1, False), (2, True)])
def test_nn_gru_weights_give_torch_outputs_states_and_gradients(num_layers: int, bidirectional: bool) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.GRU(3, 5, num_layers=num_layers, bidirectional=bidirectional, batch_first=True)
    ours = load_torch_gru(gru_stack(num_layers, bidirectional), theirs)
    x = inputs()
    their_outputs, their_h = theirs(torch.from_numpy(x))
    outputs, states = ours(x, return_state=True)
    assert max_difference(outputs, their_outputs.detach().numpy()) < FORWARD_ATOL
    finals = [s.h for state in states for s in (state if bidirectional else (state,))]
    assert max_difference(np.stack(finals), their_h.detach().numpy()) < FORWARD_ATOL

    (their_outputs**2).mean().backward()
    expected = {name: parameter.grad.numpy() for name, parameter in theirs.named_parameters()}
    graphdef, params = nnx.split(ours, nnx.Param)
    grads = jax.grad(lambda p: jnp.mean(nnx.merge(graphdef, p)(x) ** 2))(params)
    mine = gru_torch_state_dict(nnx.merge(graphdef, grads), numpy=True)
    assert list(mine) == list(expected)
    for name, value in expected.items():
        assert max_difference(mine[name], value) < GRADIENT_ATOL, name


def test_nn_gru_round_trips_are_exact_and_mismatches_refused() -> None:
    torch = pytest.importorskip("torch")
    stack = gru_stack(2, True)
    for layer in stack.layers:
        randomised(layer.forward_layer, 3), randomised(layer.backward_layer, 4)
    state = gru_torch_state_dict(stack)
    theirs = torch.nn.GRU(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    theirs.load_state_dict(state)
    back = load_torch_gru(gru_stack(2, True), theirs)
    for mine, again in zip(jax.tree.leaves(nnx.state(stack)), jax.tree.leaves(nnx.state(back)), strict=True):
        np.testing.assert_array_equal(mine, again)
    with pytest.raises(InteropError, match="lacks bias_hh_l1, bias_hh_l1_reverse"):
        load_torch_gru(gru_stack(2, True), torch.nn.GRU(3, 5, bidirectional=True, batch_first=True))
    with pytest.raises(InteropError, match=r"weight_ih_l0: nn.GRU has \(18, 3\), the jaxlstm module \(15, 3\)"):
        load_torch_gru(gru_stack(1, False), torch.nn.GRU(3, 6, batch_first=True))
    with pytest.raises(InteropError, match="reset_after=False"):
        gru_torch_state_dict(GRU(3, 5, reset_after=False, rngs=nnx.Rngs(0)))
