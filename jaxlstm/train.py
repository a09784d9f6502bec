"""Training: one jitted, pure program per epoch (shuffle, then ``lax.scan`` over mini-batches), driven by :func:`fit`.

The model is split with ``nnx.split`` into a static graph and a pytree of parameters; the epoch function is a pure
function of ``(params, optimizer state, PRNG key)``, compiled once ahead of time, with its buffers donated. This is
Flax's own advice for small models, where ``nnx.jit``'s graph traversal would cost more than the step.

Semantics follow Keras's ``model.fit(x, y, epochs=100, batch_size=32)`` as used by the tutorial: samples are shuffled
every epoch, the last partial batch is kept (it is padded to the batch size and masked out of the loss, so its
gradient is that of its real samples alone), and the epoch loss is the sample-weighted mean of the batch losses.

Each batch can be split over several devices (data parallel, one ``psum`` of the gradients per step). On a CPU,
:func:`jaxlstm.runtime.use_cpu_cores` makes each core a JAX device: XLA runs each small step of a recurrence on one
core, so splitting the batch is how a 2-core machine keeps both cores busy.
"""

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P
from tqdm.auto import tqdm

from jaxlstm import runtime
from jaxlstm.config import ModelConfig, TrainConfig, check_count
from jaxlstm.data import training_input
from jaxlstm.errors import ConfigError, TrainingError
from jaxlstm.introspect import trace_gates
from jaxlstm.models import Forecaster

__all__ = [
    "BATCH_AXIS",
    "History",
    "KerasAdamState",
    "MemoryEstimate",
    "TrainState",
    "batch_mesh",
    "check_memory",
    "compile_ahead",
    "estimate_memory",
    "fit",
    "keras_adam",
    "make_epoch",
    "make_evaluate",
    "make_optimizer",
    "masked_permutation",
    "split_devices",
    "training_devices",
]

Array = jax.Array
PyTree = Any
BATCH_AXIS = "batch"


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
    With several processes (:func:`jaxlstm.runtime.start_processes`), every device of every process.
    """
    if jax.process_count() > 1:
        available = jax.devices()
        if requested not in (None, len(available)):
            raise ConfigError(
                f"with {jax.process_count()} processes each batch is split over all {len(available)} devices; drop "
                f"--devices or pass --devices {len(available)}"
            )
        return available
    available = jax.local_devices()
    count = min(len(available), max(1, batch_size // 16)) if requested is None else requested
    if not 1 <= count <= len(available):
        raise ConfigError(f"devices must be between 1 and {len(available)} (the devices JAX sees), got {count}")
    return available[:count]


def training_devices(config: TrainConfig, n_windows: int) -> list[jax.Device]:
    """The devices :func:`fit` splits batches over for ``n_windows`` windows: :func:`split_devices` of the
    batch that is actually trained (no larger than the training windows left after the validation split)."""
    n_train = n_windows - int(n_windows * config.validation_split)
    return split_devices(max(1, min(config.batch_size, n_train)), config.devices)


def batch_mesh(devices: Sequence[jax.Device]) -> Mesh:
    """A one-axis mesh over ``devices`` that the batch is split along."""
    return Mesh(np.asarray(devices), (BATCH_AXIS,))


_UINT32_MAX = int(np.iinfo(np.uint32).max)


def _shuffle_rounds(n: int) -> int:
    """The sorting rounds of ``jax.random.permutation`` for ``n`` elements (a static function of ``n`` in JAX)."""
    return int(np.ceil(3 * np.log(max(1, n)) / np.log(_UINT32_MAX)))


def _rounds_thresholds(size: int) -> list[int]:
    """``t[r]``, the largest n that ``jax.random.permutation`` shuffles in ``r`` rounds, for every round up to
    ``size``'s: ``n`` takes ``sum(n > t for t in thresholds)`` rounds."""
    thresholds = []
    for rounds in range(_shuffle_rounds(size)):
        low, high = 0, size  # the largest n <= size with _shuffle_rounds(n) <= rounds
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if _shuffle_rounds(middle) <= rounds else (low, middle - 1)
        thresholds.append(low)
    return thresholds


