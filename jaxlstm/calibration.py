"""How well a backtest's prediction intervals are calibrated: conformal, ensemble and random-walk bands around its
walk-forward forecasts, scored per step of the horizon and pooled.

Fold ``k``'s conformal bands are calibrated on the errors of the ensemble's forecasts in folds ``0 .. k - 1`` only,
each step on its own (those forecasts' days all precede fold ``k``'s cutoff, so nothing leaks). A fold is scored
once the folds before it give enough errors for a finite interval at the highest level
(:func:`~jaxlstm.intervals.minimum_calibration`); the ensemble's and the random walk's bands are scored on the very
same folds, so the three compare forecast for forecast. The random walk's volatility is that of the ``window``
daily log-returns before each origin (the days the models see).

For each way and level: empirical coverage against nominal, the interval (Winkler) score, the pinball loss of the
interval's two quantiles, and the CRPS (from the quantiles at 0.01 .. 0.99), with the PIT of every forecast.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jaxlstm.backtest import Backtest
from jaxlstm.evaluate import coverage, interval_score, pinball_loss
from jaxlstm.intervals import (
    CRPS_LEVELS,
    Conformal,
    LogNormal,
    Normal,
    crps_quantiles,
    minimum_calibration,
    recent_volatility,
)

__all__ = ["METHODS", "Calibration", "calibrate", "uncalibrated"]

METHODS = ("conformal", "ensemble", "random walk")
"""The ways of drawing bands, in the order reports show them."""


@dataclass(frozen=True, eq=False)
class Calibration:
    """The bands of the scored folds, each array (scored folds, origins, H).

    Attributes:
        levels: the nominal coverages of the central intervals.
        folds: the indices of the scored folds.
        calibration_errors: per scored fold, the conformal calibration errors per step (earlier folds' forecasts).
        actual: the prices forecast.
        dates: the days forecast (datetime64).
        bounds: method -> (levels, 2, scored folds, origins, H), each interval's lower and upper bound.
        crps: method -> the CRPS of each forecast (from the quantiles at 0.01 .. 0.99; inf where a conformal band
            has too few calibration errors for its outer quantiles).
        pit: method -> the CDF of each forecast at its actual price.
    """

    levels: tuple[float, ...]
    folds: tuple[int, ...]
    calibration_errors: tuple[int, ...]
    actual: np.ndarray
    dates: np.ndarray
    bounds: dict[str, np.ndarray]
    crps: dict[str, np.ndarray]
    pit: dict[str, np.ndarray]

    def scores(self, step: int | None = None) -> dict:
        """method -> coverage, interval score and pinball losses per level, and the mean CRPS: of the forecasts
        ``step`` days ahead (1-based), or of every step (None)."""
        pick = slice(None) if step is None else step - 1
        actual = self.actual[..., pick].ravel()
        result = {}
        for method, bounds in self.bounds.items():
            per_level = {}
            for j, level in enumerate(self.levels):
                lower, upper = (bound[..., pick].ravel() for bound in bounds[j])
                per_level[_percent(level)] = {
                    "coverage": coverage(actual, lower, upper),
                    "interval_score": interval_score(actual, lower, upper, 1 - level),
                    "pinball": (
                        pinball_loss(actual, lower, (1 - level) / 2) + pinball_loss(actual, upper, (1 + level) / 2)
                    )
                    / 2,
                }
            result[method] = {"levels": per_level, "crps": float(np.mean(self.crps[method][..., pick]))}
        return result

    def summary(self) -> dict:
        """What ``metrics.json`` holds: the scored folds, and the scores per step and pooled over the steps."""
        horizon = self.actual.shape[-1]
        return {
            "levels": list(self.levels),
            "scored_folds": [k + 1 for k in self.folds],
            "calibration_errors": list(self.calibration_errors),
            "forecasts_scored": int(self.actual.size),
            "pooled": self.scores(),
            **({"steps": [{"step": h, **self.scores(h)} for h in range(1, horizon + 1)]} if horizon > 1 else {}),
        }

    def table(self) -> pd.DataFrame:
        """``intervals.csv``: one row per forecast, method and level: Date, fold, step, method, level, lower,
        upper, actual, pit."""
        folds = np.broadcast_to(np.array(self.folds)[:, None, None] + 1, self.actual.shape).ravel()
        steps = np.broadcast_to(np.arange(1, self.actual.shape[-1] + 1), self.actual.shape).ravel()
        rows = []
        for method, bounds in self.bounds.items():
            for j, level in enumerate(self.levels):
                rows.append(
                    pd.DataFrame(
                        {
                            "Date": pd.DatetimeIndex(self.dates.ravel()).strftime("%Y-%m-%d"),
                            "fold": folds,
                            "step": steps,
                            "method": method,
                            "level": level,
                            "lower": bounds[j, 0].ravel(),
                            "upper": bounds[j, 1].ravel(),
                            "actual": self.actual.ravel(),
                            "pit": self.pit[method].ravel(),
                        }
                    )
                )
        return pd.concat(rows, ignore_index=True)


def _percent(level: float) -> str:
    return f"{100 * level:g}%"


def _first_scored_fold(result: Backtest, levels: Sequence[float]) -> int | None:
    """The first fold whose earlier folds give enough calibration errors per step for the highest level; None when
    no fold has that many."""
    origins = result.actual.shape[1]
    first = math.ceil(minimum_calibration(max(levels)) / origins)
    return first if first < len(result.folds) else None


def uncalibrated(result: Backtest, levels: Sequence[float]) -> str:
    """Why :func:`calibrate` gives None for ``result``: how many earlier forecasts its highest level needs."""
    need, origins = minimum_calibration(max(levels)), result.actual.shape[1]
    return (
        f"conformal intervals at {_percent(max(levels))} need {need} earlier forecasts per step before a fold, but "
        f"the {len(result.folds) - 1} folds before the last give {(len(result.folds) - 1) * origins}; use more "
        f"--folds or --test-days, or lower --levels"
    )


def calibrate(result: Backtest, levels: Sequence[float]) -> Calibration | None:
    """The conformal, ensemble and random-walk bands of ``result``'s scored folds at ``levels`` (see the module
    docstring); None when too few folds precede the last to calibrate its conformal bands (the ensemble's are left
    out with a single seed, which has no spread)."""
    first = _first_scored_fold(result, levels)
    if first is None:
        return None
    actual, scored = result.actual, range(first, len(result.folds))
    quantile_levels = np.array([q for level in levels for q in ((1 - level) / 2, (1 + level) / 2)])
    bounds, crps, pit = {}, {}, {}
    for method in METHODS:
        if method == "ensemble" and len(result.seeds) < 2:
            continue
        per_fold = [_bands(result, method, k) for k in scored]
        quantiles = np.stack([bands.quantiles(quantile_levels) for bands in per_fold])
        bounds[method] = np.moveaxis(quantiles.reshape(*quantiles.shape[:-1], len(levels), 2), (-2, -1), (0, 1))
        crps[method] = np.stack(
            [crps_quantiles(actual[k], bands.quantiles(CRPS_LEVELS)) for k, bands in zip(scored, per_fold, strict=True)]
        )
        pit[method] = np.stack([bands.cdf(actual[k]) for k, bands in zip(scored, per_fold, strict=True)])
    return Calibration(
        levels=tuple(levels),
        folds=tuple(scored),
        calibration_errors=tuple(k * actual.shape[1] for k in scored),
        actual=actual[first:],
        dates=np.stack([result.folds[k].date_paths for k in scored]),
        bounds=bounds,
        crps=crps,
        pit=pit,
    )


def _bands(result: Backtest, method: str, k: int) -> Conformal | Normal | LogNormal:
    """Fold ``k``'s bands of ``method``, over its (origins, H) forecasts."""
    horizon = result.horizon
    if method == "conformal":
        errors = Conformal.errors_of(result.actual[:k], result.forecasts[:k], result.persistence[:k])
        return Conformal(result.forecasts[k], result.persistence[k], errors.reshape(-1, horizon))
    if method == "ensemble":
        return Normal.of_members(result.member_forecasts[k], axis=0)
    fold = result.folds[k]
    history = np.concatenate([fold.train_prices, fold.actual])
    origins = result.actual.shape[1]
    days = fold.dataset.window
    volatility = np.array([recent_volatility(history[: len(fold.train_prices) + i], days) for i in range(origins)])
    sigma = volatility[:, None] * np.sqrt(np.arange(1, horizon + 1))
    return LogNormal(result.persistence[k], sigma)
