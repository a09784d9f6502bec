"""Many independent models in one compiled program: the epoch of :mod:`jaxlstm.train`, once per model.

Each model has its own initial weights (its own seed), its own shuffling and dropout stream and its own optimizer
state; they share the data, or each has its own. The models are spread over the local devices, the same number on
each (:func:`model_layout`), with no communication between devices; a device trains its models in groups, the models
of a group side by side under ``vmap`` and the groups one after another (``lax.map``): one model at a time on CPU,
where that measured fastest, all at once elsewhere. Model ``k`` ends exactly where
``fit(..., TrainConfig(seed=seeds[k], devices=1))`` ends.

>>> import numpy as np
>>> from jaxlstm.config import preset
>>> x = np.linspace(0, 1, 10 * 5, dtype=np.float32).reshape(10, 5, 1)
>>> ensemble = fit_ensemble(preset("vanilla", units=4), x, x[:, -1, 0], TrainConfig(epochs=2), seeds=[0, 1, 2])
>>> len(ensemble.models), ensemble.losses.shape
(3, (2, 3))
"""

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxlstm.config import ModelConfig, TrainConfig
from jaxlstm.errors import ConfigError, TrainingError
from jaxlstm.models import Forecaster
from jaxlstm.train import BATCH_AXIS, compile_ahead, make_epoch, make_optimizer

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


def model_layout(n_models: int, models_at_once: int | None = None) -> ModelLayout:
    """Spreads ``n_models`` over the local devices (no more devices than models), the same number on each.

    ``models_at_once`` (default: 1 on CPU, all of a device's models elsewhere) is how many of a device's models train
    side by side under ``vmap``. Measured on a 2-core CPU (docs/performance.md), ``vmap`` made a core train its
    models *slower* than one after another: small batched matmuls cost more than the same matmuls back to back. On a
    GPU, one wide step for all models is the expected win.
    """
    devices = min(len(jax.local_devices()), n_models)
    per_device = math.ceil(n_models / devices)
    if models_at_once is None:
        models_at_once = 1 if jax.default_backend() == "cpu" else per_device
    mesh = Mesh(np.asarray(jax.local_devices()[:devices]).reshape(devices, 1), (MODEL_AXIS, BATCH_AXIS))
    return ModelLayout((devices, per_device), devices * per_device, min(models_at_once, per_device), mesh)


@dataclass(frozen=True)
class Ensemble:
    """Trained models, their per-epoch training losses (epochs, n_models), and where the time went."""

    models: list[Forecaster]
    losses: np.ndarray
    compile_seconds: float
    train_seconds: float


