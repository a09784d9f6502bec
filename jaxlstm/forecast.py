"""Forecasts beyond the data: the next trading days on an exchange's calendar, with calibrated bands.

The point forecast comes from one of two places:

- a ``jaxlstm train`` run (one model): its window of the last ``window`` days, forecast ``days`` ahead (a direct
  model's first ``days`` outputs; a recursive model fed its own forecasts);
- a ``jaxlstm backtest`` run's recipe, refit: its S seeds trained, in one program, on the rows its folds trained on
  but ending with the data (the last ``train_days`` rows, or every row with ``expanding``), and their mean. This is
  the forecaster whose errors the backtest measured, fold by fold.

Its bands (:mod:`jaxlstm.intervals`), at the levels the backtest measured:

- ``conformal``: split conformal, calibrated on every walk-forward error of the backtest at each step (its
  ensemble's errors for a refit; each of its seeds' errors for a single model), each in units of the random walk's
  spread at its origin, and drawn that many of today's spreads wide;
- ``ensemble``: the spread of the refit's seeds (refit only);
- ``MC dropout``: the refit's seeds forecasting with their dropout on (refit of a backtest with ``--mc-dropout``);
- ``random walk``: from the volatility of the last ``window`` daily log-returns, widening with the square root of
  the days ahead.

Next to each band stands the coverage the backtest measured for that method and level, pooled over its scored
folds and steps (:mod:`jaxlstm.calibration`).
"""

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np
import pandas as pd

from jaxlstm.calibration import MC_DROPOUT, ONE_MODEL, conformal_errors
from jaxlstm.config import DataConfig, RunConfig, flag
from jaxlstm.data import from_changes, numeric_columns, prepare_latest, to_changes
from jaxlstm.ensemble import fit_ensemble
from jaxlstm.errors import ConfigError, DataError, RunError
from jaxlstm.evaluate import dropout_forecasts, forecast_scaled
from jaxlstm.fileio import write_atomic
from jaxlstm.intervals import Conformal, Empirical, LogNormal, Normal, minimum_calibration, recent_volatility
from jaxlstm.plots import plot_fan
from jaxlstm.runs import Run, load_backtest, read_backtest

__all__ = ["DEFAULT_CALENDAR", "Forecast", "forecast_refit", "forecast_run", "save_forecast", "trading_days"]

DEFAULT_CALENDAR = "NYSE"
"""The exchange whose sessions date the forecasts, by ``exchange_calendars`` name or alias (NYSE is XNYS)."""


