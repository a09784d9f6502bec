"""Keras 3 (JAX backend) is the oracle: imported models give its outputs, gradients and training curve; round trips
through .keras files, .weights.h5 files and live models are exact; mismatched architectures fail with one line."""

import json
import zipfile
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jaxlstm.commands import main
from jaxlstm.config import TrainConfig, preset
from jaxlstm.data import load_prices, prepare
from jaxlstm.errors import ConfigError, RunError
from jaxlstm.interop import (
    InteropError,
    from_keras,
    keras_model_config,
    keras_weights,
    load_keras,
    save_keras,
    to_keras,
)
from jaxlstm.nn.cell import LSTMState
from jaxlstm.nn.layers import LSTM, Bidirectional, Stacked
from jaxlstm.nn.models import Forecaster
from jaxlstm.runs import load_run
from jaxlstm.training import make_optimizer
from jaxlstm.training.single import fit
from tests.conftest import BUNDLED

keras = pytest.importorskip("keras")
if keras.backend.backend() != "jax":  # pragma: no cover - conftest sets KERAS_BACKEND=jax before keras loads
    pytest.skip(
        "these tests differentiate Keras models with jax.grad: KERAS_BACKEND must be jax", allow_module_level=True
    )

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

FORWARD_ATOL = 1e-5
GRADIENT_ATOL = 1e-4


@pytest.fixture(scope="module")
def goog():
    """The tutorial's windows on bundled GOOG: x_train (112, 60, 1), x_test (58, 60, 1)."""
    return prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-230:], split=172)


def keras_tutorial(
    arch: str,
    *,
    units: int = 50,
    layers: int = 4,
    dropout: float = 0.2,
    timesteps: int | None = 60,
    seed: int = 0,
    outputs: int = 1,
) -> "keras.Model":
    """The tutorial's Keras model (LSTM or Bidirectional(LSTM) layers, Dropout after each, Dense(outputs)), its
    weights and biases all drawn at random so that no slice of any array is left at its initial value."""
    stack = [keras.Input((timesteps, 1))]
    for index in range(layers):
        lstm = keras.layers.LSTM(units, return_sequences=index < layers - 1)
        stack.append(keras.layers.Bidirectional(lstm) if arch == "bidirectional" else lstm)
        if dropout:
            stack.append(keras.layers.Dropout(dropout))
    model = keras.Sequential([*stack, keras.layers.Dense(outputs)])
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(-0.4, 0.4, w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def keras_function(model: "keras.Model"):
    """Keras's forward pass as a pure JAX function of its trainable variables: ``f(variables, x) -> (batch,)``."""
    non_trainable = [v.value for v in model.non_trainable_variables]

    def forward(variables, x):
        return model.stateless_call(variables, non_trainable, x, training=False)[0][:, 0]

    return forward, [v.value for v in model.trainable_variables]


def jit_call(module, x):
    """``module(x)`` under ``jax.jit`` (split/merge): one compiled program instead of eager dispatch."""
    graphdef, state = nnx.split(module)
    return jax.jit(lambda state, x: nnx.merge(graphdef, state)(x))(state, x)


def max_difference(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


@pytest.mark.parametrize("arch", ["stacked", "bidirectional"])
def test_forward_equals_keras_on_random_and_real_windows(arch: str, goog) -> None:
    model = keras_tutorial(arch)
    ours = from_keras(model)
    assert ours.config == preset(arch)  # 4 x 50 units, dropout 0.2: the tutorial's, read back from the model
    forward, variables = keras_function(model)
    random = np.random.default_rng(1).normal(size=(8, 60, 1)).astype(np.float32)
    x = np.concatenate([random, goog.x_test])  # 8 random windows, then the 58 real test windows
    assert max_difference(jit_call(ours, x), jax.jit(forward)(variables, x)) < FORWARD_ATOL


@pytest.mark.parametrize("arch", ["stacked", "bidirectional"])
def test_gradients_equal_keras(arch: str, goog) -> None:
    """d MSE / d every weight, from Keras's stateless_call under jax.grad, against ours (Keras's weight order)."""
    model = keras_tutorial(arch, units=16, layers=2, seed=2)
    ours = from_keras(model)
    forward, variables = keras_function(model)
    x, y = goog.x_train[:32], goog.y_train[:32]
    assert [w.shape for w in variables] == [w.shape for w in model.get_weights()]  # trainable order = get_weights

    keras_grads = jax.jit(jax.grad(lambda v: jnp.mean((forward(v, x) - y) ** 2)))(variables)
    graphdef, params = nnx.split(ours, nnx.Param)
    our_grads = jax.jit(jax.grad(lambda p: jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2)))(params)
    our_grads = keras_weights(nnx.merge(graphdef, our_grads))

    assert len(our_grads) == len(keras_grads)
    for expected, actual in zip(keras_grads, our_grads, strict=True):
        assert actual.shape == expected.shape
        assert max_difference(actual, expected) < GRADIENT_ATOL
    assert max(float(np.abs(g).max()) for g in our_grads) > 1e-2  # the comparison is not between zeros


@pytest.mark.parametrize(
    ("merge_mode", "return_sequences"),
    [("concat", False), ("sum", True), ("mul", True), ("ave", True)],
)
def test_bidirectional_layer_merge_modes(merge_mode: str, return_sequences: bool) -> None:
    layer = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=return_sequences), merge_mode=merge_mode)
    x = np.random.default_rng(3).normal(size=(3, 7, 2)).astype(np.float32)
    layer.build(x.shape)
    rng = np.random.default_rng(4)
    layer.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in layer.get_weights()])
    ours = Bidirectional(
        LSTM(2, 4, return_sequences=return_sequences, rngs=nnx.Rngs(0)),
        LSTM(2, 4, return_sequences=return_sequences, reverse=True, rngs=nnx.Rngs(1)),
        merge_mode=merge_mode,
    )
    load_keras(ours, layer)
    assert max_difference(ours(x), layer(x)) < FORWARD_ATOL


