"""Training: one jitted, pure program per epoch (shuffle, then ``lax.scan`` over mini-batches), driven by :func:`fit`.

The model is split with ``nnx.split`` into a static graph and a pytree of parameters; the epoch function is a pure
function of ``(params, optimizer state, PRNG key)``, compiled once ahead of time, with its buffers donated. This is
Flax's own advice for small models, where ``nnx.jit``'s graph traversal would cost more than the step.

Semantics follow Keras's ``model.fit(x, y, epochs=100, batch_size=32)`` as used by the tutorial: samples are shuffled
every epoch, the last partial batch is kept (it is padded to the batch size and masked out of the loss, so its
gradient is that of its real samples alone), and the epoch loss is the sample-weighted mean of the batch losses.

Each batch can be split over several devices (data parallel, one ``psum`` of the gradients per step). On a CPU,
:func:`use_cpu_cores` makes each core a JAX device: XLA runs each small step of a recurrence on one core, so
splitting the batch is how a 2-core machine keeps both cores busy.
"""

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxlstm.errors import ConfigError, TrainingError
from jaxlstm.models import Forecaster

Array = jax.Array
PyTree = Any
Optimizer = Literal["adam", "keras_adam"]
BATCH_AXIS = "batch"


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of :func:`fit`; the defaults are the tutorial's.

    Attributes:
        epochs: passes over the training windows.
        batch_size: windows per Adam step; the last partial batch is kept.
        learning_rate: Adam's step size.
        adam_epsilon: Adam's epsilon. The default is Keras's 1e-7 (optax's own default is 1e-8).
        seed: seeds the shuffling and the dropout masks (the weights are seeded where the model is built).
        validation_split: fraction of the training windows, the *last* ones chronologically, held out to
            watch the validation loss (as Keras's ``validation_split``); 0 holds out nothing.
        patience: with a validation split, stop after this many epochs without a better validation loss
            and restore the best weights (Keras's ``EarlyStopping(restore_best_weights=True)``).
        clip_norm: clip each step's gradient to this global norm (off when None).
        optimizer: ``adam`` (optax's Adam, the default) or ``keras_adam`` (:func:`keras_adam`, Keras's Adam to the
            last rounding: epsilon added to the uncorrected ``sqrt(v)``). The two differ by far less than the run
            to run noise; choose ``keras_adam`` to reproduce a Keras training curve step for step.
        shuffle: reshuffle the windows every epoch (Keras's ``fit(shuffle=True)``); False keeps their order.
        devices: split each batch over this many devices (data parallel; see :func:`split_devices` for the
            default). The same seed gives the same result for the same number of devices; another number draws
            other dropout masks and sums in another order.
    """

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    adam_epsilon: float = 1e-7
    seed: int = 0
    validation_split: float = 0.0
    patience: int | None = None
    clip_norm: float | None = None
    optimizer: Optimizer = "adam"
    shuffle: bool = True
    devices: int | None = None

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ConfigError(f"learning rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.validation_split < 1.0:
            raise ConfigError(f"validation split must be in [0, 1), got {self.validation_split}")
        if self.patience is not None and (self.patience < 1 or self.validation_split == 0.0):
            raise ConfigError("patience needs a positive value and a validation split (e.g. --validation-split 0.1)")
        if self.clip_norm is not None and not self.clip_norm > 0:
            raise ConfigError(f"clip norm must be positive, got {self.clip_norm}")
        if self.optimizer not in get_args(Optimizer):
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use one of {', '.join(get_args(Optimizer))}")


@dataclass
class History:
    """What :func:`fit` measured: losses per epoch (scaled units) and where the time went."""

    loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    compile_seconds: float = 0.0
    train_seconds: float = 0.0
    devices: int = 1


class KerasAdamState(NamedTuple):
    """State of :func:`keras_adam`: the step count and the first and second moments."""

    count: Array
    mu: PyTree
    nu: PyTree


def keras_adam(
    learning_rate: float | optax.Schedule, b1: float = 0.9, b2: float = 0.999, epsilon: float = 1e-7
) -> optax.GradientTransformation:
    """Keras's Adam as an optax transformation, operation for operation (``keras.optimizers.Adam``).

    Keras adds ``epsilon`` to the *uncorrected* ``sqrt(v)`` and folds both bias corrections into the step size;
    optax's :func:`optax.adam` adds it to the corrected one. At step ``t`` (from 1)::

        m = m + (g - m) * (1 - b1);   v = v + (g * g - v) * (1 - b2)
        update = -(m * lr * sqrt(1 - b2**t) / (1 - b1**t)) / (sqrt(v) + epsilon)

    """

    def init(params: PyTree) -> KerasAdamState:
        zeros = jax.tree.map(jnp.zeros_like, params)
        return KerasAdamState(count=jnp.zeros([], jnp.int32), mu=zeros, nu=jax.tree.map(jnp.zeros_like, params))

    def update(updates: PyTree, state: KerasAdamState, params: PyTree = None) -> tuple[PyTree, KerasAdamState]:
        del params
        lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
        step = (state.count + 1).astype(jnp.float32)
        alpha = lr * jnp.sqrt(1 - b2**step) / (1 - b1**step)
        mu = jax.tree.map(lambda m, g: m + (g - m) * (1 - b1), state.mu, updates)
        nu = jax.tree.map(lambda v, g: v + (jnp.square(g) - v) * (1 - b2), state.nu, updates)
        updates = jax.tree.map(lambda m, v: -((m * alpha) / (jnp.sqrt(v) + epsilon)), mu, nu)
        return updates, KerasAdamState(count=state.count + 1, mu=mu, nu=nu)

    return optax.GradientTransformation(init, update)


def make_optimizer(config: TrainConfig) -> optax.GradientTransformation:
    """Adam (optax's or Keras's, see ``TrainConfig.optimizer``) with the configured step size and epsilon,
    after optional global-norm clipping."""
    if config.optimizer == "keras_adam":
        adam = keras_adam(config.learning_rate, epsilon=config.adam_epsilon)
    else:
        adam = optax.adam(config.learning_rate, eps=config.adam_epsilon)
    return adam if config.clip_norm is None else optax.chain(optax.clip_by_global_norm(config.clip_norm), adam)


def split_devices(batch_size: int, requested: int | None = None) -> list[jax.Device]:
    """The devices each batch is split over: ``requested`` of them, or by default all local devices of the default
    backend, but no more than one per 16 samples of a batch (smaller shares cost more in overhead than they save).
    """
    available = jax.local_devices()
    count = min(len(available), max(1, batch_size // 16)) if requested is None else requested
    if not 1 <= count <= len(available):
        raise ConfigError(f"devices must be between 1 and {len(available)} (the devices JAX sees), got {count}")
    return available[:count]


def batch_mesh(devices: Sequence[jax.Device]) -> Mesh:
    """A one-axis mesh over ``devices`` that the batch is split along."""
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


def use_cpu_cores() -> int:
    """Exposes each core this process may run on as one JAX CPU device, so that :func:`fit` can split batches
    over them. XLA runs each small step of a recurrence on one core; two devices keep two cores busy.

    Call it before the first JAX computation (the CLI and the benchmarks do); later, it changes nothing.
    Returns the number of CPU devices JAX will use.
    """
    cores = len(os.sched_getaffinity(0))
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # the CPU backend already started
        return len(jax.devices("cpu"))
    return cores


CACHE_ENV = "JAXLSTM_CACHE_DIR"


def use_compilation_cache() -> Path | None:
    """Keeps compiled XLA programs on disk between processes (JAX's persistent compilation cache), so that a run
    after the first loads its training program instead of compiling it (the tutorial's stacked model: 1.8 s of
    compilation down to 0.4 s on the dev machine).

    The directory is ``$JAXLSTM_CACHE_DIR`` (set it empty to turn the cache off), else
    ``$XDG_CACHE_HOME/jaxlstm/xla`` (``~/.cache/jaxlstm/xla`` by default), and every program is cached there,
    however short its compilation (the model's initialisers are many small ones). A cache already configured through
    JAX's own ``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir`` is left as JAX's settings make it.
    Call it before the first compilation.

    Returns the directory in use, or None when the cache is off.
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    directory = os.environ.get(CACHE_ENV)
    if directory is None:
        directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxlstm" / "xla"
    if not str(directory):
        return None
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        warnings.warn(
            f"compiling without a cache: cannot create {directory} ({error.strerror}); set {CACHE_ENV} to a "
            f"writable folder, or to an empty value to turn the cache off",
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return Path(directory)


def make_epoch(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    n_samples: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    mesh: Mesh | None = None,
) -> Callable[[PyTree, PyTree, Array, Array, Array], tuple[PyTree, PyTree, Array]]:
    """Builds ``epoch(params, opt_state, key, x, y) -> (params, opt_state, mean_loss)``, a pure function.

    ``x`` is (n_samples, time, features) and ``y`` (n_samples,). The batches are a fresh permutation drawn from
    ``key``; the last, partial one is padded with index 0 and masked. Each batch is split evenly along the batch
    axis of ``mesh`` (default: the first local device), padded with masked slots to a multiple of its size: every
    device sums the squared errors of its share and their gradient, and one ``psum`` combines them into the batch
    mean. Each batch, and each device's share of it, gets its own dropout key.
    """
    mesh = mesh or batch_mesh(jax.local_devices()[:1])
    n_batches = math.ceil(n_samples / batch_size)
    shares = mesh.shape[BATCH_AXIS]
    slots = math.ceil(batch_size / shares) * shares
    position = np.arange(n_batches)[:, None] * batch_size + np.arange(slots)[None, :]
    valid = (np.arange(slots)[None, :] < batch_size) & (position < n_samples)
    batch_sizes = jnp.asarray(valid.sum(axis=1), jnp.float32)

    def share_loss_and_grad(
        params: PyTree, x: Array, y: Array, mask: Array, dropout_key: Array
    ) -> tuple[Array, PyTree]:
        share_key = jax.random.fold_in(dropout_key, jax.lax.axis_index(BATCH_AXIS))

        def squared_error(params: PyTree) -> Array:
            predictions = nnx.merge(graphdef, params)(x, dropout_key=share_key)
            return jnp.sum(jnp.where(mask, (predictions - y) ** 2, 0.0))

        total, grads = jax.value_and_grad(squared_error)(params)
        total, grads, count = jax.lax.psum((total, grads, jnp.sum(mask)), BATCH_AXIS)
        return total / count, jax.tree.map(lambda grad: grad / count, grads)

    loss_and_grad = jax.shard_map(
        share_loss_and_grad,
        mesh=mesh,
        in_specs=(P(), P(BATCH_AXIS), P(BATCH_AXIS), P(BATCH_AXIS), P()),
        out_specs=(P(), P()),
        check_vma=False,  # the layers start their scans from fresh zeros; the psum makes the outputs replicated
    )

    def epoch(params: PyTree, opt_state: PyTree, key: Array, x: Array, y: Array) -> tuple[PyTree, PyTree, Array]:
        shuffle_key, dropout_key = jax.random.split(key)
        permutation = jax.random.permutation(shuffle_key, n_samples) if shuffle else jnp.arange(n_samples)
        batches = (
            jnp.where(valid, permutation[np.minimum(position, n_samples - 1)], 0),
            jnp.asarray(valid),
            jax.random.split(dropout_key, n_batches),
        )

        def step(
            carry: tuple[PyTree, PyTree], batch: tuple[Array, Array, Array]
        ) -> tuple[tuple[PyTree, PyTree], Array]:
            params, opt_state = carry
            indices, batch_mask, batch_key = batch
            loss, grads = loss_and_grad(params, x[indices], y[indices], batch_mask, batch_key)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        return params, opt_state, jnp.sum(losses * batch_sizes) / n_samples

    return epoch


def make_evaluate(graphdef: nnx.GraphDef) -> Callable[[PyTree, Array, Array], Array]:
    """Builds ``evaluate(params, x, y) -> mse`` without dropout."""

    def evaluate(params: PyTree, x: Array, y: Array) -> Array:
        return jnp.mean((nnx.merge(graphdef, params)(x) - y) ** 2)

    return evaluate


@dataclass
class TrainState:
    """Everything :func:`fit`'s epoch loop carries from one epoch to the next: what a checkpoint holds.

    Resuming from a state continues the run exactly: the parameters, the optimizer state and the PRNG key are those
    after ``epoch`` epochs (the loop draws ``key, epoch_key = split(key)`` per epoch), so on the same device count
    the remaining epochs give the same bits as an uninterrupted run.

    Attributes:
        epoch: epochs completed.
        params: the model's ``nnx.Param`` state.
        opt_state: the optimizer's state.
        key: the loop's PRNG key after ``epoch`` epochs.
        history: the losses so far; ``history.devices`` is the device count the batches were split over.
        best_params: with a validation split, the parameters of the best validation epoch so far.
        best_val_loss: that epoch's validation loss (inf before any).
        finished: True once training ended (all epochs, or early stopping).
    """

    epoch: int
    params: PyTree
    opt_state: PyTree
    key: Array
    history: History
    best_params: PyTree | None = None
    best_val_loss: float = math.inf
    finished: bool = False


def _all_finite(tree: PyTree) -> Array:
    """One boolean: every floating-point leaf of ``tree`` is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def fit(
    model: Forecaster,
    x: np.ndarray,
    y: np.ndarray,
    config: TrainConfig = TrainConfig(),
    *,
    progress: bool = True,
    resume: TrainState | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[TrainState], Any] | None = None,
) -> History:
    """Trains ``model`` in place on windows ``x`` (n, time, features) and scaled targets ``y`` (n,).

    Returns the loss history. Raises :class:`~jaxlstm.errors.TrainingError` naming the epoch if the loss, or any
    parameter or optimizer moment (that is, a gradient), stops being finite; the model is then left unchanged.

    Args:
        model: the forecaster; its weights are the starting point unless ``resume`` is given.
        x, y: training windows and scaled targets.
        config: hyperparameters.
        progress: show a progress bar.
        resume: continue from this state (e.g. a checkpoint's) instead of from the model's weights and
            ``config.seed``; it must come from the same model, data, config and device count.
        checkpoint_every: call ``on_checkpoint`` after every this many epochs (None: only at the end).
        on_checkpoint: called with the :class:`TrainState` (device arrays) every ``checkpoint_every`` epochs and
            once when training ends; it must copy what it keeps before returning (the next epoch donates the
            buffers).

    >>> from flax import nnx
    >>> from jaxlstm.models import preset
    >>> model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
    >>> x = np.linspace(0, 1, 10 * 5, dtype=np.float32).reshape(10, 5, 1)
    >>> history = fit(model, x, x[:, -1, 0], TrainConfig(epochs=3, batch_size=4), progress=False)
    >>> len(history.loss)
    3
    """
    n_validation = int(len(x) * config.validation_split)
    n_train = len(x) - n_validation
    if n_train < 1 or (config.validation_split > 0 and n_validation < 1):
        raise ConfigError(
            f"{len(x)} windows cannot be split with validation_split={config.validation_split} ({n_validation} held "
            f"out); pass a validation split that keeps at least one window on each side"
        )
    if checkpoint_every is not None and (isinstance(checkpoint_every, bool) or checkpoint_every < 1):
        raise ConfigError(f"checkpoint every must be a positive number of epochs, got {checkpoint_every!r}")
    devices = config.devices
    if resume is not None:
        if resume.epoch > config.epochs:
            raise ConfigError(f"the state to resume is at epoch {resume.epoch}, past epochs={config.epochs}")
        saved = resume.history.devices
        if devices is not None and devices != saved:
            raise ConfigError(
                f"devices={devices}, but the state to resume was trained on {saved}; pass devices={saved}"
            )
        if saved > len(jax.local_devices()):
            raise ConfigError(
                f"the run was trained with its batches split over {saved} device(s), but JAX sees "
                f"{len(jax.local_devices())} here; resume it where {saved} are available (an identical continuation "
                f"needs the same count)"
            )
        devices = saved
    mesh = batch_mesh(split_devices(config.batch_size, devices))
    replicated = NamedSharding(mesh, P())  # every device holds the weights, the data and the optimizer state

    def place(array: Any) -> Any:  # always a copy: the epoch donates its inputs, never the model's own buffers
        return jax.device_put(array, replicated, may_alias=False)

    x_train, y_train = place(np.asarray(x[:n_train])), place(np.asarray(y[:n_train]))
    x_val, y_val = place(np.asarray(x[n_train:])), place(np.asarray(y[n_train:]))
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = make_optimizer(config)
    if resume is None:
        history = History(devices=mesh.size)
        params = jax.tree.map(place, params)
        opt_state = jax.tree.map(place, optimizer.init(params))
        key = place(jax.random.key(config.seed))
        best_params, best_val_loss, finished = None, math.inf, False
    else:
        history = dataclasses.replace(resume.history, loss=list(resume.history.loss))
        history.val_loss = list(resume.history.val_loss)
        params, opt_state, key = (jax.tree.map(place, tree) for tree in (resume.params, resume.opt_state, resume.key))
        best_params = None if resume.best_params is None else jax.tree.map(place, resume.best_params)
        best_val_loss, finished = resume.best_val_loss, resume.finished
    start_epoch = 0 if resume is None else resume.epoch

    def state(epoch: int) -> TrainState:
        return TrainState(epoch, params, opt_state, key, history, best_params, best_val_loss, finished)

    epoch = make_epoch(graphdef, optimizer, n_train, config.batch_size, shuffle=config.shuffle, mesh=mesh)

    def checked_epoch(params: PyTree, opt_state: PyTree, key: Array, x: Array, y: Array) -> tuple:
        params, opt_state, loss = epoch(params, opt_state, key, x, y)
        return params, opt_state, loss, _all_finite((params, opt_state))

    start = time.perf_counter()
    if not finished:
        epoch_fn = jax.jit(checked_epoch, donate_argnums=(0, 1)).lower(params, opt_state, key, x_train, y_train)
        epoch_fn = epoch_fn.compile()
        evaluate_fn = jax.jit(make_evaluate(graphdef)).lower(params, x_val, y_val).compile() if n_validation else None
    history.compile_seconds += time.perf_counter() - start

    resumed_finished = finished
    stopped_at = start_epoch
    start = time.perf_counter()
    bar = tqdm(
        range(start_epoch, config.epochs),
        desc="train",
        unit="epoch",
        disable=not progress or finished,
        leave=False,
        initial=start_epoch,
        total=config.epochs,
    )
    try:
        for index in () if finished else bar:
            key, epoch_key = jax.random.split(key)
            params, opt_state, loss, finite = epoch_fn(params, opt_state, epoch_key, x_train, y_train)
            history.loss.append(float(loss))
            if not math.isfinite(history.loss[-1]):
                raise TrainingError(
                    f"the training loss became {history.loss[-1]} at epoch {index + 1}; lower --lr or set --clip-norm"
                )
            if not bool(finite):
                raise TrainingError(
                    f"a gradient made the weights or Adam's moments NaN or infinite at epoch {index + 1} (the loss "
                    f"was still {history.loss[-1]:.3g}); lower --lr or set --clip-norm"
                )
            stopped_at = index + 1
            postfix = {"loss": f"{history.loss[-1]:.3g}"}
            if evaluate_fn is not None:
                history.val_loss.append(float(evaluate_fn(params, x_val, y_val)))
                postfix["val_loss"] = f"{history.val_loss[-1]:.3g}"
                if history.val_loss[-1] < best_val_loss:
                    best_val_loss, history.best_epoch = history.val_loss[-1], index + 1
                    best_params = jax.tree.map(jnp.copy, params)
                elif config.patience is not None and index + 1 - history.best_epoch >= config.patience:
                    break  # early stopping
            bar.set_postfix(postfix)
            if on_checkpoint and checkpoint_every and stopped_at % checkpoint_every == 0 and stopped_at < config.epochs:
                history.train_seconds += time.perf_counter() - start
                on_checkpoint(state(stopped_at))
                start = time.perf_counter()
        finished = True
        history.train_seconds += time.perf_counter() - start
        if on_checkpoint is not None and not resumed_finished:
            on_checkpoint(state(stopped_at))
    finally:
        bar.close()
    if config.patience is not None and best_params is not None:
        params = best_params
    nnx.update(model, params)
    return history
