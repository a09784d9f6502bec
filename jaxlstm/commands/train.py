"""``jaxlstm train``: train a forecaster on a Yahoo CSV and write a run directory; ``--resume`` finishes one.

The options are checked by the config types before JAX starts; :func:`jaxlstm.runs.train_run` (or
:func:`~jaxlstm.runs.resume_train_run`) does the rest: the destination, the data and the memory checked before
anything is written, training with checkpoints, and the final files.
"""

import argparse
import json
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
from jaxlstm.config import DataConfig, ModelConfig, RunConfig, TrainConfig, check_count
from jaxlstm.errors import plural

__all__ = ["add_parser", "run"]

DEFAULT_OUT = Path("runs/latest")


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm train``."""
    parser = commands.add_parser(
        "train",
        help="train a forecaster on a Yahoo Finance CSV and write a run directory",
        description="Train like the tutorial's Keras code: model.fit(X_train, y_train, epochs=100, batch_size=32) "
        "with Adam and MSE, then report MSE/MAE/RMSE/MAPE in price units beside the naive baseline "
        "(tomorrow's value = today's).",
    )
    add_config_options(parser.add_argument_group("data"), DataConfig)
    add_config_options(parser.add_argument_group("model"), ModelConfig)
    add_config_options(parser.add_argument_group("training (Keras model.fit)"), TrainConfig)
    add_run_options(
        parser,
        DEFAULT_OUT,
        checkpoints="save a checkpoint every N epochs and at the end",
        resume="finish an interrupted run directory, with the settings saved in it (no other model/data options)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm train``."""
    check_count("--checkpoint-every", args.checkpoint_every, 10)
    options = {"progress": not args.quiet, "checkpoint_every": args.checkpoint_every}
    if args.resume is not None:
        reject_settings(args, DataConfig, ModelConfig, TrainConfig)
        start_jax(args)
        from jaxlstm.runs import resume_train_run

        result = resume_train_run(args.resume, **options)
    else:
        data = DataConfig(**config_values(args, DataConfig))
        config = RunConfig(data, model_from_options(args, data), TrainConfig(**config_values(args, TrainConfig)))
        start_jax(args)
        from jaxlstm.runs import train_run

        result = train_run(args.out or DEFAULT_OUT, config, overwrite=args.overwrite, **options)
    if result is not None:  # None: one of several processes, not process 0, which writes and reports
        print(_report(result))


def _report(result: Any) -> str:
    """The test metrics of the model and the naive baseline, every step's RMSE for a horizon, and the timings."""
    evaluation, history, config = result.evaluation, result.history, result.config
    metrics = json.loads((result.out / "metrics.json").read_text())
    rows = [("model (LSTM)", evaluation.model), ("naive baseline", evaluation.naive)]
    lines = [
        f"{config.model.arch} LSTM ({metrics['parameters']:,} parameters), {config.data.target} of "
        f"{config.data.path.name}: {plural(metrics['test_windows'], 'test window')} forecasting "
        f"{metrics['test_start']}..{metrics['test_end']}, in price units",
        f"{'':16} {'MSE':>12} {'MAE':>10} {'RMSE':>10} {'MAPE %':>8}",
    ]
    lines += [f"{name:16} {m.mse:12.3f} {m.mae:10.3f} {m.rmse:10.3f} {m.mape:8.3f}" for name, m in rows]
    if evaluation.steps:
        lines[0] += "   (every step of the horizon)"
        steps = enumerate(evaluation.steps, 1)
        lines.append(
            "RMSE by days ahead: " + ", ".join(f"{h}: {m.rmse:.3f} vs naive {n.rmse:.3f}" for h, (m, n) in steps)
        )
    ratio = evaluation.model.rmse / evaluation.naive.rmse
    lines.append(
        f"the model's RMSE is {ratio:.2f}x the naive baseline's (yesterday's price): "
        + ("the model is the better forecast here" if ratio < 1 else "yesterday's price is the better forecast here")
    )
    lines.append(
        f"compile {history.compile_seconds:.1f} s, {plural(len(history.loss), 'epoch')} in "
        f"{history.train_seconds:.1f} s on {history.devices} device(s); wrote {result.out}/"
    )
    return "\n".join(lines)