def test_bare_layers_and_stacks_load_from_a_model() -> None:
    model = keras_tutorial("stacked", units=6, layers=3, timesteps=9)
    weights = model.get_weights()
    second = load_keras(LSTM(6, 6, rngs=nnx.Rngs(0)), model, layer=1)
    assert all(np.array_equal(a, b) for a, b in zip(keras_weights(second), weights[3:6], strict=True))
    stack = Stacked([LSTM(1 if i == 0 else 6, 6, return_sequences=i < 2, rngs=nnx.Rngs(i)) for i in range(3)])
    load_keras(stack, model)  # the Dense head is ignored
    assert all(np.array_equal(a, b) for a, b in zip(keras_weights(stack), weights[:-2], strict=True))
    with pytest.raises(InteropError, match="pass layer=<index>"):
        load_keras(LSTM(1, 6, rngs=nnx.Rngs(0)), model)


@pytest.mark.slow  # to_keras copies keras_weights() exactly (the round trips prove it): this re-checks numerics
def test_exported_model_equals_ours() -> None:
    ours = Forecaster(preset("bidirectional", layers=2, units=5), rngs=nnx.Rngs(3))
    exported = to_keras(ours)
    assert [type(layer).__name__ for layer in exported.layers] == ["Bidirectional", "Dropout"] * 2 + ["Dense"]
    assert exported.count_params() == sum(w.size for w in keras_weights(ours))
    x = np.random.default_rng(6).normal(size=(4, 11, 1)).astype(np.float32)
    forward, variables = keras_function(exported)
    assert max_difference(jit_call(ours, x), jax.jit(forward)(variables, x)) < FORWARD_ATOL


