"""``jaxlstm gradflow``: how far back in the window the prediction's gradient reaches, LSTM against tanh RNN."""

import argparse
import json
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_config_options, add_data_source, output_directory, run_frame, start_jax
from jaxlstm.config import DataConfig, ModelConfig, check_count, preset
from jaxlstm.errors import ConfigError, plural

__all__ = ["FRESH_ARCH", "add_parser", "run"]

FRESH_ARCH = "vanilla"
"""The architecture of a ``--fresh`` model without ``--arch`` (train's default is stacked)."""


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm gradflow``."""
    parser = commands.add_parser(
        "gradflow",
        help="plot how far back in the window the prediction's gradient reaches (LSTM vs tanh RNN)",
        description="Plot the mean norm of d(prediction)/d(input k days back) against k, on a log scale, for a "
        "trained run or a fresh model, beside untrained LSTMs with forget bias 0 and 1 and plain tanh RNNs.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run directory written by `jaxlstm train` or `jaxlstm lab`")
    source.add_argument("--fresh", action="store_true", help="an untrained model built from --arch/--layers/--units")
    add_data_source(parser)
    fresh = parser.add_argument_group("fresh model")
    add_config_options(
        fresh, ModelConfig, ("arch", "layers", "units"), helps={"arch": f"LSTM variant (default: {FRESH_ARCH})"}
    )
    fresh.add_argument(
        "--forget-bias",
        type=float,
        default=1.0,
        help="forget-gate bias of the untrained LSTM, drawn beside 0 and 1 (default: 1.0)",
    )
    parser.add_argument(
        "--train-rnn",
        action="store_true",
        help="with --run: also train tanh RNNs of the run's width and depth with the run's settings and data, and "
        "plot their curves (one short training per RNN initialisation)",
    )
    parser.add_argument(
        "--windows", type=int, default=58, help="average over the last N windows of the data (default: 58)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds the untrained models (default: 0)")
    parser.add_argument("--out", type=Path, help="directory for gradflow.png/json (default: RUN/gradflow)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm gradflow``."""
    check_count("--windows", args.windows, 58)
    fresh_options = [
        flag
        for flag, value in (("--arch", args.arch), ("--layers", args.layers), ("--units", args.units))
        if value is not None
    ]
    if args.run is not None and fresh_options:
        raise ConfigError(f"{', '.join(fresh_options)} describe a --fresh model; with --run the run's model is used")
    if args.run is None and args.train_rnn:
        raise ConfigError("--train-rnn trains RNNs like a run: pass --run runs/NAME")
    config = None if args.run is not None else preset(args.arch or FRESH_ARCH, layers=args.layers, units=args.units)
    start_jax()
    from jaxlstm.data import load_frame, prepare_as
    from jaxlstm.fileio import write_atomic
    from jaxlstm.introspect import curve_summary, decay_per_step, fresh_curves, gradient_flow, trained_rnn_curves
    from jaxlstm.runs import GRADFLOW_DIR, LAB_FILE, load_run
    from jaxlstm.runs.plots import plot_gradient_flow

    curves: dict[str, Any] = {}
    rmse: dict[str, float] = {}
    biases = (args.forget_bias, *(b for b in (1.0, 0.0) if b != args.forget_bias))
    if args.run is not None and (args.run / LAB_FILE).exists():
        if args.train_rnn:
            raise ConfigError("--train-rnn is for a train run; a lab run holds its trained tanh RNNs (--cells rnn)")
        x, curves, title = _lab_curves(args.run, args.windows)
        out, steps = args.out or args.run / GRADFLOW_DIR, "steps"
    elif args.run is not None:
        run = load_run(args.run)
        frame = run_frame(run.config.data, args)
        x, _ = run.windows(frame)
        x = x[:-1][-args.windows :] if len(x) > 1 else x
        config = run.model.config
        curves[f"trained: {args.run.name} ({config.arch})"] = gradient_flow(run.model, x)
        if args.train_rnn:
            rnn_curves, rmse = trained_rnn_curves(run.model, config, run.config.data, run.config.train, frame, x)
            curves.update(rnn_curves)
        out, steps = args.out or args.run / GRADFLOW_DIR, "days"
        others = "tanh RNNs trained alike and untrained models" if args.train_rnn else "untrained models"
        title = f"Gradient flow through time: {args.run.name} against {others}"
        curves.update(fresh_curves(config, x, seed=args.seed, forget_biases=biases))
    else:
        data = DataConfig(csv=args.csv, start=args.start, end=args.end)
        x = prepare_as(load_frame(data), data).x_test[-args.windows :]
        out, steps = args.out or Path("runs/gradflow"), "days"
        title = (
            f"Gradient flow through time: untrained {config.arch} LSTM ({plural(config.units, 'unit')}) and tanh RNNs"
        )
        curves.update(fresh_curves(config, x, seed=args.seed, forget_biases=biases))
    output_directory(out)
    plot_gradient_flow(curves, out / "gradflow.png", title=title, steps=steps)
    content = {"windows": len(x), "curves": curve_summary(curves), **({"test_rmse": rmse} if rmse else {})}
    write_atomic(out / "gradflow.json", (json.dumps(content, indent=2) + "\n").encode())
    last = len(x[0]) - 1
    middle = min(10, last)
    print(f"{'':44} {'lag 0':>10} {f'lag {middle} / 0':>11} {f'lag {last} / 0':>11} {'per step':>9}")
    for name, norms in curves.items():
        print(
            f"{name:44} {norms[0]:10.3g} {norms[middle] / norms[0]:11.3g} {norms[-1] / norms[0]:11.3g} "
            f"{decay_per_step(norms):9.3f}"
        )
    if rmse:
        print("test RMSE (price units): " + "; ".join(f"{name} {value:.2f}" for name, value in rmse.items()))
    print(f"averaged over {plural(len(x), 'window')}; wrote {out}/gradflow.png and gradflow.json")


def _lab_curves(directory: Path, windows: int) -> tuple[Any, dict[str, Any], str]:
    """The gradient flow of every trained cell of a lab run at each lag (seed 0), over ``windows`` fresh test
    sequences of the longest lag: the sequences, the curves and the figure's title."""
    from jaxlstm.introspect.lab import LAB_TASKS, lab_gradient_flow
    from jaxlstm.runs.lab import read_lab_models

    settings, models = read_lab_models(directory)
    lag = max(settings.lags)
    task = LAB_TASKS[settings.task]
    x = task.make(windows, lag, 1).inputs
    curves = {
        f"{cell}, trained (seed 0)": lab_gradient_flow(task, trained[0], x)
        for (cell, at), trained in models.items()
        if at == lag
    }
    return x, curves, f"Gradient flow through time: the cells of {directory.name} ({settings.task}, T = {lag})"
