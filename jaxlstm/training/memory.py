"""How much memory training needs, from the shapes alone, and a one-line refusal when the machine has less.

>>> from jaxlstm.config import preset
>>> estimate = estimate_memory(preset("stacked"), TrainConfig(), n_windows=112, window=60)
>>> estimate.state == 4 * 71_051 * 4  # weights, gradients and Adam's two moments, float32
True
"""

import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.config import ModelConfig, TrainConfig
from jaxlstm.errors import ConfigError
from jaxlstm.nn.models import Forecaster

__all__ = ["MemoryEstimate", "check_memory", "estimate_memory"]


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
    traces = jax.eval_shape(lambda v, x: nnx.merge(graphdef, v).trace(x), variables, windows)
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
