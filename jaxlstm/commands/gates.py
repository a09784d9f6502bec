"""``jaxlstm gates``: every gate of a trained run over one window, as heatmaps and state lines, and with ``--html`` a
gate explorer page to move through in a browser."""

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
        help="plot every gate of a trained run over one window (heatmaps, state lines, --html explorer)",
        description="Trace every gate and state of every layer and direction (the LSTM's i, f, g, o, c, h; the "
        "GRU's z, r, n, h; the RNN's h) over one window of the run's data, and write one heatmap figure (gate x unit "
        "x day) and one line plot of the states per layer and direction; with --html also gates.html, one "
        "self-contained page (no network) with sliders over the days and units.",
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
    parser.add_argument(
        "--html", action="store_true", help="also write gates.html: the gate explorer, to open in any browser"
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="also write saturation.png (each gate's share of steps below 0.1 and above 0.9, per unit, over every "
        "window of the data; Karpathy et al. 2015) and connectivity.png (|| d h_t / d x_s || over the window)",
    )
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

    from jaxlstm.fileio import write_atomic
    from jaxlstm.introspect import LEFT, RIGHT, connectivity, saturation, trace_gates
    from jaxlstm.introspect.explorer import explorer_html, trace_layers
    from jaxlstm.runs import GATES_DIR, load_run
    from jaxlstm.runs.plots import plot_connectivity, plot_gate_heatmaps, plot_saturation, plot_states

    run = load_run(args.run)
    frame = run_frame(run.config.data, args)
    x, targets = run.windows(frame)
    index = _choose_window(args, targets)
    config = run.config.model
    if args.html and config.arch == "conv":
        raise ConfigError("--html draws one value per unit and step; a conv run's gates are per position: drop --html")
    if args.stats and config.arch == "conv":
        raise ConfigError("--stats reads one hidden state per step; a conv run's are per position: drop --stats")
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
    header = " ".join(f"{'mean ' + traces[0].labels[gate].split()[-1]:>7}" for gate in traces[0].gates)
    first_state = next(iter(traces[0].states))  # c for an LSTM, h for the GRU and the RNN
    print(f"{'layer':>5} {'direction':9} {header} {'max |' + first_state + '|':>8}")
    written = 0
    for trace in traces:
        name = f"layer{trace.layer}-{trace.direction}"
        title = f"{args.run.name}: layer {trace.layer} ({trace.direction}), {span}"
        plot_gate_heatmaps(trace, labels, out / f"gates-{name}.png", title=title, xlabel=xlabel)
        features = run.config.data.features
        plot_states(trace, labels, out / f"states-{name}.png", title=title, inputs=prices, input_names=features)
        written += 2
        means = " ".join(f"{float(np.mean(values)):7.3f}" for values in trace.gates.values())
        print(f"{trace.layer:>5} {trace.direction:9} {means} {float(np.abs(trace.states[first_state]).max()):8.3f}")
    if args.html:
        page = explorer_html(
            prices,
            trace_layers(traces),
            feature_names=run.config.data.features,
            time_labels=labels,
            title=f"{args.run.name}: the gates of {span}",
            notes=f"{config.arch} {traces[0].cell}, {plural(len(traces), 'layer direction')}; inputs in price units",
        )
        write_atomic(out / "gates.html", page.encode())
        written += 1
    if args.stats:
        records = saturation(trace_gates(run.model, x))
        plot_saturation(records, out / "saturation.png", title=f"{args.run.name}: gate saturation, {len(x)} windows")
        matrix = connectivity(run.model, x[index : index + 1])
        plot_connectivity(matrix, out / "connectivity.png", title=f"{args.run.name}: || d h_t / d x_s ||, {span}")
        written += 2
        print(f"share of steps each gate spends below {LEFT} / above {RIGHT}, mean over the units, {len(x)} windows:")
        for record in records:
            print(
                f"  layer {record.layer} {record.direction:8} {record.label:14} {float(record.left.mean()):6.3f} / "
                f"{float(record.right.mean()):6.3f}"
            )
    print(f"{span}; wrote {plural(written, 'file')} to {out}/")