def h5_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of a .weights.h5 file, or of the model.weights.h5 inside a .keras archive, by its path."""
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            (path.parent / "inner.weights.h5").write_bytes(archive.read("model.weights.h5"))
        path = path.parent / "inner.weights.h5"
    arrays = {}
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda name, item: arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None)
    return arrays


@pytest.mark.parametrize("arch", ["stacked", pytest.param("bidirectional", marks=pytest.mark.slow)])
def test_round_trips_are_exact(arch: str, tmp_path: Path) -> None:
    """Keras -> ours -> Keras, through a live model, a .keras file and a .weights.h5 file: every array bit-equal."""
    model = keras_tutorial(arch, units=7, layers=3, seed=8)
    weights = model.get_weights()

    live = to_keras(from_keras(model), timesteps=60)
    assert [type(layer).__name__ for layer in live.layers] == [type(layer).__name__ for layer in model.layers]
    assert all(np.array_equal(a, b) for a, b in zip(live.get_weights(), weights, strict=True))

    model.save(tmp_path / "in.keras")
    save_keras(from_keras(tmp_path / "in.keras"), tmp_path / "out.keras")
    original, copy = h5_arrays(tmp_path / "in.keras"), h5_arrays(tmp_path / "out.keras")
    assert original.keys() == copy.keys()
    assert all(np.array_equal(original[key], copy[key]) for key in original)
    reloaded = keras.saving.load_model(tmp_path / "out.keras")
    assert all(np.array_equal(a, b) for a, b in zip(reloaded.get_weights(), weights, strict=True))

    model.save_weights(tmp_path / "in.weights.h5")
    from_h5 = from_keras(tmp_path / "in.weights.h5")
    assert from_h5.config == from_keras(model).config  # shapes alone give the architecture (dropout: 0.2 assumed)
    save_keras(from_h5, tmp_path / "out.weights.h5")
    original, copy = h5_arrays(tmp_path / "in.weights.h5"), h5_arrays(tmp_path / "out.weights.h5")
    assert original.keys() == copy.keys()
    assert all(np.array_equal(original[key], copy[key]) for key in original)


def test_architecture_is_read_from_the_keras_config(tmp_path: Path) -> None:
    model = keras_tutorial("stacked", units=3, layers=1, dropout=0.1, timesteps=None)
    model.save(tmp_path / "vanilla.keras")
    assert keras_model_config(tmp_path / "vanilla.keras") == preset("vanilla", units=3, dropout=0.1)
    no_dropout = keras_tutorial("bidirectional", units=3, layers=2, dropout=0.0)
    assert keras_model_config(no_dropout) == preset("bidirectional", layers=2, units=3, dropout=0.0)


# Mismatched architectures: one test per kind, each message naming the layer and both shapes.


def test_mismatched_units_are_refused() -> None:
    model = keras_tutorial("stacked", units=8, layers=2)
    target = Forecaster(preset("stacked", layers=2, units=6), rngs=nnx.Rngs(0))
    before = keras_weights(target)
    with pytest.raises(
        InteropError, match=r"layer 'lstm\w*': kernel \(1, 32\) does not fit jaxlstm layer 0 W \(1, 24\)"
    ):
        load_keras(target, model)
    assert all(np.array_equal(a, b) for a, b in zip(before, keras_weights(target), strict=True))  # nothing loaded


def test_mismatched_layer_count_is_refused() -> None:
    model = keras_tutorial("stacked", units=4, layers=2)
    target = Forecaster(preset("stacked", layers=3, units=4), rngs=nnx.Rngs(0))
    with pytest.raises(InteropError, match=r"has 2 recurrent layers \(kernels \(1, 16\), \(4, 16\)\) but the jaxlstm"):
        load_keras(target, model)


def test_mismatched_direction_is_refused() -> None:
    model = keras_tutorial("bidirectional", units=4, layers=2)
    target = Forecaster(preset("stacked", layers=2, units=4), rngs=nnx.Rngs(0))
    with pytest.raises(
        InteropError, match=r"'bidirectional\w*' is bidirectional \(kernel \(1, 16\), \(1, 16\)\) but jaxlstm layer 0"
    ):
        load_keras(target, model)


def test_mismatch_errors_are_config_errors_and_one_line() -> None:
    model = keras_tutorial("stacked", units=4, layers=2)
    with pytest.raises(ConfigError) as error:
        load_keras(Forecaster(preset("bidirectional", layers=2, units=4), rngs=nnx.Rngs(0)), model)
    assert "\n" not in str(error.value)


def test_unsupported_keras_layers_are_refused(tmp_path: Path) -> None:
    gru = keras.Sequential([keras.Input((5, 1)), keras.layers.GRU(3), keras.layers.Dense(1)])
    with pytest.raises(InteropError, match="'gru' is a GRU; jaxlstm maps LSTM"):
        from_keras(gru)
    gru.save_weights(tmp_path / "gru.weights.h5")
    with pytest.raises(InteropError, match="layer 'gru' jaxlstm cannot map"):
        from_keras(tmp_path / "gru.weights.h5")
    relu = keras.Sequential([keras.Input((5, 1)), keras.layers.LSTM(3, activation="relu"), keras.layers.Dense(1)])
    with pytest.raises(InteropError, match="activation='relu'"):
        from_keras(relu)
    summed = keras.Sequential(
        [keras.Input((5, 1)), keras.layers.Bidirectional(keras.layers.LSTM(3), merge_mode="sum"), keras.layers.Dense(1)]
    )
    with pytest.raises(InteropError, match="merges with 'sum'; the Forecaster concatenates"):
        from_keras(summed)


def keras_step_losses(model: "keras.Model", x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int):
    """Keras's fit(shuffle=False): per-step losses (from the running means it logs) and per-epoch losses."""
    running: list[float] = []
    callback = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: running.append(logs["loss"]))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-3), loss="mse")
    history = model.fit(
        x, y.reshape(len(y), -1), batch_size=batch_size, epochs=epochs, shuffle=False, verbose=0, callbacks=[callback]
    )
    sizes = [len(range(start, min(start + batch_size, len(x)))) for start in range(0, len(x), batch_size)]
    steps = []
    for epoch in range(epochs):
        seen, previous = 0, 0.0
        for index, size in enumerate(sizes):
            mean = running[epoch * len(sizes) + index]
            steps.append((mean * (seen + size) - previous * seen) / size)
            seen, previous = seen + size, mean
    return np.array(steps), np.array(history.history["loss"])


