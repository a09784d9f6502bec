"""A train run: trained into its directory (:func:`train_run`, :func:`resume_train_run`), its weights, scalers,
report and figures written (``config.json`` last), and read back as a :class:`Run` to predict, forecast or trace
with.

Everything is checked before anything is written: the destination, the data, and the memory the model needs.
Training then holds the run directory's lock, writes checkpoints into ``OUT/checkpoints``
(:mod:`jaxlstm.runs.lifecycle`), and ends with the final files.
"""

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import pandas as pd
from flax import nnx, serialization
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.config import RunConfig
from jaxlstm.data import Dataset, load_dataset, prediction_windows, record
from jaxlstm.errors import RunError
from jaxlstm.fileio import write_atomic
from jaxlstm.forecasting import Evaluation, evaluate
from jaxlstm.nn import Forecaster, count_parameters
from jaxlstm.runs.directory import CONFIG_FILE, PARAMS_FILE, SCALERS_FILE, read_config, read_file, write_json
from jaxlstm.runs.lifecycle import RunDirectory
from jaxlstm.runs.plots import plot_loss, plot_predictions
from jaxlstm.training import History, TrainState, check_memory, fit, training_devices

__all__ = [
    "Run",
    "TrainedRun",
    "load_run",
    "resume_train_run",
    "save_model",
    "save_run",
    "save_trained_run",
    "scalers_of",
    "train_run",
]


def scalers_of(dataset: Dataset) -> dict[str, dict[str, list[float]]]:
    """The ``scalers.json`` content of a run trained on ``dataset``: the fitted MinMax ranges."""
    return {"features": _scaler_to_dict(dataset.feature_scaler), "target": _scaler_to_dict(dataset.target_scaler)}


def _scaler_to_dict(scaler: MinMaxScaler) -> dict[str, list[float]]:
    return {"data_min": scaler.data_min_.tolist(), "data_max": scaler.data_max_.tolist()}


def _scaler_from_dict(content: dict[str, list[float]]) -> MinMaxScaler:
    """Refits a ``MinMaxScaler`` that maps exactly as the saved one did."""
    return MinMaxScaler().fit(np.array([content["data_min"], content["data_max"]], np.float64))


def save_model(directory: Path, model: nnx.Module) -> None:
    """Writes the weights to ``directory/params.msgpack``, atomically."""
    pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    write_atomic(directory / PARAMS_FILE, serialization.msgpack_serialize(pure))


def save_run(
    out: Path,
    config: RunConfig,
    model: nnx.Module,
    scalers: dict[str, Any],
    write_more: Callable[[Path], None] | None = None,
) -> None:
    """Writes a run into the existing directory ``out``: the weights, the scalers, whatever ``write_more(out)``
    writes (each file atomically), and ``config.json`` last. RunError when the disk refuses."""
    try:
        save_model(out, model)
        write_json(out / SCALERS_FILE, scalers)
        if write_more is not None:
            write_more(out)
        write_json(out / CONFIG_FILE, config.to_dict())
    except OSError as error:
        raise RunError(
            f"{out}: cannot write the run ({error.strerror}); free disk space or choose another --out"
        ) from None


