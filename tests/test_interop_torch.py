"""PyTorch's nn.LSTM (CPU) is the oracle: imported stacks give its outputs, final (h, c) and gradients; round trips
are exact; mismatched architectures fail with one line."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.config import preset
from jaxlstm.data import load_prices, prepare
from jaxlstm.interop import (
    InteropError,
    from_torch,
    load_torch,
    stacked_from_torch,
    to_torch,
    torch_state_dict,
)
from jaxlstm.nn.layers import LSTM, Bidirectional, Stacked
from jaxlstm.nn.models import Forecaster
from tests.conftest import BUNDLED

torch = pytest.importorskip("torch")

FORWARD_ATOL = 1e-5
GRADIENT_ATOL = 1e-4
CONFIGS = [(1, False), (2, False), (1, True), (2, True)]  # (num_layers, bidirectional)


@pytest.fixture(scope="module")
def goog():
    return prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-230:], split=172)


def torch_lstm(num_layers: int, bidirectional: bool, *, input_size: int = 2, hidden: int = 6, seed: int = 0):
    """An nn.LSTM at PyTorch's own random initialisation (uniform +-1/sqrt(H) for weights and both biases)."""
    torch.manual_seed(seed)
    return torch.nn.LSTM(input_size, hidden, num_layers=num_layers, batch_first=True, bidirectional=bidirectional)


def run_stack(stacked: Stacked, x):
    """Our stack's output and the final (h, c) of every layer and direction, in nn.LSTM's h_n order."""
    hs, cs = [], []
    for layer in stacked.layers:
        parts = [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]
        outputs = []
        for part in parts:
            output, state = part.scan(x)
            outputs.append(output)
            hs.append(state.h)
            cs.append(state.c)
        x = jnp.concatenate(outputs, axis=-1)
    return x, jnp.stack(hs), jnp.stack(cs)


def jitted(stacked: Stacked):
    """``f(params, x) -> (run_stack(...), stacked(x))`` under ``jax.jit``, and the stack's parameters."""
    graphdef, params = nnx.split(stacked)

    def f(params, x):
        module = nnx.merge(graphdef, params)
        return run_stack(module, x), module(x)

    return jax.jit(f), params


def jit_call(module, x):
    """``module(x)`` under ``jax.jit`` (split/merge): one compiled program instead of eager dispatch."""
    graphdef, state = nnx.split(module)
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, x)