def our_step_losses(model: Forecaster, x: np.ndarray, y: np.ndarray, epochs: int, batch_size: int, optimizer: str):
    """The same steps with jaxlstm's optimizer, the batches in order (no shuffling)."""
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = make_optimizer(TrainConfig(optimizer=optimizer))
    state = optimizer.init(params)

    @jax.jit
    def step(params, state, x, y):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean((nnx.merge(graphdef, p)(x) - y) ** 2))(params)
        updates, state = optimizer.update(grads, state, params)
        return jax.tree.map(jnp.add, params, updates), state, loss

    losses = []
    for _ in range(epochs):
        for start in range(0, len(x), batch_size):
            params, state, loss = step(params, state, x[start : start + batch_size], y[start : start + batch_size])
            losses.append(float(loss))
    return np.array(losses)


def test_training_curve_equals_keras(goog) -> None:
    """20 Adam steps (5 epochs of 112 windows in batches of 32, 32, 32, 16) from the same weights, no dropout, no
    shuffling: Keras's fit and ours give the same per-step and per-epoch losses, and the same final weights."""
    model = keras_tutorial("stacked", units=16, layers=2, dropout=0.0, seed=9)
    ours = from_keras(model)
    stepwise = from_keras(model)
    assert ours.config.dropout == 0.0
    keras_steps, keras_epochs = keras_step_losses(model, goog.x_train, goog.y_train, epochs=5, batch_size=32)
    assert len(keras_steps) == 20

    steps = our_step_losses(stepwise, goog.x_train, goog.y_train, 5, 32, "keras_adam")
    np.testing.assert_allclose(steps, keras_steps, rtol=1e-4)

    config = TrainConfig(epochs=5, batch_size=32, optimizer="keras_adam", shuffle=False)
    history = fit(ours, goog.x_train, goog.y_train, config, progress=False)
    np.testing.assert_allclose(history.loss, keras_epochs, rtol=1e-4)
    for expected, actual in zip(model.get_weights(), keras_weights(ours), strict=True):
        assert max_difference(actual, expected) < 1e-5
    assert keras_epochs[-1] < 0.8 * keras_epochs[0]  # it did train