def fit_ensemble(
    model_config: ModelConfig,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig,
    seeds: Sequence[int],
    *,
    n_valid: Sequence[int] | None = None,
    models_at_once: int | None = None,
    progress: bool = False,
) -> Ensemble:
    """Trains one model per seed, all at once, on windows ``x`` (n, time, features) and targets ``y`` (n,) that
    every model shares; or, with ``n_valid``, on data of their own: ``x`` (n_models, n, time, features), ``y``
    (n_models, n), and model ``k`` trains on its first ``n_valid[k]`` windows only (the rest is padding), exactly
    as :func:`~jaxlstm.train.fit` on those windows alone would (see :func:`~jaxlstm.train.make_epoch`). ``progress``
    shows a bar over the epochs.

    The seed of model ``k`` seeds its weights (as ``nnx.Rngs(seed)``), its shuffling and its dropout, as
    :func:`~jaxlstm.train.fit` does. Validation splits and early stopping are not supported here.

    Returns the trained models, their per-epoch training losses and the compile and training seconds.
    """
    if not seeds:
        raise ConfigError("an ensemble needs at least one seed")
    if config.validation_split or config.patience:
        raise ConfigError("fit_ensemble trains on every window: leave validation_split and patience unset")
    own_data = n_valid is not None
    if own_data and not jax.config.jax_threefry_partitionable:
        raise ConfigError(
            "models with data of their own shuffle exactly as fit only with JAX's counter-based random bits; "
            "leave jax_threefry_partitionable at its default, True"
        )
    if own_data and not (len(x) == len(y) == len(n_valid) == len(seeds) and np.ndim(x) == 4):
        raise ConfigError(
            f"data of their own needs x (models, n, time, features), y (models, n) and n_valid (models,) for "
            f"{len(seeds)} models; got x {np.shape(x)}, y {np.shape(y)}, n_valid of {len(n_valid)}"
        )
    layout = model_layout(len(seeds), models_at_once)
    padded = [*range(len(seeds)), *[len(seeds) - 1] * (layout.slots - len(seeds))]  # repeats of the last model
    models = [Forecaster(model_config, rngs=nnx.Rngs(seed)) for seed in seeds]
    graphdef, _ = nnx.split(models[0], nnx.Param)

    def per_device(tree: Any) -> Any:  # (n_models, ...) -> (devices, models per device, ...)
        return jax.tree.map(lambda leaf: leaf[np.asarray(padded)].reshape(layout.grid + leaf.shape[1:]), tree)

    params = per_device(jax.tree.map(lambda *leaves: jnp.stack(leaves), *(nnx.state(m, nnx.Param) for m in models)))
    optimizer = make_optimizer(config)
    opt_state = jax.vmap(jax.vmap(optimizer.init))(params)
    keys = per_device(jax.vmap(jax.random.key)(jnp.asarray(seeds, jnp.uint32)))
    per_model = NamedSharding(layout.mesh, P(MODEL_AXIS))
    params, opt_state, keys = jax.device_put((params, opt_state, keys), per_model)
    data = (np.asarray(x), np.asarray(y), *([np.asarray(n_valid, np.int32)] if own_data else []))
    data = (
        jax.device_put(per_device(data), per_model)
        if own_data
        else jax.device_put(data, NamedSharding(layout.mesh, P()))
    )

    n_windows = np.shape(x)[1] if own_data else len(x)
    epoch = make_epoch(graphdef, optimizer, n_windows, config.batch_size, shuffle=config.shuffle, mesh=layout.mesh)

    def device_epoch(params: Any, opt_state: Any, keys: jax.Array, *data: jax.Array) -> tuple[Any, Any, jax.Array]:
        if own_data:
            return jax.lax.map(lambda args: epoch(*args), (params, opt_state, keys, *data), batch_size=layout.at_once)
        return jax.lax.map(lambda args: epoch(*args, *data), (params, opt_state, keys), batch_size=layout.at_once)

    data_axes = (0, 0, 0) if own_data else (None, None)
    epoch_all = jax.vmap(device_epoch, in_axes=(0, 0, 0, *data_axes), spmd_axis_name=MODEL_AXIS)
    epoch_all, epoch_seconds = compile_ahead(epoch_all, params, opt_state, keys, *data, donate_argnums=(0, 1))
    split_all, split_seconds = compile_ahead(jax.vmap(jax.vmap(jax.random.split)), keys)
    compile_seconds = epoch_seconds + split_seconds
    start = time.perf_counter()
    losses = []
    for index in tqdm(range(config.epochs), desc=f"train {len(seeds)} models", unit="epoch", disable=not progress):
        pairs = split_all(keys)
        keys, epoch_keys = pairs[:, :, 0], pairs[:, :, 1]
        params, opt_state, loss = epoch_all(params, opt_state, epoch_keys, *data)
        losses.append(np.asarray(loss).reshape(-1)[: len(seeds)])
        if not np.all(np.isfinite(losses[-1])):
            bad = np.flatnonzero(~np.isfinite(losses[-1]))
            named = ", ".join(f"{k} (seed {seeds[k]})" for k in bad)
            raise TrainingError(
                f"the training loss of model(s) {named} stopped being finite at epoch {index + 1}; lower --lr or "
                f"set --clip-norm"
            )
    train_seconds = time.perf_counter() - start
    for k, model in enumerate(models):
        nnx.update(model, jax.tree.map(lambda leaf, k=k: leaf[divmod(k, layout.grid[1])], params))
    return Ensemble(models, np.stack(losses), compile_seconds, train_seconds)
