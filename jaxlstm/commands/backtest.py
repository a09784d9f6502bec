"""``jaxlstm backtest``: walk-forward folds x seeds trained in one program, scored against persistence, with a verdict.

Without ``--csv`` (and without ``--start``, ``--end`` or ``--last-rows``) it uses every row of the bundled GOOG
prices, 2004-2013: the tutorial's 230 rows are too few for folds that each train on 172 rows.
"""

import argparse
import dataclasses
import shutil
from pathlib import Path
from typing import Any, NamedTuple

from jaxlstm.commands._options import (
    add_config_options,
    add_process_options,
    config_values,
    model_from_options,
    start_jax,
)
from jaxlstm.commands._resume import interrupted_run, reject_settings, reporting_checkpoints
from jaxlstm.config import (
    BUNDLED_CSV,
    BacktestConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    check_count,
)
from jaxlstm.errors import ConfigError, RunError

__all__ = ["add_parser", "run"]

DEFAULT_OUT = Path("runs/backtest")
TRAIN_OPTIONS = ("epochs", "batch_size", "learning_rate", "adam_epsilon", "seed", "clip_norm", "optimizer", "shuffle")
"""The training options a backtest takes (no validation split, early stopping or batch split: the models are split
over the devices instead)."""


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm backtest``."""
    parser = commands.add_parser(
        "backtest",
        help="walk-forward backtest: does the LSTM beat yesterday's price? (folds x seeds in one program)",
        description="Train the model on K walk-forward folds with S seeds each, every fold's scaler fit on its own "
        "training rows, forecast each test day one step ahead from the actual history before it, and compare the "
        "ensemble with persistence (tomorrow = today): RMSE, MAE, MAPE, MASE, skill, directional accuracy with the "
        "Pesaran-Timmermann test, and the Diebold-Mariano test (Harvey-Leybourne-Newbold). Ends with a verdict.",
    )
    add_config_options(parser.add_argument_group("folds"), BacktestConfig)
    data_options = tuple(item.name for item in dataclasses.fields(DataConfig) if item.name != "split")  # per fold
    add_config_options(
        parser.add_argument_group("data (default: every row of the bundled GOOG prices)"),
        DataConfig,
        data_options,
        helps={"csv": f"Yahoo daily CSV (default: bundled {BUNDLED_CSV.name}, every row)"},
    )
    add_config_options(parser.add_argument_group("model"), ModelConfig)
    add_config_options(parser.add_argument_group("training (each model)"), TrainConfig, TRAIN_OPTIONS)
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help=f"run directory to write (default: {DEFAULT_OUT})")
    output.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument(
        "--checkpoint-every",
        type=int,
        default=10,
        help="save every model's state every N epochs, deleted once the run is complete (default: 10)",
    )
    output.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="finish an interrupted backtest directory, with the settings saved in it (no other options)",
    )
    add_process_options(parser)
    parser.set_defaults(handler=run)


class _Setup(NamedTuple):
    """A validated backtest, before anything is written."""

    out: Path
    config: RunConfig
    folds: list
    meta: dict
    resume: Any = None
    overwrite: bool = False
    writes: bool = True  # this process writes the run: it runs alone, or it is process 0 of several


def _new_run(args: argparse.Namespace) -> _Setup:
    """Checks every option, the destination, the data, the folds and the memory; writes nothing."""
    if args.expanding and args.train_days is not None:
        raise ConfigError("--expanding trains each fold on every row before its cutoff; drop --train-days")
    backtest = BacktestConfig(**config_values(args, BacktestConfig))
    data = DataConfig(**config_values(args, DataConfig))
    if data.csv is None:
        data = dataclasses.replace(data, csv=BUNDLED_CSV)  # every bundled row, not the tutorial's last 230
    model = model_from_options(args, data)
    if backtest.mc_dropout is not None and model.dropout == 0:
        raise ConfigError("--mc-dropout draws the models' dropout masks, but --dropout is 0; pass --dropout 0.2")
    train = TrainConfig(**config_values(args, TrainConfig))
    writes = start_jax(args)
    from jaxlstm.backtest import folds_digest, make_folds
    from jaxlstm.data import load_frame, record
    from jaxlstm.runs import check_destination
    from jaxlstm.train import check_memory

    out = args.out or DEFAULT_OUT
    if writes:  # the others write nothing, and would see process 0's lock
        check_destination(out, overwrite=args.overwrite)
    frame = load_frame(data)
    folds = make_folds(frame, data, backtest)
    largest = max(len(fold.dataset.x_train) for fold in folds)
    check_memory(model, train, largest, data.window, models=len(folds) * backtest.seeds)
    config = RunConfig(record(data, frame), model, train, backtest=backtest)
    meta = {"config": config.to_dict(), "folds_sha256": folds_digest(folds)}
    return _Setup(out, config, folds, meta, overwrite=args.overwrite, writes=writes)


def _resumed_run(args: argparse.Namespace) -> _Setup:
    """Reads an interrupted backtest's newest intact checkpoint and reloads its data; writes nothing."""
    reject_settings(args, BacktestConfig, DataConfig, ModelConfig, TrainConfig)
    writes = start_jax(args)
    from flax import nnx

    from jaxlstm.backtest import folds_digest, make_folds
    from jaxlstm.data import load_frame
    from jaxlstm.models import Forecaster

    checkpoint, config = interrupted_run(args.resume, "backtest")
    folds = make_folds(load_frame(config.data), config.data, config.backtest)
    if folds_digest(folds) != checkpoint.meta.get("folds_sha256"):
        raise RunError(
            f"{config.data.path} changed since the backtest started (its folds from {config.data.start} differ); "
            f"restore the file, or start a new run"
        )
    models = config.backtest.folds * config.backtest.seeds
    resume = checkpoint.train_state(Forecaster(config.model, rngs=nnx.Rngs(0)), config.train, models=models)
    return _Setup(args.resume, config, folds, checkpoint.meta, resume=resume, writes=writes)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm backtest``."""
    check_count("--checkpoint-every", args.checkpoint_every, 10)
    setup = _resumed_run(args) if args.resume is not None else _new_run(args)
    from jaxlstm.backtest import run_backtest, summarize
    from jaxlstm.calibration import calibrate, uncalibrated
    from jaxlstm.checkpoint import CheckpointWriter
    from jaxlstm.fileio import RunLock
    from jaxlstm.runs import BACKTEST_CHECKPOINTS_DIR, check_destination, clear_run, save_backtest

    config, out = setup.config, setup.out

    def backtest(on_checkpoint: Any, progress: bool = False) -> Any:
        return run_backtest(
            setup.folds,
            config.model,
            config.train,
            config.backtest.seeds,
            resume=setup.resume,
            checkpoint_every=args.checkpoint_every,
            on_checkpoint=on_checkpoint,
            progress=progress,
            dropout_samples=config.backtest.mc_dropout,
        )

    if not setup.writes:  # one of several processes, not process 0: it trains its share of the models
        backtest(lambda state: None)  # the checkpoints' gather is collective; process 0 writes them
        return
    writer = CheckpointWriter(
        out / BACKTEST_CHECKPOINTS_DIR,
        setup.meta,
        before_first_write=(lambda: clear_run(out)) if setup.overwrite else None,
    )
    with RunLock(out):
        if setup.resume is None:
            check_destination(out, overwrite=setup.overwrite)  # again, now that no other process can write
        with reporting_checkpoints(out, "backtest", writer, resumed=setup.resume is not None):
            result = backtest(writer, progress=not args.quiet)
        summary = summarize(result)
        calibration = calibrate(result, config.backtest.levels, config.backtest.calibration_window)
        summary["calibration"] = (
            calibration.summary() if calibration else {"skipped": uncalibrated(result, config.backtest.levels)}
        )
        save_backtest(out, config, result, summary, calibration)
        shutil.rmtree(out / BACKTEST_CHECKPOINTS_DIR, ignore_errors=True)  # the report is the result
    print(f"{'fold':>4} {'test days':23} {'RMSE':>9} {'persistence':>11} {'skill':>7}")
    for fold in summary["folds"]:
        scores, days = fold["ensemble"], f"{fold['cutoff']}..{fold['test_end']}"
        rmse, persistence = scores["rmse"], scores["persistence"]["rmse"]
        print(f"{fold['fold']:>4} {days:23} {rmse:9.4g} {persistence:11.4g} {scores['skill']:7.3f}")
    pooled, seconds = summary["pooled"]["ensemble"], (summary["compile_seconds"], summary["train_seconds"])
    print(
        f"{summary['models']} models: compile {seconds[0]:.1f} s, train {seconds[1]:.1f} s; MASE {pooled['mase']:.3g}, "
        f"directional accuracy {pooled['directional_accuracy']:.3g}; wrote {out}/"
    )
    print(_calibration_line(summary["calibration"]))
    print(summary["verdict"])


def _calibration_line(scores: dict) -> str:
    """One line: how often each method's intervals covered the actual price, per level."""
    if "skipped" in scores:
        return f"prediction intervals not calibrated: {scores['skipped']}"
    parts = []
    for method, result in scores["pooled"].items():
        covered = ", ".join(f"{level} {100 * values['coverage']:.1f}%" for level, values in result["levels"].items())
        parts.append(f"{method} {covered}")
    folds = scores["scored_folds"]
    return f"interval coverage on folds {folds[0]}..{folds[-1]}, nominal as named: " + "; ".join(parts)
