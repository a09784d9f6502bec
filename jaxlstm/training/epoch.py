"""The compiled epoch: one pure program per epoch (shuffle, then ``lax.scan`` over mini-batches), its NaN check, and
the devices each batch is split over.

The model is split with ``nnx.split`` into a static graph and a pytree of parameters; the epoch is a pure function
of ``(params, optimizer state, PRNG key, data)``, compiled once ahead of time (:func:`compile_ahead`) with its
buffers donated. This is Flax's own advice for small models, where ``nnx.jit``'s graph traversal would cost more
than the step.

Semantics follow Keras's ``model.fit(x, y, epochs=100, batch_size=32)`` as used by the tutorial: samples are shuffled
every epoch, the last partial batch is kept (it is padded to the batch size and masked out of the loss, so its
gradient is that of its real samples alone), and the epoch loss is the sample-weighted mean of the batch losses.

Each batch can be split over several devices (data parallel, one ``psum`` of the gradients per step). On a CPU,
:func:`jaxlstm.training.runtime.use_cpu_cores` makes each core a JAX device: XLA runs each small step of a recurrence
on one core, so splitting the batch is how a 2-core machine keeps both cores busy.

>>> order = jax.jit(shuffled, static_argnums=1)(jax.random.key(0), 8, 5)
>>> sorted(order[:5].tolist()), order[5:].tolist()
([0, 1, 2, 3, 4], [5, 6, 7])
>>> bool(jnp.all(order[:5] == shuffled(jax.random.key(0), 5)))
True
"""

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from jaxlstm.config import TrainConfig
from jaxlstm.errors import ConfigError
from jaxlstm.nn.layers import row_keys

__all__ = [
    "BATCH_AXIS",
    "all_finite",
    "batch_mesh",
    "checked",
    "compile_ahead",
    "cross_entropy",
    "make_epoch",
    "make_evaluate",
    "shuffled",
    "split_devices",
    "squared_error",
    "training_devices",
]

Array = jax.Array
PyTree = Any
BATCH_AXIS = "batch"
Loss = Callable[[Array, Array], Array]
"""``loss(predictions, targets) -> (batch,)``: each sample's loss, which an epoch averages over the batch."""


def squared_error(predictions: Array, targets: Array) -> Array:
    """Each sample's mean squared error over its outputs (Keras's MSE): predictions and targets (batch, ...) ->
    (batch,). The default loss of every epoch."""
    return ((predictions - targets) ** 2).reshape(len(targets), -1).mean(axis=1)


def cross_entropy(logits: Array, labels: Array) -> Array:
    """Each sample's softmax cross-entropy (natural log), averaged over its steps if it has several: logits
    (batch, ..., classes) and integer labels (batch, ...) -> (batch,)."""
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return losses.reshape(len(labels), -1).mean(axis=1)