def max_difference(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@pytest.mark.parametrize(("num_layers", "bidirectional"), CONFIGS)
def test_outputs_and_final_state_equal_torch(num_layers: int, bidirectional: bool) -> None:
    lstm = torch_lstm(num_layers, bidirectional)
    x = np.random.default_rng(1).normal(size=(5, 13, 2)).astype(np.float32)
    output, (h_n, c_n) = lstm(torch.from_numpy(x))
    f, params = jitted(stacked_from_torch(lstm))
    (ours, h, c), called = f(params, x)
    assert max_difference(ours, output.detach()) < FORWARD_ATOL
    assert max_difference(called, output.detach()) < FORWARD_ATOL
    assert max_difference(h, h_n.detach()) < FORWARD_ATOL
    assert max_difference(c, c_n.detach()) < FORWARD_ATOL


@pytest.mark.parametrize(("num_layers", "bidirectional"), CONFIGS)
def test_gradients_equal_torch(num_layers: int, bidirectional: bool) -> None:
    """d loss / d every weight, for a loss that reads the outputs and both final states."""
    lstm = torch_lstm(num_layers, bidirectional, seed=2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(4, 9, 2)).astype(np.float32)
    directions = 2 if bidirectional else 1
    target = rng.normal(size=(4, 9, 6 * directions)).astype(np.float32)
    weights_h, weights_c = (rng.normal(size=(num_layers * directions, 4, 6)).astype(np.float32) for _ in range(2))

    output, (h_n, c_n) = lstm(torch.from_numpy(x))
    loss = ((output - torch.from_numpy(target)) ** 2).mean()
    loss = loss + (h_n * torch.from_numpy(weights_h)).sum() + (c_n * torch.from_numpy(weights_c)).sum()
    loss.backward()
    expected = {name: parameter.grad.numpy() for name, parameter in lstm.named_parameters()}

    graphdef, params = nnx.split(stacked_from_torch(lstm), nnx.Param)

    def our_loss(params):
        ours, h, c = run_stack(nnx.merge(graphdef, params), x)
        return jnp.mean((ours - target) ** 2) + jnp.sum(h * weights_h) + jnp.sum(c * weights_c)

    value, grads = jax.jit(jax.value_and_grad(our_loss))(params)
    assert max_difference(value, loss.detach()) < FORWARD_ATOL
    grads = torch_state_dict(nnx.merge(graphdef, grads), numpy=True)
    for name, value in expected.items():
        if name.startswith("bias_hh"):  # the export puts dL/db in bias_ih; PyTorch's two bias gradients are equal
            value, name = value, name.replace("bias_hh", "bias_ih")
        assert max_difference(grads[name], value) < GRADIENT_ATOL, name
    assert max(float(np.abs(g).max()) for g in expected.values()) > 1e-2


@pytest.mark.parametrize("bidirectional", [False, True])
def test_forecaster_with_linear_head_equals_torch_on_real_windows(bidirectional: bool, goog) -> None:
    lstm = torch_lstm(2, bidirectional, input_size=1, hidden=8, seed=4)
    torch.manual_seed(5)
    head = torch.nn.Linear(16 if bidirectional else 8, 1)
    model = from_torch(lstm, head)
    assert model.config == preset("bidirectional" if bidirectional else "stacked", layers=2, units=8, dropout=0.0)
    _, (h_n, _) = lstm(torch.from_numpy(goog.x_test))
    last = torch.cat([h_n[-2], h_n[-1]], -1) if bidirectional else h_n[-1]
    assert max_difference(jit_call(model, goog.x_test), head(last)[:, 0].detach()) < FORWARD_ATOL


@pytest.mark.parametrize("arch", ["vanilla", "bidirectional"])  # docs/interop.md exports a stacked one
def test_exported_modules_equal_ours(arch: str, goog) -> None:
    model = Forecaster(preset(arch, units=7, layers=None if arch == "vanilla" else 3), rngs=nnx.Rngs(6))
    lstm, head = to_torch(model)
    assert lstm.batch_first and lstm.num_layers == model.config.layers
    assert lstm.dropout == (0.2 if model.config.layers > 1 else 0.0)
    assert not lstm.training  # eval mode: no dropout between layers
    _, (h_n, _) = lstm(torch.from_numpy(goog.x_test))
    last = torch.cat([h_n[-2], h_n[-1]], -1) if arch == "bidirectional" else h_n[-1]
    assert max_difference(jit_call(model, goog.x_test), head(last)[:, 0].detach()) < FORWARD_ATOL


@pytest.mark.parametrize(("num_layers", "bidirectional"), CONFIGS)
def test_round_trips_are_exact(num_layers: int, bidirectional: bool) -> None:
    lstm = torch_lstm(num_layers, bidirectional, seed=7)
    original = {name: value.detach().clone() for name, value in lstm.state_dict().items()}
    stacked = stacked_from_torch(lstm)
    exported = torch_state_dict(stacked)
    assert list(exported) == list(original)  # nn.LSTM's key order
    for name, value in original.items():
        if name.startswith("weight"):
            assert torch.equal(exported[name], value), name
        elif name.startswith("bias_ih"):  # our bias is the sum, and the sum is kept bit for bit
            assert torch.equal(exported[name], value + original[name.replace("bias_ih", "bias_hh")]), name
        else:
            assert not exported[name].any(), name
    again = torch_lstm(num_layers, bidirectional, seed=8)
    again.load_state_dict(exported)  # PyTorch -> ours -> PyTorch: loadable and exact
    back = stacked_from_torch(again)  # ours -> PyTorch -> ours: every array bit-equal
    for a, b in zip(jax.tree.leaves(nnx.state(stacked)), jax.tree.leaves(nnx.state(back)), strict=True):
        np.testing.assert_array_equal(a, b)


def test_bare_layers_load_one_torch_layer() -> None:
    lstm = torch_lstm(2, True, seed=9)
    x = np.random.default_rng(10).normal(size=(3, 5, 2)).astype(np.float32)
    second = Bidirectional(LSTM(12, 6, rngs=nnx.Rngs(0)), LSTM(12, 6, reverse=True, rngs=nnx.Rngs(1)))
    load_torch(second, lstm, layer=1)
    first_output = stacked_from_torch(lstm).layers[0](x)
    output, _ = lstm(torch.from_numpy(x))
    assert max_difference(second(first_output), output.detach()) < FORWARD_ATOL
    with pytest.raises(InteropError, match="pass layer=<index>"):
        load_torch(second, lstm)
    state = torch_state_dict(stacked_from_torch(torch_lstm(1, False)), numpy=True)
    assert isinstance(state["weight_ih_l0"], np.ndarray)
    plain = load_torch(LSTM(2, 6, rngs=nnx.Rngs(0)), state)
    np.testing.assert_array_equal(plain.W[...], state["weight_ih_l0"].T)


# Mismatched architectures: one test per kind; the message names the layer and both shapes, and nothing is loaded.


def test_mismatched_units_are_refused() -> None:
    target = Forecaster(preset("stacked", layers=2, units=5), rngs=nnx.Rngs(0))
    before = torch_state_dict(target, numpy=True)
    with pytest.raises(
        InteropError, match=r"nn.LSTM layer 0: weight_ih_l0.T \(2, 24\) does not fit jaxlstm layer 0 W \(1, 20\)"
    ):
        load_torch(target, torch_lstm(2, False))
    after = torch_state_dict(target, numpy=True)
    assert all(np.array_equal(before[key], after[key]) for key in before)


def test_mismatched_layer_count_is_refused() -> None:
    target = Stacked([LSTM(2, 6, rngs=nnx.Rngs(0))])
    with pytest.raises(InteropError, match=r"nn.LSTM has 2 recurrent layers \(kernels \(2, 24\), \(6, 24\)\)"):
        load_torch(target, torch_lstm(2, False))


def test_mismatched_direction_is_refused() -> None:
    target = Stacked([LSTM(2, 6, rngs=nnx.Rngs(0))])
    with pytest.raises(
        InteropError, match=r"nn.LSTM layer 0 is bidirectional \(weight_ih_l0.T \(2, 24\), \(2, 24\)\) but jaxlstm"
    ):
        load_torch(target, torch_lstm(1, True))


def test_what_nn_lstm_cannot_hold_is_refused() -> None:
    summed = Stacked([Bidirectional(LSTM(1, 3, rngs=nnx.Rngs(0)), LSTM(1, 3, reverse=True, rngs=nnx.Rngs(1)), "sum")])
    with pytest.raises(InteropError, match=r"merges with .sum.; nn\.LSTM concatenates"):
        torch_state_dict(summed)
    torch.manual_seed(0)
    projected = torch.nn.LSTM(2, 6, proj_size=3, batch_first=True)
    with pytest.raises(InteropError, match="proj_size=3"):
        stacked_from_torch(projected)
    with pytest.raises(InteropError, match="'weight_hr_l0' has no jaxlstm counterpart"):
        stacked_from_torch(projected.state_dict())


def test_from_torch_without_a_head_points_to_stacked_from_torch() -> None:
    with pytest.raises(InteropError, match=r"for the nn.LSTM alone, use stacked_from_torch\(lstm\)"):
        from_torch(torch_lstm(2, False), None)
