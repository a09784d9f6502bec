"""Training on real (bundled) prices: the loss falls, seeds reproduce, the guards and early stopping hold."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from jaxlstm.config import TrainConfig, preset
from jaxlstm.data import load_prices, prepare, window_series
from jaxlstm.errors import ConfigError, TrainingError
from jaxlstm.nn.layers import LSTM, Stacked
from jaxlstm.nn.models import Forecaster
from jaxlstm.training import estimate_memory
from jaxlstm.training.single import fit
from tests.conftest import BUNDLED


@pytest.fixture(scope="module")
def goog():
    """The tutorial's setup on bundled GOOG: last 230 rows, 172 training rows, 60-day windows."""
    return prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-230:], split=172)


def numpy_mse(model: Forecaster, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean((np.asarray(model(x), np.float64) - y) ** 2))


def train(dataset, epochs: int, seed: int = 0, arch: str = "stacked", units: int = 16, **kwargs):
    model = Forecaster(preset(arch, units=units), rngs=nnx.Rngs(seed))
    history = fit(
        model, dataset.x_train, dataset.y_train, TrainConfig(epochs=epochs, seed=seed, **kwargs), progress=False
    )
    return model, history


@pytest.mark.slow
def test_a_few_epochs_lower_the_loss_on_real_data(goog) -> None:
    untrained = Forecaster(preset("stacked", units=16), rngs=nnx.Rngs(0))
    before = numpy_mse(untrained, goog.x_train, goog.y_train)
    model, history = train(goog, epochs=15)
    after = numpy_mse(model, goog.x_train, goog.y_train)
    assert after < 0.5 * before
    assert history.loss[-1] < history.loss[0]


def test_same_seed_gives_identical_parameters(goog) -> None:
    first, _ = train(goog, epochs=2, seed=3, arch="vanilla")
    second, _ = train(goog, epochs=2, seed=3, arch="vanilla")
    other, _ = train(goog, epochs=2, seed=4, arch="vanilla")
    leaves = [jax.tree.leaves(nnx.state(m, nnx.Param)) for m in (first, second, other)]
    for a, b in zip(leaves[0], leaves[1], strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, c) for a, c in zip(leaves[0], leaves[2], strict=True))


def test_non_finite_loss_stops_with_the_epoch(goog) -> None:
    y = goog.y_train.copy()
    y[5] = np.nan
    model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
    with pytest.raises(TrainingError, match="at epoch 1; lower --lr"):
        fit(model, goog.x_train, y, TrainConfig(epochs=3), progress=False)


def test_early_stopping_restores_the_best_weights(goog) -> None:
    model, history = train(
        goog, epochs=60, arch="vanilla", units=8, validation_split=0.2, patience=3, learning_rate=0.05
    )
    n_val = int(len(goog.x_train) * 0.2)
    assert len(history.loss) < 60
    assert len(history.loss) == history.best_epoch + 3
    restored = numpy_mse(model, goog.x_train[-n_val:], goog.y_train[-n_val:])
    assert restored == pytest.approx(min(history.val_loss), rel=1e-5)


