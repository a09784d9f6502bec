"""``jaxlstm gates``: every gate of a trained run over one window, as heatmaps and state lines."""

import argparse
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_data_source, output_directory, run_frame, start_jax
from jaxlstm.errors import ConfigError, plural

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm gates``."""
    parser = commands.add_parser(
        "gates",
        help="plot every gate of a trained run over one window (heatmaps and state lines)",
        description="Trace the input, forget, candidate and output gates and the states c and h of every layer and "
        "direction over one window of the run's data, and write one heatmap figure (gate x unit x day) and one "
        "line plot of c and h per layer and direction.",
    )
    parser.add_argument("--run", type=Path, required=True, help="run directory written by `jaxlstm train`")
    add_data_source(parser)
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--window-index",
        type=int,
        help="window number among all windows of the data (0 = the first 60 days; negative counts from the end, "
        "-1 being the window that forecasts the day after the data; default: the last test window)",
    )
    which.add_argument("--date", help="the window that forecasts this day, YYYY-MM-DD")
    parser.add_argument("--out", type=Path, help="directory for the PNG files (default: RUN/gates)")
    parser.set_defaults(handler=run)


def _choose_window(args: argparse.Namespace, targets: Any) -> int:
    import numpy as np
    import pandas as pd

    count = len(targets)
    if args.date is not None:
        try:
            day = pd.Timestamp(args.date)
        except ValueError:
            raise ConfigError(f"--date {args.date!r} is not a date; use YYYY-MM-DD") from None
        matches = np.flatnonzero(targets == day)
        if not len(matches):
            raise ConfigError(
                f"no window forecasts {args.date}: pass a trading day from {targets[0].date()} to {targets[-1].date()}"
            )
        return int(matches[0])
    if args.window_index is None:
        return max(count - 2, 0)  # the last window whose next day is in the data: the run's last test window
    if not -count <= args.window_index < count:
        raise ConfigError(
            f"--window-index {args.window_index} is out of range; the data has {plural(count, 'window')} "
            f"(0..{count - 1})"
        )
    return args.window_index % count


def run(args: argparse.Namespace) -> None:
    """``jaxlstm gates``."""
    start_jax()
    import numpy as np

    from jaxlstm.introspect import GATE_NAMES, trace_gates
    from jaxlstm.runs import GATES_DIR, load_run
    from jaxlstm.runs.plots import plot_gate_heatmaps, plot_states

    run = load_run(args.run)
    frame = run_frame(run.config.data, args)
    x, targets = run.windows(frame)
    index = _choose_window(args, targets)
    config = run.config.model
    dates = frame.index[index : index + run.config.data.window]
    traces = trace_gates(run.model, x[index : index + 1])
    out = output_directory(args.out or args.run / GATES_DIR)
    if config.arch == "conv":
        length = config.subsequence_length
        labels = [f"{dates[s].strftime('%m-%d')}..{dates[s + length - 1].date()}" for s in range(0, len(dates), length)]
        xlabel = f"ConvLSTM step ({length} input days each)"
    else:
        labels, xlabel = [str(day.date()) for day in dates], "input day (time step)"
    prices = run.feature_scaler.inverse_transform(x[index])
    span = f"window {dates[0].date()}..{dates[-1].date()} -> forecasts {targets[index].date()}"
    print(f"{'layer':>5} {'direction':9} {'mean i':>7} {'mean f':>7} {'mean g':>7} {'mean o':>7} {'max |c|':>8}")
    written = 0
    for trace in traces:
        name = f"layer{trace.layer}-{trace.direction}"
        title = f"{args.run.name}: layer {trace.layer} ({trace.direction}), {span}"
        plot_gate_heatmaps(trace, labels, out / f"gates-{name}.png", title=title, xlabel=xlabel)
        features = run.config.data.features
        plot_states(trace, labels, out / f"states-{name}.png", title=title, inputs=prices, input_names=features)
        written += 2
        means = " ".join(f"{float(np.mean(getattr(trace, gate))):7.3f}" for gate in GATE_NAMES)
        print(f"{trace.layer:>5} {trace.direction:9} {means} {float(np.abs(trace.c).max()):8.3f}")
    print(f"{span}; wrote {plural(written, 'figure')} to {out}/")