def masked_permutation(key: Array, n_valid: Array, size: int) -> Array:
    """``jax.random.permutation(key, n_valid)`` for a traced ``n_valid`` <= ``size``: indices (size,) whose first
    ``n_valid`` entries are that permutation and whose rest are ``n_valid .. size - 1``.

    It runs JAX's own algorithm (rounds of a stable sort by fresh random 32-bit keys, as many rounds as JAX uses for
    ``n_valid`` elements) on ``size`` positions, the positions past ``n_valid`` sorting last. JAX's random bits are
    counter-based, so the first ``n_valid`` keys of a ``size``-long draw are the keys of an ``n_valid``-long one:
    models with different numbers of samples, padded to one shape under ``vmap``, shuffle exactly as :func:`fit`
    shuffles each alone (tested against ``jax.random.permutation``).
    """
    positions = jnp.arange(size)
    rounds = sum((n_valid > threshold).astype(jnp.int32) for threshold in _rounds_thresholds(size))
    order = positions
    for round_index in range(_shuffle_rounds(size)):
        key, subkey = jax.random.split(key)
        bits = jnp.where(positions < n_valid, jax.random.bits(subkey, (size,), jnp.uint32), np.uint32(_UINT32_MAX))
        order = jnp.where(round_index < rounds, order[jnp.argsort(bits, stable=True)], order)
    return order


def make_epoch(
    graphdef: nnx.GraphDef,
    optimizer: optax.GradientTransformation,
    n_samples: int,
    batch_size: int,
    *,
    shuffle: bool = True,
    mesh: Mesh | None = None,
    window: int | None = None,
) -> Callable[..., tuple[PyTree, PyTree, Array]]:
    """Builds ``epoch(params, opt_state, key, x, y, n_valid=None) -> (params, opt_state, mean_loss)``, a pure
    function.

    ``x`` is (n_samples, time, features) and ``y`` (n_samples,), or (n_samples, outputs) for a model with several
    outputs (a window's loss is the mean over its outputs, as Keras's MSE). With ``window``, ``x`` is instead a
    series (n_samples + window - 1, features) whose sample ``k`` is ``x[k : k + window]``
    (:func:`~jaxlstm.data.training_input`): each batch gathers its windows inside the epoch, so the epoch holds the
    series once instead of ``window`` copies of it. The batches are a fresh permutation drawn from ``key``; the
    last, partial one is padded with index 0 and masked; a ``batch_size`` above
    ``n_samples`` makes one batch of every sample, as Keras does. Each batch is split evenly along the batch axis of
    ``mesh`` (default: the first local device), padded with masked slots to a multiple of its size: every device sums
    the squared errors of its share and their gradient, and one ``psum`` combines them into the batch mean. Each
    batch, and each device's share of it, gets its own dropout key.

    ``n_valid`` (a traced integer, e.g. one per model under ``vmap``) trains on the first ``n_valid`` samples only,
    as an epoch built for ``n_valid`` samples would: the same permutation (:func:`masked_permutation`), the same
    batches and dropout keys (JAX's splits are counter-based too, with ``jax_threefry_partitionable``, JAX's
    default); the batches past its last one are masked whole and leave the parameters and the optimizer state
    untouched. The one difference: for ``n_valid`` below ``batch_size``, an epoch built for ``n_valid`` samples
    shrinks its batch, which draws other dropout masks in stacks of several layers.
    """
    mesh = mesh or batch_mesh(jax.local_devices()[:1])
    batch_size = min(batch_size, n_samples)  # as Keras: a batch larger than the data is all of it
    n_batches = math.ceil(n_samples / batch_size)
    shares = mesh.shape[BATCH_AXIS]
    slots = math.ceil(batch_size / shares) * shares
    position = np.arange(n_batches)[:, None] * batch_size + np.arange(slots)[None, :]
    in_batch = np.arange(slots)[None, :] < batch_size
    days = None if window is None else np.arange(window)

    def gather(x: Array, indices: Array) -> Array:
        """The samples ``indices`` (slots,) of ``x``: (slots, time, features)."""
        return x[indices] if days is None else x[indices[:, None] + days]

    def share_loss_and_grad(
        params: PyTree, x: Array, y: Array, mask: Array, dropout_key: Array
    ) -> tuple[Array, PyTree]:
        share_key = jax.random.fold_in(dropout_key, jax.lax.axis_index(BATCH_AXIS))

        def squared_error(params: PyTree) -> Array:
            predictions = nnx.merge(graphdef, params)(x, dropout_key=share_key)
            errors = ((predictions - y) ** 2).reshape(len(y), -1).mean(axis=1)  # each window's, over its outputs
            return jnp.sum(jnp.where(mask, errors, 0.0))

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

    def epoch(
        params: PyTree, opt_state: PyTree, key: Array, x: Array, y: Array, n_valid: Array | None = None
    ) -> tuple[PyTree, PyTree, Array]:
        masked = n_valid is not None
        count = n_valid if masked else n_samples
        valid = in_batch & (position < count)
        shuffle_key, dropout_key = jax.random.split(key)
        if not shuffle:
            permutation = jnp.arange(n_samples)
        elif masked:
            permutation = masked_permutation(shuffle_key, n_valid, n_samples)
        else:
            permutation = jax.random.permutation(shuffle_key, n_samples)
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
            loss, grads = loss_and_grad(params, gather(x, indices), y[indices], batch_mask, batch_key)
            updates, new_opt_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if masked:  # a batch with no sample (its loss 0 / 0) moves neither the weights nor Adam's state
                keep = jnp.any(batch_mask)
                new_params, new_opt_state = jax.tree.map(
                    lambda new, old: jnp.where(keep, new, old), (new_params, new_opt_state), (params, opt_state)
                )
                loss = jnp.where(keep, loss, 0.0)
            return (new_params, new_opt_state), loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        batch_sizes = jnp.sum(valid, axis=1, dtype=jnp.float32)
        return params, opt_state, jnp.sum(losses * batch_sizes) / count

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


