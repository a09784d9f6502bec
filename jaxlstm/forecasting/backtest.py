"""Walk-forward backtests: every fold and every seed trained at once, one compiled program per epoch.

Fold ``k`` has a cutoff, its first test day. Its model trains on the rows before the cutoff (a rolling window of
``train_days`` rows, or every earlier row with ``expanding``), its MinMax scalers fit on those rows only; then it
forecasts each of its ``test_days`` test days one step ahead, from the ``window`` actual rows before that day, scaled
with the fold's own scalers. So nothing after a cutoff reaches the fold's scalers, windows, targets or training
(``tests/test_backtest.py`` changes the prices after a day and checks that no forecast for that day or earlier moves).

The K x S models (S seeds per fold) train in one program (:func:`jaxlstm.training.fit_ensemble` with data of their
own): in expanding mode the folds have different numbers of training windows, padded to one shape with per-model
sample masks, and model (k, s) ends where :func:`jaxlstm.training.fit` of fold k with seed s alone ends.

>>> from jaxlstm.config import BacktestConfig, DataConfig
>>> from jaxlstm.data import load_frame
>>> data = DataConfig(window=10)
>>> folds = make_folds(load_frame(data), data, BacktestConfig(folds=3, test_days=5, train_days=40))
>>> [(fold.cutoff.date().isoformat(), len(fold.dataset.x_train), len(fold.dataset.x_test)) for fold in folds]
[('2013-02-08', 30, 5), ('2013-02-15', 30, 5), ('2013-02-25', 30, 5)]
"""

import dataclasses
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
import pandas as pd

from jaxlstm.config import BacktestConfig, DataConfig, ModelConfig, TargetTransform, TrainConfig, feature_names
from jaxlstm.data import (
    Dataset,
    from_changes,
    hash_array,
    numeric_columns,
    paths,
    prepare_as,
    to_changes,
    window_series,
    window_view,
)
from jaxlstm.errors import ConfigError, DataError, plural
from jaxlstm.forecasting.intervals import recent_volatility
from jaxlstm.forecasting.metrics import (
    diebold_mariano,
    directional_accuracy,
    mase,
    metrics,
    naive_scale,
    pesaran_timmermann,
    skill,
)
from jaxlstm.forecasting.predict import dropout_forecasts, forecast_scaled
from jaxlstm.training import TrainState, fit_ensemble

__all__ = ["Backtest", "Fold", "folds_digest", "make_folds", "run_backtest", "scores", "summarize", "verdict"]


@dataclass(frozen=True, eq=False)
class Fold:
    """One fold of a walk-forward backtest.

    Attributes:
        index: k, from 0.
        train_start: the first row it trains on.
        cutoff: its first test day; it trains on rows before it only.
        dataset: :func:`jaxlstm.data.prepare` of its rows, ``train_start`` to its last test day, split at the cutoff:
            scalers fit on the training rows, training windows, and one test window per test day. With a
            ``target_transform`` other than ``level``, its rows are the day-over-day changes
            (:func:`jaxlstm.data.to_changes`), so its targets are changes too.
        transform: the ``target_transform`` its models learn.
        train_prices: (training rows,) the target on its training rows, in price units (MASE's in-sample scale).
        actual: (test days,) the target on each test day, in price units.
        previous: (test days,) the target on the day before each test day, in price units (persistence).
        volatility: (test days,) the standard deviation of the target's last ``window`` daily log-returns before
            each test day (NaN for a target that is not always positive): the random walk's, which scales the
            prediction intervals (:mod:`jaxlstm.forecasting.calibration`).

    With a ``horizon`` H > 1 (``dataset.horizon``), the fold forecasts H days from each of its first
    ``test_days - H + 1`` test days (its origins), so that every day forecast is one of its test days.
    """

    index: int
    train_start: pd.Timestamp
    cutoff: pd.Timestamp
    dataset: Dataset
    transform: TargetTransform
    train_prices: np.ndarray
    actual: np.ndarray
    previous: np.ndarray
    volatility: np.ndarray

    def to_prices(self, scaled: np.ndarray) -> np.ndarray:
        """The fold's scaled forecasts (origins, H) of its target in price units (origins, H): a day's change
        forecasts add up (or compound) from the actual price before the origin."""
        return from_changes(self.transform, self.previous[: len(scaled)], self.dataset.to_prices(scaled))

    @property
    def actual_paths(self) -> np.ndarray:
        """(origins, H): the target on the H days forecast from each origin, in price units."""
        return paths(self.actual, self.dataset.horizon)

    @property
    def persistence_paths(self) -> np.ndarray:
        """(origins, H): persistence, the last actual price before each origin, on every day of its horizon."""
        origins = len(self.actual) - self.dataset.horizon + 1
        return np.repeat(self.previous[:origins, None], self.dataset.horizon, axis=1)

    @property
    def date_paths(self) -> np.ndarray:
        """(origins, H) datetime64: the day each forecast is for."""
        return paths(self.dataset.test_dates.to_numpy(), self.dataset.horizon)


