"""Forecasts from saved runs: a train run's model (:func:`forecast_run`) or a backtest run's recipe refit
(:func:`forecast_refit`), each calibrated by a backtest run's walk-forward errors, and the forecast's files
(:func:`save_forecast`). The computation is :mod:`jaxlstm.forecasting.forecast`'s.
"""

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from jaxlstm.config import RunConfig, flag, option_text
from jaxlstm.errors import ConfigError, RunError
from jaxlstm.fileio import write_atomic
from jaxlstm.forecasting.calibration import MC_DROPOUT, ONE_MODEL, conformal_errors
from jaxlstm.forecasting.forecast import (
    DEFAULT_CALENDAR,
    Forecast,
    Measured,
    check_days,
    forecast_model,
    forecast_strategy,
    refit_and_forecast,
)
from jaxlstm.forecasting.intervals import minimum_calibration
from jaxlstm.runs.backtest import load_backtest, read_backtest
from jaxlstm.runs.plots import plot_fan
from jaxlstm.runs.train import Run

__all__ = ["forecast_refit", "forecast_run", "save_forecast"]


def _measured(
    backtest: Path, days: int, levels: tuple[float, ...] | None, *, one_model: bool
) -> tuple[RunConfig, Measured]:
    """The backtest run's config, and what it measured (:class:`~jaxlstm.forecasting.forecast.Measured`): its
    walk-forward errors (n, days) per step (its ensemble's, or each seed's for ``one_model``), the levels (its own
    by default), the coverage it measured per method and level, and why it measured none (or None)."""
    config, _, summary = read_backtest(backtest)
    fix = f"backtest with --horizon {days}"
    check_days(days, config.data.horizon, f"{backtest} was backtested with --horizon {config.data.horizon}: it", fix)
    chosen = config.backtest.levels if levels is None else levels
    if not set(chosen) <= set(config.backtest.levels):
        measured, asked = ",".join(map(str, config.backtest.levels)), ",".join(map(str, chosen))
        raise ConfigError(
            f"--levels {asked}: {backtest} measured coverage at {measured} only; pass --levels {measured}, or "
            f"backtest with --levels {asked}"
        )
    if "calibration" not in summary:
        raise RunError(f"{backtest} was written by an older jaxlstm, without prediction intervals; run it again")
    window = config.backtest.calibration_window
    errors = conformal_errors(load_backtest(backtest), one_model=one_model, window=window)[:, :days]
    need = minimum_calibration(max(chosen))
    if len(errors) < need:
        raise RunError(
            f"{backtest} holds {len(errors)} walk-forward errors per step; conformal bands at "
            f"{100 * max(chosen):g}% need {need}; backtest with more --folds or --test-days"
        )
    measured_as = {"conformal": ONE_MODEL if one_model else "conformal", "ensemble": "ensemble"}
    if one_model:  # a single model has no seeds to spread, and the backtest's dropout draws were its seeds'
        del measured_as["ensemble"]
    else:
        measured_as[MC_DROPOUT] = MC_DROPOUT
    measured_as["random walk"] = "random walk"
    pooled = summary["calibration"].get("pooled", {})
    coverage = {
        ours: {level: pooled[theirs]["levels"][f"{100 * level:g}%"]["coverage"] for level in chosen}
        for ours, theirs in measured_as.items()
        if theirs in pooled
    }
    skipped = summary["calibration"].get("skipped")
    return config, Measured(
        errors, chosen, coverage, None if skipped is None else f"{backtest} did not measure it: {skipped}"
    )


def forecast_run(
    run: Run,
    frame: pd.DataFrame,
    days: int,
    *,
    calendar: str = DEFAULT_CALENDAR,
    calibrate_with: Path | None = None,
    levels: tuple[float, ...] | None = None,
    source: str = "model",
) -> Forecast:
    """A train run's forecast of the ``days`` sessions after ``frame`` (its last ``window`` rows are the input),
    with conformal bands from the backtest ``calibrate_with`` (its seeds' errors), and the random walk's."""
    data = run.config.data
    forecast_strategy(data, days, f"the run (trained with --horizon {data.horizon})")  # before any calibration
    measured = Measured(None, levels or (0.8, 0.95), {}, "pass --calibrate-with a backtest run of the same settings")
    if calibrate_with is not None:
        backtest, measured = _measured(calibrate_with, days, levels, one_model=True)
        _check_same_recipe(run.config, backtest, calibrate_with)
    windows, _ = run.windows(frame)
    return forecast_model(
        run.model, windows[-1:], run.target_scaler, frame, data, days, measured, calendar=calendar, source=source
    )


