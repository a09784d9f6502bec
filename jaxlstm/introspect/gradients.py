"""How far back a gradient reaches: ``|| d prediction / d x_{t-k} ||`` for every lag ``k``, for trained models and
for untrained LSTMs (forget bias 0 and 1) and tanh RNNs (:mod:`jaxlstm.nn.rnn`) beside them. ``jaxlstm gradflow``
draws the curves for a saved run (see docs/tour.md).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> model = Forecaster(preset("stacked", layers=2, units=8), rngs=nnx.Rngs(0))
>>> gradient_flow(model, jnp.linspace(0, 1, 2 * 20).reshape(2, 20, 1)).shape  # one norm per lag, 0 = the last day
(20,)
"""

import dataclasses
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.config import DataConfig, ModelConfig, TrainConfig
from jaxlstm.data import prepare_as
from jaxlstm.forecasting import evaluate
from jaxlstm.nn import LSTM, ConvLSTM, Forecaster, RNNForecaster
from jaxlstm.training import fit

__all__ = ["curve_summary", "decay_per_step", "fresh_curves", "gradient_flow", "set_forget_bias", "trained_rnn_curves"]

Array = jax.Array


def gradient_flow(model: Callable[[Array], Array], x: Array) -> np.ndarray:
    """How much the prediction depends on the input ``k`` steps before the last one, for every lag ``k``.

    Args:
        model: maps windows (batch, time, features) to predictions (batch,), e.g. a
            :class:`~jaxlstm.nn.Forecaster` (called without dropout) or a :class:`~jaxlstm.nn.RNNForecaster`.
        x: windows (batch, time, features).

    Returns:
        ``norms`` (time,): ``norms[k]`` is the mean over the windows of ``|| d y / d x[:, time - 1 - k] ||_2`` (the
        norm over features), so ``norms[0]`` is the sensitivity to the last day and ``norms[time - 1]`` to the first.
        Each prediction depends on its own window only, so one gradient of the sum gives every window's gradient.
    """
    x = jnp.asarray(x, jnp.float32)
    if isinstance(model, nnx.Module):  # compiled once per architecture, whatever the weights
        graphdef, state = nnx.split(model)
        return np.asarray(_module_flow(graphdef, state, x), np.float64)
    return np.asarray(_flow(model, x), np.float64)


def _flow(model: Callable[[Array], Array], x: Array) -> Array:
    grads = jax.grad(lambda x: jnp.sum(model(x)))(x)
    return jnp.linalg.norm(grads, axis=-1).mean(axis=0)[::-1]


@partial(jax.jit, static_argnums=0)
def _module_flow(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> Array:
    return _flow(nnx.merge(graphdef, state), x)


def decay_per_step(norms: np.ndarray) -> float:
    """The geometric-mean factor by which the norm changes per step of lag: ``(n[-1] / n[0]) ** (1 / (T - 1))``."""
    return float((norms[-1] / norms[0]) ** (1.0 / (len(norms) - 1)))


def set_forget_bias(model: nnx.Module, value: float) -> None:
    """Sets the forget-gate slice of the bias of every LSTM and ConvLSTM layer in ``model`` to ``value``, in place."""
    for _, module in nnx.iter_modules(model):
        if isinstance(module, LSTM):
            size = module.hidden_size
            module.b[...] = module.b[...].at[size : 2 * size].set(value)
        elif isinstance(module, ConvLSTM):
            size = module.filters
            module.bias[...] = module.bias[...].at[size : 2 * size].set(value)


def fresh_curves(config: ModelConfig, x: Array, *, seed: int = 0, forget_biases: Sequence[float] = (1.0, 0.0)) -> dict:
    """Gradient-flow curves of untrained models on windows ``x``: the LSTM ``config`` with each forget bias (same
    weights otherwise) and tanh RNNs of the same width and depth, initialised as Keras and as PyTorch do."""
    curves = {}
    for bias in forget_biases:
        model = Forecaster(config, rngs=nnx.Rngs(seed))
        set_forget_bias(model, bias)
        curves[f"LSTM, forget bias {bias:g} (untrained)"] = gradient_flow(model, x)
    depth = config.layers if config.arch != "conv" else 1
    for init, name in (("torch", "PyTorch"), ("keras", "Keras")):
        rnn = RNNForecaster(config.n_features, config.units, layers=depth, init=init, rngs=nnx.Rngs(seed))
        curves[f"tanh RNN, {name} init (untrained)"] = gradient_flow(rnn, x)
    return curves


def trained_rnn_curves(
    model: Forecaster, model_config: ModelConfig, data: DataConfig, train: TrainConfig | None, frame: Any, x: Array
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Gradient-flow curves of tanh RNNs (Keras and PyTorch initialisations) of ``model``'s width and depth,
    trained with ``train`` (the tutorial's for None, e.g. a converted run) on ``data``'s training windows of
    ``frame``, on windows ``x``; and the test RMSE (price units) of ``model``, of each RNN and of the naive baseline:
    how far back a model looks says nothing of how well it forecasts."""
    dataset = prepare_as(frame, data)
    train = dataclasses.replace(train or TrainConfig(), devices=None)
    depth = model_config.layers if model_config.arch != "conv" else 1
    evaluation = evaluate(model, dataset)
    curves, rmse = {}, {"naive": evaluation.naive.rmse, "run": evaluation.model.rmse}
    for init, name in (("torch", "PyTorch"), ("keras", "Keras")):
        options = {"layers": depth, "init": init, "outputs": model_config.outputs}
        rnn = RNNForecaster(model_config.n_features, model_config.units, **options, rngs=nnx.Rngs(train.seed))
        fit(rnn, dataset.x_train, dataset.y_train, train, progress=False)
        label = f"tanh RNN, {name} init, trained like the run"
        curves[label], rmse[label] = gradient_flow(rnn, x), evaluate(rnn, dataset).model.rmse
    return curves, rmse


def curve_summary(curves: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Each curve's norms, its norm relative to lag 0 at a few lags, and its :func:`decay_per_step`: what
    ``gradflow.json`` holds."""
    return {
        name: {
            "norms": [float(n) for n in norms],
            "relative_at_lag": {
                str(k): float(norms[k] / norms[0]) for k in (1, 5, 10, 20, 30, len(norms) - 1) if k < len(norms)
            },
            "decay_per_step": decay_per_step(norms),
        }
        for name, norms in curves.items()
    }
