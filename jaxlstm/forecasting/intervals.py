"""Prediction intervals for price forecasts, four ways, and the scores that say how well they are calibrated.

Each way is a predictive distribution per forecast, given by its quantile function (``quantiles``) and its CDF
(``cdf``, whose value at the actual price is the PIT); a central interval at level ``c`` runs from its
``(1 - c) / 2`` to its ``(1 + c) / 2`` quantile:

- :class:`Conformal`: split conformal intervals (Vovk et al., 2005; Lei et al., 2018) around a point forecast
  ``f``, normalized by a scale ``s`` known when it was made: from the errors ``|actual - forecast| / s`` of earlier
  forecasts of the same step, the interval at level ``c`` is ``f -+ r s``, ``r`` the ``ceil((n + 1) c)``-th
  smallest of the ``n`` calibration errors (infinite when ``n`` is too small), which covers at least ``c`` of
  exchangeable errors. jaxlstm's scale is the random walk's spread h days ahead, ``p s_d sqrt(h)`` (the last price
  ``p``, the recent daily volatility ``s_d``): normalized so, the errors of a stock at 100 in a calm year calibrate
  a forecast of it at 2,000 in a turbulent one (Papadopoulos et al.'s normalized nonconformity scores).
- :class:`Normal`: the spread of an ensemble of seeds, ``N(mean, std)`` of its members' forecasts.
- :class:`Empirical`: the draws of Monte Carlo dropout (Gal & Ghahramani, 2016), the models forecasting with their
  dropout on.
- :class:`LogNormal`: the random walk's, the honest comparator: the last price ``p`` with daily log-returns of
  standard deviation ``s`` (recent volatility) gives ``p exp(s sqrt(h) z)`` h days ahead.

>>> band = LogNormal(np.array([100.0]), np.array([0.02]))
>>> np.round(band.interval(0.95), 2).tolist()
[[96.16], [104.0]]
"""

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from scipy import stats

from jaxlstm.config import minimum_calibration

__all__ = [
    "CRPS_LEVELS",
    "Conformal",
    "Empirical",
    "LogNormal",
    "Normal",
    "conformal_radius",
    "crps_quantiles",
    "minimum_calibration",
    "recent_volatility",
]

CRPS_LEVELS = np.arange(1, 100) / 100
"""The quantile levels 0.01 .. 0.99 whose mean pinball loss approximates the CRPS (:func:`crps_quantiles`)."""


def conformal_radius(errors: np.ndarray, level: float | np.ndarray) -> np.ndarray:
    """The split conformal radius at coverage ``level`` (a scalar or any shape): the ``ceil((n + 1) level)``-th
    smallest of the ``n`` absolute calibration ``errors`` (n,), infinite when that rank exceeds ``n``, 0 at level 0.

    >>> conformal_radius(np.array([0.3, 0.1, 0.2, 0.4]), np.array([0.5, 0.8, 0.9]))
    array([0.3, 0.4, inf])
    """
    ordered = np.sort(np.asarray(errors, np.float64))
    rank = np.ceil((len(ordered) + 1) * np.asarray(level) - 1e-9).astype(int)
    padded = np.concatenate([[0.0], ordered, [np.inf]])
    return padded[np.minimum(rank, len(ordered) + 1)]


class _Bands(ABC):
    """A predictive distribution per forecast: quantiles and CDF, and central intervals from the quantiles."""

    @abstractmethod
    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        """(*forecasts, len(levels)): each forecast's quantiles at ``levels`` in (0, 1)."""

    @abstractmethod
    def cdf(self, actual: np.ndarray) -> np.ndarray:
        """(*forecasts): each forecast's CDF at its ``actual`` value, the probability integral transform."""

    def interval(self, level: float) -> np.ndarray:
        """(2, *forecasts): the lower and upper bounds of the central interval at ``level``."""
        return np.moveaxis(self.quantiles(np.array([(1 - level) / 2, (1 + level) / 2])), -1, 0)

    def crps(self, actual: np.ndarray) -> np.ndarray:
        """(*forecasts): each forecast's CRPS at its ``actual`` value (:func:`crps_quantiles` of its quantiles at
        :data:`CRPS_LEVELS`)."""
        return crps_quantiles(actual, self.quantiles(CRPS_LEVELS))


@dataclass(frozen=True)
class Normal(_Bands):
    """``N(mean, std)`` per forecast; arrays of one shape, in price units."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def of_members(cls, members: np.ndarray, axis: int = 0) -> "Normal":
        """The mean and the standard deviation (``ddof=1``) of an ensemble's forecasts along ``axis``."""
        return cls(np.mean(members, axis=axis), np.std(members, axis=axis, ddof=1))

    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        return self.mean[..., None] + self.std[..., None] * stats.norm.ppf(levels)

    def cdf(self, actual: np.ndarray) -> np.ndarray:
        return stats.norm.cdf(actual, self.mean, self.std)