def test_a_multi_day_head_trains_as_keras_does() -> None:
    """Dense(5) on 5-day targets: Keras's MSE averages each window's 5 errors, then the batch; 3 epochs of fit from
    the same weights give Keras's per-epoch losses and final weights."""
    dataset = prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-230:], split=172, horizon=5)
    model = keras_tutorial("stacked", units=8, layers=2, dropout=0.0, seed=4, outputs=5)
    ours = from_keras(model)
    assert ours.config.outputs == 5 and dataset.y_train.shape == (108, 5)
    _, keras_epochs = keras_step_losses(model, dataset.x_train, dataset.y_train, epochs=3, batch_size=32)
    config = TrainConfig(epochs=3, batch_size=32, optimizer="keras_adam", shuffle=False)
    history = fit(ours, dataset.x_train, dataset.y_train, config, progress=False)
    np.testing.assert_allclose(history.loss, keras_epochs, rtol=1e-4)
    for expected, actual in zip(model.get_weights(), keras_weights(ours), strict=True):
        assert max_difference(actual, expected) < 1e-5


def test_convert_command_round_trip(tmp_path: Path) -> None:
    """A .keras file -> a run directory that `predict` uses -> a .keras file with the same weights."""
    model = keras_tutorial("stacked", units=5, layers=2)
    model.save(tmp_path / "tutorial.keras")
    run = tmp_path / "run"
    assert main(["convert", str(tmp_path / "tutorial.keras"), str(run), "--tutorial-data"]) == 0
    assert {path.name for path in run.iterdir()} == {"config.json", "params.msgpack", "scalers.json"}
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == preset("stacked", layers=2, units=5).to_dict()
    assert config["data"]["window"] == 60
    loaded = load_run(run)
    assert all(np.array_equal(a, b) for a, b in zip(keras_weights(loaded.model), model.get_weights(), strict=True))
    assert main(["predict", "--run", str(run), "--out", str(tmp_path / "p.csv")]) == 0

    assert main(["convert", str(run), str(tmp_path / "back.keras")]) == 0
    back = keras.saving.load_model(tmp_path / "back.keras")
    assert all(np.array_equal(a, b) for a, b in zip(back.get_weights(), model.get_weights(), strict=True))


