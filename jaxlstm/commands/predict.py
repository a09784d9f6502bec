"""``jaxlstm predict``: reload a run and predict the next-day target for every window of a CSV (every day of its
horizon, for a direct multi-day model; ``jaxlstm forecast`` dates them on an exchange's calendar)."""

import argparse
import sys
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_data_source, run_frame, start_jax
from jaxlstm.errors import DataError, RunError, plural

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm predict``."""
    parser = commands.add_parser(
        "predict",
        help="predict with a saved run",
        description="Reload a run directory and predict the next-day target for every window of a CSV.",
    )
    parser.add_argument("--run", type=Path, required=True, help="run directory written by `jaxlstm train`")
    add_data_source(parser, missing=True)
    parser.add_argument("--out", type=Path, help="CSV file to write (default: print to standard output)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.set_defaults(handler=run)


def _check_output_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not path.is_dir() and not overwrite:
        raise RunError(f"--out {path} already exists; choose another --out or pass --overwrite")
    if path.is_dir():
        raise RunError(f"--out {path} is a directory; pass a file name such as predictions.csv")
    if not path.parent.is_dir():
        raise RunError(f"--out {path}: directory {path.parent} does not exist; create it or choose another --out")


def run(args: argparse.Namespace) -> None:
    """``jaxlstm predict``: every window of the run's own rows, or of ``--csv`` (with ``--start/--end``)."""
    if args.out is not None:
        _check_output_file(args.out, args.overwrite)
    start_jax()
    import pandas as pd

    from jaxlstm.data import range_warning
    from jaxlstm.fileio import write_atomic
    from jaxlstm.forecasting.predict import predict_prices
    from jaxlstm.runs import load_run

    run = load_run(args.run)
    data = run.config.data
    frame = run_frame(data, args)
    absent = [name for name in data.features if name not in frame.columns]
    if absent:
        raise DataError(
            f"{args.csv or data.path}: no column {absent[0]!r}, but the run {args.run} reads "
            f"{', '.join(data.features)}; pass a --csv with those columns"
        )
    x, dates = run.windows(frame)
    warning = range_warning(frame, data.features, run.feature_scaler)
    if warning is not None:
        print(warning, file=sys.stderr)
    predictions = predict_prices(run.model, x, run.target_scaler).reshape(len(x), -1)  # (windows, outputs)
    target = data.target
    actual = frame[target].reindex(dates).to_numpy() if target in frame.columns else [float("nan")] * len(dates)
    table = pd.DataFrame({"Date": dates.strftime("%Y-%m-%d"), target: actual})
    if predictions.shape[1] == 1:
        table["predicted"] = predictions[:, 0]
    else:  # a direct multi-day model: +1 forecasts the row's Date, +2 the day after, ...
        for day in range(predictions.shape[1]):
            table[f"predicted +{day + 1}"] = predictions[:, day]
    if args.out is None:
        table.to_csv(sys.stdout, index=False, float_format="%.6f", na_rep="")
        return
    try:
        write_atomic(args.out, table.to_csv(index=False, na_rep="").encode())
    except OSError as error:
        raise RunError(f"--out {args.out}: cannot write ({error.strerror}); choose another --out") from None
    print(f"wrote {plural(len(table), 'prediction')} to {args.out}")
