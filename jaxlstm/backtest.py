"""Walk-forward backtests: every fold and every seed trained at once, one compiled program per epoch.

Fold ``k`` has a cutoff, its first test day. Its model trains on the rows before the cutoff (a rolling window of
``train_days`` rows, or every earlier row with ``expanding``), its MinMax scalers fit on those rows only; then it
forecasts each of its ``test_days`` test days one step ahead, from the ``window`` actual rows before that day, scaled
with the fold's own scalers. So nothing after a cutoff reaches the fold's scalers, windows, targets or training
(``tests/test_backtest.py`` changes the prices after a day and checks that no forecast for that day or earlier moves).

The K x S models (S seeds per fold) train in one program (:func:`jaxlstm.ensemble.fit_ensemble` with data of their
own): in expanding mode the folds have different numbers of training windows, padded to one shape with per-model
sample masks, and model (k, s) ends where :func:`jaxlstm.train.fit` of fold k with seed s alone ends.

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

import numpy as np
import pandas as pd

from jaxlstm.config import BacktestConfig, DataConfig, ModelConfig, TargetTransform, TrainConfig, feature_names
from jaxlstm.data import Dataset, from_changes, numeric_columns, prepare_as, to_changes
from jaxlstm.ensemble import fit_ensemble
from jaxlstm.errors import ConfigError, DataError
from jaxlstm.evaluate import (
    diebold_mariano,
    directional_accuracy,
    mase,
    metrics,
    naive_scale,
    pesaran_timmermann,
    predict_scaled,
    skill,
)
from jaxlstm.train import TrainState

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
    """

    index: int
    train_start: pd.Timestamp
    cutoff: pd.Timestamp
    dataset: Dataset
    transform: TargetTransform
    train_prices: np.ndarray
    actual: np.ndarray
    previous: np.ndarray

    def to_prices(self, scaled: np.ndarray) -> np.ndarray:
        """The fold's scaled forecasts (test days,) of its target in price units (test days,)."""
        return from_changes(self.transform, self.previous, self.dataset.to_prices(scaled))


def _source(frame: pd.DataFrame) -> str:
    return str(frame.attrs.get("source", "input frame"))


def _cutoffs(frame: pd.DataFrame, backtest: BacktestConfig) -> list[int]:
    """The row index of each fold's first test day."""
    n_rows, span = len(frame), backtest.folds * backtest.test_days
    if backtest.first_cutoff is None:
        first = n_rows - span
        if first < 1:
            raise DataError(
                f"{_source(frame)}: {backtest.folds} folds of {backtest.test_days} test days need more than {span} "
                f"rows, the data has {n_rows}; use fewer --folds or --test-days, or more data"
            )
    else:
        day = pd.Timestamp(backtest.first_cutoff)  # a YYYY-MM-DD date: BacktestConfig checked it
        first = int(np.searchsorted(frame.index, day))
        last_day = frame.index[-1].date()
        if first + span > n_rows:
            raise DataError(
                f"{_source(frame)}: {backtest.folds} folds of {backtest.test_days} test days from "
                f"{backtest.first_cutoff} need {span} rows from there, but the data ends {n_rows - first} rows later "
                f"({last_day}); use an earlier --first-cutoff, or fewer --folds or --test-days"
            )
    return [first + k * backtest.test_days for k in range(backtest.folds)]


def make_folds(frame: pd.DataFrame, data: DataConfig, backtest: BacktestConfig) -> list[Fold]:
    """The folds of ``backtest`` over the rows of ``frame`` (as :func:`jaxlstm.data.load_frame` returns them), with
    ``data``'s features, target and window (its ``split`` is replaced by each fold's cutoff).

    Raises:
        DataError: the rows cannot hold the folds, or a fold's training rows cannot hold one window.
    """
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
                f"{_source(frame)}: fold {index + 1} (first test day {day}) needs {backtest.train_days} training rows "
                f"before it, but the data has {cutoff}; use a shorter --train-days, fewer --folds or --test-days, "
                f"a later --first-cutoff, or --expanding"
            )
        if cutoff - start < data.window + 1:
            raise DataError(
                f"{_source(frame)}: fold {index + 1} (first test day {day}) trains on {cutoff - start} rows, but "
                f"--window {data.window} needs at least {data.window + 1}; use a longer --train-days, a later "
                f"--first-cutoff or a smaller --window"
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
            )
        )
    return folds


