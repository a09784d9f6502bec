"""Masks and lengths, dropout inside the recurrence, dtypes and forward-mode derivatives of the recurrent layers:
against Keras with a mask and PyTorch's packed sequences (values and gradients), the NumPy LSTM of
tests/numpy_lstm.py run with the same masks, finite differences; and the fast path's gradients against JAX's
autodiff of the textbook loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.nn.cell import LSTMState
from jaxlstm.nn.convlstm import ConvLSTM1D
from jaxlstm.nn.layers import LSTM, Bidirectional, Stacked, dropout_masks
from tests import numpy_lstm

BATCH, TIME, FEATURES, UNITS = 3, 6, 2, 4
LENGTHS = np.array([6, 2, 4])


def inputs(seed: int = 0, shape: tuple[int, ...] = (BATCH, TIME, FEATURES)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def holes_mask() -> np.ndarray:
    """A mask with a hole in the middle of a sequence, not only right padding (Keras allows it)."""
    mask = np.arange(TIME) < LENGTHS[:, None]
    mask[0, 2] = False
    return mask


def numpy_run(layer: LSTM, x: np.ndarray, **options) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    params = [np.asarray(array) for array in layer.params]
    return numpy_lstm.run(*params, x, reverse=layer.reverse, **options)


@pytest.mark.parametrize("implementation", ["fused", "textbook"])
@pytest.mark.parametrize("reverse", [False, True])
def test_a_masked_step_carries_the_state_as_the_numpy_lstm_does(implementation: str, reverse: bool) -> None:
    layer = LSTM(FEATURES, UNITS, reverse=reverse, implementation=implementation, rngs=nnx.Rngs(1))
    x, mask = inputs(), holes_mask()
    outputs, final = layer.scan(x, mask=mask)
    expected, h, c = numpy_run(layer, x, mask=mask)
    np.testing.assert_allclose(outputs, expected, atol=1e-6)
    np.testing.assert_allclose(final.h, h, atol=1e-6)
    np.testing.assert_allclose(final.c, c, atol=1e-6)


def test_lengths_are_the_mask_of_leading_steps() -> None:
    layer = LSTM(FEATURES, UNITS, rngs=nnx.Rngs(2))
    x = inputs(1)
    by_lengths = layer.scan(x, lengths=jnp.asarray(LENGTHS))
    by_mask = layer.scan(x, mask=np.arange(TIME) < LENGTHS[:, None])
    for ours, theirs in zip(jax.tree.leaves(by_lengths), jax.tree.leaves(by_mask), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # Each sequence's final state is the one of the unpadded sequence alone.
    for row, length in enumerate(LENGTHS):
        alone = layer.scan(x[row : row + 1, :length])[1]
        np.testing.assert_allclose(by_lengths[1].h[row], alone.h[0], atol=1e-6)


def masked_loss(layer, x, mask, **call) -> jax.Array:
    outputs, final = layer.scan(x, mask=mask, **call)
    weights = jnp.asarray(inputs(7, outputs.shape))
    return jnp.sum(outputs * weights) + jnp.sum(final.c**2)


@pytest.mark.parametrize("reverse", [False, True])
def test_fused_gradients_with_masks_and_recurrent_dropout_equal_the_textbook_ones(reverse: bool) -> None:
    fused = LSTM(FEATURES, UNITS, reverse=reverse, recurrent_dropout=0.4, dropout=0.3, rngs=nnx.Rngs(3))
    textbook = LSTM(FEATURES, UNITS, reverse=reverse, recurrent_dropout=0.4, dropout=0.3, rngs=nnx.Rngs(3))
    textbook.implementation = "textbook"
    x, mask, key = jnp.asarray(inputs(2)), holes_mask(), jax.random.key(4)

    def gradients(layer: LSTM):
        def loss(layer, x):
            return masked_loss(layer, x, mask, dropout_key=key)

        return nnx.grad(loss, argnums=(0, 1))(layer, x)

    for ours, theirs in zip(jax.tree.leaves(gradients(fused)), jax.tree.leaves(gradients(textbook)), strict=True):
        np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_the_recurrent_scale_gradient_of_the_fast_path_is_the_true_one() -> None:
    """The dropout scale is an input of the fused sequence: its cotangent must be right even though training never
    asks for it."""
    from jaxlstm.nn.fused import lstm_sequence
    from jaxlstm.nn.layers import scan_lstm

    layer = LSTM(FEATURES, UNITS, rngs=nnx.Rngs(5))
    x = jnp.asarray(inputs(3))
    state = LSTMState.zeros((BATCH,), UNITS)
    scale = jnp.asarray(np.random.default_rng(4).uniform(0.5, 1.5, size=(BATCH, UNITS)), jnp.float32)

    def fused(scale):
        outputs = lstm_sequence(layer.params, jnp.swapaxes(x, 0, 1), state, False, 1, True, None, scale)[0]
        return jnp.sum(jnp.swapaxes(outputs, 0, 1) ** 2)

    def textbook(scale):
        return jnp.sum(scan_lstm(layer.params, x, state, recurrent_scale=scale)[0] ** 2)

    np.testing.assert_allclose(jax.grad(fused)(scale), jax.grad(textbook)(scale), atol=1e-5)


def keras_values_and_gradients(keras_layer, x: np.ndarray, mask: np.ndarray):
    """Keras's outputs and d loss / d (trainable weights..., x) under jax.grad of ``stateless_call`` with a mask."""
    trainable = [variable.value for variable in keras_layer.trainable_variables]
    non_trainable = [variable.value for variable in keras_layer.non_trainable_variables]

    def loss(trainable, x):
        output = keras_layer.stateless_call(trainable, non_trainable, x, mask=jnp.asarray(mask))[0]
        return jnp.sum(output * jnp.asarray(inputs(7, output.shape))), output

    (_, output), grads = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(trainable, jnp.asarray(x))
    return output, grads


