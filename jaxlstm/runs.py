"""Run directories: a trained model with everything needed to reload it and predict, or to resume its training.

A complete run directory holds ``config.json`` (the :class:`~jaxlstm.config.RunConfig`), ``params.msgpack`` (the
weights, Flax msgpack), ``scalers.json`` (the MinMax scalers fit on the training rows), and for a trained run
``metrics.json``, ``predictions.csv``, the PNG plots and ``checkpoints/`` (the newest training checkpoints, see
:mod:`jaxlstm.checkpoint`).

While ``jaxlstm train`` runs, the directory holds only ``checkpoints/`` and the lock of
:class:`~jaxlstm.fileio.RunLock`; a run that fails on bad input, or before its first checkpoint, leaves nothing.
When training ends, each final file lands atomically (:mod:`jaxlstm.fileio`), ``config.json`` last: **a run is
complete exactly when its config.json exists**, and every file in it is whole. A directory with checkpoints but no
``config.json`` is an interrupted run that ``jaxlstm train --resume`` finishes.
"""

import io
import json
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
import pandas as pd
from flax import nnx, serialization
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.backtest import Backtest, make_folds
from jaxlstm.calibration import Calibration
from jaxlstm.config import RunConfig
from jaxlstm.data import Dataset, load_frame, prediction_windows
from jaxlstm.errors import RunError
from jaxlstm.evaluate import Evaluation
from jaxlstm.fileio import RunLock, atomic_path, fsync_directory, write_atomic
from jaxlstm.models import Forecaster, count_parameters
from jaxlstm.plots import plot_backtest, plot_coverage, plot_fold_skill, plot_loss, plot_pit, plot_predictions
from jaxlstm.train import History

__all__ = [
    "BACKTEST_CHECKPOINTS_DIR",
    "BACKTEST_FILES",
    "CALIBRATION_FILES",
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "DROPOUT_FILE",
    "FORECAST_DIR",
    "PARAMS_FILE",
    "RUN_FILES",
    "SCALERS_FILE",
    "Run",
    "check_destination",
    "checkpoints_dir",
    "clear_run",
    "interrupted_command",
    "load_backtest",
    "load_run",
    "read_backtest",
    "read_config",
    "run_state",
    "save_backtest",
    "save_model",
    "save_run",
    "save_trained_run",
    "scalers_of",
]

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
SCALERS_FILE = "scalers.json"
CHECKPOINTS_DIR = "checkpoints"
BACKTEST_CHECKPOINTS_DIR = "backtest-checkpoints"
"""Where ``jaxlstm backtest`` keeps its checkpoints (all models of all folds in each file): a name of its own, so
that an interrupted run says which command finishes it."""
RUN_FILES = (
    PARAMS_FILE,
    SCALERS_FILE,
    "metrics.json",
    "predictions.csv",
    "loss.png",
    "predictions.png",
    CONFIG_FILE,  # last: its presence marks the run complete
)
"""The files of a complete trained run, in the order they land; ``config.json`` comes last."""
BACKTEST_FILES = ("metrics.json", "predictions.csv", "report.md", "backtest.png", "skill.png", CONFIG_FILE)
"""The files of a complete backtest run (``jaxlstm backtest``), ``config.json`` last."""
DROPOUT_FILE = "dropout-forecasts.npy"
"""A backtest's Monte Carlo dropout draws (``--mc-dropout``), (folds, seeds, samples, origins, H) float64."""
CALIBRATION_FILES = ("intervals.csv", "pit.png", "coverage.png", DROPOUT_FILE)
"""The files a backtest adds for its prediction intervals (:mod:`jaxlstm.calibration`), when it has them."""
FORECAST_DIR = "forecast"
"""Where ``jaxlstm forecast`` writes by default, inside the run it forecasts with."""


def _is_ours(name: str) -> bool:
    """A run file, the checkpoints, the lock, or a hidden temporary file left by a killed writer."""
    hidden_temporary = name.startswith(".") and ".tmp-" in name
    kept = (CHECKPOINTS_DIR, BACKTEST_CHECKPOINTS_DIR, FORECAST_DIR, RunLock.NAME)
    return name in (*RUN_FILES, *BACKTEST_FILES, *CALIBRATION_FILES, *kept) or hidden_temporary


