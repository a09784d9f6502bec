"""``jaxlstm train``: train a forecaster on a Yahoo CSV and write a run directory; ``--resume`` finishes one.

Everything is checked before anything is written: the options (by the config types), the destination, the data,
and the memory the model needs. Training then holds the run directory's lock, writes checkpoints into
``OUT/checkpoints``, and ends with the final files (``config.json`` last).
"""

import argparse
import dataclasses
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
from jaxlstm.config import DataConfig, ModelConfig, RunConfig, TrainConfig, check_count
from jaxlstm.errors import RunError

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
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help=f"run directory to write (default: {DEFAULT_OUT})")
    output.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument(
        "--checkpoint-every", type=int, default=10, help="save a checkpoint every N epochs and at the end (default: 10)"
    )
    output.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="finish an interrupted run directory, with the settings saved in it (no other model/data options)",
    )
    add_process_options(parser)
    parser.set_defaults(handler=run)


class _Setup(NamedTuple):
    """A validated training run, before anything is written."""

    out: Path
    config: RunConfig
    scalers: dict
    dataset: Any
    model: Any
    resume: Any = None
    overwrite: bool = False
    writes: bool = True  # this process writes the run: it runs alone, or it is process 0 of several


def _new_run(args: argparse.Namespace) -> _Setup:
    """Checks every option, the destination, the data and the memory; writes nothing."""
    data = DataConfig(**config_values(args, DataConfig))
    model_config = model_from_options(args, data)
    train_config = TrainConfig(**config_values(args, TrainConfig))
    out = args.out or DEFAULT_OUT
    writes = start_jax(args)
    from flax import nnx

    from jaxlstm.data import load_dataset, record
    from jaxlstm.models import Forecaster
    from jaxlstm.runs import check_destination, scalers_of
    from jaxlstm.train import check_memory, training_devices

    if writes:  # the others write nothing, and would see process 0's lock
        check_destination(out, overwrite=args.overwrite)
    frame, dataset = load_dataset(data)
    # Recorded, so that a resumed run splits its batches the same way (the same seed gives the same bits only then).
    devices = training_devices(train_config, len(dataset.x_train))
    train_config = dataclasses.replace(train_config, devices=len(devices))
    check_memory(model_config, train_config, len(dataset.x_train), data.window)
    config = RunConfig(record(data, frame, dataset), model_config, train_config)
    model = Forecaster(model_config, rngs=nnx.Rngs(train_config.seed))
    return _Setup(out, config, scalers_of(dataset), dataset, model, overwrite=args.overwrite, writes=writes)


def _resumed_run(args: argparse.Namespace) -> _Setup:
    """Reads an interrupted run's newest intact checkpoint and reloads its data; writes nothing."""
    reject_settings(args, DataConfig, ModelConfig, TrainConfig)
    out = args.resume
    writes = start_jax(args)
    from flax import nnx

    from jaxlstm.data import load_dataset, record
    from jaxlstm.models import Forecaster
    from jaxlstm.runs import scalers_of

    checkpoint, config = interrupted_run(out, "train")
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
    return _Setup(out, config, checkpoint.meta["scalers"], dataset, model, resume=resume, writes=writes)


def _fit(setup: _Setup, args: argparse.Namespace) -> Any:
    """Trains with checkpoints; says what was kept when training stops on NaN or Ctrl-C."""
    from jaxlstm.checkpoint import CheckpointWriter
    from jaxlstm.runs import CHECKPOINTS_DIR, clear_run
    from jaxlstm.train import fit

    writer = CheckpointWriter(
        setup.out / CHECKPOINTS_DIR,
        {"config": setup.config.to_dict(), "scalers": setup.scalers},
        before_first_write=(lambda: clear_run(setup.out)) if setup.overwrite else None,
    )
    with reporting_checkpoints(setup.out, "train", writer, resumed=setup.resume is not None):
        return fit(
            setup.model,
            setup.dataset.x_train,
            setup.dataset.y_train,
            setup.config.train,
            progress=not args.quiet,
            resume=setup.resume,
            checkpoint_every=args.checkpoint_every,
            on_checkpoint=writer,
        )


def run(args: argparse.Namespace) -> None:
    """``jaxlstm train``."""
    check_count("--checkpoint-every", args.checkpoint_every, 10)
    setup = _resumed_run(args) if args.resume is not None else _new_run(args)
    if not setup.writes:  # one of several processes, not process 0: it trains its share of every batch
        from jaxlstm.train import fit

        config = setup.config.train
        fit(setup.model, setup.dataset.x_train, setup.dataset.y_train, config, progress=False, resume=setup.resume)
        return
    from jaxlstm.evaluate import evaluate
    from jaxlstm.fileio import RunLock
    from jaxlstm.runs import check_destination, save_trained_run

    with RunLock(setup.out):
        if setup.resume is None:
            check_destination(setup.out, overwrite=setup.overwrite)  # again, now that no other process can write
        history = _fit(setup, args)
        evaluation = evaluate(setup.model, setup.dataset)
        save_trained_run(setup.out, setup.config, setup.model, setup.dataset, history, evaluation)
    rows = [("model (LSTM)", evaluation.model), ("naive baseline", evaluation.naive)]
    lines = [f"{'':16} {'MSE':>12} {'MAE':>10} {'RMSE':>10} {'MAPE %':>8}"]
    lines += [f"{name:16} {m.mse:12.3f} {m.mae:10.3f} {m.rmse:10.3f} {m.mape:8.3f}" for name, m in rows]
    if evaluation.steps:
        lines[0] += "   (every step of the horizon)"
        lines.append(
            "RMSE by days ahead: "
            + ", ".join(
                f"{h}: {model.rmse:.3f} vs naive {naive.rmse:.3f}"
                for h, (model, naive) in enumerate(evaluation.steps, 1)
            )
        )
    lines.append(
        f"compile {history.compile_seconds:.1f} s, {len(history.loss)} epochs in {history.train_seconds:.1f} s "
        f"on {history.devices} device(s); wrote {setup.out}/"
    )
    print("\n".join(lines))