def our_values_and_gradients(layer, x: np.ndarray, mask: np.ndarray, keras_order):
    def loss(layer, x):
        output = layer(x, mask=mask)
        return jnp.sum(output * jnp.asarray(inputs(7, output.shape))), output

    (_, output), (layer_grads, x_grad) = nnx.value_and_grad(loss, argnums=(0, 1), has_aux=True)(layer, jnp.asarray(x))
    return output, (keras_order(layer_grads), x_grad)


@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("backwards", [False, True])
def test_an_lstm_with_a_mask_equals_keras_values_and_gradients(return_sequences: bool, backwards: bool) -> None:
    keras = pytest.importorskip("keras")
    from jaxlstm.interop import load_keras

    keras_layer = keras.layers.LSTM(UNITS, return_sequences=return_sequences, go_backwards=backwards)
    x, mask = inputs(4), holes_mask()
    keras_layer.build(x.shape)
    ours = LSTM(FEATURES, UNITS, return_sequences=return_sequences, reverse=backwards, rngs=nnx.Rngs(0))
    ours = load_keras(ours, keras_layer)
    expected, (keras_weights, keras_x) = keras_values_and_gradients(keras_layer, x, mask)
    if backwards and return_sequences:  # Keras returns a go_backwards sequence reversed; jaxlstm keeps it aligned
        expected = expected[:, ::-1]
    output, (weights, x_grad) = our_values_and_gradients(
        ours, x, mask, lambda grads: [grads["W"][...], grads["U"][...], grads["b"][...]]
    )
    np.testing.assert_allclose(output, expected, atol=1e-5)
    if backwards and return_sequences:
        return  # the loss weights met the outputs in another order: gradients are compared above for the rest
    for ours_grad, keras_grad in zip([*weights, x_grad], [*keras_weights, keras_x], strict=True):
        np.testing.assert_allclose(ours_grad, keras_grad, atol=1e-5)


@pytest.mark.parametrize("return_sequences", [True, False])
def test_a_bidirectional_layer_with_a_mask_equals_keras(return_sequences: bool) -> None:
    """Keras zeroes a Bidirectional's sequence outputs at masked steps; its backward layer reads each sequence from
    its last valid step."""
    keras = pytest.importorskip("keras")
    from jaxlstm.interop import load_keras

    keras_layer = keras.layers.Bidirectional(keras.layers.LSTM(UNITS, return_sequences=return_sequences))
    x, mask = inputs(5), holes_mask()
    keras_layer.build(x.shape)
    ours = Bidirectional(
        LSTM(FEATURES, UNITS, return_sequences=return_sequences, rngs=nnx.Rngs(0)),
        LSTM(FEATURES, UNITS, return_sequences=return_sequences, reverse=True, rngs=nnx.Rngs(1)),
    )
    ours = load_keras(ours, keras_layer)
    expected, (keras_weights, keras_x) = keras_values_and_gradients(keras_layer, x, mask)

    def keras_order(grads):
        return [grads[direction][name][...] for direction in ("forward_layer", "backward_layer") for name in "WUb"]

    output, (weights, x_grad) = our_values_and_gradients(ours, x, mask, keras_order)
    np.testing.assert_allclose(output, expected, atol=1e-5)
    for ours_grad, keras_grad in zip([*weights, x_grad], [*keras_weights, keras_x], strict=True):
        np.testing.assert_allclose(ours_grad, keras_grad, atol=1e-5)


