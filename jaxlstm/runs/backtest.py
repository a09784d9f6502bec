"""A backtest run: its folds and seeds trained in one program into its directory (:func:`backtest_run`,
:func:`resume_backtest_run`), its statistics, forecasts, report and figures written (``config.json`` last), and read
back without training (:func:`load_backtest`).

Checkpoints (every model of every fold in each file) go to ``OUT/backtest-checkpoints`` while it trains and are
deleted once the report is written: the report is the result.
"""

import dataclasses
import io
import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from flax import nnx

from jaxlstm.config import RunConfig
from jaxlstm.data import load_frame, record
from jaxlstm.errors import ConfigError, RunError, plural
from jaxlstm.fileio import atomic_path, write_atomic
from jaxlstm.forecasting import (
    Backtest,
    Calibration,
    Fold,
    calibrate,
    folds_digest,
    make_folds,
    run_backtest,
    summarize,
    uncalibrated,
)
from jaxlstm.nn import Forecaster
from jaxlstm.runs.directory import CONFIG_FILE, DROPOUT_FILE, read_config, read_file, write_json
from jaxlstm.runs.lifecycle import RunDirectory
from jaxlstm.runs.plots import plot_backtest, plot_coverage, plot_fold_skill, plot_pit
from jaxlstm.training import TrainState, check_memory

__all__ = [
    "BacktestRun",
    "backtest_run",
    "load_backtest",
    "read_backtest",
    "resume_backtest_run",
    "save_backtest",
]


_LEARNED = {
    "level": "",
    "diff": " (the models learn its daily differences, each forecast a price from the day before's actual one)",
    "log-return": " (the models learn its daily log-returns, each forecast a price from the day before's actual one)",
}


def _report(config: RunConfig, summary: dict) -> str:
    """``report.md``: the settings, the pooled statistics, one row per fold, and the verdict."""
    pooled, backtest = summary["pooled"]["ensemble"], config.backtest
    mode = "expanding" if backtest.expanding else f"rolling {plural(backtest.train_days, 'row')}"
    dm, pt = pooled["diebold_mariano"], pooled["pesaran_timmermann"]
    low, high = summary["pooled"]["member_range"]["rmse"]
    lines = [
        f"# Walk-forward backtest: {config.data.path.name}, {config.model.arch}",
        "",
        f"{plural(backtest.folds, 'fold')} of {plural(backtest.test_days, 'test day')} ({mode}), "
        f"{plural(backtest.seeds, 'seed')} per fold: {plural(summary['models'], 'model')} trained in one program "
        f"({summary['compile_seconds']:.1f} s compilation, {summary['train_seconds']:.1f} s training). "
        f"Target {config.data.target!r}, window {plural(config.data.window, 'day')}"
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
            f"{fold['train_start']}.. ({plural(fold['train_windows'], 'window')})",
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
        write_json(out / "metrics.json", summary)
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
        write_json(out / CONFIG_FILE, config.to_dict())
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


def read_backtest(directory: Path) -> tuple[RunConfig, pd.DataFrame, dict]:
    """A backtest run's configuration, ``predictions.csv`` and ``metrics.json``; RunError for any other run."""
    config = read_config(directory)
    if config.backtest is None:
        raise RunError(f"{directory} is not a backtest run; pass a directory written by `jaxlstm backtest`")
    table = read_file(directory, "predictions.csv", lambda content: pd.read_csv(io.BytesIO(content)))
    return config, table, read_file(directory, "metrics.json", json.loads)


def load_backtest(directory: Path) -> Backtest:
    """A finished backtest run again, without training: its folds rebuilt from its CSV (:func:`make_folds`), every
    seed's forecasts read from its ``predictions.csv`` and its dropout draws from :data:`DROPOUT_FILE` (no losses:
    they are not kept). For instance to calibrate its forecasts at other levels (:func:`jaxlstm.forecasting.calibrate`).
    RunError when the CSV no longer gives the prices the backtest forecast."""
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
        read_file(directory, DROPOUT_FILE, lambda content: np.load(io.BytesIO(content)))
        if config.backtest.mc_dropout
        else None
    )
    return Backtest(folds, seeds, forecasts, losses, summary["compile_seconds"], summary["train_seconds"], draws)


