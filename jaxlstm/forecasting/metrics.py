"""Error metrics and the statistics that say whether a forecaster beats a reference: MSE, MAE, RMSE and MAPE in
price units, skill and MASE, the Diebold-Mariano test with the Harvey-Leybourne-Newbold correction, and the
Pesaran-Timmermann test of directional accuracy; and the scores of intervals and predictive distributions:
coverage, pinball loss, interval (Winkler) score and CRPS. NumPy, SciPy and scikit-learn only.

>>> true = np.array([10.0, 11.0, 12.0])
>>> m = metrics(true, np.array([10.0, 12.0, 12.0]))
>>> round(m.mse, 4), round(m.mae, 4), round(m.rmse, 4), round(m.mape, 4)
(0.3333, 0.3333, 0.5774, 3.0303)
"""

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error

__all__ = [
    "Metrics",
    "TestResult",
    "coverage",
    "crps_ensemble",
    "crps_normal",
    "diebold_mariano",
    "directional_accuracy",
    "interval_score",
    "mase",
    "metrics",
    "naive_scale",
    "pesaran_timmermann",
    "pinball_loss",
    "skill",
]


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


def metrics(true: np.ndarray, predicted: np.ndarray) -> Metrics:
    """Scikit-learn's MSE, MAE and MAPE, and RMSE = sqrt(MSE); both arrays (n,)."""
    mse = float(mean_squared_error(true, predicted))
    return Metrics(
        mse=mse,
        mae=float(mean_absolute_error(true, predicted)),
        rmse=mse**0.5,
        mape=100.0 * float(mean_absolute_percentage_error(true, predicted)),
    )


# --- does it beat persistence? --------------------------------------------------------------------------------


class TestResult(NamedTuple):
    """A test statistic and its p-value (NaN when the statistic is undefined, e.g. two identical forecasts)."""

    statistic: float
    p_value: float


def skill(actual: np.ndarray, forecast: np.ndarray, reference: np.ndarray) -> float:
    """``1 - RMSE(forecast) / RMSE(reference)`` on the same days, each array (n,): above 0 beats the reference
    (NaN or -inf when the reference is exact)."""
    rmse = [np.sqrt(np.mean((np.asarray(actual, np.float64) - f) ** 2)) for f in (forecast, reference)]
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(1.0 - rmse[0] / rmse[1])


def naive_scale(training: np.ndarray) -> float:
    """MASE's scale: the mean absolute error of the one-step naive forecast over ``training`` (n_train,)."""
    return float(np.mean(np.abs(np.diff(np.asarray(training, np.float64)))))


def mase(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray | float) -> float:
    """Mean absolute scaled error (Hyndman & Koehler, 2006): the mean of ``|actual - forecast| / scale``, where
    ``scale`` is :func:`naive_scale` of the series the forecaster was fit on (one for every day, or one per day when
    the days come from forecasters fit on different series). Below 1 beats, on the test days, what persistence
    achieved on the training days; inf or NaN for a flat training series."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.mean(np.abs(np.asarray(actual, np.float64) - forecast) / np.asarray(scale, np.float64)))


def diebold_mariano(
    actual: np.ndarray,
    forecast: np.ndarray,
    reference: np.ndarray,
    *,
    loss: Literal["squared", "absolute"] = "squared",
    horizon: int = 1,
) -> TestResult:
    """The Diebold-Mariano (1995) test of equal accuracy, with the Harvey, Leybourne & Newbold (1997) correction.

    ``d_t = L(actual_t - forecast_t) - L(actual_t - reference_t)``; its mean over the long-run variance (the
    autocovariances of ``d`` up to lag ``horizon - 1``) gives DM, which HLN scale by
    ``sqrt((n + 1 - 2h + h (h - 1) / n) / n)`` and compare with Student's t with ``n - 1`` degrees of freedom.
    A negative statistic means ``forecast`` has the smaller loss; the p-value is two-sided.

    Args:
        actual, forecast, reference: (n,) the series and the two forecasts of it.
        loss: ``squared`` or ``absolute`` error.
        horizon: h, the forecast horizon (1 for one-step forecasts).
    """
    errors = [np.asarray(actual, np.float64) - np.asarray(f, np.float64) for f in (forecast, reference)]
    losses = [e**2 if loss == "squared" else np.abs(e) for e in errors]
    d = losses[0] - losses[1]
    n = len(d)
    if n < 2:
        return TestResult(math.nan, math.nan)
    centred = d - d.mean()
    autocovariances = [float(np.dot(centred[k:], centred[: n - k])) / n for k in range(horizon)]
    variance = autocovariances[0] + 2 * sum(autocovariances[1:])
    if variance <= 0:
        return TestResult(math.nan, math.nan)
    statistic = d.mean() / math.sqrt(variance / n)
    statistic *= math.sqrt((n + 1 - 2 * horizon + horizon * (horizon - 1) / n) / n)
    return TestResult(float(statistic), float(2 * stats.t.sf(abs(statistic), df=n - 1)))


def directional_accuracy(actual_change: np.ndarray, predicted_change: np.ndarray) -> float:
    """The fraction of days whose direction (up, or not up, from the day before) the forecast called right; the
    changes (n,) are the actual one and the forecast's against the day before."""
    return float(np.mean((np.asarray(actual_change) > 0) == (np.asarray(predicted_change) > 0)))