@dataclass(frozen=True)
class LogNormal(_Bands):
    """``median * exp(sigma z)``, z ~ N(0, 1), per forecast: the random walk's from its last price (the median)."""

    median: np.ndarray
    sigma: np.ndarray

    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        return self.median[..., None] * np.exp(self.sigma[..., None] * stats.norm.ppf(levels))

    def cdf(self, actual: np.ndarray) -> np.ndarray:
        return stats.norm.cdf(np.log(actual / self.median) / self.sigma)


@dataclass(frozen=True)
class Conformal(_Bands):
    """Split conformal bands around ``forecast`` (*forecasts, H), each with its ``scale`` (*forecasts, H), from the
    normalized ``errors`` (n, H) of earlier forecasts of each of the H steps (the last axis). Quantile ``q`` is
    ``forecast +- r scale``, ``r`` :func:`conformal_radius` at coverage ``|2q - 1|``, the sign that of ``q - 1/2``."""

    forecast: np.ndarray
    scale: np.ndarray
    errors: np.ndarray

    @staticmethod
    def errors_of(actual: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The calibration errors of forecasts: ``|actual - forecast| / scale``, elementwise."""
        return np.abs(np.asarray(actual, np.float64) - forecast) / scale

    @staticmethod
    def random_walk_scale(last_price: np.ndarray, volatility: np.ndarray, horizon: int) -> np.ndarray:
        """(*origins, H): the random walk's spread ``p s_d sqrt(h)`` for h = 1 .. ``horizon`` from each origin's last
        price and daily volatility (*origins)."""
        spread = np.asarray(last_price, np.float64) * np.asarray(volatility, np.float64)
        return spread[..., None] * np.sqrt(np.arange(1, horizon + 1))

    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        levels = np.asarray(levels, np.float64)
        radius = np.stack([conformal_radius(self.errors[:, h], np.abs(2 * levels - 1)) for h in range(self.horizon)])
        return self.forecast[..., None] + self.scale[..., None] * np.sign(levels - 0.5) * radius

    def cdf(self, actual: np.ndarray) -> np.ndarray:
        error = (np.asarray(actual, np.float64) - self.forecast) / self.scale  # (*forecasts, H)
        below = np.stack(
            [np.searchsorted(np.sort(self.errors[:, h]), np.abs(error[..., h])) for h in range(self.horizon)],
            axis=-1,
        )
        return 0.5 + 0.5 * np.sign(error) * below / (len(self.errors) + 1)

    def crps(self, actual: np.ndarray) -> np.ndarray:
        """(*forecasts): the CRPS of the empirical distribution of the calibration errors around each forecast (the
        ``(n + 1)`` correction of the intervals leaves the outer quantiles infinite for small ``n``)."""
        coverages = np.abs(2 * CRPS_LEVELS - 1)
        radius = np.stack(
            [np.quantile(self.errors[:, h], coverages, method="inverted_cdf") for h in range(self.horizon)]
        )
        quantiles = self.forecast[..., None] + self.scale[..., None] * np.sign(CRPS_LEVELS - 0.5) * radius
        return crps_quantiles(actual, quantiles)

    @property
    def horizon(self) -> int:
        """H, the steps it has calibration errors for."""
        return self.errors.shape[-1]


@dataclass(frozen=True)
class Empirical(_Bands):
    """The empirical distribution of ``samples`` (m, *forecasts) per forecast, e.g. Monte Carlo dropout draws:
    quantiles by inverting the empirical CDF, the CDF the share of draws at or below."""

    samples: np.ndarray

    def quantiles(self, levels: np.ndarray) -> np.ndarray:
        return np.moveaxis(np.quantile(self.samples, levels, axis=0, method="inverted_cdf"), 0, -1)

    def cdf(self, actual: np.ndarray) -> np.ndarray:
        return np.mean(self.samples <= np.asarray(actual, np.float64), axis=0)


def recent_volatility(prices: np.ndarray, days: int) -> float:
    """The standard deviation (``ddof=1``) of the last ``days`` daily log-returns of ``prices`` (n,), n > days; NaN
    when one of those prices is not positive."""
    last = np.asarray(prices, np.float64)[-(days + 1) :]
    if (last <= 0).any():
        return math.nan
    return float(np.std(np.diff(np.log(last)), ddof=1))


def crps_quantiles(actual: np.ndarray, quantiles: np.ndarray, levels: np.ndarray = CRPS_LEVELS) -> np.ndarray:
    """The CRPS from quantile forecasts, twice the mean pinball loss over ``levels`` (Berrisch & Ziel, 2023):
    ``actual`` (n,), ``quantiles`` (n, len(levels)); returns (n,). With :data:`CRPS_LEVELS` it approximates the
    CRPS of the distribution the quantiles come from (lower is better, in price units)."""
    miss = np.asarray(quantiles, np.float64) - np.asarray(actual, np.float64)[..., None]
    return 2 * np.mean(((miss > 0) - np.asarray(levels)) * miss, axis=-1)
