"""The ``jaxlstm`` command: ``train`` a forecaster on a Yahoo CSV, ``predict`` with a saved run.

Every user error (bad file, bad argument, existing output) prints one line and exits with status 2.
"""

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from flax import nnx

from jaxlstm.data import Dataset, load_prices, prediction_windows, prepare, select_dates
from jaxlstm.errors import DataError, JaxlstmError
from jaxlstm.evaluate import Evaluation, evaluate, predict_prices
from jaxlstm.interop import add_convert_parser, convert_command
from jaxlstm.introspect import add_gates_parser, add_gradflow_parser, gates_command, gradflow_command
from jaxlstm.models import ARCHITECTURES, Forecaster, count_parameters, preset
from jaxlstm.plots import plot_loss, plot_predictions
from jaxlstm.runs import (
    CONFIG_FILE,
    SCALERS_FILE,
    check_destination,
    load_run,
    save_model,
    scaler_to_dict,
    write_json,
    write_run,
)
from jaxlstm.train import History, TrainConfig, fit, use_cpu_cores

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

    write_run(out, write, overwrite=True)


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


def train_command(args: argparse.Namespace) -> None:
    """``jaxlstm train``."""
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
    check_destination(args.out, overwrite=args.overwrite)
    csv = args.csv or BUNDLED_CSV
    last_rows = args.last_rows
    if args.csv is None and args.start is None and args.end is None and last_rows is None:
        last_rows = TUTORIAL_ROWS
    frame = load_frame(csv, start=args.start, end=args.end, last_rows=last_rows, missing=args.missing)
    dataset = prepare(frame, features=args.features, target=args.target, window=args.window, split=args.split)

    model = Forecaster(model_config, rngs=nnx.Rngs(args.seed))
    history = fit(model, dataset.x_train, dataset.y_train, train_config, progress=not args.quiet)
    evaluation = evaluate(model, dataset)
    config = {
        "model": model_config.to_dict(),
        "train": dataclasses.asdict(train_config),
        "data": {
            "csv": str(csv),
            "start": str(frame.index[0].date()),
            "end": str(frame.index[-1].date()),
            "features": list(dataset.features),
            "target": dataset.target,
            "window": dataset.window,
            "split": args.split,
            "missing": args.missing,
        },
    }
    _write_train_run(args.out, config, model, dataset, history, evaluation)
    print(_report(evaluation, history, args.out))


def predict_command(args: argparse.Namespace) -> None:
    """``jaxlstm predict``."""
    run = load_run(args.run)
    data = run.config["data"]
    csv = args.csv or Path(data["csv"])
    frame = select_dates(load_prices(csv, missing=args.missing), args.start, args.end)
    x, dates = prediction_windows(
        frame,
        features=data["features"],
        target=data["target"],
        window=data["window"],
        feature_scaler=run.feature_scaler,
    )
    predictions = predict_prices(run.model, x, run.target_scaler)
    actual = frame[data["target"]].reindex(dates).to_numpy()
    table = pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), data["target"]: actual, "predicted": predictions})
    if args.out is None:
        table.to_csv(sys.stdout, index=False, float_format="%.6f", na_rep="")
    else:
        table.to_csv(args.out, index=False, na_rep="")
        print(f"wrote {len(table)} predictions to {args.out}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for user errors, with a one-line message)."""
    args = build_parser().parse_args(argv)
    use_cpu_cores()
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