def _source(frame: pd.DataFrame) -> str:
    return str(frame.attrs.get("source", "input frame"))


def _cutoffs(frame: pd.DataFrame, backtest: BacktestConfig) -> list[int]:
    """The row index of each fold's first test day."""
    n_rows, span = len(frame), backtest.folds * backtest.test_days
    if backtest.first_cutoff is None:
        first = n_rows - span
        if first < 1:
            raise DataError(
                f"{_source(frame)}: {plural(backtest.folds, 'fold')} of {plural(backtest.test_days, 'test day')} need "
                f"more than {plural(span, 'row')}, the data has {n_rows}; use fewer --folds or --test-days, or more "
                f"data"
            )
    else:
        day = pd.Timestamp(backtest.first_cutoff)  # a YYYY-MM-DD date: BacktestConfig checked it
        first = int(np.searchsorted(frame.index, day))
        last_day = frame.index[-1].date()
        if first + span > n_rows:
            raise DataError(
                f"{_source(frame)}: {plural(backtest.folds, 'fold')} of {plural(backtest.test_days, 'test day')} from "
                f"{backtest.first_cutoff} need {plural(span, 'row')} from there, but the data ends "
                f"{plural(n_rows - first, 'row')} later "
                f"({last_day}); use an earlier --first-cutoff, or fewer --folds or --test-days"
            )
    return [first + k * backtest.test_days for k in range(backtest.folds)]


def make_folds(frame: pd.DataFrame, data: DataConfig, backtest: BacktestConfig) -> list[Fold]:
    """The folds of ``backtest`` over the rows of ``frame`` (as :func:`jaxlstm.data.load_frame` returns them), with
    ``data``'s features, target and window (its ``split`` is replaced by each fold's cutoff).

    Raises:
        ConfigError: a ``horizon`` longer than the ``test_days``.
        DataError: the rows cannot hold the folds, or a fold's training rows cannot hold one window.
    """
    if data.horizon > backtest.test_days:
        raise ConfigError(
            f"--horizon {data.horizon} is longer than --test-days {backtest.test_days}: a fold forecasts its own test "
            f"days only; use --test-days {data.horizon} or more, or a shorter --horizon"
        )
    prices = numeric_columns(frame, [data.target])[:, 0]
    shift = backtest.target_transform != "level"  # a change drops the first row: row i of it is row i + 1 of prices
    frame = to_changes(
        frame, list(dict.fromkeys([*feature_names(data.features), data.target])), backtest.target_transform
    )
    folds = []
    for index, cutoff in enumerate(_cutoffs(frame, backtest)):
        start = 0 if backtest.expanding else cutoff - backtest.train_days
        day = frame.index[cutoff].date()
        if start < 0:
            raise DataError(
                f"{_source(frame)}: fold {index + 1} (first test day {day}) needs "
                f"{plural(backtest.train_days, 'training row')} before it, but the data has {cutoff}; use a shorter "
                f"--train-days, fewer --folds or --test-days, a later --first-cutoff, or --expanding"
            )
        if cutoff - start < data.window + data.outputs:
            needs = f"--window {data.window}" + (
                f" and --horizon {data.outputs} need" if data.outputs > 1 else " needs"
            )
            raise DataError(
                f"{_source(frame)}: fold {index + 1} (first test day {day}) trains on "
                f"{plural(cutoff - start, 'row')}, but {needs} at least {data.window + data.outputs}; use a longer "
                f"--train-days, a later --first-cutoff or a smaller --window"
            )
        end = cutoff + backtest.test_days
        dataset = prepare_as(frame.iloc[start:end], dataclasses.replace(data, split=cutoff - start))
        train_start = frame.index[start]
        start, cutoff, end = start + shift, cutoff + shift, end + shift  # rows of prices
        folds.append(
            Fold(
                index,
                train_start,
                dataset.test_dates[0],
                dataset,
                backtest.target_transform,
                train_prices=prices[start:cutoff],
                actual=prices[cutoff:end],
                previous=prices[cutoff - 1 : end - 1],
                volatility=np.array([recent_volatility(prices[:day], data.window) for day in range(cutoff, end)]),
            )
        )
    return folds


