"""How well a backtest's prediction intervals are calibrated: conformal, ensemble, Monte Carlo dropout and
random-walk bands around its walk-forward forecasts, scored per step of the horizon and pooled.

Fold ``k``'s conformal bands are calibrated on the errors of the ensemble's forecasts in folds ``0 .. k - 1`` only, each
step on its own (those forecasts' days all precede fold ``k``'s cutoff, so nothing leaks), each error divided by the
random walk's spread at its origin (:meth:`~jaxlstm.forecasting.intervals.Conformal.random_walk_scale`), and the bands
drawn that many spreads wide. A fold is scored once the folds before it give enough errors for a finite interval at the
highest level (:func:`~jaxlstm.forecasting.intervals.minimum_calibration`); the other bands are scored on the very same
folds, so that all compare forecast for forecast. The random walk's volatility is that of the ``window`` daily
log-returns before each origin (the days the models see, :attr:`~jaxlstm.forecasting.Fold.volatility`).

The conformal bands are drawn around the ensemble's forecast and, as :data:`ONE_MODEL`, around each seed's (as
``jaxlstm forecast --calibrate-with`` draws them around one trained model); the ensemble's are the normal of its
seeds' mean and spread; :data:`MC_DROPOUT`'s the draws of all of a fold's models with their dropout on. For each way
and level: empirical coverage against nominal, the interval (Winkler) score, the pinball loss of the interval's two
quantiles, and the CRPS (from the quantiles at 0.01 .. 0.99), with the PIT of every forecast.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from jaxlstm.errors import plural
from jaxlstm.forecasting.backtest import Backtest
from jaxlstm.forecasting.intervals import Conformal, Empirical, LogNormal, Normal, minimum_calibration
from jaxlstm.forecasting.metrics import coverage, interval_score, pinball_loss

__all__ = [
    "MC_DROPOUT",
    "METHODS",
    "ONE_MODEL",
    "Calibration",
    "MethodBands",
    "calibrate",
    "conformal_errors",
    "uncalibrated",
]

ONE_MODEL = "conformal (one model)"
"""Split conformal bands around each seed's own forecast, calibrated on the seeds' errors in earlier folds: the
bands ``jaxlstm forecast --calibrate-with`` draws around a single trained model."""
MC_DROPOUT = "MC dropout"
"""The draws of every seed's model of a fold with its dropout on, pooled (a backtest with ``mc_dropout``)."""
METHODS = ("conformal", ONE_MODEL, "ensemble", MC_DROPOUT, "random walk")
"""The ways of drawing bands, in the order reports show them."""


@dataclass(frozen=True, eq=False)
class MethodBands:
    """One method's bands over the scored folds, its forecasts (n) pooled over them (and over the seeds for
    :data:`ONE_MODEL`); arrays (n, H) unless said otherwise.

    Attributes:
        fold: (n,) the fold of each forecast, from 0.
        actual: the prices forecast; ``dates`` (datetime64) the days.
        bounds: (levels, 2, n, H) each interval's lower and upper bound.
        crps: the CRPS of each forecast (from the quantiles at 0.01 .. 0.99, see ``crps`` of
            :mod:`jaxlstm.forecasting.intervals`).
        pit: the CDF of each forecast at its actual price.
    """

    fold: np.ndarray
    actual: np.ndarray
    dates: np.ndarray
    bounds: np.ndarray
    crps: np.ndarray
    pit: np.ndarray

    def scores(self, levels: Sequence[float], step: int | None = None) -> dict:
        """Coverage, interval score and pinball loss per level, the mean CRPS and the number of forecasts: those
        ``step`` days ahead (1-based), or of every step (None)."""
        pick = slice(None) if step is None else slice(step - 1, step)
        actual = self.actual[:, pick].ravel()
        per_level = {}
        for j, level in enumerate(levels):
            lower, upper = (bound[:, pick].ravel() for bound in self.bounds[j])
            pinball = pinball_loss(actual, lower, (1 - level) / 2) + pinball_loss(actual, upper, (1 + level) / 2)
            per_level[_percent(level)] = {
                "coverage": coverage(actual, lower, upper),
                "interval_score": interval_score(actual, lower, upper, 1 - level),
                "pinball": pinball / 2,
            }
        return {"levels": per_level, "crps": float(np.mean(self.crps[:, pick])), "forecasts": int(actual.size)}