@pytest.mark.parametrize(
    ("devices", "batch_size"),
    [pytest.param(1, 32, marks=pytest.mark.slow), pytest.param(2, 32, marks=pytest.mark.slow), (2, 25)],
)
def test_epochs_equal_a_plain_loop_over_shuffled_batches(goog, devices: int, batch_size: int) -> None:
    """Oracle: Keras's fit semantics written as a Python loop over batches, the last partial batch (16 of 112)
    averaged over its real samples only, on one device. The loop draws the same permutations (the documented key
    schedule). Splitting each batch over two devices (even or odd batch size) must not change the result."""
    if devices > len(jax.local_devices()):
        pytest.skip("needs two JAX devices")
    config = TrainConfig(epochs=2, batch_size=batch_size, seed=7, devices=devices)
    model = Forecaster(preset("vanilla", units=6, dropout=0.0), rngs=nnx.Rngs(1))
    params = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))  # fit updates the model's variables in place
    fit(model, goog.x_train, goog.y_train, config, progress=False)

    graphdef, _ = nnx.split(model, nnx.Param)
    optimizer = optax.adam(config.learning_rate, eps=config.adam_epsilon)
    opt_state = optimizer.init(params)
    key = jax.random.key(config.seed)

    @jax.jit
    @jax.grad
    def batch_gradient(params, x, y):
        return jnp.mean((nnx.merge(graphdef, params)(x) - y) ** 2)

    for _ in range(config.epochs):
        key, epoch_key = jax.random.split(key)
        shuffle_key, _ = jax.random.split(epoch_key)
        order = np.asarray(jax.random.permutation(shuffle_key, len(goog.x_train)))
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            grads = batch_gradient(params, goog.x_train[batch], goog.y_train[batch])
            updates, opt_state = optimizer.update(grads, opt_state, params)
            params = optax.apply_updates(params, updates)

    for ours, oracle in zip(jax.tree.leaves(nnx.state(model, nnx.Param)), jax.tree.leaves(params), strict=True):
        np.testing.assert_allclose(ours, oracle, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "--epochs 0: must be a whole number >= 1"),
        ({"batch_size": -1}, "--batch-size -1: must be a whole number >= 1"),
        ({"learning_rate": 0.0}, "--lr 0.0: must be a finite number > 0"),
        ({"patience": 3}, "patience needs"),
        ({"validation_split": 1.5}, "--validation-split 1.5: must be at least 0 and below 1"),
    ],
)
def test_bad_training_config_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize(("arch", "directions"), [("stacked", 1), ("bidirectional", 2)])
def test_memory_estimate_counts_weights_moments_and_every_gate(arch: str, directions: int) -> None:
    """Against the arithmetic, from Keras's parameter counts: weights, gradients and Adam's two moments are 4 x the
    float32 parameters; the activations are the 4 gates and 2 states of every unit, step, window of a batch, layer
    and direction; the data, every day of the series the windows view and every target."""
    parameters = {"stacked": 71_051, "bidirectional": 202_101}[arch]
    estimate = estimate_memory(preset(arch), TrainConfig(batch_size=32), n_windows=112, window=60)
    assert estimate.state == 4 * parameters * 4
    assert estimate.activations == 6 * 32 * 60 * 50 * 4 * directions * 4
    assert estimate.data == ((112 + 59) + 112) * 4
    assert (
        estimate_memory(preset(arch), TrainConfig(batch_size=10**6), 112, 60).activations
        == 112 / 32 * estimate.activations
    )


def test_windows_gathered_from_their_series_train_as_a_copy_of_them(goog) -> None:
    """prepare's windows are views of the scaled series: fit places the series and gathers each batch's windows
    inside the epoch; a copy of the same windows is placed whole and indexed. Both give the same losses and weights,
    with a validation split and the batches split over every device."""
    assert window_series(goog.x_train) is not None and window_series(np.array(goog.x_train)) is None
    config = TrainConfig(epochs=3, batch_size=16, validation_split=0.2, devices=min(2, len(jax.devices())))
    runs = []
    for x in (goog.x_train, np.array(goog.x_train)):
        model = Forecaster(preset("stacked", units=8), rngs=nnx.Rngs(0))
        history = fit(model, x, goog.y_train, config, progress=False)
        runs.append((history.loss + history.val_loss, nnx.state(model, nnx.Param)))
    (gathered_losses, gathered), (copied_losses, copied) = runs
    np.testing.assert_allclose(gathered_losses, copied_losses, rtol=1e-6)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), gathered, copied)


class _DroppedStack(nnx.Module):
    """Two LSTMs with input and recurrent dropout inside them and dropout between them, and a Dense(1) head."""

    def __init__(self, rngs: nnx.Rngs):
        layers = [
            LSTM(1, 8, return_sequences=True, dropout=0.3, recurrent_dropout=0.2, rngs=rngs),
            LSTM(8, 8, return_sequences=False, dropout=0.3, recurrent_dropout=0.2, rngs=rngs),
        ]
        self.stack = Stacked(layers, dropout=0.3)
        self.head = nnx.Linear(8, 1, rngs=rngs)

    def __call__(self, x: jax.Array, *, dropout_key: jax.Array | None = None) -> jax.Array:
        return self.head(self.stack(x, dropout_key=dropout_key))[..., 0]


@pytest.mark.parametrize("batch_size", [32, 25])
def test_a_seed_trains_the_same_model_on_one_and_two_devices(goog, batch_size: int) -> None:
    """Dropout between the layers and inside them (input and recurrent) with every mask drawn per sample: a batch
    split over two devices (even, or odd and padded) draws the masks it draws whole on one, so the weights after
    three epochs differ only by the rounding of the gradients' sum (and differ from another seed's)."""
    if len(jax.local_devices()) < 2:
        pytest.skip("needs two JAX devices")
    weights = []
    for devices, seed in ((1, 5), (2, 5), (2, 6)):
        model = _DroppedStack(nnx.Rngs(0))
        train = TrainConfig(epochs=3, batch_size=batch_size, seed=seed, devices=devices)
        fit(model, goog.x_train, goog.y_train, train, progress=False)
        weights.append(jax.tree.leaves(nnx.state(model, nnx.Param)))
    for one, two, _ in zip(*weights, strict=True):
        np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-6)
    assert not all(np.allclose(one, other) for one, other in zip(weights[0], weights[2], strict=True))
