"""Many independent models in one compiled program: the epoch of :mod:`jaxlstm.training.single`, once per model.

Each model has its own initial weights (its own seed), its own shuffling and dropout stream and its own optimizer
state; they share the data, or each has its own. The models are spread over the devices, the same number on each
(:func:`model_layout`), with no communication between devices; with several processes, over every device of every
process, each process training its share and all of them gathering the results. A device trains its models in
groups, the models of a group side by side under ``vmap`` and the groups one after another (``lax.map``): one model
at a time on CPU, where that measured fastest, all at once elsewhere. Model ``k`` ends exactly where
``fit(..., TrainConfig(seed=seeds[k], devices=1))`` ends.

>>> import numpy as np
>>> from jaxlstm.config import preset
>>> x = np.linspace(0, 1, 10 * 5, dtype=np.float32).reshape(10, 5, 1)
>>> ensemble = fit_ensemble(preset("vanilla", units=4), x, x[:, -1, 0], TrainConfig(epochs=2), seeds=[0, 1, 2])
>>> len(ensemble.models), ensemble.losses.shape
(3, (2, 3))
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxlstm.config import ModelConfig, TrainConfig
from jaxlstm.data import training_input
from jaxlstm.errors import ConfigError, plural
from jaxlstm.nn.models import Forecaster
from jaxlstm.training.driver import History, TrainState, resumed_devices, train_epochs
from jaxlstm.training.epoch import BATCH_AXIS, Loss, checked, compile_ahead, make_epoch, squared_error
from jaxlstm.training.optimizers import make_optimizer
from jaxlstm.training.runtime import gather, place

__all__ = ["MODEL_AXIS", "Ensemble", "ModelLayout", "fit_ensemble", "model_layout"]

MODEL_AXIS = "models"


class ModelLayout(NamedTuple):
    """How an ensemble's models share the local devices: ``grid`` (devices, models per device), the models in
    ``slots`` = their product (the last model repeated to fill them, its repeats' results dropped), each device
    training ``at_once`` of its models side by side under ``vmap`` and those groups one after another, on a
    (models, batch) ``mesh`` with one device per row (its batch axis has size 1)."""

    grid: tuple[int, int]
    slots: int
    at_once: int
    mesh: Mesh


def model_layout(n_models: int, models_at_once: int | None = None, *, devices: int | None = None) -> ModelLayout:
    """Spreads ``n_models`` over ``devices`` devices (default: all of them, but no more than models), the same number
    on each: the local devices, or with several processes (:func:`jaxlstm.training.runtime.start_processes`) every
    device of every process.

    ``models_at_once`` (default: 1 on CPU, all of a device's models elsewhere) is how many of a device's models train
    side by side under ``vmap``. Measured on a 2-core CPU (docs/performance.md), ``vmap`` made a core train its
    models *slower* than one after another: small batched matmuls cost more than the same matmuls back to back. On a
    GPU, one wide step for all models is the expected win.
    """
    available = len(jax.devices())
    if devices is not None and devices > available:
        raise ConfigError(
            f"the models were trained spread over {devices} device(s), but JAX sees {available} here; resume them "
            f"where {devices} are available (an identical continuation needs the same count)"
        )
    if models_at_once is not None and models_at_once < 1:
        raise ConfigError(f"models_at_once={models_at_once}: train at least 1 model at a time")
    devices = devices or min(available, n_models)
    per_device = math.ceil(n_models / devices)
    if models_at_once is None:
        models_at_once = 1 if jax.default_backend() == "cpu" else per_device
    mesh = Mesh(np.asarray(jax.devices()[:devices]).reshape(devices, 1), (MODEL_AXIS, BATCH_AXIS))
    return ModelLayout((devices, per_device), devices * per_device, min(models_at_once, per_device), mesh)


@dataclass(frozen=True)
class Ensemble:
    """Trained models, their per-epoch training losses (epochs, n_models), and where the time went:
    ``first_epoch_seconds`` is the wall time of the first epoch this call trained (part of ``train_seconds``; on a
    GPU it carries the program's first-execution cost), NaN if it trained none."""

    models: list[Forecaster]
    losses: np.ndarray
    compile_seconds: float
    train_seconds: float
    first_epoch_seconds: float = math.nan


def _initial_models(make: Callable[[nnx.Rngs], nnx.Module], seeds: Sequence[int]) -> tuple[nnx.GraphDef, Any, Any]:
    """The models' structure, and their initial parameters and other state with a leading models axis (n_models, ...).

    One compiled construction builds every model (a compilation per model configuration, whatever the number of
    models; a few milliseconds a model after it), and the host stacks them: model ``k``'s slice is bit for bit that
    of ``make(nnx.Rngs(seeds[k]))`` on CPU (tested), without n_models eager constructions.
    """

    @jax.jit
    def build(key: jax.Array) -> tuple[nnx.State, nnx.State]:
        _, params, rest = nnx.split(make(nnx.Rngs(key)), nnx.Param, ...)
        return params, rest

    built = [build(jax.random.key(seed)) for seed in seeds]
    params = jax.tree.map(lambda *leaves: np.stack(leaves), *jax.device_get([weights for weights, _ in built]))
    rest = jax.tree.map(lambda *leaves: jnp.stack(leaves), *[other for _, other in built])
    graphdef = nnx.graphdef(nnx.eval_shape(lambda: make(nnx.Rngs(0))))
    return graphdef, params, rest


def fit_ensemble(
    model_config: ModelConfig | Callable[[nnx.Rngs], nnx.Module],
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    seeds: Sequence[int],
    *,
    n_valid: Sequence[int] | None = None,
    models_at_once: int | None = None,
    resume: TrainState | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[TrainState], Any] | None = None,
    progress: bool = False,
    loss: Loss = squared_error,
) -> Ensemble:
    """Trains one model per seed, all at once (each a :class:`~jaxlstm.nn.Forecaster` of ``model_config``, or
    ``model_config(rngs)`` for a constructor such as ``lambda rngs: PerStepModel(config, rngs=rngs)``), on windows
    ``x`` (n, time, features) and targets ``y`` (n,) that every model shares; or, with ``n_valid``, on data of their
    own: ``x`` (n_models, n, time, features), ``y`` (n_models, n), and model ``k`` trains on its first
    ``n_valid[k]`` windows only (the rest is padding), exactly as :func:`~jaxlstm.training.fit` on those windows
    alone would (see :func:`~jaxlstm.training.make_epoch`). Windows that are views of a series
    (:func:`~jaxlstm.data.window_view`; one per model for data of their own) are gathered per batch from it, as in
    :func:`~jaxlstm.training.fit`. ``progress`` shows a bar over the epochs. ``loss`` is each sample's loss
    (:func:`~jaxlstm.training.epoch.squared_error`, or :func:`~jaxlstm.training.epoch.cross_entropy` for a
    classifier whose ``y`` are integer labels).

    The seed of model ``k`` seeds its weights (as ``nnx.Rngs(seed)``), its shuffling and its dropout, as
    :func:`~jaxlstm.training.fit` does. Validation splits and early stopping are not supported here.

    Checkpoints work as :func:`~jaxlstm.training.fit`'s (the same loop runs both): ``on_checkpoint`` gets a
    :class:`~jaxlstm.training.TrainState` every ``checkpoint_every`` epochs and at the end, whose
    parameters, optimizer state and keys have a leading models axis (n_models, ...), ``history.loss`` one list of
    n_models losses per epoch and ``history.devices`` the devices the models are spread over; passed back as
    ``resume``, it continues the run bit for bit on the same device count. A model whose loss or weights stop being
    finite raises :class:`~jaxlstm.errors.TrainingError` naming it.

    Returns the trained models, their per-epoch training losses and the compile and training seconds.
    """
    _check_models(config, seeds, x, y, n_valid)
    n_models = len(seeds)
    devices = resumed_devices(resume, config, None, "its models spread over")
    layout = model_layout(n_models, models_at_once, devices=devices)
    make = (lambda rngs: Forecaster(model_config, rngs=rngs)) if isinstance(model_config, ModelConfig) else model_config
    graphdef, initial_params, rest = _initial_models(make, seeds)
    optimizer = make_optimizer(config)
    if resume is None:
        keys = jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32))
        opt_state = jax.vmap(optimizer.init)(initial_params)
        resume = TrainState(0, initial_params, opt_state, keys, History(devices=layout.grid[0]))
    state = dataclasses.replace(resume, history=dataclasses.replace(resume.history, loss=list(resume.history.loss)))
    program = _Program(graphdef, optimizer, layout, n_models, config, x, y, n_valid, loss)
    state.params, state.opt_state, state.key = program.placed((state.params, state.opt_state, state.key))
    if not state.finished:
        state.history.compile_seconds += program.compile(state)  # a resumed run adds its own
        train_epochs(
            state,
            program.run_epoch,
            epochs=config.epochs,
            names=[f"{k} (seed {seed})" for k, seed in enumerate(seeds)],
            saved=program.saved,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
            progress=progress,
        )
    trained = jax.device_get(program.per_model(gather(state.params)))  # one transfer to the host, one back per model
    trained = jax.device_put([jax.tree.map(lambda leaf, k=k: leaf[k], trained) for k in range(n_models)])
    models = [
        nnx.merge(graphdef, weights, jax.tree.map(lambda leaf, k=k: leaf[k], rest)) for k, weights in enumerate(trained)
    ]
    history = state.history
    losses = np.asarray(history.loss, np.float64).reshape(-1, n_models)
    return Ensemble(models, losses, history.compile_seconds, history.train_seconds, history.first_epoch_seconds)