@dataclass(frozen=True, eq=False)
class Calibration:
    """The bands of a backtest's scored folds, per method.

    Attributes:
        levels: the nominal coverages of the central intervals.
        folds: the indices of the scored folds.
        calibration_errors: per scored fold, the ensemble's calibration errors per step (earlier folds' forecasts).
        methods: method -> its :class:`MethodBands`.
    """

    levels: tuple[float, ...]
    folds: tuple[int, ...]
    calibration_errors: tuple[int, ...]
    methods: dict[str, MethodBands]

    def scores(self, step: int | None = None) -> dict:
        """method -> :meth:`MethodBands.scores`."""
        return {method: bands.scores(self.levels, step) for method, bands in self.methods.items()}

    def summary(self) -> dict:
        """What ``metrics.json`` holds: the scored folds, and the scores per step and pooled over the steps."""
        horizon = next(iter(self.methods.values())).actual.shape[-1]
        return {
            "levels": list(self.levels),
            "scored_folds": [k + 1 for k in self.folds],
            "calibration_errors": list(self.calibration_errors),
            "pooled": self.scores(),
            **({"steps": [{"step": h, **self.scores(h)} for h in range(1, horizon + 1)]} if horizon > 1 else {}),
        }

    def table(self) -> pd.DataFrame:
        """``intervals.csv``: one row per forecast, method and level: Date, fold, step, method, level, lower,
        upper, actual, pit."""
        rows = []
        for method, bands in self.methods.items():
            shape = bands.actual.shape
            folds = np.broadcast_to(bands.fold[:, None] + 1, shape).ravel()
            steps = np.broadcast_to(np.arange(1, shape[-1] + 1), shape).ravel()
            for j, level in enumerate(self.levels):
                columns = {
                    "Date": pd.DatetimeIndex(bands.dates.ravel()).strftime("%Y-%m-%d"),
                    "fold": folds,
                    "step": steps,
                    "method": method,
                    "level": level,
                    "lower": bands.bounds[j, 0].ravel(),
                    "upper": bands.bounds[j, 1].ravel(),
                    "actual": bands.actual.ravel(),
                    "pit": bands.pit.ravel(),
                }
                rows.append(pd.DataFrame(columns))
        return pd.concat(rows, ignore_index=True)


def _percent(level: float) -> str:
    return f"{100 * level:g}%"


def _first_scored_fold(result: Backtest, levels: Sequence[float]) -> int | None:
    """The first fold whose earlier folds give enough calibration errors per step for the highest level; None when
    no fold has that many."""
    origins = result.actual.shape[1]
    first = math.ceil(minimum_calibration(max(levels)) / origins)
    return first if first < len(result.folds) else None


def _volatility_known(result: Backtest) -> bool:
    return all(np.isfinite(fold.volatility).all() for fold in result.folds)


def uncalibrated(result: Backtest, levels: Sequence[float]) -> str:
    """Why :func:`calibrate` gives None for ``result``: a target that is not always positive, or how many earlier
    forecasts its highest level needs."""
    if not _volatility_known(result):
        return (
            f"the target {result.folds[0].dataset.target!r} is not always positive, so it has no log-return "
            f"volatility to scale the bands by; calibrate a price column"
        )
    need, origins = minimum_calibration(max(levels)), result.actual.shape[1]
    earlier = len(result.folds) - 1
    return (
        f"conformal intervals at {_percent(max(levels))} need {need} earlier forecasts per step before a fold, but "
        f"the {plural(earlier, 'fold')} before the last {'gives' if earlier == 1 else 'give'} {earlier * origins}; "
        f"use more --folds or --test-days, or lower --levels"
    )


