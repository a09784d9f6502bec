"""Forecasts beyond the data (the computation; reading a run to forecast from is :mod:`jaxlstm.runs.forecast`): the next
trading days on an exchange's calendar, with calibrated bands.

The point forecast comes from one of two places:

- a ``jaxlstm train`` run (one model): its window of the last ``window`` days, forecast ``days`` ahead (a direct
  model's first ``days`` outputs; a recursive model fed its own forecasts);
- a ``jaxlstm backtest`` run's recipe, refit: its S seeds trained, in one program, on the rows its folds trained on
  but ending with the data (the last ``train_days`` rows, or every row with ``expanding``), and their mean. This is
  the forecaster whose errors the backtest measured, fold by fold.

Its bands (:mod:`jaxlstm.forecasting.intervals`), at the levels the backtest measured:

- ``conformal``: split conformal, calibrated on every walk-forward error of the backtest at each step (its
  ensemble's errors for a refit; each of its seeds' errors for a single model), each in units of the random walk's
  spread at its origin, and drawn that many of today's spreads wide;
- ``ensemble``: the spread of the refit's seeds (refit only);
- ``MC dropout``: the refit's seeds forecasting with their dropout on (refit of a backtest with ``--mc-dropout``);
- ``random walk``: from the volatility of the last ``window`` daily log-returns, widening with the square root of
  the days ahead.

Next to each band stands the coverage the backtest measured for that method and level, pooled over its scored
folds and steps (:mod:`jaxlstm.forecasting.calibration`).
"""

import dataclasses
import warnings
from dataclasses import dataclass
from typing import NamedTuple

import jax
import numpy as np
import pandas as pd
from flax import nnx
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.config import DataConfig, RunConfig, Strategy
from jaxlstm.data import from_changes, numeric_columns, prepare_latest, to_changes
from jaxlstm.errors import ConfigError, DataError, plural
from jaxlstm.forecasting.calibration import MC_DROPOUT
from jaxlstm.forecasting.intervals import Conformal, Empirical, LogNormal, Normal, recent_volatility
from jaxlstm.forecasting.predict import dropout_forecasts, forecast_scaled
from jaxlstm.training import fit_ensemble

__all__ = [
    "DEFAULT_CALENDAR",
    "Forecast",
    "Measured",
    "bands",
    "check_days",
    "forecast_model",
    "forecast_strategy",
    "refit_and_forecast",
    "trading_days",
    "volatility",
]

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


class Measured(NamedTuple):
    """What a backtest measured that calibrates a forecast: its walk-forward errors, (n, days) per step (None
    without a backtest), the band levels, the coverage it measured per method and level, and why it measured none
    (or None)."""

    errors: np.ndarray | None
    levels: tuple[float, ...]
    coverage: dict[str, dict[float, float]]
    unmeasured: str | None


def forecast_strategy(data: DataConfig, days: int, what: str) -> Strategy:
    """How a model trained on ``data`` forecasts ``days`` ahead: its own strategy when that reaches them (a direct
    model's horizon covers them, or it is recursive), else fed its own forecasts (``recursive``) when it is a
    one-day model whose only feature is its target; ``what`` names the model in the error.

    >>> forecast_strategy(DataConfig(), 5, "the run")
    'recursive'

    Raises:
        ConfigError: ``days`` past a multi-day model's horizon, or a one-day model with features other than its
            target (they cannot be rolled forward: the error names them).
    """
    if data.strategy == "recursive" or days <= data.horizon:
        return data.strategy
    others = [name for name in data.features if name != data.target]
    if data.horizon == 1 and not others:
        return "recursive"
    if data.horizon == 1:
        raise ConfigError(
            f"--days {days}: {what} forecasts 1 day from {', '.join(data.features)}, and only its target "
            f"{data.target} can be fed its own forecasts ({', '.join(others)} cannot be rolled forward); pass --days "
            f"1, or train with --features {data.target}, or with --horizon {days}"
        )
    check_days(days, data.horizon, what, f"train with --horizon {days} or --strategy recursive")
    return data.strategy


def check_days(days: int, horizon: int, what: str, fix: str) -> None:
    """ConfigError unless ``days`` is within the ``horizon`` that ``what`` forecasts (``fix`` says how else)."""
    if days > horizon:
        raise ConfigError(
            f"--days {days}: {what} forecasts {plural(horizon, 'day')}; pass --days {horizon} or less, or {fix}"
        )


def bands(
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


def volatility(prices: np.ndarray, data: DataConfig) -> float:
    """The standard deviation of the last ``window`` daily log-returns of the target; DataError when they are not
    all defined."""
    spread = recent_volatility(prices, data.window)
    if not np.isfinite(spread):
        raise DataError(
            f"{data.target} is not positive on every one of the last {data.window + 1} days, so it has no "
            f"log-return volatility to draw bands by; forecast a price column"
        )
    return spread


def forecast_model(
    model: nnx.Module,
    window: np.ndarray,
    target_scaler: MinMaxScaler,
    frame: pd.DataFrame,
    data: DataConfig,
    days: int,
    measured: Measured,
    *,
    calendar: str = DEFAULT_CALENDAR,
    source: str = "model",
) -> Forecast:
    """One trained model's forecast of the ``days`` sessions after ``frame`` from its last scaled ``window``
    (1, window, features), with conformal bands from ``measured`` errors (when there are any) and the random
    walk's. A one-day model of its target alone is fed its own forecasts (:func:`forecast_strategy`)."""
    strategy = forecast_strategy(data, days, f"the model (trained with --horizon {data.horizon})")
    steps = data.horizon if strategy == "direct" else days  # a direct model's outputs; a fed-back model's days
    scaled = forecast_scaled(model, window, steps, strategy)[:, :days]
    forecast = target_scaler.inverse_transform(scaled.reshape(-1, 1))[:, 0]
    prices = numeric_columns(frame, [data.target])[:, 0]
    dates, early = trading_days(frame.index[-1], days, calendar)
    levels = measured.levels
    spread = volatility(prices, data)
    return Forecast(
        dates,
        early,
        forecast,
        forecast[None],
        bands(forecast, forecast[None], prices[-1], spread, levels, measured.errors),
        measured.coverage,
        pd.Series(prices, frame.index),
        source,
        measured.unmeasured,
    )


def refit_and_forecast(
    config: RunConfig,
    frame: pd.DataFrame,
    days: int,
    measured: Measured,
    *,
    calendar: str = DEFAULT_CALENDAR,
    progress: bool = False,
) -> Forecast:
    """A backtest's recipe (``config``) refit on the rows of ``frame`` up to its end, its seeds trained in one
    program, and their forecast of the ``days`` sessions after it: with conformal bands from the backtest's
    ``measured`` ensemble errors, the seeds' spread, MC dropout (with ``mc_dropout``) and the random walk's."""
    data, folds = config.data, config.backtest
    prices = numeric_columns(frame, [data.target])[:, 0]
    spread = volatility(prices, data)
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
    shown = bands(forecast, members, prices[-1], spread, measured.levels, measured.errors, draws)
    source = f"{config.model.arch} LSTM, {plural(len(seeds), 'seed')}"
    history = pd.Series(prices, frame.index)
    return Forecast(dates, early, forecast, members, shown, measured.coverage, history, source, measured.unmeasured)