def save_trained_run(
    out: Path, config: RunConfig, model: Forecaster, dataset: Dataset, history: History, evaluation: Evaluation
) -> None:
    """:func:`save_run` with the training report: ``metrics.json`` (model and naive metrics, per step of the horizon
    too, loss per epoch, timings), ``predictions.csv`` (the test days; for a horizon H > 1, one row per day and step)
    and the loss and prediction figures (for H > 1, the forecasts H days ahead)."""
    arch, horizon = config.model.arch, dataset.horizon

    def write_report(directory: Path) -> None:
        steps = [
            {"step": h + 1, "model": model.to_dict(), "naive": naive.to_dict()}
            for h, (model, naive) in enumerate(evaluation.steps)
        ]
        write_json(
            directory / "metrics.json",
            {
                "model": evaluation.model.to_dict(),
                "naive": evaluation.naive.to_dict(),
                "horizon": horizon,
                "strategy": dataset.strategy,
                **({"steps": steps} if steps else {}),
                "parameters": count_parameters(model),
                "train_windows": len(dataset.x_train),
                "test_windows": len(dataset.x_test),
                "test_start": str(dataset.test_dates[0].date()),
                "test_end": str(dataset.test_dates[-1].date()),
                "compile_seconds": history.compile_seconds,
                "train_seconds": history.train_seconds,
                "devices": history.devices,
                "best_epoch": history.best_epoch,
                "loss": history.loss,
                "val_loss": history.val_loss,
            },
        )
        write_atomic(
            directory / "predictions.csv", _predictions_table(dataset, evaluation).to_csv(index=False).encode()
        )
        plot_loss(history, directory / "loss.png", title=f"{arch} LSTM: training loss")
        last = slice(horizon - 1, None)
        plot_predictions(
            dataset.test_dates[last],
            dataset.test_prices[last],
            evaluation.predictions if horizon == 1 else evaluation.predictions[:, -1],
            directory / "predictions.png",
            naive=dataset.previous_prices[: len(dataset.x_test)],
            title=f"{config.data.path.stem} {dataset.target}: {arch} LSTM on test days"
            + (f", {horizon} days ahead" if horizon > 1 else ""),
            ylabel=f"{dataset.target} price",
            naive_label="naive (yesterday's value)" if horizon == 1 else f"naive (the value {horizon} days before)",
        )

    save_run(out, config, model, scalers_of(dataset), write_report)


def _predictions_table(dataset: Dataset, evaluation: Evaluation) -> pd.DataFrame:
    """``predictions.csv``: Date, the target, predicted, naive; for a horizon H > 1, also ``step``, one row per test
    day and step h (the forecast made h days before, with the naive value that day, the last known one)."""
    if dataset.horizon == 1:
        return pd.DataFrame(
            {
                "Date": dataset.test_dates.strftime("%Y-%m-%d"),
                dataset.target: dataset.test_prices,
                "predicted": evaluation.predictions,
                "naive": dataset.previous_prices,
            }
        )
    origins, steps = np.indices(evaluation.predictions.shape)
    days = (origins + steps).ravel()
    return pd.DataFrame(
        {
            "Date": dataset.test_dates[days].strftime("%Y-%m-%d"),
            "step": steps.ravel() + 1,
            dataset.target: dataset.test_prices[days],
            "predicted": evaluation.predictions.ravel(),
            "naive": dataset.previous_prices[origins.ravel()],
        }
    )


@dataclass(frozen=True)
class Run:
    """A reloaded run: its model with trained weights, its scalers, and its configuration."""

    model: Forecaster
    feature_scaler: MinMaxScaler
    target_scaler: MinMaxScaler
    config: RunConfig

    def windows(self, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex]:
        """Every window of ``frame`` that the model reads, scaled as in training, and the date each forecasts
        (see :func:`jaxlstm.data.prediction_windows`)."""
        data = self.config.data
        return prediction_windows(
            frame, features=data.features, target=data.target, window=data.window, feature_scaler=self.feature_scaler
        )


