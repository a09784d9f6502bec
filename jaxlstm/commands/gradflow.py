"""``jaxlstm gradflow``: how far back in the window the prediction's gradient reaches, LSTM against tanh RNN."""

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_config_options, add_data_source, output_directory, start_jax
from jaxlstm.commands.gates import run_frame
from jaxlstm.config import DataConfig, ModelConfig, TrainConfig, check_count, preset
from jaxlstm.errors import ConfigError

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm gradflow``."""
    parser = commands.add_parser(
        "gradflow",
        help="plot how far back in the window the prediction's gradient reaches (LSTM vs tanh RNN)",
        description="Plot the mean norm of d(prediction)/d(input k days back) against k, on a log scale, for a "
        "trained run or a fresh model, beside untrained LSTMs with forget bias 0 and 1 and plain tanh RNNs.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run directory written by `jaxlstm train`")
    source.add_argument("--fresh", action="store_true", help="an untrained model built from --arch/--layers/--units")
    add_data_source(parser)
    fresh = parser.add_argument_group("fresh model (default: vanilla)")
    add_config_options(fresh, ModelConfig, ("arch", "layers", "units"))
    fresh.add_argument(
        "--forget-bias", type=float, default=1.0, help="forget-gate bias of the untrained LSTM (drawn beside 0 and 1)"
    )
    parser.add_argument(
        "--train-rnn",
        action="store_true",
        help="with --run: also train tanh RNNs of the run's width and depth with the run's settings and data, and "
        "plot their curves (one short training per RNN initialisation)",
    )
    parser.add_argument("--windows", type=int, default=58, help="average over the last N windows of the data")
    parser.add_argument("--seed", type=int, default=0, help="seeds the untrained models")
    parser.add_argument("--out", type=Path, help="directory for gradflow.png/json (default: RUN/gradflow)")
    parser.set_defaults(handler=run)


def _trained_rnn_curves(run: Any, frame: Any, x: Any) -> tuple[dict, dict]:
    """Gradient-flow curves of tanh RNNs (Keras and PyTorch initialisations) of the run's width and depth, trained
    with the run's settings (the tutorial's for a converted run) on the training windows of ``frame``; and the test
    RMSE (price units) of the run's model, of each RNN and of the naive baseline: how far back a model looks says
    nothing of how well it forecasts."""
    from flax import nnx

    from jaxlstm.data import prepare_as
    from jaxlstm.evaluate import evaluate
    from jaxlstm.introspect import gradient_flow
    from jaxlstm.rnn import RNNForecaster
    from jaxlstm.train import fit

    dataset = prepare_as(frame, run.config.data)
    train = dataclasses.replace(run.config.train or TrainConfig(), devices=None)
    config = run.config.model
    depth = config.layers if config.arch != "conv" else 1
    evaluation = evaluate(run.model, dataset)
    curves, rmse = {}, {"naive": evaluation.naive.rmse, "run": evaluation.model.rmse}
    for init, name in (("torch", "PyTorch"), ("keras", "Keras")):
        options = {"layers": depth, "init": init, "outputs": config.outputs}
        rnn = RNNForecaster(config.n_features, config.units, **options, rngs=nnx.Rngs(train.seed))
        fit(rnn, dataset.x_train, dataset.y_train, train, progress=False)
        label = f"tanh RNN, {name} init, trained like the run"
        curves[label], rmse[label] = gradient_flow(rnn, x), evaluate(rnn, dataset).model.rmse
    return curves, rmse


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
    config = None if args.run is not None else preset(args.arch or "vanilla", layers=args.layers, units=args.units)
    start_jax()
    from jaxlstm.data import load_frame, prepare_as
    from jaxlstm.fileio import write_atomic
    from jaxlstm.introspect import decay_per_step, fresh_curves, gradient_flow
    from jaxlstm.plots import plot_gradient_flow
    from jaxlstm.runs import load_run

    curves: dict[str, Any] = {}
    rmse: dict[str, float] = {}
    biases = (args.forget_bias, *(b for b in (1.0, 0.0) if b != args.forget_bias))
    if args.run is not None:
        run = load_run(args.run)
        frame = run_frame(run, args)
        x, _ = run.windows(frame)
        x = x[:-1][-args.windows :] if len(x) > 1 else x
        config = run.model.config
        curves[f"trained: {args.run.name} ({config.arch})"] = gradient_flow(run.model, x)
        if args.train_rnn:
            rnn_curves, rmse = _trained_rnn_curves(run, frame, x)
            curves.update(rnn_curves)
        out = args.out or args.run / "gradflow"
        others = "tanh RNNs trained alike and untrained models" if args.train_rnn else "untrained models"
        title = f"Gradient flow through time: {args.run.name} against {others}"
    else:
        data = DataConfig(csv=args.csv, start=args.start, end=args.end)
        x = prepare_as(load_frame(data), data).x_test[-args.windows :]
        out = args.out or Path("runs/gradflow")
        title = f"Gradient flow through time: untrained {config.arch} LSTM ({config.units} units) and tanh RNNs"
    curves.update(fresh_curves(config, x, seed=args.seed, forget_biases=biases))
    output_directory(out)
    plot_gradient_flow(curves, out / "gradflow.png", title=title)
    summary = {
        name: {
            "norms": [float(n) for n in norms],
            "relative_at_lag": {
                str(k): float(norms[k] / norms[0]) for k in (1, 5, 10, 20, 30, len(norms) - 1) if k < len(norms)
            },
            "decay_per_step": decay_per_step(norms),
        }
        for name, norms in curves.items()
    }
    content = {"windows": len(x), "curves": summary, **({"test_rmse": rmse} if rmse else {})}
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
    print(f"averaged over {len(x)} windows; wrote {out}/gradflow.png and gradflow.json")
