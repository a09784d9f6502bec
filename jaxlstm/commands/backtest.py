"""``jaxlstm backtest``: walk-forward folds x seeds trained in one program, scored against persistence, with a verdict.

Without ``--csv`` (and without ``--start``, ``--end`` or ``--last-rows``) it uses every row of the bundled GOOG
prices, 2004-2013: the tutorial's 230 rows are too few for folds that each train on 172 rows.
"""

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_config_options, config_values, start_jax
from jaxlstm.config import BUNDLED_CSV, BacktestConfig, DataConfig, ModelConfig, RunConfig, TrainConfig, preset
from jaxlstm.errors import ConfigError

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
    output.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"run directory to write (default: {DEFAULT_OUT})"
    )
    output.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm backtest``."""
    if args.expanding and args.train_days is not None:
        raise ConfigError("--expanding trains each fold on every row before its cutoff; drop --train-days")
    backtest = BacktestConfig(**config_values(args, BacktestConfig))
    data = DataConfig(**config_values(args, DataConfig))
    if data.csv is None:
        data = dataclasses.replace(data, csv=BUNDLED_CSV)  # every bundled row, not the tutorial's last 230
    model_values = config_values(args, ModelConfig)
    model = preset(model_values.pop("arch", "stacked"), n_features=len(data.features), **model_values)
    train = TrainConfig(**config_values(args, TrainConfig))
    start_jax()
    from jaxlstm.backtest import make_folds, run_backtest, summarize
    from jaxlstm.data import load_frame, record
    from jaxlstm.fileio import RunLock
    from jaxlstm.runs import check_destination, clear_run, save_backtest
    from jaxlstm.train import check_memory

    check_destination(args.out, overwrite=args.overwrite)
    frame = load_frame(data)
    folds = make_folds(frame, data, backtest)
    largest = max(len(fold.dataset.x_train) for fold in folds)
    check_memory(model, train, largest, data.window, models=len(folds) * backtest.seeds)
    config = RunConfig(record(data, frame), model, train, backtest=backtest)
    with RunLock(args.out):
        check_destination(args.out, overwrite=args.overwrite)
        result = run_backtest(frame, data, model, train, backtest, progress=not args.quiet)
        summary = summarize(result)
        clear_run(args.out)
        save_backtest(args.out, config, result, summary)
    print(f"{'fold':>4} {'test days':23} {'RMSE':>9} {'persistence':>11} {'skill':>7}")
    for fold in summary["folds"]:
        scores, days = fold["ensemble"], f"{fold['cutoff']}..{fold['test_end']}"
        rmse, persistence = scores["rmse"], scores["persistence"]["rmse"]
        print(f"{fold['fold']:>4} {days:23} {rmse:9.4g} {persistence:11.4g} {scores['skill']:7.3f}")
    pooled, seconds = summary["pooled"]["ensemble"], (summary["compile_seconds"], summary["train_seconds"])
    print(
        f"{summary['models']} models: compile {seconds[0]:.1f} s, train {seconds[1]:.1f} s; MASE {pooled['mase']:.3g}, "
        f"directional accuracy {pooled['directional_accuracy']:.3g}; wrote {args.out}/"
    )
    print(summary["verdict"])