def folds_digest(folds: list[Fold]) -> str:
    """SHA-256 of every fold's windows, targets and test prices: ``backtest --resume`` checks that it trains and
    forecasts on the very same data."""
    hashed = hashlib.sha256()
    for fold in folds:
        for array in (fold.dataset.x_train, fold.dataset.y_train, fold.dataset.x_test, fold.actual, fold.previous):
            hash_array(hashed, array)
    return hashed.hexdigest()


@dataclass(frozen=True, eq=False)
class Backtest:
    """The forecasts of a walk-forward backtest, in price units.

    Attributes:
        folds: the folds, in order.
        seeds: the seeds of each fold's models.
        member_forecasts: (folds, seeds, origins, H), each model's forecasts of the H days from each origin (each
            test day, for H = 1) of its fold.
        losses: (epochs, folds, seeds), each model's training loss per epoch (scaled units).
        compile_seconds, train_seconds: where the time went (all models together).
        dropout_forecasts: (folds, seeds, samples, origins, H), each model's Monte Carlo dropout forecasts; None
            without ``dropout_samples``.
    """

    folds: list[Fold]
    seeds: tuple[int, ...]
    member_forecasts: np.ndarray
    losses: np.ndarray
    compile_seconds: float
    train_seconds: float
    dropout_forecasts: np.ndarray | None = None

    @property
    def horizon(self) -> int:
        """H, the days forecast from each origin."""
        return self.member_forecasts.shape[-1]

    @property
    def forecasts(self) -> np.ndarray:
        """(folds, origins, H): the ensemble's forecast, the mean over the fold's seeds."""
        return self.member_forecasts.mean(axis=1)

    @property
    def actual(self) -> np.ndarray:
        """(folds, origins, H): the target on each day forecast, in price units."""
        return np.stack([fold.actual_paths for fold in self.folds])

    @property
    def persistence(self) -> np.ndarray:
        """(folds, origins, H): the persistence forecast, the last actual price before each origin."""
        return np.stack([fold.persistence_paths for fold in self.folds])

    def table(self) -> pd.DataFrame:
        """One row per day forecast and forecaster (each seed, then the ensemble): Date, fold, member, actual,
        forecast, persistence, and the volatility at the forecast's origin (:attr:`Fold.volatility`); with a horizon
        H > 1, also ``step``, the days ahead (the row for day ``Date`` at step
        h was forecast from the data up to h days before it)."""
        rows = []
        for k, fold in enumerate(self.folds):
            members = [(f"seed {seed}", self.member_forecasts[k, s]) for s, seed in enumerate(self.seeds)]
            steps = np.broadcast_to(np.arange(1, self.horizon + 1), fold.actual_paths.shape).ravel()
            for member, forecast in [*members, ("ensemble", self.forecasts[k])]:
                columns = {
                    "Date": pd.DatetimeIndex(fold.date_paths.ravel()).strftime("%Y-%m-%d"),
                    "fold": k + 1,
                    "member": member,
                    **({"step": steps} if self.horizon > 1 else {}),
                    "actual": fold.actual_paths.ravel(),
                    "forecast": forecast.ravel(),
                    "persistence": fold.persistence_paths.ravel(),
                    "volatility": np.repeat(fold.volatility[: len(fold.actual_paths)], self.horizon),
                }
                rows.append(pd.DataFrame(columns))
        return pd.concat(rows, ignore_index=True)