def run_state(directory: Path) -> str:
    """``"absent"``, ``"empty"``, ``"complete"`` (has config.json), ``"interrupted"`` (checkpoints, no config.json),
    ``"partial"`` (only run files, e.g. a crash while the final files landed) or ``"foreign"`` (other files, or not
    a directory)."""
    if not directory.exists():
        return "absent"
    if not directory.is_dir():
        return "foreign"
    names = {path.name for path in directory.iterdir()} - {RunLock.NAME}
    if not names:
        return "empty"
    if not all(_is_ours(name) for name in names):
        return "foreign"
    if CONFIG_FILE in names:
        return "complete"
    if CHECKPOINTS_DIR in names or BACKTEST_CHECKPOINTS_DIR in names:
        return "interrupted"
    return "partial"


def interrupted_command(directory: Path) -> str:
    """The command whose ``--resume`` finishes the interrupted run in ``directory``: ``train`` or ``backtest``."""
    return "backtest" if (directory / BACKTEST_CHECKPOINTS_DIR).exists() else "train"


def checkpoints_dir(directory: Path, command: str) -> Path:
    """Where ``command`` (``train`` or ``backtest``) keeps the checkpoints of the run in ``directory``."""
    return directory / (BACKTEST_CHECKPOINTS_DIR if command == "backtest" else CHECKPOINTS_DIR)


def _last_checkpoint_epoch(directory: Path) -> str:
    folder = checkpoints_dir(directory, interrupted_command(directory))
    epochs = sorted(int(p.stem.split("-")[1]) for p in folder.glob("epoch-*.ckpt"))
    return f"checkpoint at epoch {epochs[-1]}" if epochs else "no intact checkpoint"