def calibrate(result: Backtest, levels: Sequence[float], window: int | None = None) -> Calibration | None:
    """The bands of ``result``'s scored folds at ``levels``, every method of :data:`METHODS` (see the module
    docstring; the ensemble's and the one-model conformal's need two seeds or more); None when too few folds
    precede the last to calibrate its conformal bands. With a ``window`` N, each conformal band is calibrated on the
    last N errors of its step only (a rolling calibration set: the most recent errors, for errors whose scale
    drifts), or fewer where fewer came before."""
    first = _first_scored_fold(result, levels)
    if first is None or not _volatility_known(result):
        return None
    scored = range(first, len(result.folds))
    quantile_levels = np.array([q for level in levels for q in ((1 - level) / 2, (1 + level) / 2)])
    methods = {}
    for method in METHODS:
        if (method in ("ensemble", ONE_MODEL) and len(result.seeds) < 2) or (
            method == MC_DROPOUT and result.dropout_forecasts is None
        ):
            continue
        parts = [(k, *_bands(result, method, k, window)) for k in scored]
        quantiles = np.concatenate([bands.quantiles(quantile_levels) for _, bands, _ in parts])
        actual = np.concatenate([actual for _, _, actual in parts])
        methods[method] = MethodBands(
            fold=np.concatenate([np.full(len(actual), k) for k, _, actual in parts]),
            actual=actual,
            dates=np.concatenate([_tiled(result.folds[k].date_paths, len(actual)) for k, _, actual in parts]),
            bounds=np.moveaxis(quantiles.reshape(*quantiles.shape[:-1], len(levels), 2), (-2, -1), (0, 1)),
            crps=np.concatenate([bands.crps(actual) for _, bands, actual in parts]),
            pit=np.concatenate([bands.cdf(actual) for _, bands, actual in parts]),
        )
    return Calibration(
        levels=tuple(levels),
        folds=tuple(scored),
        calibration_errors=tuple(k * result.actual.shape[1] for k in scored),
        methods=methods,
    )


def _tiled(paths: np.ndarray, rows: int) -> np.ndarray:
    """``paths`` (origins, H) repeated down to ``rows`` rows (one copy per seed)."""
    return np.tile(paths, (rows // len(paths), 1))


def conformal_errors(
    result: Backtest, *, one_model: bool = False, before: int | None = None, window: int | None = None
) -> np.ndarray:
    """(n, H): the conformal calibration errors of ``result``'s folds before fold ``before`` (every fold: None), in
    time order, each in units of the random walk's spread at its origin: the ensemble's, or with ``one_model`` every
    seed's (an origin's seeds together); with a ``window``, the last ``window`` origins' only."""
    k = len(result.folds) if before is None else before
    spread = _spread(result)[:k]
    if one_model:  # (folds, seeds, origins, H) -> (folds, origins, seeds, H)
        errors = np.moveaxis(
            Conformal.errors_of(result.actual[:k, None], result.member_forecasts[:k], spread[:, None]), 1, 2
        )
    else:
        errors = Conformal.errors_of(result.actual[:k], result.forecasts[:k], spread)
    errors = errors.reshape(-1, result.horizon)
    return errors if window is None else errors[-window * (len(result.seeds) if one_model else 1) :]


def _volatility(result: Backtest) -> np.ndarray:
    """(folds, origins): the recent volatility at each origin."""
    return np.stack([fold.volatility[: result.actual.shape[1]] for fold in result.folds])


def _spread(result: Backtest) -> np.ndarray:
    """(folds, origins, H): the random walk's spread at each origin, h days ahead."""
    return Conformal.random_walk_scale(result.persistence[..., 0], _volatility(result), result.horizon)


def _bands(
    result: Backtest, method: str, k: int, window: int | None = None
) -> tuple[Conformal | Normal | Empirical | LogNormal, np.ndarray]:
    """Fold ``k``'s bands of ``method`` and the actual prices they are for, (n, H): its origins, or for
    :data:`ONE_MODEL` each seed's forecasts from its origins, seed after seed."""
    horizon, actual = result.horizon, result.actual[k]
    if method in ("conformal", ONE_MODEL):
        one_model = method == ONE_MODEL
        errors = conformal_errors(result, one_model=one_model, before=k, window=window)
        seeds = len(result.seeds) if one_model else 1
        forecasts = result.member_forecasts[k].reshape(-1, horizon) if one_model else result.forecasts[k]
        return Conformal(forecasts, np.tile(_spread(result)[k], (seeds, 1)), errors), np.tile(actual, (seeds, 1))
    if method == "ensemble":
        return Normal.of_members(result.member_forecasts[k], axis=0), actual
    if method == MC_DROPOUT:
        return Empirical(result.dropout_forecasts[k].reshape(-1, *actual.shape)), actual
    sigma = _volatility(result)[k, :, None] * np.sqrt(np.arange(1, horizon + 1))
    return LogNormal(result.persistence[k], sigma), actual
