"""``jaxlstm forecast``: the next trading days after the data, with calibrated bands and their measured coverage.

``--run BACKTEST`` refits the backtest's recipe on the latest rows (its seeds, in one program) and calibrates on the
backtest's own walk-forward errors; ``--run TRAIN --calibrate-with BACKTEST`` forecasts with a trained model and
calibrates on the backtest's single-seed errors (the backtest must have trained that model's settings). Everything
is checked before anything is trained or written.
"""

import argparse
import sys
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_data_source, output_directory, run_frame, start_jax
from jaxlstm.config import check_count, check_levels, parse_levels
from jaxlstm.errors import ConfigError, RunError, plural

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm forecast``."""
    parser = commands.add_parser(
        "forecast",
        help="forecast the trading days after the data, with calibrated bands",
        description="Forecast the next trading days after the data ends, dated on an exchange's calendar, with "
        "prediction bands (split conformal from a backtest's walk-forward errors, the seeds' spread, the random "
        "walk's) and the coverage the backtest measured for each. Writes forecast.csv and a fan chart.",
    )
    parser.add_argument(
        "--run",
        type=Path,
        required=True,
        help="a `jaxlstm backtest` run (its recipe is refit on the latest rows) or a `jaxlstm train` run",
    )
    parser.add_argument(
        "--calibrate-with",
        type=Path,
        metavar="BACKTEST",
        help="with a train run: the backtest run of the same settings whose errors calibrate the bands",
    )
    add_data_source(parser, missing=True)
    parser.add_argument("--days", type=int, help="trading days to forecast (default: the run's --horizon)")
    parser.add_argument("--calendar", default="NYSE", help="exchange calendar of the days (default: NYSE)")
    parser.add_argument(
        "--levels", type=parse_levels, help="band coverages, comma-separated (default: those the backtest measured)"
    )
    parser.add_argument("--out", type=Path, help="directory for forecast.csv and forecast.png (default: RUN/forecast)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm forecast``."""
    if args.days is not None:
        check_count("--days", args.days, 20)
    if args.levels is not None:
        check_levels("--levels", args.levels)
    start_jax()
    from jaxlstm.data import range_warning
    from jaxlstm.forecasting.forecast import trading_days
    from jaxlstm.runs import FORECAST_DIR, forecast_refit, forecast_run, load_run, read_config, save_forecast

    config = read_config(args.run)
    is_backtest = config.backtest is not None
    if is_backtest and args.calibrate_with is not None:
        raise ConfigError(
            f"--calibrate-with: {args.run} is a backtest run, which calibrates its own forecasts; drop --calibrate-with"
        )
    data = config.data
    frame = run_frame(data, args)
    days = args.days or data.horizon
    trading_days(frame.index[-1], days, args.calendar)  # the calendar is checked before any training
    out = args.out or args.run / FORECAST_DIR
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    if is_backtest:
        result = forecast_refit(
            args.run, frame, days, calendar=args.calendar, levels=args.levels, progress=not args.quiet
        )
    else:
        run = load_run(args.run)
        last_window = frame.iloc[-data.window :]
        warning = range_warning(last_window, data.features, run.feature_scaler, rows="days of the last window")
        if warning is not None:
            print(warning, file=sys.stderr)
        result = forecast_run(
            run,
            frame,
            days,
            calendar=args.calendar,
            calibrate_with=args.calibrate_with,
            levels=args.levels,
            source=f"{config.model.arch} LSTM",
        )
    sessions = plural(days, f"{args.calendar} session")
    title = f"{(args.csv or data.path).stem} {data.target}: next {sessions}, {result.source}"
    save_forecast(output_directory(out), result, title=title, ylabel=f"{data.target} price")
    print(_printout(result, days))
    print(f"wrote {out}/forecast.csv and {out}/forecast.png")


def _printout(result: Any, days: int) -> str:
    """The forecasts with the first method's bands (the first and last days of a long horizon), and the coverage
    the backtest measured for every method and level."""
    method = next(iter(result.bands))
    bands = result.bands[method]
    lines = [
        f"{'date':10} {'step':>4} {'forecast':>10}  " + "  ".join(f"{method} {100 * lv:g}%".center(21) for lv in bands)
    ]
    shown = range(days) if days <= 10 else [*range(5), *range(days - 3, days)]
    for h in shown:
        if h == days - 3 and days > 10:
            lines.append(f"{'...':10} {'...':>4}  steps 6-{days - 3} are in forecast.csv")
        cells = [f"{lower[h]:10.2f}..{upper[h]:<9.2f}" for lower, upper in bands.values()]
        early = " (early close)" if result.early_close[h] else ""
        lines.append(f"{result.dates[h].date()} {h + 1:>4} {result.forecast[h]:10.2f}  " + "  ".join(cells) + early)
    if method == "random walk":
        lines.append(
            f"the random walk's bands are centred on the last price, {result.history.iloc[-1]:.2f}: they are the "
            "bands of persistence's forecast (tomorrow = today), not of the model's; --calibrate-with a backtest "
            "draws conformal bands around the model's forecast"
        )
    for name, levels in result.coverage.items():
        measured = ", ".join(f"{100 * level:g}% band covered {100 * value:.1f}%" for level, value in levels.items())
        lines.append(f"{name} bands in the backtest: the {measured} of the actual prices")
    if not result.coverage:
        lines.append(f"coverage not measured: {result.unmeasured}")
    return "\n".join(lines)