def run_backtest(
    folds: list[Fold],
    model: ModelConfig,
    train: TrainConfig,
    seeds_per_fold: int,
    *,
    resume: TrainState | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[TrainState], Any] | None = None,
    progress: bool = False,
    dropout_samples: int | None = None,
) -> Backtest:
    """Trains ``seeds_per_fold`` models for each of ``folds`` (:func:`make_folds`) in one program and forecasts every
    fold's test days (and, with ``dropout_samples`` N, N more times each with the model's dropout on).

    Fold ``k``'s model with seed ``train.seed + s`` is :func:`jaxlstm.training.fit` of
    ``Forecaster(model, rngs=nnx.Rngs(train.seed + s))`` on the fold's training windows with that seed, trained
    alongside the others (the series of every fold padded to the longest, each model masked to its own windows): model
    ``k * seeds + s`` of :func:`jaxlstm.training.fit_ensemble`, whose checkpoint arguments these are.
    """
    seeds = tuple(train.seed + s for s in range(seeds_per_fold))
    if seeds[-1] >= 2**32:
        raise ConfigError(
            f"--seed {train.seed} with --seeds {seeds_per_fold} reaches seed {seeds[-1]}, past {2**32 - 1}; "
            f"use a smaller --seed"
        )
    sizes = [len(fold.dataset.x_train) for fold in folds]
    short = [k for k, size in enumerate(sizes) if size < min(train.batch_size, max(sizes))]
    if short:  # fit would shrink its batch to the fold's windows, which changes the dropout masks of deep stacks
        raise ConfigError(
            f"fold {short[0] + 1} has {sizes[short[0]]} training windows, fewer than --batch-size "
            f"{train.batch_size}, while other folds have more; trained together, every fold needs a full batch: "
            f"use --batch-size {sizes[short[0]]} or less, or more training rows"
        )
    _, window, n_features = folds[0].dataset.x_train.shape
    series = np.zeros((len(folds) * len(seeds), max(sizes) + window - 1, n_features), np.float32)
    y = np.zeros((len(series), max(sizes), *folds[0].dataset.y_train.shape[1:]), np.float32)
    for k, fold in enumerate(folds):
        members = slice(k * len(seeds), (k + 1) * len(seeds))
        series[members, : sizes[k] + window - 1] = window_series(fold.dataset.x_train)
        y[members, : sizes[k]] = fold.dataset.y_train
    ensemble = fit_ensemble(
        model,
        window_view(series, window),  # each model's windows, as views of its fold's series
        y,
        train,
        seeds * len(folds),
        n_valid=[size for size in sizes for _ in seeds],
        resume=resume,
        checkpoint_every=checkpoint_every,
        on_checkpoint=on_checkpoint,
        progress=progress,
    )
    forecasts = np.stack(
        [_forecast_prices(folds[m // len(seeds)], member) for m, member in enumerate(ensemble.models)]
    ).reshape(len(folds), len(seeds), *folds[0].actual_paths.shape)
    losses = ensemble.losses.reshape(len(ensemble.losses), len(folds), len(seeds))
    sampled = None
    if dropout_samples is not None:
        sampled = np.stack(
            [
                _dropout_prices(folds[m // len(seeds)], member, dropout_samples, seed=train.seed + m)
                for m, member in enumerate(ensemble.models)
            ]
        ).reshape(len(folds), len(seeds), dropout_samples, *folds[0].actual_paths.shape)
    return Backtest(folds, seeds, forecasts, losses, ensemble.compile_seconds, ensemble.train_seconds, sampled)


def _dropout_prices(fold: Fold, model: Any, samples: int, seed: int) -> np.ndarray:
    """(samples, origins, H): ``model``'s Monte Carlo dropout forecasts from each of ``fold``'s origins, in price
    units, the masks drawn from ``seed``."""
    dataset = fold.dataset
    draws = dropout_forecasts(model, dataset.x_test, dataset.horizon, dataset.strategy, samples, jax.random.key(seed))
    return np.stack([fold.to_prices(draw) for draw in draws])


def _forecast_prices(fold: Fold, model: Any) -> np.ndarray:
    """(origins, H): ``model``'s forecasts from each of ``fold``'s origins, in price units."""
    dataset = fold.dataset
    return fold.to_prices(forecast_scaled(model, dataset.x_test, dataset.horizon, dataset.strategy))


# --- statistics -------------------------------------------------------------------------------------------------

SIGNIFICANCE = 0.05
"""The level at which the verdict calls a difference from persistence significant."""


def scores(
    actual: np.ndarray, forecast: np.ndarray, persistence: np.ndarray, scale: np.ndarray | float, horizon: int = 1
) -> dict:
    """Every statistic of a forecast against persistence on the same days (each array (n,), in price units;
    ``scale``, MASE's in-sample naive MAE of the series the forecaster was fit on, one for all days or one per day):
    MSE, MAE, RMSE, MAPE of both, skill, MASE, directional accuracy and the Pesaran-Timmermann test, and the
    Diebold-Mariano test (HLN) for squared and absolute loss, for forecasts ``horizon`` days ahead (made on
    consecutive days, so that their errors overlap)."""
    ours, theirs = metrics(actual, forecast), metrics(actual, persistence)
    actual_change, called_change = actual - persistence, forecast - persistence
    return {
        **ours.to_dict(),
        "persistence": theirs.to_dict(),
        "skill": skill(actual, forecast, persistence),
        "mase": mase(actual, forecast, scale),
        "persistence_mase": mase(actual, persistence, scale),
        "directional_accuracy": directional_accuracy(actual_change, called_change),
        "pesaran_timmermann": pesaran_timmermann(actual_change, called_change)._asdict(),
        "diebold_mariano": {
            loss: diebold_mariano(actual, forecast, persistence, loss=loss, horizon=horizon)._asdict()
            for loss in ("squared", "absolute")
        },
    }


def _with_members(
    actual: np.ndarray, ensemble: np.ndarray, members: dict, persistence: np.ndarray, scale, horizon: int
) -> dict:
    """:func:`scores` of the ensemble and of each member (seed -> forecasts), and the members' spread."""
    member_scores = {seed: scores(actual, forecast, persistence, scale, horizon) for seed, forecast in members.items()}
    return {
        "ensemble": scores(actual, ensemble, persistence, scale, horizon),
        "members": member_scores,
        "member_range": {
            name: [min(m[name] for m in member_scores.values()), max(m[name] for m in member_scores.values())]
            for name in ("rmse", "mae", "skill", "mase", "directional_accuracy")
        },
    }


def _step_summary(result: Backtest, step: int) -> dict:
    """The statistics of the forecasts ``step + 1`` days ahead, per fold and pooled."""
    actual, persistence = result.actual[..., step], result.persistence[..., step]  # (folds, origins)
    forecasts, member_forecasts = result.forecasts[..., step], result.member_forecasts[..., step]
    seeds, horizon = list(map(str, result.seeds)), step + 1
    folds = []
    for k, fold in enumerate(result.folds):
        members = dict(zip(seeds, member_forecasts[k], strict=True))
        scale = naive_scale(fold.train_prices)
        folds.append(
            {
                "fold": k + 1,
                "train_start": str(fold.train_start.date()),
                "cutoff": str(fold.cutoff.date()),
                "test_end": str(pd.Timestamp(fold.date_paths[-1, step]).date()),
                "train_windows": len(fold.dataset.x_train),
                **_with_members(actual[k], forecasts[k], members, persistence[k], scale, horizon),
            }
        )
    scales = np.repeat([naive_scale(fold.train_prices) for fold in result.folds], actual.shape[1])  # each its fold's
    members = {seed: member_forecasts[:, s].ravel() for s, seed in enumerate(seeds)}
    pooled = _with_members(actual.ravel(), forecasts.ravel(), members, persistence.ravel(), scales, horizon)
    return {"folds": folds, "pooled": pooled}


def summarize(result: Backtest) -> dict:
    """The statistics of a backtest, per fold and pooled over every test day (the folds do not overlap): the
    :func:`scores` of the ensemble and of each seed's model, and the range of the seeds' RMSE, MAE, skill, MASE and
    directional accuracy.

    With a horizon H > 1, ``folds`` and ``pooled`` are those of the forecasts H days ahead, and ``steps`` holds the
    pooled statistics of every step h = 1 .. H.
    """
    steps = [_step_summary(result, step) for step in range(result.horizon)]
    summary = {
        "target_transform": result.folds[0].transform,
        "horizon": result.horizon,
        "strategy": result.folds[0].dataset.strategy,
        **steps[-1],
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "models": len(result.folds) * len(result.seeds),
    }
    if result.horizon > 1:
        summary["steps"] = [{"step": h + 1, "pooled": step["pooled"]} for h, step in enumerate(steps)]
    return {**summary, "verdict": verdict(summary["pooled"]["ensemble"], result.horizon)}


def verdict(pooled: dict, horizon: int = 1) -> str:
    """One line a person can act on: the ensemble's RMSE against persistence's (``horizon`` days ahead, when more
    than one), better or worse, and whether the Diebold-Mariano test (squared loss) calls the difference significant
    at :data:`SIGNIFICANCE`."""
    ours, theirs = pooled["rmse"], pooled["persistence"]["rmse"]
    p_value = pooled["diebold_mariano"]["squared"]["p_value"]
    word = "better" if ours < theirs else "worse" if ours > theirs else "no different"
    ahead = f"{horizon} days ahead, " if horizon > 1 else ""
    if math.isnan(p_value):
        return f"{ahead}ensemble RMSE {ours:.4g} vs persistence {theirs:.4g}: {word} (Diebold-Mariano undefined)"
    if p_value >= SIGNIFICANCE and word != "no different":
        word += ", not significantly"
    return f"{ahead}ensemble RMSE {ours:.4g} vs persistence {theirs:.4g}: {word} (Diebold-Mariano p = {p_value:.2g})"
