"""Training one model: :func:`fit`, Keras's ``model.fit`` as the tutorial calls it, its batches split over the
devices, driven by the one training loop (:func:`~jaxlstm.training.train_epochs`).

>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> from jaxlstm.nn import Forecaster
>>> model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
>>> x = np.linspace(0, 1, 10 * 5, dtype=np.float32).reshape(10, 5, 1)
>>> history = fit(model, x, x[:, -1, 0], TrainConfig(epochs=3, batch_size=4), progress=False)
>>> len(history.loss)
3
"""

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlstm.config import TrainConfig
from jaxlstm.data import training_input
from jaxlstm.errors import ConfigError, plural
from jaxlstm.training import runtime
from jaxlstm.training.driver import History, TrainState, resumed_devices, train_epochs
from jaxlstm.training.epoch import batch_mesh, checked, compile_ahead, make_epoch, make_evaluate, training_devices
from jaxlstm.training.optimizers import make_optimizer

__all__ = ["fit"]

Array = jax.Array
PyTree = Any


class _Data(NamedTuple):
    """The training and validation windows and targets, placed on the devices; with ``window``, ``x_train`` is the
    series the training windows are gathered from (:func:`~jaxlstm.data.training_input`)."""

    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    window: int | None


def _hold_out(x: np.ndarray, y: np.ndarray, validation_split: float) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_val, y_val)``: the last ``validation_split`` of the windows held out, as Keras does
    (views of ``x``, not copies)."""
    n_validation = int(len(x) * validation_split)
    n_train = len(x) - n_validation
    if n_train < 1 or (validation_split > 0 and n_validation < 1):
        raise ConfigError(
            f"{plural(len(x), 'window')} cannot be split with validation_split={validation_split} ({n_validation} held "
            f"out); pass a validation split that keeps at least one window on each side"
        )
    return np.asarray(x[:n_train]), np.asarray(y[:n_train]), np.asarray(x[n_train:]), np.asarray(y[n_train:])


def _place_data(held_out: tuple[np.ndarray, ...], mesh: Mesh) -> _Data:
    """The held-out arrays replicated on every device of ``mesh``; training windows that are views of one series
    as that series (:func:`~jaxlstm.data.training_input`)."""
    x_train, *others = held_out
    inputs, window = training_input(x_train)
    replicated = NamedSharding(mesh, P())
    return _Data(*(jax.device_put(array, replicated) for array in (inputs, *others)), window=window)


def _starting_state(
    params: PyTree,
    optimizer: optax.GradientTransformation,
    config: TrainConfig,
    mesh: Mesh,
    resume: TrainState | None,
) -> TrainState:
    """The state the loop starts from, replicated on every device of ``mesh``: fresh, or a copy of ``resume``."""
    replicated = NamedSharding(mesh, P())

    def place(tree: PyTree) -> PyTree:  # always a copy: the epoch donates its inputs, never the caller's buffers
        if tree is None:
            return None
        if jax.process_count() > 1:  # from host copies, to the devices of every process
            return runtime.place(tree, replicated)
        return jax.tree.map(lambda a: jax.device_put(a, replicated, may_alias=False), tree)

    if resume is None:
        params = place(params)
        history = History(devices=mesh.size)
        return TrainState(0, params, place(optimizer.init(params)), place(jax.random.key(config.seed)), history)
    history = dataclasses.replace(
        resume.history, loss=list(resume.history.loss), val_loss=list(resume.history.val_loss)
    )
    return dataclasses.replace(
        resume,
        params=place(resume.params),
        opt_state=place(resume.opt_state),
        key=place(resume.key),
        best_params=place(resume.best_params),
        history=history,
    )


def _compile(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    state: TrainState,
    data: _Data,
    mesh: Mesh,
    config: TrainConfig,
) -> tuple[Callable[[TrainState], tuple[np.ndarray, np.ndarray]], Callable[[TrainState], float] | None]:
    """The compiled epoch (with its NaN check) as the loop runs it, and with a validation split the validation
    loss; their compile seconds are added to the state's history."""
    epoch = make_epoch(
        graphdef, optimizer, len(data.y_train), config.batch_size, shuffle=config.shuffle, mesh=mesh, window=data.window
    )
    arguments = (state.params, state.opt_state, state.key, data.x_train, data.y_train)
    epoch_program, seconds = compile_ahead(checked(epoch), *arguments, donate_argnums=(0, 1))

    def run_epoch(state: TrainState) -> tuple[np.ndarray, np.ndarray]:
        state.key, epoch_key = jax.random.split(state.key)
        state.params, state.opt_state, loss, finite = epoch_program(
            state.params, state.opt_state, epoch_key, data.x_train, data.y_train
        )
        return np.array([float(loss)]), np.array([bool(finite)])

    validate = None
    if len(data.x_val):
        evaluate_program, more = compile_ahead(make_evaluate(graphdef), state.params, data.x_val, data.y_val)
        seconds += more

        def validate(state: TrainState) -> float:
            return float(evaluate_program(state.params, data.x_val, data.y_val))

    state.history.compile_seconds += seconds
    return run_epoch, validate


def fit(
    model: nnx.Module,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
    resume: TrainState | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[TrainState], Any] | None = None,
) -> History:
    """Trains ``model`` in place on windows ``x`` (n, time, features) and scaled targets ``y`` (n,), or (n, outputs).

    When ``x`` is a view of one series, as the windows of :func:`~jaxlstm.data.prepare` are, the series is placed
    on the devices once and each batch gathers its windows from it inside the compiled epoch (trained exactly as
    on a copy of ``x``, which would be placed whole).

    Returns the loss history. Raises :class:`~jaxlstm.errors.TrainingError` naming the epoch if the loss, or any
    parameter or optimizer moment (that is, a gradient), stops being finite; the model is then left unchanged.

    Args:
        model: the forecaster (any NNX module mapping windows to (n,) predictions and taking a ``dropout_key``);
            its weights are the starting point unless ``resume`` is given.
        x, y: training windows and scaled targets.
        config: hyperparameters.
        progress: show a progress bar.
        resume: continue from this state (e.g. a checkpoint's) instead of from the model's weights and
            ``config.seed``; it must come from the same model, data, config and device count.
        checkpoint_every: call ``on_checkpoint`` after every this many epochs (None: only at the end).
        on_checkpoint: called with the :class:`~jaxlstm.training.TrainState` (device arrays) every
            ``checkpoint_every`` epochs and once when training ends; it must copy what it keeps before returning
            (the next epoch donates the buffers).
    """
    held_out = _hold_out(x, y, config.validation_split)
    devices = resumed_devices(resume, config, config.devices, "its batches split over")
    mesh = batch_mesh(training_devices(dataclasses.replace(config, devices=devices), len(x)))
    data = _place_data(held_out, mesh)
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = make_optimizer(config)
    state = _starting_state(params, optimizer, config, mesh, resume)
    if not state.finished:
        run_epoch, validate = _compile(graphdef, optimizer, state, data, mesh, config)
        train_epochs(
            state,
            run_epoch,
            epochs=config.epochs,
            validate=validate,
            patience=config.patience,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
            progress=progress,
        )
    restore_best = config.patience is not None and state.best_params is not None
    final = state.best_params if restore_best else state.params
    if jax.process_count() > 1:  # replicated on every process's devices: each keeps its own copy
        final = jax.tree.map(lambda leaf: jnp.asarray(np.asarray(leaf)), final)
    nnx.update(model, final)
    return state.history