def compile_ahead(function: Callable, *args: Any, donate_argnums: tuple[int, ...] = ()) -> tuple[Any, float]:
    """``function`` jitted, lowered and compiled for ``args`` ahead of its first call, and the seconds it took."""
    start = time.perf_counter()
    compiled = jax.jit(function, donate_argnums=donate_argnums).lower(*args).compile()
    return compiled, time.perf_counter() - start


class _Data(NamedTuple):
    """The training and validation windows and targets, placed on the devices; with ``window``, ``x_train`` is the
    series the training windows are gathered from (:func:`~jaxlstm.data.training_input`)."""

    x_train: Array
    y_train: Array
    x_val: Array
    y_val: Array
    window: int | None


class _Program(NamedTuple):
    """The compiled programs of a fit: ``epoch(params, opt_state, key, x, y) -> (params, opt_state, loss, finite)``
    and ``evaluate(params, x, y) -> mse`` (None without a validation split)."""

    epoch: Callable
    evaluate: Callable | None


def _hold_out(x: np.ndarray, y: np.ndarray, validation_split: float) -> tuple[np.ndarray, ...]:
    """``(x_train, y_train, x_val, y_val)``: the last ``validation_split`` of the windows held out, as Keras does
    (views of ``x``, not copies)."""
    n_validation = int(len(x) * validation_split)
    n_train = len(x) - n_validation
    if n_train < 1 or (validation_split > 0 and n_validation < 1):
        raise ConfigError(
            f"{len(x)} windows cannot be split with validation_split={validation_split} ({n_validation} held "
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


def _device_count(config: TrainConfig, resume: TrainState | None) -> int | None:
    """The devices to split batches over: ``config.devices``, or those the resumed state was trained on."""
    if resume is None:
        return config.devices
    if resume.epoch > config.epochs:
        raise ConfigError(f"the state to resume is at epoch {resume.epoch}, past epochs={config.epochs}")
    saved = resume.history.devices
    if config.devices is not None and config.devices != saved:
        raise ConfigError(
            f"devices={config.devices}, but the state to resume was trained on {saved}; pass devices={saved}"
        )
    seen = len(jax.devices())
    if saved > seen:
        raise ConfigError(
            f"the run was trained with its batches split over {saved} device(s), but JAX sees {seen} here; resume "
            f"it where {saved} are available (an identical continuation needs the same count)"
        )
    return saved


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
) -> _Program:
    """Compiles the epoch (with its NaN check) and, with a validation split, the evaluation; counts the seconds."""
    epoch = make_epoch(
        graphdef, optimizer, len(data.y_train), config.batch_size, shuffle=config.shuffle, mesh=mesh, window=data.window
    )

    def checked_epoch(params: PyTree, opt_state: PyTree, key: Array, x: Array, y: Array) -> tuple:
        params, opt_state, loss = epoch(params, opt_state, key, x, y)
        return params, opt_state, loss, _all_finite((params, opt_state))

    arguments = (state.params, state.opt_state, state.key, data.x_train, data.y_train)
    epoch_fn, seconds = compile_ahead(checked_epoch, *arguments, donate_argnums=(0, 1))
    evaluate_fn = None
    if len(data.x_val):
        evaluate_fn, more = compile_ahead(make_evaluate(graphdef), state.params, data.x_val, data.y_val)
        seconds += more
    state.history.compile_seconds += seconds
    return _Program(epoch_fn, evaluate_fn)