def test_convert_command_weights_file_with_description(tmp_path: Path, capsys) -> None:
    model = keras_tutorial("bidirectional", units=4, layers=2)
    model.save_weights(tmp_path / "w.weights.h5")
    reference = tmp_path / "reference"
    assert main(["convert", str(tmp_path / "w.weights.h5"), str(reference), "--tutorial-data"]) == 0
    args = ["convert", str(tmp_path / "w.weights.h5"), str(tmp_path / "run"), "--scaler-from", str(reference)]
    assert main([*args, "--arch", "bidirectional", "--layers", "2", "--units", "4", "--dropout", "0.3"]) == 0
    assert load_run(tmp_path / "run").config.model.dropout == 0.3
    capsys.readouterr()
    assert main([*args, "--arch", "bidirectional", "--layers", "2", "--units", "5", "--overwrite"]) == 2
    assert "kernel (1, 16) does not fit jaxlstm layer 0 (forward) W (1, 20)" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "w.weights.h5"), str(tmp_path / "other")]) == 2
    assert "--scaler-from RUN, --csv CSV or --tutorial-data" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            {"dropout": 0.2},
            "has dropout=0.2, recurrent_dropout=0.0, dropout inside the LSTM; the Forecaster has no such",
        ),
        ({"recurrent_dropout": 0.1}, "has dropout=0.0, recurrent_dropout=0.1, dropout inside the LSTM; the Forecaster"),
        ({"stateful": True}, "has stateful=True; jaxlstm's layers start each call from the state they are given"),
    ],
)
def test_settings_a_forecaster_cannot_carry_load_with_a_warning(setting: dict, message: str) -> None:
    """The weights load unchanged, and the forecasts equal Keras's in inference (where dropout is off)."""
    batch = 4 if setting.get("stateful") else None
    model = keras.Sequential(
        [keras.Input((5, 1), batch_size=batch), keras.layers.LSTM(3, **setting), keras.layers.Dense(1)]
    )
    with pytest.warns(UserWarning, match=message):
        ours = from_keras(model)
    x = np.random.default_rng(5).normal(size=(4, 5, 1)).astype(np.float32)
    np.testing.assert_allclose(ours(x), np.asarray(model(x, training=False))[:, 0], atol=1e-6)


def test_in_layer_dropouts_load_onto_bare_layers_and_stacks_and_export_back() -> None:
    model = keras.Sequential(
        [
            keras.Input((5, 2)),
            keras.layers.Bidirectional(keras.layers.LSTM(3, return_sequences=True, dropout=0.1, recurrent_dropout=0.2)),
            keras.layers.LSTM(4, recurrent_dropout=0.3),
        ]
    )
    stack = Stacked(
        [
            Bidirectional(LSTM(2, 3, rngs=nnx.Rngs(0)), LSTM(2, 3, reverse=True, rngs=nnx.Rngs(1))),
            LSTM(6, 4, return_sequences=False, rngs=nnx.Rngs(2)),
        ]
    )
    load_keras(stack, model)
    first, second = stack.layers
    assert (first.forward_layer.dropout, first.backward_layer.recurrent_dropout) == (0.1, 0.2)
    assert (second.dropout, second.recurrent_dropout) == (0.0, 0.3)
    exported = to_keras(stack)
    lstm_configs = [layer.get_config() for layer in exported.layers if isinstance(layer, keras.layers.LSTM)]
    inner = exported.layers[0].forward_layer.get_config()
    assert (inner["dropout"], inner["recurrent_dropout"]) == (0.1, 0.2)
    assert (lstm_configs[0]["dropout"], lstm_configs[0]["recurrent_dropout"]) == (0.0, 0.3)


def test_a_lone_go_backwards_lstm_is_a_reversed_layer() -> None:
    """go_backwards=True with return_sequences=False is exactly LSTM(reverse=True); with sequences, Keras returns
    them reversed (a warning says so) and a forward target is refused by name."""
    x = np.random.default_rng(11).normal(size=(3, 7, 2)).astype(np.float32)
    last = keras.layers.LSTM(4, go_backwards=True)
    expected = np.asarray(last(x))
    ours = load_keras(LSTM(2, 4, return_sequences=False, reverse=True, rngs=nnx.Rngs(0)), last)
    np.testing.assert_allclose(ours(x), expected, atol=1e-6)
    np.testing.assert_allclose(np.asarray(to_keras(ours)(x)), expected, atol=1e-6)
    sequences = keras.layers.LSTM(4, go_backwards=True, return_sequences=True)
    expected = np.asarray(sequences(x))
    with pytest.warns(UserWarning, match="Keras returns its outputs in reverse time order"):
        ours = load_keras(LSTM(2, 4, reverse=True, rngs=nnx.Rngs(0)), sequences)
    np.testing.assert_allclose(ours(x)[:, ::-1], expected, atol=1e-6)
    with pytest.raises(
        InteropError, match=r"reads the sequence from its end \(go_backwards=True\) but jaxlstm layer 0"
    ):
        load_keras(LSTM(2, 4, return_sequences=False, rngs=nnx.Rngs(0)), last)


