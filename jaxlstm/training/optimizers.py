"""The optimizers: optax's Adam, or Keras's Adam written out as an optax transformation, after optional clipping."""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxlstm.config import TrainConfig

__all__ = ["KerasAdamState", "keras_adam", "make_optimizer"]

Array = jax.Array
PyTree = Any


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