def test_a_bidirectional_stack_with_lengths_equals_pytorch_packed_sequences() -> None:
    """nn.LSTM(bidirectional, 2 layers) over pack_padded_sequence: padded outputs (zeros), h_n, c_n, and the
    gradients of the weights and the inputs."""
    torch = pytest.importorskip("torch")
    from jaxlstm.interop import stacked_from_torch, torch_state_dict

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(FEATURES, UNITS, num_layers=2, bidirectional=True, batch_first=True)
    x = inputs(6)
    out_weights, state_weights = inputs(8, (BATCH, TIME, 2 * UNITS)), inputs(9, (4, BATCH, UNITS))
    x_torch = torch.tensor(x, requires_grad=True)
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        x_torch, torch.tensor(LENGTHS), batch_first=True, enforce_sorted=False
    )
    packed_out, (h_n, c_n) = lstm(packed)
    out = torch.nn.utils.rnn.pad_packed_sequence(packed_out, batch_first=True, total_length=TIME)[0]
    loss = (out * torch.tensor(out_weights)).sum() + (h_n * torch.tensor(state_weights)).sum() + (c_n**2).sum()
    loss.backward()

    stack = stacked_from_torch(lstm)

    def our_loss(stack, x):
        output, states = stack(x, lengths=jnp.asarray(LENGTHS), return_state=True)
        directions = [direction for layer_state in states for direction in layer_state]
        h = jnp.stack([state.h for state in directions])
        c = jnp.stack([state.c for state in directions])
        return jnp.sum(output * out_weights) + jnp.sum(h * state_weights) + jnp.sum(c**2), (output, h, c)

    (_, (output, h, c)), (grads, x_grad) = nnx.value_and_grad(our_loss, argnums=(0, 1), has_aux=True)(
        stack, jnp.asarray(x)
    )
    np.testing.assert_allclose(output, out.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(h, h_n.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(c, c_n.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(x_grad, x_torch.grad.numpy(), atol=1e-5)
    nnx.update(stack, grads)  # the stack now holds its gradients, named as nn.LSTM's parameters
    for name, ours in torch_state_dict(stack, numpy=True).items():
        if name.startswith("bias_hh"):
            continue  # jaxlstm's one bias is bias_ih + bias_hh: its gradient is each of theirs
        np.testing.assert_allclose(ours, getattr(lstm, name).grad.numpy(), atol=1e-5, err_msg=name)


def test_a_stack_passes_its_mask_to_every_layer_as_keras_propagates_it() -> None:
    keras = pytest.importorskip("keras")
    from jaxlstm.interop import load_keras

    first, second = keras.layers.LSTM(UNITS, return_sequences=True), keras.layers.LSTM(UNITS)
    x, mask = inputs(10), holes_mask()
    first.build(x.shape)
    second.build((BATCH, TIME, UNITS))
    expected = second(first(x, mask=mask), mask=mask)
    stack = Stacked(
        [LSTM(FEATURES, UNITS, rngs=nnx.Rngs(0)), LSTM(UNITS, UNITS, return_sequences=False, rngs=nnx.Rngs(1))]
    )
    load_keras(stack.layers[0], first)
    load_keras(stack.layers[1], second)
    np.testing.assert_allclose(stack(x, mask=mask), expected, atol=1e-5)


def test_a_convlstm_skips_masked_steps_too() -> None:
    layer = ConvLSTM1D(2, 3, 3, return_sequences=False, rngs=nnx.Rngs(0))
    x = inputs(11, (BATCH, TIME, 5, 2))
    masked = layer(x, lengths=jnp.asarray(LENGTHS))
    for row, length in enumerate(LENGTHS):
        np.testing.assert_allclose(masked[row], layer(x[row : row + 1, :length])[0], atol=1e-6)


@pytest.mark.parametrize("implementation", ["fused", "textbook"])
def test_dropout_inside_the_layer_equals_the_numpy_lstm_with_the_same_masks(implementation: str) -> None:
    """One input mask and one recurrent mask per sequence, drawn in one call, reused at every step."""
    layer = LSTM(FEATURES, UNITS, dropout=0.3, recurrent_dropout=0.4, implementation=implementation, rngs=nnx.Rngs(6))
    x, key = inputs(12), jax.random.key(9)
    keep_input, keep_recurrent = dropout_masks(key, [(BATCH, FEATURES), (BATCH, UNITS)], [0.3, 0.4])
    outputs, final = layer.scan(x, dropout_key=key)
    expected, _, c = numpy_run(
        layer,
        x,
        input_scale=np.asarray(keep_input) / 0.7,
        recurrent_scale=np.asarray(keep_recurrent) / 0.6,
    )
    np.testing.assert_allclose(outputs, expected, atol=1e-5)
    np.testing.assert_allclose(final.c, c, atol=1e-5)
    # Without a key (inference) the layer is the plain LSTM.
    np.testing.assert_allclose(layer(x), numpy_run(layer, x)[0], atol=1e-6)


def test_dropout_masks_drop_at_their_rates() -> None:
    keep_input, keep_recurrent = dropout_masks(jax.random.key(0), [(400, 50), (400, 50)], [0.3, 0.6])
    assert abs(float(jnp.mean(keep_input)) - 0.7) < 0.01
    assert abs(float(jnp.mean(keep_recurrent)) - 0.4) < 0.01


def test_a_stack_gives_each_layer_its_own_dropout_key() -> None:
    """Two identical layers (same weights) stacked: with one key each, their recurrent masks differ, so the stack
    differs from the same layers run by hand with one shared key; the same key gives the same result."""
    layers = [LSTM(UNITS, UNITS, recurrent_dropout=0.5, rngs=nnx.Rngs(0)) for _ in range(2)]
    stack = Stacked(layers)
    x, key = inputs(13, (BATCH, TIME, UNITS)), jax.random.key(3)
    once = stack(x, dropout_key=key)
    np.testing.assert_array_equal(once, stack(x, dropout_key=key))
    shared = layers[1](layers[0](x, dropout_key=key), dropout_key=key)
    assert not np.allclose(once, shared)
    assert not np.allclose(once, stack(x, dropout_key=jax.random.key(4)))
    assert not np.allclose(once, stack(x))


def test_wrappers_without_a_mask_take_nested_lists_as_before() -> None:
    x = inputs(25)
    bidirectional = Bidirectional(
        LSTM(FEATURES, UNITS, rngs=nnx.Rngs(0)), LSTM(FEATURES, UNITS, reverse=True, rngs=nnx.Rngs(1))
    )
    np.testing.assert_array_equal(bidirectional(x.tolist()), bidirectional(x))
    stack = Stacked([LSTM(FEATURES, UNITS, rngs=nnx.Rngs(0))])
    np.testing.assert_array_equal(stack(x.tolist()), stack(x))


@pytest.mark.parametrize("implementation", ["fused", "textbook"])
def test_bfloat16_compute_keeps_float32_weights_and_a_float32_cell_state(implementation: str) -> None:
    layer = LSTM(
        FEATURES,
        UNITS,
        dtype=jnp.bfloat16,
        cell_dtype=jnp.float32,
        implementation=implementation,
        rngs=nnx.Rngs(7),
    )
    x = inputs(14)
    outputs, final = layer.scan(x)
    assert layer.W.dtype == jnp.float32
    assert outputs.dtype == jnp.bfloat16 and final.h.dtype == jnp.bfloat16 and final.c.dtype == jnp.float32
    expected, _, c = numpy_run(layer, x)
    np.testing.assert_allclose(np.asarray(outputs, np.float32), expected, atol=3e-2)
    np.testing.assert_allclose(final.c, c, atol=3e-2)
    grads = nnx.grad(lambda layer: jnp.sum(layer(x).astype(jnp.float32)))(layer)
    assert grads["W"][...].dtype == jnp.float32


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16])
@pytest.mark.parametrize("implementation", ["fused", "textbook"])
def test_low_precision_paths_follow_the_float64_numpy_lstm(dtype, implementation: str) -> None:
    x = inputs(15)
    layer = LSTM(FEATURES, UNITS, dtype=dtype, implementation=implementation, rngs=nnx.Rngs(8))
    tolerance = 3e-2 if dtype == jnp.bfloat16 else 3e-3
    np.testing.assert_allclose(np.asarray(layer(x), np.float32), numpy_run(layer, x)[0], atol=tolerance)


def test_float64_parameters_match_the_numpy_lstm_to_round_off() -> None:
    with jax.enable_x64(True):
        layer = LSTM(FEATURES, UNITS, param_dtype=jnp.float64, rngs=nnx.Rngs(9))
        x = inputs(16).astype(np.float64)
        outputs = layer(x)
        assert outputs.dtype == jnp.float64
        np.testing.assert_allclose(outputs, numpy_run(layer, x)[0], atol=1e-13)


def test_a_stack_of_bfloat16_layers_runs_and_differentiates() -> None:
    options = {"dtype": jnp.bfloat16, "cell_dtype": jnp.float32}
    stack = Stacked(
        [
            Bidirectional(
                LSTM(FEATURES, UNITS, **options, rngs=nnx.Rngs(0)),
                LSTM(FEATURES, UNITS, reverse=True, **options, rngs=nnx.Rngs(1)),
            ),
            LSTM(2 * UNITS, UNITS, return_sequences=False, **options, rngs=nnx.Rngs(2)),
        ],
        dropout=0.2,
    )
    x = inputs(17)
    grads = nnx.grad(lambda stack: jnp.sum(stack(x, dropout_key=jax.random.key(0)).astype(jnp.float32)))(stack)
    assert all(leaf.dtype == jnp.float32 and np.isfinite(leaf).all() for leaf in jax.tree.leaves(grads))


@pytest.mark.parametrize("reverse", [False, True])
def test_forward_mode_derivatives_of_the_fast_path_match_finite_differences(reverse: bool) -> None:
    """jax.jvp of the default (fused) layer: it runs the textbook loop under forward mode by itself."""
    with jax.enable_x64(True):
        layer = LSTM(FEATURES, UNITS, reverse=reverse, param_dtype=jnp.float64, rngs=nnx.Rngs(10))
        x = inputs(18).astype(np.float64)
        direction = inputs(19).astype(np.float64)
        _, tangent = jax.jvp(layer, (x,), (direction,))
        step = 1e-5
        difference = (layer(x + step * direction) - layer(x - step * direction)) / (2 * step)
        np.testing.assert_allclose(tangent, difference, atol=1e-8)


def test_jacfwd_and_hessian_of_the_fast_path_equal_reverse_mode() -> None:
    layer = LSTM(FEATURES, UNITS, return_sequences=False, rngs=nnx.Rngs(11))
    x = jnp.asarray(inputs(20))

    def loss(x):
        return jnp.sum(layer(x) ** 2)

    np.testing.assert_allclose(jax.jacfwd(loss)(x), jax.grad(loss)(x), atol=1e-5)
    textbook = LSTM(FEATURES, UNITS, return_sequences=False, implementation="textbook", rngs=nnx.Rngs(11))
    hessian = jax.hessian(loss)(x)
    np.testing.assert_allclose(hessian, jax.hessian(lambda x: jnp.sum(textbook(x) ** 2))(x), atol=1e-5)


def test_forward_mode_of_a_function_jitted_beforehand_needs_the_textbook_path() -> None:
    """The documented limit: a jitted function already compiled outside forward mode keeps the fused path, which
    jax.jvp cannot enter; a textbook layer has no such limit."""
    x, direction = jnp.asarray(inputs(21)), jnp.asarray(inputs(22))
    fused = jax.jit(LSTM(FEATURES, UNITS, rngs=nnx.Rngs(0)).__call__)
    fused(x)
    with pytest.raises(TypeError, match="can't apply forward-mode autodiff"):
        jax.jvp(fused, (x,), (direction,))
    textbook = jax.jit(LSTM(FEATURES, UNITS, implementation="textbook", rngs=nnx.Rngs(0)).__call__)
    textbook(x)
    tangent = jax.jvp(textbook, (x,), (direction,))[1]
    np.testing.assert_allclose(
        tangent, jax.jvp(LSTM(FEATURES, UNITS, rngs=nnx.Rngs(0)), (x,), (direction,))[1], atol=1e-6
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda layer, x: layer(x, mask=np.ones((BATCH, TIME + 1), bool)),
            "mask must be (batch, time) = (3, 6), got (3, 7)",
        ),
        (lambda layer, x: layer(x, lengths=np.ones((BATCH, 1), int)), "lengths must be integers (batch,) = (3,)"),
        (lambda layer, x: layer(x, lengths=np.ones(BATCH)), "lengths must be integers (batch,) = (3,), got float"),
        (lambda layer, x: layer(x, lengths=np.array([1, 7, 2])), "lengths must lie in [0, 6] (the time steps)"),
        (
            lambda layer, x: layer(x, mask=np.ones((BATCH, TIME), bool), lengths=LENGTHS),
            "pass a mask or lengths, not both",
        ),
        (lambda layer, x: LSTM(FEATURES, UNITS, dropout=1.0, rngs=nnx.Rngs(0)), "LSTM dropout must be in [0, 1)"),
        (
            lambda layer, x: LSTM(FEATURES, UNITS, recurrent_dropout=-0.1, rngs=nnx.Rngs(0)),
            "LSTM recurrent_dropout must be in [0, 1)",
        ),
        (lambda layer, x: LSTM(FEATURES, UNITS, dtype=jnp.int32, rngs=nnx.Rngs(0)), "dtype must be a floating dtype"),
        (lambda layer, x: LSTM(FEATURES, UNITS, dtype="bfloat61", rngs=nnx.Rngs(0)), "dtype must be a floating dtype"),
        (
            lambda layer, x: ConvLSTM1D(2, 3, 3, rngs=nnx.Rngs(0))(np.ones((2, 4, 5, 2)), (np.zeros((2, 3, 3)),)),
            "initial_state must be (h, c), got 1 arrays",
        ),
        (
            lambda layer, x: ConvLSTM1D(2, 3, 3, rngs=nnx.Rngs(0))(np.ones((2, 4, 5, 2)), (np.zeros((2, 5, 3)),) * 2),
            "initial_state h must be (batch, *out_spatial, filters) = (2, 3, 3), got (2, 5, 3)",
        ),
        (
            lambda layer, x: LSTM(FEATURES, UNITS, param_dtype=jnp.float64, rngs=nnx.Rngs(0)),
            "param_dtype=float64 needs 64-bit JAX: set JAX_ENABLE_X64=1",
        ),
    ],
)
def test_bad_masks_rates_and_dtypes_get_one_line_errors(call, message: str) -> None:
    layer, x = LSTM(FEATURES, UNITS, rngs=nnx.Rngs(0)), inputs()
    with pytest.raises(ValueError) as error:
        call(layer, x)
    assert message in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize("arch", ["stacked", pytest.param("conv", marks=pytest.mark.slow)])