def test_return_state_changes_nothing_the_weights_compute() -> None:
    layer = keras.layers.LSTM(4, return_state=True)
    x = np.random.default_rng(6).normal(size=(3, 7, 2)).astype(np.float32)
    output, h, c = layer(x)
    ours = load_keras(LSTM(2, 4, return_sequences=False, rngs=nnx.Rngs(0)), layer)
    final = ours.scan(x)[1]
    np.testing.assert_allclose(final.h, np.asarray(h), atol=1e-6)
    np.testing.assert_allclose(final.c, np.asarray(c), atol=1e-6)
    np.testing.assert_allclose(ours(x), np.asarray(output), atol=1e-6)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_use_bias_false_loads_as_a_zero_bias(bidirectional: bool, tmp_path: Path) -> None:
    """From the live model and from its .keras file, whose config says use_bias=False."""
    lstm = keras.layers.LSTM(3, use_bias=False)
    recurrent = keras.layers.Bidirectional(lstm) if bidirectional else lstm
    model = keras.Sequential([keras.Input((5, 2)), recurrent, keras.layers.Dense(1)])
    model.save(tmp_path / "no_bias.keras")
    x = np.random.default_rng(7).normal(size=(4, 5, 2)).astype(np.float32)
    for source in (model, tmp_path / "no_bias.keras"):
        np.testing.assert_allclose(from_keras(source)(x), np.asarray(model(x))[:, 0], atol=1e-6)