class BacktestRun(NamedTuple):
    """What :func:`backtest_run` wrote: the directory, the configuration it recorded, and the statistics (what
    ``metrics.json`` holds, the verdict and the calibration among them)."""

    out: Path
    config: RunConfig
    summary: dict[str, Any]


def backtest_run(
    out: Path, config: RunConfig, *, overwrite: bool = False, progress: bool = True, checkpoint_every: int = 10
) -> BacktestRun | None:
    """Trains ``config``'s backtest (its folds x seeds in one program) into the new run directory ``out`` and writes
    the run; None on a process that does not write (one of several, not process 0).

    Raises:
        RunError: ``out`` cannot be written (checked before the data is read), or the disk refuses.
        DataError, ConfigError: the data, the folds or the settings; ConfigError also when the models cannot fit in
            memory, or ``mc_dropout`` asks for dropout draws of models without dropout.
        TrainingError: a model's loss or weights stopped being finite (naming the last good checkpoint).
    """
    if config.backtest.mc_dropout is not None and config.model.dropout == 0:
        raise ConfigError("--mc-dropout draws the models' dropout masks, but --dropout is 0; pass --dropout 0.2")
    directory = RunDirectory.create(out, "backtest", overwrite=overwrite)
    frame = load_frame(config.data)
    folds = make_folds(frame, config.data, config.backtest)
    largest = max(len(fold.dataset.x_train) for fold in folds)
    models = len(folds) * config.backtest.seeds
    check_memory(config.model, config.train, largest, config.data.window, models=models)
    config = dataclasses.replace(config, data=record(config.data, frame))
    meta = {"config": config.to_dict(), "folds_sha256": folds_digest(folds)}
    return _backtest(directory, config, folds, meta, None, progress, checkpoint_every)


def resume_backtest_run(out: Path, *, progress: bool = True, checkpoint_every: int = 10) -> BacktestRun | None:
    """Finishes the interrupted backtest run in ``out`` from its newest intact checkpoint, with the settings saved
    in it; None on a process that does not write.

    Raises:
        RunError: ``out`` holds no interrupted backtest run, or its CSV changed since the run started.
    """
    directory, config = RunDirectory.reopen(out, "backtest")
    checkpoint = directory.checkpoint
    folds = make_folds(load_frame(config.data), config.data, config.backtest)
    if folds_digest(folds) != checkpoint.meta.get("folds_sha256"):
        raise RunError(
            f"{config.data.path} changed since the backtest started (its folds from {config.data.start} differ); "
            f"restore the file, or start a new run"
        )
    models = config.backtest.folds * config.backtest.seeds
    resume = checkpoint.train_state(Forecaster(config.model, rngs=nnx.Rngs(0)), config.train, models=models)
    return _backtest(directory, config, folds, checkpoint.meta, resume, progress, checkpoint_every)


def _backtest(
    directory: RunDirectory,
    config: RunConfig,
    folds: list[Fold],
    meta: dict[str, Any],
    resume: TrainState | None,
    progress: bool,
    checkpoint_every: int,
) -> BacktestRun | None:
    """Trains every fold's models with checkpoints, scores and calibrates them, and writes the run."""
    backtest = config.backtest
    with directory.session(meta) as on_checkpoint:
        result = run_backtest(
            folds,
            config.model,
            config.train,
            backtest.seeds,
            resume=resume,
            checkpoint_every=checkpoint_every,
            on_checkpoint=on_checkpoint,
            progress=progress and directory.writes,
            dropout_samples=backtest.mc_dropout,
        )
        if not directory.writes:
            return None
        summary = summarize(result)
        calibration = calibrate(result, backtest.levels, backtest.calibration_window)
        summary["calibration"] = (
            calibration.summary() if calibration else {"skipped": uncalibrated(result, backtest.levels)}
        )
        save_backtest(directory.path, config, result, summary, calibration)
        directory.drop_checkpoints()
    return BacktestRun(directory.path, config, summary)