def _check_models(
    config: TrainConfig, seeds: Sequence[int], x: np.ndarray, y: np.ndarray, n_valid: Sequence[int] | None
) -> None:
    """ConfigError for what :func:`fit_ensemble` cannot train: no seed, a validation split, or data of their own
    of the wrong shapes (or without counter-based random bits, which their shuffle needs)."""
    if not seeds:
        raise ConfigError("an ensemble needs at least one seed")
    if config.validation_split or config.patience:
        raise ConfigError("fit_ensemble trains on every window: leave validation_split and patience unset")
    if n_valid is None:
        return
    if not jax.config.jax_threefry_partitionable:
        raise ConfigError(
            "models with data of their own shuffle exactly as fit only with JAX's counter-based random bits; "
            "leave jax_threefry_partitionable at its default, True"
        )
    if not (len(x) == len(y) == len(n_valid) == len(seeds) and np.ndim(x) == 4):
        raise ConfigError(
            f"data of their own needs x (models, n, time, features), y (models, n) and n_valid (models,) for "
            f"{plural(len(seeds), 'model')}; got x {np.shape(x)}, y {np.shape(y)}, n_valid of {len(n_valid)}"
        )


class _Program:
    """The models' epoch compiled for their layout, the data placed, and the moves between the layouts: the
    loop's (devices, models per device, ...) and a checkpoint's (n_models, ...)."""

    def __init__(
        self,
        graphdef: nnx.GraphDef,
        optimizer: Any,
        layout: ModelLayout,
        n_models: int,
        config: TrainConfig,
        x: np.ndarray,
        y: np.ndarray,
        n_valid: Sequence[int] | None,
        loss: Loss,
    ) -> None:
        self.layout, self.n_models = layout, n_models
        self.padded = np.asarray([*range(n_models), *[n_models - 1] * (layout.slots - n_models)])  # last repeated
        own_data = n_valid is not None
        inputs, window = training_input(np.asarray(x))
        data = (inputs, np.asarray(y), *([np.asarray(n_valid, np.int32)] if own_data else []))
        self.sharding = NamedSharding(layout.mesh, P(MODEL_AXIS))
        self.data = (
            place(self.per_device(data), self.sharding) if own_data else place(data, NamedSharding(layout.mesh, P()))
        )
        n_windows = np.shape(x)[1] if own_data else len(x)
        epoch = checked(
            make_epoch(
                graphdef,
                optimizer,
                n_windows,
                config.batch_size,
                shuffle=config.shuffle,
                mesh=layout.mesh,
                window=window,
                loss=loss,
            )
        )

        def device_epoch(params: Any, opt_state: Any, keys: jax.Array, *data: jax.Array) -> tuple:
            if own_data:
                return jax.lax.map(lambda a: epoch(*a), (params, opt_state, keys, *data), batch_size=layout.at_once)
            return jax.lax.map(lambda a: epoch(*a, *data), (params, opt_state, keys), batch_size=layout.at_once)

        data_axes = (0, 0, 0) if own_data else (None, None)
        self._epoch = jax.vmap(device_epoch, in_axes=(0, 0, 0, *data_axes), spmd_axis_name=MODEL_AXIS)

    def per_device(self, tree: Any) -> Any:
        """(n_models, ...) -> (devices, models per device, ...), the last model repeated into the empty slots."""
        return jax.tree.map(lambda leaf: leaf[self.padded].reshape(self.layout.grid + leaf.shape[1:]), tree)

    def per_model(self, tree: Any) -> Any:
        """(devices, models per device, ...) -> (n_models, ...)."""
        return jax.tree.map(lambda leaf: leaf.reshape((self.layout.slots, *leaf.shape[2:]))[: self.n_models], tree)

    def placed(self, tree: Any) -> Any:
        """A checkpoint's (n_models, ...) arrays in the loop's layout, on the devices."""
        return place(self.per_device(tree), self.sharding)

    def saved(self, state: TrainState) -> TrainState:
        """``state`` as a checkpoint holds it: every model's arrays gathered into one models axis."""
        params, opt_state, keys = self.per_model(gather((state.params, state.opt_state, state.key)))
        return dataclasses.replace(state, params=params, opt_state=opt_state, key=keys)

    def compile(self, state: TrainState) -> float:
        """Compiles the epoch and the keys' split for ``state``'s arrays; returns the seconds it took."""
        arguments = (state.params, state.opt_state, state.key, *self.data)
        self._compiled, seconds = compile_ahead(self._epoch, *arguments, donate_argnums=(0, 1))
        self._split, more = compile_ahead(jax.vmap(jax.vmap(jax.random.split)), state.key)
        return seconds + more

    def run_epoch(self, state: TrainState) -> tuple[np.ndarray, np.ndarray]:
        """One epoch of every model, in place; each model's loss and whether its weights are still finite."""
        pairs = self._split(state.key)
        state.key, epoch_keys = pairs[:, :, 0], pairs[:, :, 1]
        state.params, state.opt_state, loss, finite = self._compiled(
            state.params, state.opt_state, epoch_keys, *self.data
        )
        loss, finite = gather((loss, finite))
        return np.asarray(loss).reshape(-1)[: self.n_models], np.asarray(finite).reshape(-1)[: self.n_models]