def test_a_mixed_precision_forecaster_is_the_float32_one_to_bfloat16_rounding(arch: str) -> None:
    """Same seed, same float32 weights: the bfloat16 model's forecasts (float32) differ from the float32 model's
    by bfloat16's rounding only, and training keeps the weights float32."""
    from jaxlstm.config import TrainConfig, preset
    from jaxlstm.nn.models import Forecaster
    from jaxlstm.training.single import fit

    full = Forecaster(preset(arch, units=8), rngs=nnx.Rngs(0))
    mixed = Forecaster(preset(arch, units=8, precision="bfloat16"), rngs=nnx.Rngs(0))
    x = np.random.default_rng(23).uniform(size=(16, 60, 1)).astype(np.float32)
    forecasts = mixed(x)
    assert forecasts.dtype == jnp.float32
    np.testing.assert_allclose(forecasts, full(x), atol=2e-2)
    fit(mixed, x, x[:, -1, 0], TrainConfig(epochs=2, batch_size=8), progress=False)
    leaves = jax.tree.leaves(nnx.state(mixed, nnx.Param))
    assert all(leaf.dtype == jnp.float32 and np.isfinite(leaf).all() for leaf in leaves)


@pytest.mark.parametrize("arch", ["vanilla", "stacked", pytest.param("bidirectional", marks=pytest.mark.slow)])
def test_a_forecaster_with_lengths_forecasts_each_window_as_if_alone(arch: str) -> None:
    """Windows of 20, 11 and 16 days padded to 20 share a batch: each forecast equals the short window's alone."""
    from jaxlstm.config import preset
    from jaxlstm.nn.models import Forecaster

    model = Forecaster(preset(arch, units=8, layers=1 if arch == "vanilla" else 2), rngs=nnx.Rngs(0))
    x = np.random.default_rng(24).uniform(size=(3, 20, 1)).astype(np.float32)
    lengths = np.array([20, 11, 16])
    padded = np.where(np.arange(20)[None, :, None] < lengths[:, None, None], x, 0.0)
    forecasts = model(padded, lengths=jnp.asarray(lengths))
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(forecasts[row], model(x[row : row + 1, :length])[0], atol=1e-6)


def test_a_conv_forecaster_refuses_a_mask() -> None:
    from jaxlstm.config import preset
    from jaxlstm.nn.models import Forecaster

    model = Forecaster(preset("conv", units=4), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="the conv architecture reads its window in blocks of days"):
        model(np.ones((2, 60, 1), np.float32), lengths=jnp.asarray([60, 30]))