def load_run(directory: Path) -> Run:
    """Reloads a run directory written by ``jaxlstm train`` or ``jaxlstm convert``; RunError naming what is missing
    or mismatched."""
    config = read_config(directory)
    if config.backtest is not None:
        raise RunError(f"{directory} is a backtest run: it holds no model to load; see its report.md")
    if config.model.outputs != config.data.outputs:
        raise RunError(
            f"{directory}/{CONFIG_FILE}: its model forecasts {config.model.outputs} day(s) at once but its data "
            f"settings need {config.data.outputs}; convert or train the run again"
        )
    scalers = read_file(directory, SCALERS_FILE, json.loads)
    weights = read_file(directory, PARAMS_FILE, serialization.msgpack_restore)
    try:
        feature_scaler = _scaler_from_dict(scalers["features"])
        target_scaler = _scaler_from_dict(scalers["target"])
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(f"{directory}/{SCALERS_FILE} lacks or garbles {error}; train the run again") from None
    model = Forecaster(config.model, rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    expected = jax.tree.map(np.shape, nnx.to_pure_dict(state))
    try:
        nnx.replace_by_pure_dict(state, weights)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise RunError(
            f"{directory}/{PARAMS_FILE} does not match the model in its {CONFIG_FILE} ({error}); "
            f"the files come from different runs, train it again"
        ) from None
    if jax.tree.map(np.shape, nnx.to_pure_dict(state)) != expected:
        raise RunError(
            f"{directory}/{PARAMS_FILE} holds weights of other shapes than its {CONFIG_FILE} describes; "
            f"the files come from different runs, train it again"
        )
    nnx.update(model, state)
    return Run(model=model, feature_scaler=feature_scaler, target_scaler=target_scaler, config=config)


class TrainedRun(NamedTuple):
    """What :func:`train_run` wrote: the directory, the configuration it recorded, the loss history and the test
    metrics beside the naive baseline."""

    out: Path
    config: RunConfig
    history: History
    evaluation: Evaluation


def train_run(
    out: Path, config: RunConfig, *, overwrite: bool = False, progress: bool = True, checkpoint_every: int = 10
) -> TrainedRun | None:
    """Trains ``config``'s model on its data into the new run directory ``out`` and writes the run; None on a
    process that does not write (one of several, not process 0).

    The run records its data as read (absolute path, first and last dates, SHA-256 of the training windows) and
    the device count its batches were split over, so that ``--resume`` continues on the very same data and split.

    Raises:
        RunError: ``out`` cannot be written (checked before the data is read), or the disk refuses.
        DataError, ConfigError: the data or the settings; ConfigError also when the model cannot fit in memory.
        TrainingError: the loss or the weights stopped being finite (naming the last good checkpoint).
    """
    directory = RunDirectory.create(out, "train", overwrite=overwrite)
    frame, dataset = load_dataset(config.data)
    devices = training_devices(config.train, len(dataset.x_train))
    train = dataclasses.replace(config.train, devices=len(devices))
    check_memory(config.model, train, len(dataset.x_train), config.data.window)
    config = RunConfig(record(config.data, frame, dataset), config.model, train)
    model = Forecaster(config.model, rngs=nnx.Rngs(train.seed))
    return _train(directory, config, dataset, model, scalers_of(dataset), None, progress, checkpoint_every)


def resume_train_run(out: Path, *, progress: bool = True, checkpoint_every: int = 10) -> TrainedRun | None:
    """Finishes the interrupted train run in ``out`` from its newest intact checkpoint, with the settings saved in
    it (on CPU, bit for bit the run it would have been); None on a process that does not write.

    Raises:
        RunError: ``out`` holds no interrupted train run, or its CSV changed since the run started.
    """
    directory, config = RunDirectory.reopen(out, "train")
    checkpoint = directory.checkpoint
    if "scalers" not in checkpoint.meta:
        raise RunError(f"{checkpoint.path}: its saved settings lack the scalers; start a new run")
    frame, dataset = load_dataset(config.data)
    if (
        record(config.data, frame, dataset).sha256 != config.data.sha256
        or scalers_of(dataset) != checkpoint.meta["scalers"]
    ):
        raise RunError(
            f"{config.data.path} changed since the run started (its training windows from {config.data.start} differ); "
            f"restore the file, or start a new run"
        )
    model = Forecaster(config.model, rngs=nnx.Rngs(config.train.seed))
    resume = checkpoint.train_state(model, config.train)
    return _train(directory, config, dataset, model, checkpoint.meta["scalers"], resume, progress, checkpoint_every)


def _train(
    directory: RunDirectory,
    config: RunConfig,
    dataset: Dataset,
    model: Forecaster,
    scalers: dict[str, Any],
    resume: TrainState | None,
    progress: bool,
    checkpoint_every: int,
) -> TrainedRun | None:
    """Trains with checkpoints, evaluates on the test days and writes the run."""
    with directory.session({"config": config.to_dict(), "scalers": scalers}) as on_checkpoint:
        history = fit(
            model,
            dataset.x_train,
            dataset.y_train,
            config.train,
            progress=progress and directory.writes,
            resume=resume,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
        )
        if not directory.writes:
            return None
        evaluation = evaluate(model, dataset)
        save_trained_run(directory.path, config, model, dataset, history, evaluation)
    return TrainedRun(directory.path, config, history, evaluation)
