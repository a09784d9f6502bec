"""The ``jaxlstm`` command: ``train`` a forecaster on a Yahoo CSV, ``predict`` with a saved run.

Every user error (bad file, bad argument, existing output) prints one line and exits with status 2; the catalogue
of them is docs/errors.md. An interrupted ``train`` (Ctrl-C) exits with 130 and can be finished with ``--resume``.
"""

import argparse
import dataclasses
import hashlib
import io
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from flax import nnx

from jaxlstm.checkpoint import CheckpointWriter, latest_checkpoint, list_checkpoints, write_atomic
from jaxlstm.data import Dataset, load_prices, prediction_windows, prepare, select_dates
from jaxlstm.errors import ConfigError, DataError, JaxlstmError, RunError, TrainingError
from jaxlstm.evaluate import Evaluation, evaluate, predict_prices
from jaxlstm.interop import add_convert_parser, convert_command
from jaxlstm.introspect import add_gates_parser, add_gradflow_parser, gates_command, gradflow_command
from jaxlstm.models import ARCHITECTURES, Forecaster, ModelConfig, count_parameters, preset
from jaxlstm.plots import plot_loss, plot_predictions
from jaxlstm.runs import (
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    SCALERS_FILE,
    check_destination,
    clear_run,
    load_run,
    run_state,
    save_model,
    scaler_to_dict,
    write_final_files,
    write_json,
)
from jaxlstm.train import History, TrainConfig, TrainState, fit, split_devices, use_compilation_cache, use_cpu_cores

BUNDLED_CSV = Path(__file__).resolve().parents[1] / "data" / "GOOG.csv"
TUTORIAL_ROWS = 230