def pesaran_timmermann(actual_change: np.ndarray, predicted_change: np.ndarray) -> TestResult:
    """The Pesaran & Timmermann (1992) test of directional accuracy: does the forecast call the direction of the
    change more often than a forecast independent of it would? Statistic ~ N(0, 1); the p-value is one-sided
    (large statistics reject independence). Changes are (n,): actual, and the forecast's against the day before."""
    up, called_up = np.asarray(actual_change) > 0, np.asarray(predicted_change) > 0
    n = len(up)
    hit = float(np.mean(up == called_up))
    p_up, p_called = float(up.mean()), float(called_up.mean())
    expected = p_up * p_called + (1 - p_up) * (1 - p_called)
    variance_hit = expected * (1 - expected) / n
    variance_expected = (
        (2 * p_up - 1) ** 2 * p_called * (1 - p_called) / n
        + (2 * p_called - 1) ** 2 * p_up * (1 - p_up) / n
        + 4 * p_up * p_called * (1 - p_up) * (1 - p_called) / n**2
    )
    if variance_hit - variance_expected <= 0:
        return TestResult(math.nan, math.nan)
    statistic = (hit - expected) / math.sqrt(variance_hit - variance_expected)
    return TestResult(statistic, float(stats.norm.sf(statistic)))


# --- intervals and predictive distributions -------------------------------------------------------------------


def coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The fraction of days whose actual value lies inside its interval, bounds included; each array (n,)."""
    actual = np.asarray(actual, np.float64)
    return float(np.mean((lower <= actual) & (actual <= upper)))


def pinball_loss(actual: np.ndarray, quantile: np.ndarray, level: float) -> float:
    """The mean quantile (pinball) loss of forecasts ``quantile`` (n,) of the ``level`` quantile, for ``actual``
    (n,): ``(1{actual < quantile} - level) * (quantile - actual)``, 0 for an exact forecast. Its mean over levels
    in (0, 1) approximates half the CRPS."""
    miss = np.asarray(quantile, np.float64) - np.asarray(actual, np.float64)
    return float(np.mean(((miss > 0) - level) * miss))


def interval_score(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray, miss_rate: float) -> float:
    """The mean interval (Winkler) score of central ``1 - miss_rate`` intervals (Gneiting & Raftery, 2007, eq. 43):
    the width, plus ``2 / miss_rate`` times the distance by which the actual value falls outside; lower is better.
    Arrays (n,)."""
    actual, lower, upper = (np.asarray(a, np.float64) for a in (actual, lower, upper))
    below, above = np.maximum(lower - actual, 0.0), np.maximum(actual - upper, 0.0)
    return float(np.mean(upper - lower + 2.0 / miss_rate * (below + above)))


def crps_ensemble(actual: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The continuous ranked probability score of an ensemble forecast, per day (lower is better; the absolute
    error for a single member): ``E|X - y| - E|X - X'| / 2`` over the ensemble's empirical distribution (Gneiting &
    Raftery, 2007, eq. 20). ``actual`` (n,), ``members`` (n, m); returns (n,)."""
    members = np.asarray(members, np.float64)
    spread = np.abs(members[:, :, None] - members[:, None, :]).mean(axis=(1, 2))
    return np.abs(members - np.asarray(actual, np.float64)[:, None]).mean(axis=1) - spread / 2


def crps_normal(actual: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The CRPS of normal forecasts N(mean, std**2) in closed form (Gneiting et al., 2005), per day; arrays (n,)."""
    std = np.asarray(std, np.float64)
    z = (np.asarray(actual, np.float64) - mean) / std
    return std * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / math.sqrt(math.pi))
