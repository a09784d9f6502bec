"""``jaxlstm backtest``: walk-forward folds x seeds trained in one program, scored against persistence, with a verdict.

Without ``--csv`` (and without ``--start``, ``--end`` or ``--last-rows``) it uses every row of the bundled GOOG
prices, 2004-2013: the tutorial's 230 rows are too few for folds that each train on 172 rows.
"""

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import (
    add_config_options,
    add_run_options,
    config_values,
    model_from_options,
    reject_settings,
    start_jax,
)
from jaxlstm.config import (
    BUNDLED_CSV,
    BacktestConfig,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    check_count,
)
from jaxlstm.errors import ConfigError, plural

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
    add_run_options(
        parser,
        DEFAULT_OUT,
        checkpoints="save every model's state every N epochs, deleted once the run is complete",
        resume="finish an interrupted backtest directory, with the settings saved in it (no other options)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm backtest``."""
    check_count("--checkpoint-every", args.checkpoint_every, 10)
    options = {"progress": not args.quiet, "checkpoint_every": args.checkpoint_every}
    if args.resume is not None:
        reject_settings(args, BacktestConfig, DataConfig, ModelConfig, TrainConfig)
        start_jax(args)
        from jaxlstm.runs import resume_backtest_run

        result = resume_backtest_run(args.resume, **options)
    else:
        if args.expanding and args.train_days is not None:
            raise ConfigError("--expanding trains each fold on every row before its cutoff; drop --train-days")
        backtest = BacktestConfig(**config_values(args, BacktestConfig))
        data = DataConfig(**config_values(args, DataConfig))
        if data.csv is None:
            data = dataclasses.replace(data, csv=BUNDLED_CSV)  # every bundled row, not the tutorial's last 230
        train = TrainConfig(**config_values(args, TrainConfig))
        config = RunConfig(data, model_from_options(args, data), train, backtest=backtest)
        start_jax(args)
        from jaxlstm.runs import backtest_run

        result = backtest_run(args.out or DEFAULT_OUT, config, overwrite=args.overwrite, **options)
    if result is not None:  # None: one of several processes, not process 0, which writes and reports
        print(_report(result.summary, result.out))


def _report(summary: dict, out: Path) -> str:
    """One line per fold, the pooled statistics, the intervals' coverage and the verdict."""
    lines = [f"{'fold':>4} {'test days':23} {'RMSE':>9} {'persistence':>11} {'skill':>7}"]
    for fold in summary["folds"]:
        scores, days = fold["ensemble"], f"{fold['cutoff']}..{fold['test_end']}"
        rmse, persistence = scores["rmse"], scores["persistence"]["rmse"]
        lines.append(f"{fold['fold']:>4} {days:23} {rmse:9.4g} {persistence:11.4g} {scores['skill']:7.3f}")
    pooled, seconds = summary["pooled"]["ensemble"], (summary["compile_seconds"], summary["train_seconds"])
    lines.append(
        f"{plural(summary['models'], 'model')}: compile {seconds[0]:.1f} s, train {seconds[1]:.1f} s; "
        f"MASE {pooled['mase']:.3g}, directional accuracy {pooled['directional_accuracy']:.3g}; wrote {out}/"
    )
    return "\n".join([*lines, _calibration_line(summary["calibration"]), summary["verdict"]])


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
