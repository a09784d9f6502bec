"""Predictions in price units, error metrics, and the naive "tomorrow's Open = today's Open" baseline.

>>> true = np.array([10.0, 11.0, 12.0])
>>> m = metrics(true, np.array([10.0, 12.0, 12.0]))
>>> round(m.mse, 4), round(m.mae, 4), round(m.rmse, 4), round(m.mape, 4)
(0.3333, 0.3333, 0.5774, 3.0303)
"""

import dataclasses
from dataclasses import dataclass

import jax
import numpy as np
from flax import nnx
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.data import Dataset, to_prices

__all__ = ["Evaluation", "Metrics", "evaluate", "metrics", "predict_prices"]


@dataclass(frozen=True)
class Metrics:
    """Errors in price units: MSE, MAE, RMSE, and MAPE in percent."""

    mse: float
    mae: float
    rmse: float
    mape: float

    def to_dict(self) -> dict[str, float]:
        """A JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """The model's test predictions (n_test,) in price units, its metrics, and the naive baseline's."""

    predictions: np.ndarray
    model: Metrics
    naive: Metrics


def metrics(true: np.ndarray, predicted: np.ndarray) -> Metrics:
    """Scikit-learn's MSE, MAE and MAPE, and RMSE = sqrt(MSE); both arrays (n,)."""
    mse = float(mean_squared_error(true, predicted))
    return Metrics(
        mse=mse,
        mae=float(mean_absolute_error(true, predicted)),
        rmse=mse**0.5,
        mape=100.0 * float(mean_absolute_percentage_error(true, predicted)),
    )


@nnx.jit
def _predict_scaled(model: nnx.Module, x: jax.Array) -> jax.Array:
    return model(x)


def predict_prices(model: nnx.Module, x: np.ndarray, target_scaler: MinMaxScaler) -> np.ndarray:
    """Predictions of a forecaster for windows ``x`` (n, time, features), inverse-scaled to price units, (n,)."""
    return to_prices(target_scaler, np.asarray(_predict_scaled(model, x)))


def evaluate(model: nnx.Module, dataset: Dataset) -> Evaluation:
    """The model and the naive baseline on the test days of ``dataset``."""
    predictions = predict_prices(model, dataset.x_test, dataset.target_scaler)
    return Evaluation(
        predictions=predictions,
        model=metrics(dataset.test_prices, predictions),
        naive=metrics(dataset.test_prices, dataset.previous_prices),
    )