def _run_epoch(state: TrainState, program: _Program, data: _Data) -> None:
    """One epoch, in place; TrainingError naming the epoch if the loss, a weight or a moment stops being finite."""
    state.key, epoch_key = jax.random.split(state.key)
    state.params, state.opt_state, loss, finite = program.epoch(
        state.params, state.opt_state, epoch_key, data.x_train, data.y_train
    )
    state.epoch += 1
    state.history.loss.append(float(loss))
    if not math.isfinite(state.history.loss[-1]):
        raise TrainingError(
            f"the training loss became {state.history.loss[-1]} at epoch {state.epoch}; lower --lr or set --clip-norm"
        )
    if not bool(finite):
        raise TrainingError(
            f"a gradient made the weights or Adam's moments NaN or infinite at epoch {state.epoch} (the loss "
            f"was still {state.history.loss[-1]:.3g}); lower --lr or set --clip-norm"
        )


def _watch_validation(state: TrainState, program: _Program, data: _Data, patience: int | None) -> bool:
    """Records the validation loss, keeps the best parameters; True when early stopping ends training."""
    history = state.history
    history.val_loss.append(float(program.evaluate(state.params, data.x_val, data.y_val)))
    if history.val_loss[-1] < state.best_val_loss:
        state.best_val_loss, history.best_epoch = history.val_loss[-1], state.epoch
        state.best_params = jax.tree.map(jnp.copy, state.params)
        return False
    return patience is not None and state.epoch - history.best_epoch >= patience


def _train(
    state: TrainState,
    program: _Program,
    data: _Data,
    config: TrainConfig,
    *,
    progress: bool,
    checkpoint_every: int | None,
    on_checkpoint: Callable[[TrainState], Any] | None,
) -> None:
    """The epoch loop, in place: epochs, validation and early stopping, checkpoints; time spent in checkpoints is
    not counted as training time."""
    epochs = range(state.epoch, config.epochs)
    shown = {"desc": "train", "unit": "epoch", "total": config.epochs, "initial": state.epoch, "leave": False}
    bar = tqdm(epochs, disable=not progress, **shown)
    clock = time.perf_counter()
    with bar:
        for _ in bar:
            _run_epoch(state, program, data)
            postfix = {"loss": f"{state.history.loss[-1]:.3g}"}
            stop = program.evaluate is not None and _watch_validation(state, program, data, config.patience)
            if state.history.val_loss:
                postfix["val_loss"] = f"{state.history.val_loss[-1]:.3g}"
            bar.set_postfix(postfix)
            if stop:
                break
            due = checkpoint_every is not None and state.epoch % checkpoint_every == 0 and state.epoch < config.epochs
            if on_checkpoint is not None and due:
                state.history.train_seconds += time.perf_counter() - clock
                on_checkpoint(state)
                clock = time.perf_counter()
        state.finished = True
        state.history.train_seconds += time.perf_counter() - clock
        if on_checkpoint is not None:
            on_checkpoint(state)


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
    """Trains ``model`` in place on windows ``x`` (n, time, features) and scaled targets ``y`` (n,).

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
        on_checkpoint: called with the :class:`TrainState` (device arrays) every ``checkpoint_every`` epochs and
            once when training ends; it must copy what it keeps before returning (the next epoch donates the
            buffers).

    >>> from flax import nnx
    >>> from jaxlstm.config import preset
    >>> model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
    >>> x = np.linspace(0, 1, 10 * 5, dtype=np.float32).reshape(10, 5, 1)
    >>> history = fit(model, x, x[:, -1, 0], TrainConfig(epochs=3, batch_size=4), progress=False)
    >>> len(history.loss)
    3
    """
    if checkpoint_every is not None:
        check_count("--checkpoint-every", checkpoint_every, 10)
    held_out = _hold_out(x, y, config.validation_split)
    devices = _device_count(config, resume)
    mesh = batch_mesh(training_devices(dataclasses.replace(config, devices=devices), len(x)))
    data = _place_data(held_out, mesh)
    graphdef, params = nnx.split(model, nnx.Param)
    optimizer = make_optimizer(config)
    state = _starting_state(params, optimizer, config, mesh, resume)
    if not state.finished:
        program = _compile(graphdef, optimizer, state, data, mesh, config)
        _train(
            state,
            program,
            data,
            config,
            progress=progress,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
        )
    restore_best = config.patience is not None and state.best_params is not None
    final = state.best_params if restore_best else state.params
    if jax.process_count() > 1:  # replicated on every process's devices: each keeps its own copy
        final = jax.tree.map(lambda leaf: jnp.asarray(np.asarray(leaf)), final)
    nnx.update(model, final)
    return state.history