def folds_digest(folds: list[Fold]) -> str:
    """SHA-256 of every fold's windows, targets and test prices: ``backtest --resume`` checks that it trains and
    forecasts on the very same data."""
    hashed = hashlib.sha256()
    for fold in folds:
        for array in (fold.dataset.x_train, fold.dataset.y_train, fold.dataset.x_test, fold.actual, fold.previous):
            hashed.update(np.ascontiguousarray(array).tobytes())
    return hashed.hexdigest()


@dataclass(frozen=True, eq=False)
class Backtest:
    """The forecasts of a walk-forward backtest, in price units.

    Attributes:
        folds: the folds, in order.
        seeds: the seeds of each fold's models.
        member_forecasts: (folds, seeds, test_days), each model's one-step forecasts of its fold's test days.
        losses: (epochs, folds, seeds), each model's training loss per epoch (scaled units).
        compile_seconds, train_seconds: where the time went (all models together).
    """

    folds: list[Fold]
    seeds: tuple[int, ...]
    member_forecasts: np.ndarray
    losses: np.ndarray
    compile_seconds: float
    train_seconds: float

    @property
    def forecasts(self) -> np.ndarray:
        """(folds, test_days): the ensemble's forecast, the mean over the fold's seeds."""
        return self.member_forecasts.mean(axis=1)

    @property
    def actual(self) -> np.ndarray:
        """(folds, test_days): the target on each test day, in price units."""
        return np.stack([fold.actual for fold in self.folds])

    @property
    def persistence(self) -> np.ndarray:
        """(folds, test_days): the persistence forecast, the target on the day before each test day."""
        return np.stack([fold.previous for fold in self.folds])

    def table(self) -> pd.DataFrame:
        """One row per test day and forecaster (each seed, then the ensemble): Date, fold, member, actual,
        forecast, persistence."""
        rows = []
        for k, fold in enumerate(self.folds):
            members = [(f"seed {seed}", self.member_forecasts[k, s]) for s, seed in enumerate(self.seeds)]
            for member, forecast in [*members, ("ensemble", self.forecasts[k])]:
                rows.append(
                    pd.DataFrame(
                        {
                            "Date": fold.dataset.test_dates.strftime("%Y-%m-%d"),
                            "fold": k + 1,
                            "member": member,
                            "actual": fold.actual,
                            "forecast": forecast,
                            "persistence": fold.previous,
                        }
                    )
                )
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
) -> Backtest:
    """Trains ``seeds_per_fold`` models for each of ``folds`` (:func:`make_folds`) in one program and forecasts every
    fold's test days.

    Fold ``k``'s model with seed ``train.seed + s`` is :func:`jaxlstm.train.fit` of
    ``Forecaster(model, rngs=nnx.Rngs(train.seed + s))`` on the fold's training windows with that seed, trained
    alongside the others (the windows of every fold padded to the longest, each model masked to its own): model
    ``k * seeds + s`` of :func:`jaxlstm.ensemble.fit_ensemble`, whose checkpoint arguments these are.
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
    x = np.zeros((len(folds) * len(seeds), max(sizes), *folds[0].dataset.x_train.shape[1:]), np.float32)
    y = np.zeros(x.shape[:2], np.float32)
    for k, fold in enumerate(folds):
        members = slice(k * len(seeds), (k + 1) * len(seeds))
        x[members, : sizes[k]] = fold.dataset.x_train
        y[members, : sizes[k]] = fold.dataset.y_train
    ensemble = fit_ensemble(
        model,
        x,
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
        [
            folds[m // len(seeds)].to_prices(predict_scaled(member, folds[m // len(seeds)].dataset.x_test))
            for m, member in enumerate(ensemble.models)
        ]
    ).reshape(len(folds), len(seeds), -1)
    losses = ensemble.losses.reshape(len(ensemble.losses), len(folds), len(seeds))
    return Backtest(folds, seeds, forecasts, losses, ensemble.compile_seconds, ensemble.train_seconds)


# --- statistics -------------------------------------------------------------------------------------------------

SIGNIFICANCE = 0.05
"""The level at which the verdict calls a difference from persistence significant."""


def scores(actual: np.ndarray, forecast: np.ndarray, persistence: np.ndarray, scale: np.ndarray | float) -> dict:
    """Every statistic of a forecast against persistence on the same days (each array (n,), in price units;
    ``scale``, MASE's in-sample naive MAE of the series the forecaster was fit on, one for all days or one per day):
    MSE, MAE, RMSE, MAPE of both, skill, MASE, directional accuracy and the Pesaran-Timmermann test, and the
    Diebold-Mariano test (HLN) for squared and absolute loss."""
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
            loss: diebold_mariano(actual, forecast, persistence, loss=loss)._asdict()
            for loss in ("squared", "absolute")
        },
    }


def _with_members(actual: np.ndarray, ensemble: np.ndarray, members: dict, persistence: np.ndarray, scale) -> dict:
    """:func:`scores` of the ensemble and of each member (seed -> forecasts), and the members' spread."""
    member_scores = {seed: scores(actual, forecast, persistence, scale) for seed, forecast in members.items()}
    return {
        "ensemble": scores(actual, ensemble, persistence, scale),
        "members": member_scores,
        "member_range": {
            name: [min(m[name] for m in member_scores.values()), max(m[name] for m in member_scores.values())]
            for name in ("rmse", "mae", "skill", "mase", "directional_accuracy")
        },
    }


def summarize(result: Backtest) -> dict:
    """The statistics of a backtest, per fold and pooled over every test day (the folds do not overlap): the
    :func:`scores` of the ensemble and of each seed's model, and the range of the seeds' RMSE, MAE, skill, MASE and
    directional accuracy."""
    actual, persistence, forecasts = result.actual, result.persistence, result.forecasts
    seeds = list(map(str, result.seeds))
    folds = []
    for k, fold in enumerate(result.folds):
        members = dict(zip(seeds, result.member_forecasts[k], strict=True))
        folds.append(
            {
                "fold": k + 1,
                "train_start": str(fold.train_start.date()),
                "cutoff": str(fold.cutoff.date()),
                "test_end": str(fold.dataset.test_dates[-1].date()),
                "train_windows": len(fold.dataset.x_train),
                **_with_members(actual[k], forecasts[k], members, persistence[k], naive_scale(fold.train_prices)),
            }
        )
    days = actual.shape[1]
    scales = np.repeat([naive_scale(fold.train_prices) for fold in result.folds], days)  # each day, its fold's
    members = {seed: result.member_forecasts[:, s].ravel() for s, seed in enumerate(seeds)}
    pooled = _with_members(actual.ravel(), forecasts.ravel(), members, persistence.ravel(), scales)
    summary = {
        "target_transform": result.folds[0].transform,
        "folds": folds,
        "pooled": pooled,
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "models": len(result.folds) * len(result.seeds),
    }
    return {**summary, "verdict": verdict(pooled["ensemble"])}


def verdict(pooled: dict) -> str:
    """One line a person can act on: the ensemble's RMSE against persistence's, better or worse, and whether the
    Diebold-Mariano test (squared loss) calls the difference significant at :data:`SIGNIFICANCE`."""
    ours, theirs = pooled["rmse"], pooled["persistence"]["rmse"]
    p_value = pooled["diebold_mariano"]["squared"]["p_value"]
    word = "better" if ours < theirs else "worse" if ours > theirs else "no different"
    if math.isnan(p_value):
        return f"ensemble RMSE {ours:.4g} vs persistence {theirs:.4g}: {word} (Diebold-Mariano undefined)"
    if p_value >= SIGNIFICANCE and word != "no different":
        word += ", not significantly"
    return f"ensemble RMSE {ours:.4g} vs persistence {theirs:.4g}: {word} (Diebold-Mariano p = {p_value:.2g})"
