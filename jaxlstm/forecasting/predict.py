"""A trained forecaster's predictions in price units, one or several days ahead (directly, or fed its own forecasts),
Monte Carlo dropout draws, and its test-day metrics beside the naive "tomorrow = today" baseline.
"""

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.config import Strategy
from jaxlstm.data import Dataset, paths, to_prices
from jaxlstm.forecasting.metrics import Metrics, metrics

__all__ = ["Evaluation", "dropout_forecasts", "evaluate", "forecast_scaled", "predict_prices", "predict_scaled"]


@dataclass(frozen=True)
class Evaluation:
    """The model's test predictions in price units, (n_test,) or (n_origins, H) for a horizon H > 1, its metrics,
    and the naive baseline's (the last known price, for every day of the horizon): over all the forecasts, and per
    step of the horizon (``steps[h - 1]`` is ``(model, naive)`` for the forecasts h days ahead)."""

    predictions: np.ndarray
    model: Metrics
    naive: Metrics
    steps: tuple[tuple[Metrics, Metrics], ...] = ()


@nnx.jit
def _forward(model: nnx.Module, x: jax.Array) -> jax.Array:
    return model(x)


def _fed_back(model: nnx.Module, x: jax.Array, horizon: int, keys: jax.Array | None = None) -> jax.Array:
    """(n, horizon): a one-day model fed its own forecasts, with dropout keyed ``keys`` (horizon,) when given."""

    def next_day(window: jax.Array, key: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        forecast = model(window, dropout_key=key)
        return jnp.concatenate([window[:, 1:], forecast[:, None, None]], axis=1), forecast

    _, forecasts = jax.lax.scan(next_day, x, keys, length=horizon)
    return forecasts.T


@partial(jax.jit, static_argnums=(0, 3))
def _recursive(graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array, horizon: int) -> jax.Array:
    return _fed_back(nnx.merge(graphdef, state), x, horizon)


@partial(jax.jit, static_argnums=(0, 3, 4))
def _dropout_samples(
    graphdef: nnx.GraphDef, state: nnx.State, x: jax.Array, horizon: int, strategy: Strategy, keys: jax.Array
) -> jax.Array:
    model = nnx.merge(graphdef, state)

    def sample(key: jax.Array) -> jax.Array:
        if strategy == "recursive":
            return _fed_back(model, x, horizon, jax.random.split(key, horizon))
        return model(x, dropout_key=key).reshape(len(x), horizon)

    return jax.vmap(sample)(keys)


def predict_scaled(model: nnx.Module, x: np.ndarray) -> np.ndarray:
    """Predictions of a forecaster for windows ``x`` (n, time, features), in scaled units, (n,) (or (n, outputs)
    for a model with several outputs)."""
    return np.asarray(_forward(model, x))


def forecast_scaled(model: nnx.Module, x: np.ndarray, horizon: int = 1, strategy: Strategy = "direct") -> np.ndarray:
    """The next ``horizon`` days after each window ``x`` (n, time, features), in scaled units: (n, horizon).

    ``direct``: the model's own outputs (it has ``horizon`` of them). ``recursive``: a one-day model whose window
    (the target as its one feature, scaled as the target is) moves on a day at a time, its forecast appended as the
    newest day, ``horizon`` times.
    """
    if strategy == "direct":
        return predict_scaled(model, x).reshape(len(x), horizon)
    graphdef, state = nnx.split(model)
    return np.asarray(_recursive(graphdef, state, jnp.asarray(x), horizon))


def dropout_forecasts(
    model: nnx.Module, x: np.ndarray, horizon: int, strategy: Strategy, samples: int, key: jax.Array
) -> np.ndarray:
    """Monte Carlo dropout (Gal & Ghahramani, 2016): :func:`forecast_scaled` ``samples`` times with the model's
    dropout on, each draw its own masks (a recursive model draws new masks every day); (samples, n, horizon)."""
    graphdef, state = nnx.split(model)
    keys = jax.random.split(key, samples)
    return np.asarray(_dropout_samples(graphdef, state, jnp.asarray(x), horizon, strategy, keys))


def predict_prices(model: nnx.Module, x: np.ndarray, target_scaler: MinMaxScaler) -> np.ndarray:
    """Predictions of a forecaster for windows ``x`` (n, time, features), inverse-scaled to price units, (n,)."""
    return to_prices(target_scaler, predict_scaled(model, x))


def evaluate(model: nnx.Module, dataset: Dataset) -> Evaluation:
    """The model and the naive baseline on the test days of ``dataset``, every step of its horizon."""
    forecasts = dataset.to_prices(forecast_scaled(model, dataset.x_test, dataset.horizon, dataset.strategy))
    actual = paths(dataset.test_prices, dataset.horizon)
    naive = np.broadcast_to(dataset.previous_prices[: len(actual), None], actual.shape)
    steps = tuple(
        (metrics(actual[:, h], forecasts[:, h]), metrics(actual[:, h], naive[:, h])) for h in range(len(actual[0]))
    )
    return Evaluation(
        predictions=forecasts[:, 0] if dataset.horizon == 1 else forecasts,
        model=metrics(actual.ravel(), forecasts.ravel()),
        naive=metrics(actual.ravel(), naive.ravel()),
        steps=steps if dataset.horizon > 1 else (),
    )