def trading_days(
    after: pd.Timestamp, days: int, calendar: str = DEFAULT_CALENDAR
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The first ``days`` sessions of ``calendar`` after the day ``after``, and whether each closes early.

    Raises:
        ConfigError: an unknown calendar.
        DataError: the calendar does not reach that far.
    """
    import exchange_calendars

    try:
        with warnings.catch_warnings():  # exchange_calendars's own use of a pandas API that pandas 4 changes
            warnings.simplefilter("ignore", DeprecationWarning)
            exchange = exchange_calendars.get_calendar(calendar, start=min(after, pd.Timestamp.today()).normalize())
    except exchange_calendars.errors.InvalidCalendarName:
        known = ", ".join(sorted(exchange_calendars.calendar_utils.get_calendar_names(include_aliases=True))[:12])
        raise ConfigError(
            f"--calendar {calendar!r}: unknown exchange calendar; use an exchange_calendars name such as NYSE, "
            f"XNYS, XNAS, XLON, XTKS ({known}, ...)"
        ) from None
    sessions = exchange.sessions[exchange.sessions > after.normalize()][:days]
    if len(sessions) < days:
        raise DataError(
            f"the {exchange.name} calendar knows sessions up to {exchange.last_session.date()}, fewer than {days} "
            f"after {after.date()}; forecast fewer --days"
        )
    return pd.DatetimeIndex(sessions, name="Date"), np.isin(sessions, exchange.early_closes)


@dataclass(frozen=True, eq=False)
class Forecast:
    """The next trading days' forecasts and bands, in price units.

    Attributes:
        dates: (H,) the sessions forecast; ``early_close`` (H,) whether each closes early.
        forecast: (H,) the point forecast (the mean of the seeds for a refit).
        members: (S, H) each seed's forecast (a single model: (1, H)).
        bands: method -> level -> (2, H) lower and upper bounds.
        coverage: method -> level -> the coverage the backtest measured for that band.
        history: the actual prices before the forecast (for the fan chart).
        source: what forecast, for titles and the printout.
        unmeasured: why no coverage was measured, when none was.
    """

    dates: pd.DatetimeIndex
    early_close: np.ndarray
    forecast: np.ndarray
    members: np.ndarray
    bands: dict[str, dict[float, np.ndarray]]
    coverage: dict[str, dict[float, float]]
    history: pd.Series
    source: str
    unmeasured: str | None = None

    def table(self) -> pd.DataFrame:
        """``forecast.csv``: Date, step, early_close, forecast, then ``<method> <level> lower/upper`` per band."""
        columns = {
            "Date": self.dates.strftime("%Y-%m-%d"),
            "step": np.arange(1, len(self.dates) + 1),
            "early_close": self.early_close,
            "forecast": self.forecast,
        }
        for method, levels in self.bands.items():
            for level, (lower, upper) in levels.items():
                columns[f"{method} {100 * level:g}% lower"] = lower
                columns[f"{method} {100 * level:g}% upper"] = upper
        return pd.DataFrame(columns)


def _check_days(days: int, horizon: int, what: str, fix: str) -> None:
    if days > horizon:
        raise ConfigError(f"--days {days}: {what} forecasts {horizon} days; pass --days {horizon} or less, or {fix}")


def _calibration(backtest: Path, days: int, levels: tuple[float, ...] | None, *, one_model: bool) -> tuple:
    """The backtest run's config, its walk-forward errors (n, days) per step (its ensemble's, or each seed's for
    ``one_model``), the levels (its own by default), the coverage it measured per method and level, and why it
    measured none (or None)."""
    config, _, summary = read_backtest(backtest)
    fix = f"backtest with --horizon {days}"
    _check_days(days, config.data.horizon, f"{backtest} was backtested with --horizon {config.data.horizon}: it", fix)
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
    return config, errors, chosen, coverage, None if skipped is None else f"{backtest} did not measure it: {skipped}"


def _bands(
    forecast: np.ndarray,
    members: np.ndarray,
    last_price: float,
    volatility: float,
    levels: tuple[float, ...],
    errors: np.ndarray | None,
    dropout_draws: np.ndarray | None = None,
) -> dict[str, dict[float, np.ndarray]]:
    """method -> level -> (2, H): conformal (with calibration ``errors``), ensemble (with several members), MC
    dropout (with ``dropout_draws`` (m, H)), random walk."""
    days = len(forecast)
    methods: dict[str, object] = {}
    if errors is not None:
        scale = Conformal.random_walk_scale(np.array([last_price]), np.array([volatility]), days)
        methods["conformal"] = Conformal(forecast[None], scale, errors)
    if len(members) > 1:
        methods["ensemble"] = Normal.of_members(members)
    if dropout_draws is not None:
        methods[MC_DROPOUT] = Empirical(dropout_draws)
    methods["random walk"] = LogNormal(np.full(days, last_price), volatility * np.sqrt(np.arange(1, days + 1)))
    return {
        method: {level: np.asarray(bands.interval(level)).reshape(2, days) for level in levels}
        for method, bands in methods.items()
    }


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
    if data.strategy == "direct":
        _check_days(
            days,
            data.horizon,
            f"the run (trained with --horizon {data.horizon})",
            f"train with --horizon {days} or --strategy recursive",
        )
    errors, coverage, unmeasured = None, {}, "pass --calibrate-with a backtest run of the same settings"
    if calibrate_with is not None:
        backtest, errors, levels, coverage, unmeasured = _calibration(calibrate_with, days, levels, one_model=True)
        _check_same_recipe(run.config, backtest, calibrate_with)
    levels = levels or (0.8, 0.95)
    windows, _ = run.windows(frame)
    scaled = forecast_scaled(run.model, windows[-1:], max(days, run.config.model.outputs), data.strategy)[:, :days]
    forecast = run.target_scaler.inverse_transform(scaled.reshape(-1, 1))[:, 0]
    prices = numeric_columns(frame, [data.target])[:, 0]
    dates, early = trading_days(frame.index[-1], days, calendar)
    return Forecast(
        dates,
        early,
        forecast,
        forecast[None],
        _bands(forecast, forecast[None], prices[-1], _volatility(prices, data), levels, errors),
        coverage,
        pd.Series(prices, frame.index),
        source,
        unmeasured,
    )


def _volatility(prices: np.ndarray, data: DataConfig) -> float:
    """The standard deviation of the last ``window`` daily log-returns of the target; DataError when they are not
    all defined."""
    volatility = recent_volatility(prices, data.window)
    if not np.isfinite(volatility):
        raise DataError(
            f"{data.target} is not positive on every one of the last {data.window + 1} days, so it has no "
            f"log-return volatility to draw bands by; forecast a price column"
        )
    return volatility


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
                    f"{path} was backtested with {name} {_shown(other)}, the run was trained with {_shown(mine)}: "
                    f"its errors do not calibrate this model; backtest with the run's settings"
                )


def _shown(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, tuple) else str(value)


def forecast_refit(
    backtest: Path,
    frame: pd.DataFrame,
    days: int,
    *,
    calendar: str = DEFAULT_CALENDAR,
    levels: tuple[float, ...] | None = None,
    progress: bool = False,
) -> Forecast:
    """The backtest run's recipe refit on the rows of ``frame`` up to its end and forecast ``days`` sessions ahead,
    with conformal bands from the backtest's ensemble errors, the seeds' spread and the random walk's."""
    config, errors, levels, coverage, unmeasured = _calibration(backtest, days, levels, one_model=False)
    data, folds = config.data, config.backtest
    prices = numeric_columns(frame, [data.target])[:, 0]
    volatility = _volatility(prices, data)
    dates, early = trading_days(frame.index[-1], days, calendar)
    changes = to_changes(frame, list(dict.fromkeys([*data.features, data.target])), folds.target_transform)
    latest = prepare_latest(changes if folds.expanding else changes.iloc[-folds.train_days :], data)
    seeds = [config.train.seed + s for s in range(folds.seeds)]
    train = dataclasses.replace(config.train, devices=None)
    models = fit_ensemble(config.model, latest.x_train, latest.y_train, train, seeds, progress=progress).models

    def to_prices(scaled: np.ndarray) -> np.ndarray:  # (1, H) scaled from the last window -> (days,) prices
        return from_changes(folds.target_transform, prices[-1:], latest.to_prices(scaled))[0, :days]

    window, horizon, strategy = latest.last_window, data.horizon, data.strategy
    members = np.stack([to_prices(forecast_scaled(model, window, horizon, strategy)) for model in models])
    draws = None
    if folds.mc_dropout is not None:  # every seed's draws, pooled: (seeds x draws, days)
        draws = np.array(
            [
                to_prices(draw)
                for model, seed in zip(models, seeds, strict=True)
                for draw in dropout_forecasts(model, window, horizon, strategy, folds.mc_dropout, jax.random.key(seed))
            ]
        )
    forecast = members.mean(axis=0)
    bands = _bands(forecast, members, prices[-1], volatility, levels, errors, draws)
    source = f"{config.model.arch} LSTM, {len(seeds)} seeds"
    history = pd.Series(prices, frame.index)
    return Forecast(dates, early, forecast, members, bands, coverage, history, source, unmeasured)


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
        )
    except OSError as error:
        raise RunError(f"{out}: cannot write the forecast ({error.strerror}); choose another --out") from None