def _columns(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _split(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``jaxlstm`` command."""
    parser = argparse.ArgumentParser(
        prog="jaxlstm",
        description="Forecast next-day stock prices with a hand-written JAX LSTM (the classic Keras tutorial, jitted).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser(
        "train",
        help="train a forecaster on a Yahoo Finance CSV and write a run directory",
        description="Train like the tutorial's Keras code: model.fit(X_train, y_train, epochs=100, batch_size=32) "
        "with Adam and MSE, then report MSE/MAE/RMSE/MAPE in price units beside the naive baseline "
        "(tomorrow's value = today's).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = train.add_argument_group("data")
    data.add_argument("--csv", type=Path, help=f"Yahoo daily CSV (default: bundled {BUNDLED_CSV.name}, last 230 rows)")
    data.add_argument("--start", help="first date kept, YYYY-MM-DD")
    data.add_argument("--end", help="last date kept, YYYY-MM-DD")
    data.add_argument("--last-rows", type=int, help="keep only the last N rows after the date filter")
    data.add_argument("--features", type=_columns, default=("Open",), help="input columns, comma-separated")
    data.add_argument("--target", default="Open", help="column to forecast one day ahead")
    data.add_argument("--window", type=int, default=60, help="past days per sample (Keras: timesteps)")
    data.add_argument("--split", type=_split, default=172, help="training rows (int) or fraction of rows (float)")
    data.add_argument("--missing", choices=("error", "drop", "ffill"), default="error", help="rows with null values")

    model = train.add_argument_group("model")
    model.add_argument("--arch", choices=ARCHITECTURES, default="stacked", help="LSTM variant")
    model.add_argument("--layers", type=int, help="LSTM layers (default: 1 for vanilla and conv, else 4)")
    model.add_argument("--units", type=int, help="units per LSTM layer (default: 50; conv: 64 filters)")
    model.add_argument("--dropout", type=float, help="Dropout rate after each LSTM layer (default: 0.2)")

    fitting = train.add_argument_group("training (Keras model.fit)")
    fitting.add_argument("--epochs", type=int, default=100)
    fitting.add_argument("--batch-size", type=int, default=32)
    fitting.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
    fitting.add_argument("--adam-epsilon", type=float, default=1e-7, help="Adam epsilon (Keras: 1e-7)")
    fitting.add_argument("--validation-split", type=float, default=0.0, help="last fraction of windows held out")
    fitting.add_argument("--patience", type=int, help="early stopping patience in epochs (needs --validation-split)")
    fitting.add_argument("--clip-norm", type=float, help="clip gradients to this global norm")
    fitting.add_argument("--seed", type=int, default=0, help="seeds weights, shuffling and dropout")

    output = train.add_argument_group("output")
    output.add_argument("--out", type=Path, default=Path("runs/latest"), help="run directory to write")
    output.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument(
        "--checkpoint-every", type=int, default=10, help="save a checkpoint every N epochs (and at the end)"
    )
    output.add_argument(
        "--resume",
        type=Path,
        metavar="RUN",
        help="finish an interrupted run directory, with the settings saved in it (no other model/data options)",
    )

    predict = commands.add_parser(
        "predict",
        help="predict with a saved run",
        description="Reload a run directory and predict the next-day target for every window of a CSV.",
    )
    predict.add_argument("--run", type=Path, required=True, help="run directory written by `jaxlstm train`")
    predict.add_argument("--csv", type=Path, help="Yahoo daily CSV (default: the CSV the run was trained on)")
    predict.add_argument("--start", help="first date kept, YYYY-MM-DD")
    predict.add_argument("--end", help="last date kept, YYYY-MM-DD")
    predict.add_argument("--missing", choices=("error", "drop", "ffill"), default="error", help="rows with null values")
    predict.add_argument("--out", type=Path, help="CSV file to write (default: print to standard output)")
    add_convert_parser(commands)
    add_gates_parser(commands)
    add_gradflow_parser(commands)
    return parser


def load_frame(csv: Path, *, start: str | None, end: str | None, last_rows: int | None, missing: str) -> pd.DataFrame:
    """Loads, validates and date-filters a CSV; keeps the last ``last_rows`` rows when given."""
    frame = select_dates(load_prices(csv, missing=missing), start, end)
    if last_rows is not None:
        if last_rows < 1:
            raise DataError(f"--last-rows must be a positive number of rows, got {last_rows}")
        frame = frame.iloc[-last_rows:]
    return frame


def _write_train_run(
    out: Path, config: dict, model: Forecaster, dataset: Dataset, history: History, evaluation: Evaluation
) -> None:
    def write(directory: Path) -> None:
        write_json(directory / CONFIG_FILE, config)
        save_model(directory, model)
        scalers = {
            "features": scaler_to_dict(dataset.feature_scaler),
            "target": scaler_to_dict(dataset.target_scaler),
        }
        write_json(directory / SCALERS_FILE, scalers)
        write_json(
            directory / "metrics.json",
            {
                "model": evaluation.model.to_dict(),
                "naive": evaluation.naive.to_dict(),
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
        pd.DataFrame(
            {
                "Date": dataset.test_dates.strftime("%Y-%m-%d"),
                dataset.target: dataset.test_prices,
                "predicted": evaluation.predictions,
                "naive": dataset.previous_prices,
            }
        ).to_csv(directory / "predictions.csv", index=False)
        plot_loss(history, directory / "loss.png", title=f"{config['model']['arch']} LSTM: training loss")
        plot_predictions(
            dataset.test_dates,
            dataset.test_prices,
            evaluation.predictions,
            directory / "predictions.png",
            naive=dataset.previous_prices,
            title=f"{Path(config['data']['csv']).stem} {dataset.target}: {config['model']['arch']} LSTM on test days",
            ylabel=f"{dataset.target} price",
        )

    write_final_files(out, write)


def _report(evaluation: Evaluation, history: History, out: Path) -> str:
    rows = [("model (LSTM)", evaluation.model), ("naive baseline", evaluation.naive)]
    lines = [f"{'':16} {'MSE':>12} {'MAE':>10} {'RMSE':>10} {'MAPE %':>8}"]
    lines += [f"{name:16} {m.mse:12.3f} {m.mae:10.3f} {m.rmse:10.3f} {m.mape:8.3f}" for name, m in rows]
    lines.append(
        f"compile {history.compile_seconds:.1f} s, {len(history.loss)} epochs in {history.train_seconds:.1f} s "
        f"on {history.devices} device(s); "
        f"wrote {out}/"
    )
    return "\n".join(lines)


RESUME_FIXED = (
    "csv",
    "start",
    "end",
    "last_rows",
    "features",
    "target",
    "window",
    "split",
    "missing",
    "arch",
    "layers",
    "units",
    "dropout",
    "epochs",
    "batch_size",
    "lr",
    "adam_epsilon",
    "validation_split",
    "patience",
    "clip_norm",
    "seed",
    "out",
    "overwrite",
)
"""``train`` options that ``--resume`` reads from the run instead (only --quiet and --checkpoint-every go with it)."""


@dataclasses.dataclass
class _Setup:
    """A validated training run, before anything is written: its settings, data, model and resume point."""

    out: Path
    config: dict
    scalers: dict
    dataset: Dataset
    model: Forecaster
    train_config: TrainConfig
    resume: TrainState | None = None
    overwrite: bool = False


def _data_digest(dataset: Dataset) -> str:
    """SHA-256 of the training arrays: a resumed run must train on the very same windows."""
    digest = hashlib.sha256()
    for array in (dataset.x_train, dataset.y_train):
        digest.update(array.tobytes())
    return digest.hexdigest()


def dataset_scalers(dataset: Dataset) -> dict:
    """The ``scalers.json`` content of a run trained on ``dataset``."""
    return {"features": scaler_to_dict(dataset.feature_scaler), "target": scaler_to_dict(dataset.target_scaler)}


def data_settings(csv: Path, frame: pd.DataFrame, dataset: Dataset, *, split: int | float, missing: str) -> dict:
    """The ``config.json`` data section: how ``dataset`` was made from ``csv``, enough to make it again."""
    return {
        "csv": str(csv),
        "start": str(frame.index[0].date()),
        "end": str(frame.index[-1].date()),
        "features": list(dataset.features),
        "target": dataset.target,
        "window": dataset.window,
        "split": split,
        "missing": missing,
    }


POSITIVE_INTS = {
    "epochs": 100,
    "batch_size": 32,
    "window": 60,
    "units": 50,
    "layers": 4,
    "last_rows": 230,
    "patience": 10,
    "checkpoint_every": 10,
}
"""``train`` options that must be whole numbers >= 1, with the example each message suggests."""
POSITIVE_FLOATS = {"lr": 1e-3, "adam_epsilon": 1e-7, "clip_norm": 1.0}
FRACTIONS = {"dropout": 0.2, "validation_split": 0.1}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_train_arguments(args: argparse.Namespace) -> None:
    """ConfigError naming the flag and a valid example for the first out-of-range number among the options.

    The library checks the same ranges (``TrainConfig``, ``ModelConfig``, ``prepare``); here the messages speak in
    command-line flags.
    """
    for name, example in POSITIVE_INTS.items():
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"{_flag(name)} {value}: must be a whole number >= 1, e.g. {_flag(name)} {example}")
    for name, example in POSITIVE_FLOATS.items():
        value = getattr(args, name)
        if value is not None and not (0 < value < float("inf")):
            raise ConfigError(f"{_flag(name)} {value}: must be a finite number > 0, e.g. {_flag(name)} {example}")
    for name, example in FRACTIONS.items():
        value = getattr(args, name)
        if value is not None and not 0 <= value < 1:
            raise ConfigError(f"{_flag(name)} {value}: must be at least 0 and below 1, e.g. {_flag(name)} {example}")
    if not args.features:
        raise ConfigError(
            "--features names no column; pass at least one, e.g. --features Open or --features Open,Close"
        )
    if not 0 <= args.seed < 2**32:
        raise ConfigError(f"--seed {args.seed}: must be a whole number from 0 to {2**32 - 1}, e.g. --seed 0")


def _new_run(args: argparse.Namespace) -> _Setup:
    """Validates every ``train`` option and the data; writes nothing."""
    check_train_arguments(args)
    model_config = preset(
        args.arch, layers=args.layers, units=args.units, dropout=args.dropout, n_features=len(args.features)
    )
    train_config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        adam_epsilon=args.adam_epsilon,
        seed=args.seed,
        validation_split=args.validation_split,
        patience=args.patience,
        clip_norm=args.clip_norm,
    )
    # Recorded, so that a resumed run splits its batches the same way (the same seed gives the same bits only then).
    train_config = dataclasses.replace(train_config, devices=len(split_devices(train_config.batch_size)))
    check_destination(args.out, overwrite=args.overwrite)
    csv = (args.csv or BUNDLED_CSV).resolve()
    last_rows = args.last_rows
    if args.csv is None and args.start is None and args.end is None and last_rows is None:
        last_rows = TUTORIAL_ROWS
    frame = load_frame(csv, start=args.start, end=args.end, last_rows=last_rows, missing=args.missing)
    dataset = prepare(frame, features=args.features, target=args.target, window=args.window, split=args.split)
    config = {
        "model": model_config.to_dict(),
        "train": dataclasses.asdict(train_config),
        "data": {
            **data_settings(csv, frame, dataset, split=args.split, missing=args.missing),
            "sha256": _data_digest(dataset),
        },
    }
    model = Forecaster(model_config, rngs=nnx.Rngs(args.seed))
    return _Setup(args.out, config, dataset_scalers(dataset), dataset, model, train_config, overwrite=args.overwrite)


def _resumed_run(args: argparse.Namespace) -> _Setup:
    """Reads an interrupted run's newest intact checkpoint and reloads its data; writes nothing."""
    defaults = vars(build_parser().parse_args(["train"]))
    given = [name for name in RESUME_FIXED if getattr(args, name) != defaults[name]]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise ConfigError(
            f"--resume continues with the settings saved in the run; drop {flags} "
            f"(only --quiet and --checkpoint-every go with --resume)"
        )
    out = args.resume
    state = run_state(out)
    if state == "absent":
        raise RunError(f"--resume {out}: no such run directory; pass the --out of the interrupted run")
    if not out.is_dir():
        raise RunError(f"--resume {out}: not a directory; pass the --out of the interrupted run")
    if state == "complete":
        raise RunError(f"--resume {out}: the run is complete, nothing to resume; use `jaxlstm predict --run {out}`")
    checkpoint = latest_checkpoint(out / CHECKPOINTS_DIR, warn=lambda message: warnings.warn(message, stacklevel=2))
    try:
        config, scalers = checkpoint.meta["config"], checkpoint.meta["scalers"]
        data = config["data"]
        model_config = ModelConfig(**config["model"])
        train_config = TrainConfig(**config["train"])
        csv = Path(data["csv"])
    except (KeyError, TypeError) as error:
        raise RunError(f"{checkpoint.path}: its saved settings lack {error}; start a new run") from None
    frame = load_frame(csv, start=data["start"], end=data["end"], last_rows=None, missing=data["missing"])
    dataset = prepare(
        frame, features=data["features"], target=data["target"], window=data["window"], split=data["split"]
    )
    if _data_digest(dataset) != data["sha256"] or dataset_scalers(dataset) != scalers:
        raise RunError(
            f"{csv} changed since the run started (its training windows from {data['start']} differ); "
            f"restore the file, or start a new run"
        )
    model = Forecaster(model_config, rngs=nnx.Rngs(train_config.seed))
    resume = checkpoint.train_state(model, train_config)
    return _Setup(out, config, scalers, dataset, model, train_config, resume=resume)


def _last_checkpoint(directory: Path) -> str:
    found = list_checkpoints(directory)
    return f"epoch {found[0][0]}, {found[0][1]}" if found else "none"


def train_command(args: argparse.Namespace) -> None:
    """``jaxlstm train``: validates everything first, then trains with checkpoints in ``OUT/checkpoints``, then
    writes the final files (``config.json`` last). ``--resume OUT`` finishes an interrupted run."""
    if args.checkpoint_every < 1:
        raise ConfigError(
            f"--checkpoint-every {args.checkpoint_every}: must be a whole number >= 1, e.g. --checkpoint-every 10"
        )
    setup = _resumed_run(args) if args.resume is not None else _new_run(args)
    out = setup.out
    checkpoints = CheckpointWriter(
        out / CHECKPOINTS_DIR,
        {"config": setup.config, "scalers": setup.scalers},
        before_first_write=(lambda: clear_run(out)) if setup.overwrite else None,
    )
    dataset = setup.dataset
    try:
        history = fit(
            setup.model,
            dataset.x_train,
            dataset.y_train,
            setup.train_config,
            progress=not args.quiet,
            resume=setup.resume,
            checkpoint_every=args.checkpoint_every,
            on_checkpoint=checkpoints,
        )
    except TrainingError as error:
        kept = _last_checkpoint(out / CHECKPOINTS_DIR) if (checkpoints.last or setup.resume) else "none was written"
        raise TrainingError(f"{error} (last good checkpoint: {kept})") from None
    except KeyboardInterrupt:
        found = list_checkpoints(out / CHECKPOINTS_DIR) if (checkpoints.last or setup.resume) else []
        hint = (
            f"finish it with `jaxlstm train --resume {out}` (from epoch {found[0][0]})"
            if found
            else "no checkpoint was written yet"
        )
        print(f"jaxlstm: interrupted; {hint}", file=sys.stderr)
        raise
    evaluation = evaluate(setup.model, dataset)
    _write_train_run(out, setup.config, setup.model, dataset, history, evaluation)
    print(_report(evaluation, history, out))


def _check_output_file(path: Path) -> None:
    if path.is_dir():
        raise RunError(f"--out {path} is a directory; pass a file name such as predictions.csv")
    if not path.parent.is_dir():
        raise RunError(f"--out {path}: directory {path.parent} does not exist; create it or choose another --out")


def predict_command(args: argparse.Namespace) -> None:
    """``jaxlstm predict``."""
    if args.out is not None:
        _check_output_file(args.out)
    run = load_run(args.run)
    data = run.config["data"]
    csv = args.csv or Path(data["csv"])
    frame = select_dates(load_prices(csv, missing=args.missing), args.start, args.end)
    absent = [name for name in data["features"] if name not in frame.columns]
    if absent:
        raise DataError(
            f"{csv}: no column {absent[0]!r}, but the run {args.run} reads {', '.join(data['features'])}; "
            f"pass a --csv with those columns"
        )
    x, dates = prediction_windows(
        frame,
        features=data["features"],
        target=data["target"],
        window=data["window"],
        feature_scaler=run.feature_scaler,
    )
    predictions = predict_prices(run.model, x, run.target_scaler)
    target = data["target"]
    actual = frame[target].reindex(dates).to_numpy() if target in frame.columns else [float("nan")] * len(dates)
    table = pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), target: actual, "predicted": predictions})
    if args.out is None:
        table.to_csv(sys.stdout, index=False, float_format="%.6f", na_rep="")
    else:
        text = io.StringIO()
        table.to_csv(text, index=False, na_rep="")
        try:
            write_atomic(args.out, text.getvalue().encode())
        except OSError as error:
            raise RunError(f"--out {args.out}: cannot write ({error.strerror}); choose another --out") from None
        print(f"wrote {len(table)} predictions to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, with a one-line message)."""
    args = build_parser().parse_args(argv)
    use_cpu_cores()
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        use_compilation_cache()
        try:
            return _run(args)
        except KeyboardInterrupt:
            return 130


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as one line, like the errors (no source line)."""
    print(f"jaxlstm: warning: {message}", file=sys.stderr if file is None else file)


def _run(args: argparse.Namespace) -> int:
    try:
        {
            "train": train_command,
            "predict": predict_command,
            "convert": convert_command,
            "gates": gates_command,
            "gradflow": gradflow_command,
        }[args.command](args)
    except JaxlstmError as error:
        print(f"jaxlstm: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