def check_destination(out: Path, *, overwrite: bool) -> None:
    """Raises :class:`RunError` unless ``out`` can be created, or is empty, or holds a run that may be overwritten.

    Never allows overwriting a directory that holds files other than a jaxlstm run's (``--out .`` must not wipe a
    project), nor a path under a file, nor a directory another process is writing (:class:`~jaxlstm.fileio.RunLock`).
    """
    holder = RunLock.holder(out)
    if holder is not None:
        raise RunLock.held_error(out, holder)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunError(f"cannot create {out}: {ancestor} is a file, not a directory; choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunError(f"cannot create {out}: {ancestor} is not writable; choose another --out")
    state = run_state(out)
    if state == "foreign":
        extra = sorted(p.name for p in out.iterdir() if not _is_ours(p.name))
        raise RunError(
            f"{out} holds files that are not a jaxlstm run ({', '.join(extra[:3])}); choose another --out "
            f"(--overwrite only replaces jaxlstm runs)"
        )
    if overwrite:
        return
    if state == "complete":
        raise RunError(f"{out} already holds files of a finished run; choose another --out or pass --overwrite")
    if state == "interrupted":
        raise RunError(
            f"{out} already holds files of an interrupted run ({_last_checkpoint_epoch(out)}); finish it with "
            f"`jaxlstm {interrupted_command(out)} --resume {out}`, or choose another --out or pass --overwrite"
        )
    if state == "partial":
        raise RunError(f"{out} already holds files of an incomplete run; choose another --out or pass --overwrite")


def clear_run(out: Path) -> None:
    """Deletes the jaxlstm run in ``out`` (``config.json`` first, so it never looks complete meanwhile), keeping the
    directory and its lock. Refuses (RunError) if ``out`` holds other files."""
    if not out.exists():
        return
    check_destination(out, overwrite=True)
    try:
        (out / CONFIG_FILE).unlink(missing_ok=True)
        for path in out.iterdir():
            if path.name == RunLock.NAME:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    except OSError as error:
        raise RunError(f"{out}: cannot delete the old run ({error.strerror}); delete it by hand") from None
    fsync_directory(out)


def _finite_or_null(content: Any) -> Any:
    """``content`` with every NaN or infinity replaced by None: strict JSON has no such numbers."""
    if isinstance(content, dict):
        return {key: _finite_or_null(value) for key, value in content.items()}
    if isinstance(content, list | tuple):
        return [_finite_or_null(value) for value in content]
    if isinstance(content, float) and not np.isfinite(content):
        return None
    return content


def _write_json(path: Path, content: Any) -> None:
    """Pretty, strict JSON (NaN and infinities written as null), ending with a newline, written atomically."""
    write_atomic(path, (json.dumps(_finite_or_null(content), indent=2, allow_nan=False) + "\n").encode())


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
        _write_json(out / SCALERS_FILE, scalers)
        if write_more is not None:
            write_more(out)
        _write_json(out / CONFIG_FILE, config.to_dict())
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
        _write_json(
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


_LEARNED = {
    "level": "",
    "diff": " (the models learn its daily differences, each forecast a price from the day before's actual one)",
    "log-return": " (the models learn its daily log-returns, each forecast a price from the day before's actual one)",
}


def _report(config: RunConfig, summary: dict) -> str:
    """``report.md``: the settings, the pooled statistics, one row per fold, and the verdict."""
    pooled, backtest = summary["pooled"]["ensemble"], config.backtest
    mode = "expanding" if backtest.expanding else f"rolling {backtest.train_days} rows"
    dm, pt = pooled["diebold_mariano"], pooled["pesaran_timmermann"]
    low, high = summary["pooled"]["member_range"]["rmse"]
    lines = [
        f"# Walk-forward backtest: {config.data.path.name}, {config.model.arch}",
        "",
        f"{backtest.folds} folds of {backtest.test_days} test days ({mode}), {backtest.seeds} seeds per fold: "
        f"{summary['models']} models trained in one program ({summary['compile_seconds']:.1f} s compilation, "
        f"{summary['train_seconds']:.1f} s training). Target {config.data.target!r}, window {config.data.window} days"
        f"{_LEARNED[backtest.target_transform]}; "
        f"each fold's scaler is fit on its own training rows, and "
        + (
            "each test day is forecast one step ahead from the actual days before it."
            if summary["horizon"] == 1
            else f"from each test day on, the {summary['horizon']} days are forecast from the actual days before it "
            f"({summary['strategy']} strategy), every day forecast one of the fold's test days. The statistics "
            f"below are those {summary['horizon']} days ahead; `steps` in metrics.json has every step."
        ),
        "",
        f"**{summary['verdict']}**",
        "",
        "| pooled over the folds | ensemble | persistence |",
        "|---|---:|---:|",
        *(f"| {name.upper()} | {pooled[name]:.4g} | {pooled['persistence'][name]:.4g} |" for name in ("rmse", "mae")),
        f"| MAPE % | {pooled['mape']:.3g} | {pooled['persistence']['mape']:.3g} |",
        f"| MASE | {pooled['mase']:.3g} | {pooled['persistence_mase']:.3g} |",
        f"| skill (1 - RMSE / RMSE of persistence) | {pooled['skill']:.3g} | 0 |",
        f"| directional accuracy | {pooled['directional_accuracy']:.3g} (Pesaran-Timmermann {pt['statistic']:.3g}, "
        f"p = {pt['p_value']:.2g}) | |",
        "| Diebold-Mariano (HLN), squared / absolute loss | "
        + " / ".join(f"{dm[loss]['statistic']:.3g} (p = {dm[loss]['p_value']:.2g})" for loss in ("squared", "absolute"))
        + " | |",
        f"| RMSE of single seeds, range | {low:.4g} .. {high:.4g} | |",
        "| skill of single seeds, range | {:.3g} .. {:.3g} | |".format(*summary["pooled"]["member_range"]["skill"]),
        "",
        "| fold | trains on | test days | RMSE | persistence | skill | skill of single seeds | DM p (squared) |",
        "|---:|---|---|---:|---:|---:|---|---:|",
    ]
    for fold in summary["folds"]:
        scores = fold["ensemble"]
        cells = [
            str(fold["fold"]),
            f"{fold['train_start']}.. ({fold['train_windows']} windows)",
            f"{fold['cutoff']}..{fold['test_end']}",
            f"{scores['rmse']:.4g}",
            f"{scores['persistence']['rmse']:.4g}",
            f"{scores['skill']:.3g}",
            "{:.3g} .. {:.3g}".format(*fold["member_range"]["skill"]),
            f"{scores['diebold_mariano']['squared']['p_value']:.2g}",
        ]
        lines.append(f"| {' | '.join(cells)} |")
    figures = ["", "![forecasts](backtest.png)", "", "![skill per fold](skill.png)", ""]
    calibration = _calibration_report(summary["calibration"]) if "calibration" in summary else []
    return "\n".join([*lines, *figures, *calibration])


def save_backtest(
    out: Path, config: RunConfig, result: Backtest, summary: dict, calibration: Calibration | None = None
) -> None:
    """Writes a backtest run into the existing directory ``out``, each file atomically, ``config.json`` last:
    ``metrics.json`` (the summary), ``predictions.csv`` (every test day and forecaster), ``report.md`` and the
    figures; with a ``calibration``, ``intervals.csv`` (every band) and the PIT and coverage figures. RunError when
    the disk refuses."""
    target = config.data.target
    try:
        _write_json(out / "metrics.json", summary)
        write_atomic(out / "predictions.csv", result.table().to_csv(index=False).encode())
        write_atomic(out / "report.md", _report(config, summary).encode())
        if result.dropout_forecasts is not None:
            with atomic_path(out / DROPOUT_FILE) as path, open(path, "wb") as file:
                np.save(file, result.dropout_forecasts)
        if calibration is not None:
            _save_calibration(out, config, calibration, summary["calibration"])
        dates = [pd.DatetimeIndex(fold.date_paths[:, -1]) for fold in result.folds]
        title = f"{config.data.path.stem} {target}: walk-forward forecasts of the {config.model.arch} LSTM ensemble"
        if result.horizon > 1:
            title += f", {result.horizon} days ahead"
        forecasts = (result.actual[..., -1], result.forecasts[..., -1], result.persistence[..., -1])
        plot_backtest(dates, *forecasts, out / "backtest.png", title=title, ylabel=f"{target} price")
        members = np.array([[seed["skill"] for seed in fold["members"].values()] for fold in summary["folds"]])
        ensemble = np.array([fold["ensemble"]["skill"] for fold in summary["folds"]])
        plot_fold_skill(ensemble, members, out / "skill.png", title="Skill against persistence, per fold")
        _write_json(out / CONFIG_FILE, config.to_dict())
    except OSError as error:
        raise RunError(
            f"{out}: cannot write the run ({error.strerror}); free disk space or choose another --out"
        ) from None


def _save_calibration(out: Path, config: RunConfig, calibration: Calibration, scores: dict) -> None:
    """``intervals.csv``, ``pit.png`` and ``coverage.png``."""
    write_atomic(out / "intervals.csv", calibration.table().to_csv(index=False).encode())
    name = f"{config.data.path.stem} {config.data.target}"
    pit = {method: bands.pit for method, bands in calibration.methods.items()}
    plot_pit(pit, out / "pit.png", title=f"{name}: PIT of the walk-forward forecasts, every step")
    steps = scores.get("steps", [{"step": 1, **scores["pooled"]}])
    coverage = {
        method: np.array([[step[method]["levels"][key]["coverage"] for step in steps] for key in _level_keys(scores)])
        for method in calibration.methods
    }
    plot_coverage(coverage, calibration.levels, out / "coverage.png", title=f"{name}: interval coverage per step")


def _level_keys(scores: dict) -> list[str]:
    return list(next(iter(scores["pooled"].values()))["levels"])


def _calibration_report(scores: dict) -> list[str]:
    """report.md's calibration section: per method and level, coverage, interval score, pinball loss, CRPS."""
    if "skipped" in scores:
        return ["## Prediction intervals", "", f"Not calibrated: {scores['skipped']}.", ""]
    folds = scores["scored_folds"]
    lines = [
        "## Prediction intervals",
        "",
        f"Scored on folds {folds[0]}..{folds[-1]}, every step, where the conformal bands had "
        f"{scores['calibration_errors'][0]} or more earlier forecasts per step to calibrate on. Lower interval "
        "score, pinball loss and CRPS are better; coverage should be close to nominal.",
        "",
        "| method | forecasts | level | coverage | interval score | pinball | CRPS |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, result in scores["pooled"].items():
        for level, values in result["levels"].items():
            lines.append(
                f"| {method} | {result['forecasts']} | {level} | {100 * values['coverage']:.1f}% | "
                f"{values['interval_score']:.4g} | {values['pinball']:.4g} | {result['crps']:.4g} |"
            )
    return [*lines, "", "![PIT histograms](pit.png)", "", "![coverage per step](coverage.png)", ""]


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


def _read(directory: Path, name: str, parse: Callable[[bytes], Any]) -> Any:
    """``parse`` of the file ``name`` of a run directory; RunError naming what is missing, unfinished or corrupt."""
    try:
        return parse((directory / name).read_bytes())
    except FileNotFoundError:
        if run_state(directory) == "interrupted":
            raise RunError(
                f"{directory} is an interrupted run ({_last_checkpoint_epoch(directory)}) with no final weights "
                f"yet; finish it with `jaxlstm {interrupted_command(directory)} --resume {directory}`"
            ) from None
        raise RunError(f"{directory} is not a complete jaxlstm run: {name} is missing") from None
    except NotADirectoryError:
        raise RunError(f"{directory} is a file; pass a run directory written by `jaxlstm train`") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        raise RunError(f"{directory}/{name} is corrupt ({error}); train the run again") from None


def read_config(directory: Path) -> RunConfig:
    """The configuration of a run directory (written by ``train``, ``convert`` or ``backtest``); RunError naming
    what is missing or unreadable."""
    if not directory.exists():
        raise RunError(f"{directory} is not a complete jaxlstm run: no such directory; pass --run runs/NAME")
    return RunConfig.from_dict(_read(directory, CONFIG_FILE, json.loads), source=str(directory / CONFIG_FILE))


def read_backtest(directory: Path) -> tuple[RunConfig, pd.DataFrame, dict]:
    """A backtest run's configuration, ``predictions.csv`` and ``metrics.json``; RunError for any other run."""
    config = read_config(directory)
    if config.backtest is None:
        raise RunError(f"{directory} is not a backtest run; pass a directory written by `jaxlstm backtest`")
    table = _read(directory, "predictions.csv", lambda content: pd.read_csv(io.BytesIO(content)))
    return config, table, _read(directory, "metrics.json", json.loads)


def load_backtest(directory: Path) -> Backtest:
    """A finished backtest run again, without training: its folds rebuilt from its CSV (:func:`make_folds`), every
    seed's forecasts read from its ``predictions.csv`` and its dropout draws from :data:`DROPOUT_FILE` (no losses:
    they are not kept). For instance to calibrate its
    forecasts at other levels (:func:`jaxlstm.calibration.calibrate`). RunError when the CSV no longer gives the
    prices the backtest forecast."""
    config, table, summary = read_backtest(directory)
    folds = make_folds(load_frame(config.data), config.data, config.backtest)
    seeds = tuple(config.train.seed + s for s in range(config.backtest.seeds))
    shape = folds[0].actual_paths.shape
    forecasts = np.empty((len(folds), len(seeds), *shape))
    for k, fold in enumerate(folds):
        for s, seed in enumerate(seeds):
            rows = table[(table["fold"] == k + 1) & (table["member"] == f"seed {seed}")]
            if len(rows) != math.prod(shape) or not np.allclose(rows["actual"], fold.actual_paths.ravel()):
                raise RunError(
                    f"{config.data.path} no longer gives the prices {directory} forecast (fold {k + 1}); restore the "
                    f"file, or run the backtest again"
                )
            forecasts[k, s] = rows["forecast"].to_numpy().reshape(shape)
    losses = np.empty((0, len(folds), len(seeds)))
    draws = (
        _read(directory, DROPOUT_FILE, lambda content: np.load(io.BytesIO(content)))
        if config.backtest.mc_dropout
        else None
    )
    return Backtest(folds, seeds, forecasts, losses, summary["compile_seconds"], summary["train_seconds"], draws)


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
    scalers = _read(directory, SCALERS_FILE, json.loads)
    weights = _read(directory, PARAMS_FILE, serialization.msgpack_restore)
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