def forecast_refit(
    backtest: Path,
    frame: pd.DataFrame,
    days: int,
    *,
    calendar: str = DEFAULT_CALENDAR,
    levels: tuple[float, ...] | None = None,
    progress: bool = False,
) -> Forecast:
    """The backtest run's recipe refit on the rows of ``frame`` up to its end and forecast ``days`` sessions ahead
    (:func:`~jaxlstm.forecasting.forecast.refit_and_forecast`), with conformal bands from the backtest's ensemble
    errors, the seeds' spread and the random walk's."""
    config, measured = _measured(backtest, days, levels, one_model=False)
    return refit_and_forecast(config, frame, days, measured, calendar=calendar, progress=progress)


def _check_same_recipe(run: RunConfig, backtest: RunConfig, path: Path) -> None:
    """RunError naming the first setting in which the backtest's models differ from the run's."""
    if run.train is None:
        raise RunError(
            f"the run was converted from {run.converted_from['format']}, not trained by jaxlstm, so no backtest "
            f"measured its errors; forecast without --calibrate-with, or train and backtest it"
        )
    if run.train.validation_split > 0:
        raise RunError(
            f"the run held out --validation-split {run.train.validation_split} (and stopped early), which a backtest "
            f"does not: no backtest trains its models alike; train without --validation-split to calibrate it"
        )
    ignore = {"seed", "devices", "csv", "start", "end", "last_rows", "sha256", "split"}
    if run.data.strategy == "recursive":
        ignore.add("horizon")  # a recursive model forecasts one day, however far it is fed
    if run.data.horizon == 1 and backtest.data.strategy == "recursive":
        ignore |= {"horizon", "strategy"}  # a one-day model trains as a recursive one does, and is fed back alike
    if backtest.backtest.target_transform != "level":
        raise RunError(
            f"{path} learned the {backtest.backtest.target_transform} of the prices, the run learned the prices; "
            f"calibrate with a backtest of --target-transform level"
        )
    for ours, theirs in (
        (run.data, backtest.data),
        (run.model, backtest.model),
        (run.train, backtest.train),
    ):
        for item in dataclasses.fields(ours):
            if item.name in ignore:
                continue
            mine, other = getattr(ours, item.name), getattr(theirs, item.name)
            if mine != other:
                name = item.metadata.get("flag", flag(item.name))
                raise RunError(
                    f"{path} was backtested with {name} {option_text(other)}, the run was trained with "
                    f"{option_text(mine)}: its errors do not calibrate this model; backtest with the run's settings"
                )


def _band_centre(forecast: Forecast, method: str) -> tuple[str, np.ndarray] | None:
    """Where the drawn bands are centred when it is not the forecast: the random walk's, on the last price."""
    if method != "random walk":
        return None
    return "band centre: the last price (the random walk's forecast)", np.full(
        len(forecast.dates), forecast.history.iloc[-1]
    )


def save_forecast(out: Path, forecast: Forecast, *, title: str, ylabel: str) -> None:
    """``forecast.csv`` and ``forecast.png``, the fan chart of the last 120 days and the first method's bands (the
    conformal ones when calibrated), into the existing directory ``out``; RunError when the disk refuses."""
    method = next(iter(forecast.bands))
    try:
        write_atomic(out / "forecast.csv", forecast.table().to_csv(index=False).encode())
        plot_fan(
            forecast.history.iloc[-120:],
            forecast.dates,
            forecast.forecast,
            forecast.bands[method],
            out / "forecast.png",
            title=f"{title} ({method} bands)",
            ylabel=ylabel,
            centre=_band_centre(forecast, method),
        )
    except OSError as error:
        raise RunError(f"{out}: cannot write the forecast ({error.strerror}); choose another --out") from None