# --- memory ---------------------------------------------------------------------------------------------------


class MemoryEstimate(NamedTuple):
    """Bytes a training run needs: the trainable state (parameters, their gradients and Adam's two moments, plus
    a copy of the best parameters under early stopping), the activations the backward pass keeps for one batch
    (every gate and state of every step), and the training windows."""

    state: int
    activations: int
    data: int

    @property
    def total(self) -> int:
        """The sum of the three."""
        return self.state + self.activations + self.data


def estimate_memory(
    config: ModelConfig, train: TrainConfig, n_windows: int, window: int, *, models: int = 1
) -> MemoryEstimate:
    """How much memory training ``config``'s model on ``n_windows`` windows of ``window`` days needs, computed
    from the shapes alone (nothing is allocated: the model and its gate traces are only traced abstractly); with
    ``models``, that many such models trained at once, each on windows of its own. The windows are counted as the
    views of their series that :func:`~jaxlstm.data.prepare` makes and training gathers from: each day once."""
    model = nnx.eval_shape(lambda: Forecaster(config, rngs=nnx.Rngs(0)))
    graphdef, variables = nnx.split(model)
    param_bytes = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(nnx.state(model, nnx.Param)))
    batch = min(train.batch_size, n_windows)
    windows = jax.ShapeDtypeStruct((batch, window, config.n_features), jnp.float32)
    traces = jax.eval_shape(lambda v, x: [t[2:] for t in trace_gates(nnx.merge(graphdef, v), x)], variables, windows)
    activations = sum(leaf.size * leaf.dtype.itemsize for leaf in jax.tree.leaves(traces))
    copies = 5 if train.validation_split > 0 else 4
    data = ((n_windows + window - 1) * config.n_features + n_windows) * 4
    return MemoryEstimate(models * copies * param_bytes, models * activations, models * data)


def _available_memory() -> tuple[int, str]:
    """Bytes free for training on the default device, and what they are, for messages."""
    device = jax.local_devices()[0]
    stats = device.memory_stats() or {}
    if "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0)), f"{device.device_kind} memory"
    try:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        return int(fields["MemAvailable"].split()[0]) * 1024, "memory"
    except (OSError, KeyError, ValueError):
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "memory"


def check_memory(
    config: ModelConfig, train: TrainConfig, n_windows: int, window: int, *, models: int = 1
) -> MemoryEstimate:
    """:func:`estimate_memory`, or ConfigError naming the estimate and what the machine has when it does not fit."""
    needed = estimate_memory(config, train, n_windows, window, models=models)
    available, what = _available_memory()
    if needed.total > available:
        gigabytes = [value / 1e9 for value in (needed.total, needed.state, needed.activations, needed.data, available)]
        what_to_do = "fewer --units or --layers, or a smaller --batch-size"
        if models > 1:
            what_to_do = f"fewer --folds or --seeds ({models} models train at once), {what_to_do}"
        raise ConfigError(
            "training this model needs about {:.1f} GB (weights, gradients and Adam's moments {:.1f} GB, activations "
            "{:.1f} GB, data {:.1f} GB) but only {:.1f} GB of {} is free; use {}".format(*gigabytes, what, what_to_do)
        )
    return needed