def split_devices(batch_size: int, requested: int | None = None) -> list[jax.Device]:
    """The devices each batch is split over: ``requested`` of them, or by default all local devices of the default
    backend, but no more than one per 16 samples of a batch (smaller shares cost more in overhead than they save).
    With several processes (:func:`jaxlstm.training.runtime.start_processes`), every device of every process.
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


def _rounds(n: int) -> int:
    """The sorting rounds that shuffle ``n`` elements: none for one, else the fewest ``R`` with ``n**3 <= M**R``
    (``M`` = 2**32 - 1), so that two of the ``n`` random keys tie in a round with probability below about ``1 / n``."""
    rounds = 0
    while n > 1 and n**3 > _UINT32_MAX**rounds:
        rounds += 1
    return rounds


def _largest_shuffled_in(rounds: int, size: int) -> int:
    """The largest ``n <= size`` that :func:`_rounds` shuffles in ``rounds`` rounds."""
    low, high = 1, size
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if _rounds(middle) <= rounds else (low, middle - 1)
    return low


def shuffled(key: Array, size: int, n_valid: Array | None = None) -> Array:
    """A random order of ``range(size)``, from ``key``: the one shuffle of every training path.

    Each round sorts the order by fresh random 32-bit keys (stable: ties keep their order), as many rounds as
    :func:`_rounds` gives for the elements shuffled. With ``n_valid`` (a traced integer <= ``size``, one per model
    under ``vmap``), only the first ``n_valid`` positions are shuffled, with the rounds ``n_valid`` elements take,
    and the rest stay ``n_valid .. size - 1`` at the end. JAX's random bits are counter-based, so the first
    ``n_valid`` keys of a ``size``-long draw are those of an ``n_valid``-long one: the first ``n_valid`` entries
    equal ``shuffled(key, n_valid)``, and a model padded to ``size`` samples shuffles exactly as it would alone.
    """
    positions = jnp.arange(size)
    order = positions
    needed = None
    if n_valid is not None:
        needed = sum((n_valid > _largest_shuffled_in(r, size)).astype(jnp.int32) for r in range(_rounds(size)))
    for round_index in range(_rounds(size)):
        key, subkey = jax.random.split(key)
        bits = jax.random.bits(subkey, (size,), jnp.uint32)
        if needed is None:
            _, order = jax.lax.sort_key_val(bits, order)
        else:
            bits = jnp.where(positions < n_valid, bits, np.uint32(_UINT32_MAX))
            order = jnp.where(round_index < needed, jax.lax.sort_key_val(bits, order)[1], order)
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
    loss: Loss = squared_error,
) -> Callable[..., tuple[PyTree, PyTree, Array]]:
    """Builds ``epoch(params, opt_state, key, x, y, n_valid=None) -> (params, opt_state, mean_loss)``, a pure
    function.

    ``x`` is (n_samples, time, features) and ``y`` (n_samples,), or (n_samples, outputs) for a model with several
    outputs (a window's loss is the mean over its outputs, as Keras's MSE); ``loss`` gives each sample's loss
    (:func:`squared_error`, or :func:`cross_entropy` of logits and integer labels ``y``). With ``window``, ``x`` is
    instead a series (n_samples + window - 1, features) whose sample ``k`` is ``x[k : k + window]``
    (:func:`~jaxlstm.data.training_input`): each batch gathers its windows inside the epoch, so the epoch holds the
    series once instead of ``window`` copies of it. The batches are a fresh permutation drawn from ``key``; the
    last, partial one is padded with index 0 and masked; a ``batch_size`` above
    ``n_samples`` makes one batch of every sample, as Keras does. Each batch is split evenly along the batch axis of
    ``mesh`` (default: the first local device), padded with masked slots to a multiple of its size: every device sums
    the squared errors of its share and their gradient, and one ``psum`` combines them into the batch mean. Each
    batch gets its own dropout key and each of its samples a key of its own from it
    (:func:`~jaxlstm.nn.layers.row_keys`): a sample's dropout masks do not depend on the device that runs it, so a
    seed trains the same model on any number of devices, up to the rounding of the ``psum``.

    ``n_valid`` (a traced integer, e.g. one per model under ``vmap``) trains on the first ``n_valid`` samples only,
    as an epoch built for ``n_valid`` samples would: the same permutation (:func:`shuffled`), the same
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
        params: PyTree, x: Array, y: Array, mask: Array, dropout_keys: Array
    ) -> tuple[Array, PyTree]:
        def summed_loss(params: PyTree) -> Array:
            predictions = nnx.merge(graphdef, params)(x, dropout_key=dropout_keys)
            return jnp.sum(jnp.where(mask, loss(predictions, y), 0.0))

        total, grads = jax.value_and_grad(summed_loss)(params)
        total, grads, count = jax.lax.psum((total, grads, jnp.sum(mask)), BATCH_AXIS)
        return total / count, jax.tree.map(lambda grad: grad / count, grads)

    loss_and_grad = jax.shard_map(
        share_loss_and_grad,
        mesh=mesh,
        in_specs=(P(), P(BATCH_AXIS), P(BATCH_AXIS), P(BATCH_AXIS), P(BATCH_AXIS)),
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
        permutation = shuffled(shuffle_key, n_samples, n_valid) if shuffle else jnp.arange(n_samples)
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
            sample_keys = row_keys(batch_key, slots)  # the masks of a sample: the same on 1, 2 or N devices
            batch_loss, grads = loss_and_grad(params, gather(x, indices), y[indices], batch_mask, sample_keys)
            updates, new_opt_state = optimizer.update(grads, opt_state, params)
            new_params = optax.apply_updates(params, updates)
            if masked:  # a batch with no sample (its loss 0 / 0) moves neither the weights nor Adam's state
                keep = jnp.any(batch_mask)
                new_params, new_opt_state = jax.tree.map(
                    lambda new, old: jnp.where(keep, new, old), (new_params, new_opt_state), (params, opt_state)
                )
                batch_loss = jnp.where(keep, batch_loss, 0.0)
            return (new_params, new_opt_state), batch_loss

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        batch_sizes = jnp.sum(valid, axis=1, dtype=jnp.float32)
        return params, opt_state, jnp.sum(losses * batch_sizes) / count

    return epoch


def make_evaluate(graphdef: nnx.GraphDef) -> Callable[[PyTree, Array, Array], Array]:
    """Builds ``evaluate(params, x, y) -> mse`` without dropout."""

    def evaluate(params: PyTree, x: Array, y: Array) -> Array:
        return jnp.mean((nnx.merge(graphdef, params)(x) - y) ** 2)

    return evaluate


def all_finite(tree: PyTree) -> Array:
    """One boolean: every floating-point leaf of ``tree`` is finite."""
    leaves = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def checked(epoch: Callable[..., tuple[PyTree, PyTree, Array]]) -> Callable[..., tuple[PyTree, PyTree, Array, Array]]:
    """The NaN guard of every training path: ``epoch``, also returning whether every weight and optimizer moment
    is still finite (a loss can stay finite while a gradient has already made a weight infinite)."""

    def checked_epoch(*args: Any) -> tuple[PyTree, PyTree, Array, Array]:
        params, opt_state, loss = epoch(*args)
        return params, opt_state, loss, all_finite((params, opt_state))

    return checked_epoch


def compile_ahead(function: Callable, *args: Any, donate_argnums: tuple[int, ...] = ()) -> tuple[Any, float]:
    """``function`` jitted, lowered and compiled for ``args`` ahead of its first call, and the seconds it took."""
    start = time.perf_counter()
    compiled = jax.jit(function, donate_argnums=donate_argnums).lower(*args).compile()
    return compiled, time.perf_counter() - start