def test_states_in_and_out_of_bidirectional_and_stacked_layers_equal_keras() -> None:
    """Keras's functional API with initial_state and return_state=True: a Bidirectional layer given
    [h_fwd, c_fwd, h_bwd, c_bwd] returns its output and four states; two stacked LSTMs each given a state return
    theirs. Ours, with the weights loaded, takes the same states (as pairs, or Keras's flat list) and returns the
    same; carrying a stack's states from one call to the next equals one call on the whole sequence."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3, 7, 2)).astype(np.float32)
    states = [rng.normal(size=(3, 4)).astype(np.float32) for _ in range(4)]
    bidirectional = keras.layers.Bidirectional(keras.layers.LSTM(4, return_sequences=True, return_state=True))
    expected = bidirectional(x, initial_state=states)
    ours = Bidirectional(LSTM(2, 4, rngs=nnx.Rngs(0)), LSTM(2, 4, reverse=True, rngs=nnx.Rngs(1)))
    load_keras(ours, bidirectional)
    for initial in (states, ((states[0], states[1]), LSTMState(states[2], states[3]))):
        output, (forward, backward) = ours(x, initial, return_state=True)
        got = [output, forward.h, forward.c, backward.h, backward.c]
        assert max(max_difference(a, b) for a, b in zip(got, expected, strict=True)) < FORWARD_ATOL
    with pytest.raises(ValueError, match=r"a Bidirectional initial_state is \(forward \(h, c\), backward \(h, c\)\)"):
        ours(x, states[:3])

    inputs = keras.Input((7, 2))
    initial = [keras.Input((4,)) for _ in range(4)]
    first, *first_state = keras.layers.LSTM(4, return_sequences=True, return_state=True)(
        inputs, initial_state=initial[:2]
    )
    second, *second_state = keras.layers.LSTM(4, return_state=True)(first, initial_state=initial[2:])
    model = keras.Model([inputs, *initial], [second, *first_state, *second_state])
    model.set_weights([rng.uniform(-0.5, 0.5, w.shape).astype(np.float32) for w in model.get_weights()])
    expected = model([x, *states])
    stack = Stacked([LSTM(2, 4, rngs=nnx.Rngs(0)), LSTM(4, 4, return_sequences=False, rngs=nnx.Rngs(1))])
    load_keras(stack, model)
    output, (first_final, second_final) = stack(x, [states[:2], LSTMState(*states[2:])], return_state=True)
    got = [output, first_final.h, first_final.c, second_final.h, second_final.c]
    assert max(max_difference(a, b) for a, b in zip(got, expected, strict=True)) < FORWARD_ATOL
    carried = stack(x[:, 4:], stack(x[:, :4], return_state=True)[1])  # Keras's stateful=True, by hand
    assert max_difference(carried, stack(x)) < FORWARD_ATOL
    with pytest.raises(ValueError, match=r"a Stacked initial_state holds one state per layer \(None for zeros\): 2"):
        stack(x, [None])


def test_a_multi_day_keras_model_converts_only_with_its_horizon(tmp_path: Path, capsys) -> None:
    """A Dense(5) head is a 5-day direct model: converted with the tutorial's one-day settings it is refused, with
    --horizon 5 it converts and forecasts as Keras does; a run whose config.json disagrees with its weights is
    refused."""
    model = keras_tutorial("vanilla", units=4, layers=1, dropout=0.0, seed=2, outputs=5)
    path = tmp_path / "five.keras"
    model.save(path)
    assert main(["convert", str(path), str(tmp_path / "one"), "--tutorial-data"]) == 2
    assert "its Dense head forecasts 5 day(s) at once, but the data settings (--horizon 1, --strategy direct)" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "one").exists()
    assert main(["convert", str(path), str(tmp_path / "run"), "--tutorial-data", "--horizon", "5"]) == 0
    run = load_run(tmp_path / "run")
    x = np.random.default_rng(0).random((2, 60, 1), dtype=np.float32)
    assert max_difference(run.model(x), model(x)) < FORWARD_ATOL
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config["data"]["horizon"] = 1
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=r"its model forecasts 5 day\(s\) at once but its data settings need 1"):
        load_run(tmp_path / "run")


def test_keras_settings_that_would_compute_another_function_are_refused_or_mapped() -> None:
    """A go_backwards layer feeding its (reversed) sequence to another layer is refused; a Keras dropout rate of 1
    (which drops nothing in Keras) loads as 0; a Bidirectional whose directions' dropouts differ is refused."""
    model = keras.Sequential(
        [keras.Input((6, 3)), keras.layers.LSTM(4, go_backwards=True, return_sequences=True), keras.layers.LSTM(4)]
    )
    stack = Stacked([LSTM(3, 4, reverse=True, rngs=nnx.Rngs(0)), LSTM(4, 4, return_sequences=False, rngs=nnx.Rngs(1))])
    with (
        pytest.raises(InteropError, match="feeds its outputs, in reverse time order, to the next layer"),
        pytest.warns(UserWarning, match="Keras returns its outputs in reverse time order"),
    ):
        load_keras(stack, model)
    full = keras.layers.LSTM(4, dropout=1.0)
    full.build((2, 6, 3))
    ours = load_keras(LSTM(3, 4, return_sequences=False, rngs=nnx.Rngs(0)), full)
    assert ours.dropout == 0.0
    mixed = keras.layers.Bidirectional(
        keras.layers.LSTM(4, dropout=0.1), backward_layer=keras.layers.LSTM(4, dropout=0.3, go_backwards=True)
    )
    mixed.build((2, 6, 3))
    target = Bidirectional(
        LSTM(3, 4, return_sequences=False, rngs=nnx.Rngs(0)),
        LSTM(3, 4, return_sequences=False, reverse=True, rngs=nnx.Rngs(1)),
    )
    with pytest.raises(InteropError, match="its directions have different dropouts"):
        load_keras(target, mixed)
