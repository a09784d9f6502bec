"""Looking inside the LSTM: every gate over a real window, and how far back a gradient reaches.

- :func:`trace_gates` runs a model (or one layer) over windows and returns, for every layer and direction, the
  input, forget, candidate and output gates and the states ``c`` and ``h`` at every time step. It calls the one
  copy of the gate equations, :func:`jaxlstm.cell.lstm_update`, in a scan that also emits the gates; stacked
  layers read the previous layer's (merged) outputs without dropout, as at inference.
- :func:`gradient_flow` measures ``|| d prediction / d x_{t-k} ||`` for every lag ``k``: how much the prediction
  still depends on the input ``k`` days before the last one. :mod:`jaxlstm.rnn` gives the plain tanh RNN to compare.
- ``jaxlstm gates`` and ``jaxlstm gradflow`` draw both for a saved run (see docs/tour.md).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.models import Forecaster, preset
>>> model = Forecaster(preset("stacked", layers=2, units=8), rngs=nnx.Rngs(0))
>>> x = jnp.linspace(0, 1, 2 * 20).reshape(2, 20, 1)      # 2 windows of 20 days, 1 feature
>>> traces = trace_gates(model, x)
>>> [(t.layer, t.direction, t.forget.shape) for t in traces]
[(0, 'forward', (2, 20, 8)), (1, 'forward', (2, 20, 8))]
>>> bool(jnp.allclose(model.head(traces[-1].h[:, -1])[:, 0], model(x), atol=1e-6))
True
>>> gradient_flow(model, x).shape            # one norm per lag, lag 0 = the last day of the window
(20,)
"""

import argparse
import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import matplotlib
import numpy as np
import pandas as pd
from flax import nnx

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from jaxlstm.cell import Gates, LSTMState, lstm_update
from jaxlstm.convlstm import ConvLSTM, to_subsequences
from jaxlstm.errors import ConfigError, RunError
from jaxlstm.layers import LSTM, Bidirectional, Stacked, merge
from jaxlstm.models import ARCHITECTURES, Forecaster, ModelConfig
from jaxlstm.rnn import RNNForecaster

Array = jax.Array
GATE_NAMES = ("input", "forget", "candidate", "output")


class GateTrace(NamedTuple):
    """One layer and direction over a batch of windows: the four gates and both states at every time step.

    Every array is (batch, time, units) for an LSTM and (batch, time, *positions, filters) for a ConvLSTM;
    ``[:, t]`` is the step that read input ``t`` (for the backward direction too: it reads the window from the
    end, so its ``[:, 0]`` is its last step).

    Attributes:
        layer: index of the layer in the stack (0 = the one reading the input).
        direction: ``forward`` or ``backward``.
        input, forget, candidate, output: the gates i, f, g, o.
        c: the cell state after each step.
        h: the hidden state (the layer's output) after each step.
    """

    layer: int
    direction: str
    input: Array
    forget: Array
    candidate: Array
    output: Array
    c: Array
    h: Array


# --- gate traces ------------------------------------------------------------------------------------------


def _scan_with_gates(
    projected: Array, project_state: Callable[[Array], Array], initial_state: LSTMState, reverse: bool
) -> tuple[Gates, LSTMState]:
    """``z_t = projected_t + project_state(h_{t-1})``, then :func:`lstm_update`: the gates and states, time-major."""

    def step(state: LSTMState, projected_t: Array) -> tuple[LSTMState, tuple[Gates, LSTMState]]:
        new_state, gates = lstm_update(projected_t + project_state(state.h), state.c)
        return new_state, (gates, new_state)

    _, (gates, states) = jax.lax.scan(step, initial_state, projected, reverse=reverse)
    return gates, states


def _trace_cell_layer(layer: LSTM | ConvLSTM, x: Array, index: int) -> tuple[list[GateTrace], Array]:
    if isinstance(layer, LSTM):
        params = layer.params
        projected = jnp.swapaxes(x, 0, 1) @ params.W + params.b  # as the fused path hoists it

        def project_state(h: Array) -> Array:
            return h @ params.U

        state_shape = (x.shape[0], layer.hidden_size)
    else:
        projected, project_state = layer.project_inputs(x), layer.project_state
        state_shape = (*projected.shape[1:-1], layer.filters)
    zeros = jnp.zeros(state_shape, x.dtype)
    gates, states = _scan_with_gates(projected, project_state, LSTMState(zeros, zeros), layer.reverse)
    batch_major = [jnp.swapaxes(a, 0, 1) for a in (*gates, states.c, states.h)]
    trace = GateTrace(index, "backward" if layer.reverse else "forward", *batch_major)
    if layer.return_sequences:
        return [trace], trace.h
    return [trace], trace.h[:, 0] if layer.reverse else trace.h[:, -1]


def _trace_layer(layer: Any, x: Array, index: int) -> tuple[list[GateTrace], Array]:
    if isinstance(layer, Bidirectional):
        forward, forward_out = _trace_layer(layer.forward_layer, x, index)
        backward, backward_out = _trace_layer(layer.backward_layer, x, index)
        return forward + backward, merge(forward_out, backward_out, layer.merge_mode)
    if isinstance(layer, LSTM | ConvLSTM):
        return _trace_cell_layer(layer, x, index)
    raise TypeError(f"cannot trace the gates of a {type(layer).__name__}; pass a Forecaster, Stacked, LSTM, ...")


def trace_gates(model: Forecaster | Stacked | Bidirectional | LSTM | ConvLSTM, x: Array) -> tuple[GateTrace, ...]:
    """The gates and states of every layer and direction of ``model`` over windows ``x``.

    Args:
        model: a :class:`~jaxlstm.models.Forecaster` or a recurrent layer (``Stacked``, ``Bidirectional``,
            ``LSTM``, ``ConvLSTM``).
        x: windows (batch, time, features); for a ConvLSTM layer (batch, time, *spatial, channels). A ``conv``
            Forecaster cuts its windows into sub-sequences first, as its ``__call__`` does.

    Returns:
        One :class:`GateTrace` per layer and direction, in order (layer 0 forward, layer 0 backward, layer 1 ...).
        Stacked layers read the previous layer's merged outputs with no dropout (inference mode), so the last
        layer's ``h`` gives the model's prediction: ``head(h[:, -1])`` (bidirectional: concatenated with the
        backward ``h[:, 0]``).
    """
    graphdef, state = nnx.split(model)
    x = jnp.asarray(x, jnp.float32)
    if isinstance(model, Forecaster) and model.config.arch == "conv":
        x = to_subsequences(x, model.config.subsequence_length)
    arrays = _trace_arrays(graphdef, state, x)
    labels = [(index, direction) for index, layer in enumerate(_layers(model)) for direction in _directions(layer)]
    return tuple(
        GateTrace(index, direction, *values) for (index, direction), values in zip(labels, arrays, strict=True)
    )


def _layers(model: nnx.Module) -> list[nnx.Module]:
    model = model.recurrent if isinstance(model, Forecaster) else model
    return list(model.layers) if isinstance(model, Stacked) else [model]


def _directions(layer: nnx.Module) -> list[str]:
    if isinstance(layer, Bidirectional):
        return _directions(layer.forward_layer) + _directions(layer.backward_layer)
    return ["backward" if layer.reverse else "forward"]


@partial(jax.jit, static_argnums=0)  # one program per architecture and input shape
def _trace_arrays(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> list[tuple[Array, ...]]:
    traces: list[GateTrace] = []
    for index, layer in enumerate(_layers(nnx.merge(graphdef, state))):
        layer_traces, x = _trace_layer(layer, x, index)
        traces += layer_traces
    return [tuple(trace[2:]) for trace in traces]


# --- gradient flow through time ---------------------------------------------------------------------------


def gradient_flow(model: Callable[[Array], Array], x: Array) -> np.ndarray:
    """How much the prediction depends on the input ``k`` steps before the last one, for every lag ``k``.

    Args:
        model: maps windows (batch, time, features) to predictions (batch,), e.g. a
            :class:`~jaxlstm.models.Forecaster` (called without dropout) or a :class:`~jaxlstm.rnn.RNNForecaster`.
        x: windows (batch, time, features).

    Returns:
        ``norms`` (time,): ``norms[k]`` is the mean over the windows of ``|| d y / d x[:, time - 1 - k] ||_2`` (the
        norm over features), so ``norms[0]`` is the sensitivity to the last day and ``norms[time - 1]`` to the first.
        Each prediction depends on its own window only, so one gradient of the sum gives every window's gradient.
    """
    x = jnp.asarray(x, jnp.float32)
    if isinstance(model, nnx.Module):  # compiled once per architecture, whatever the weights
        graphdef, state = nnx.split(model)
        return np.asarray(_module_flow(graphdef, state, x), np.float64)
    return np.asarray(_flow(model, x), np.float64)


def _flow(model: Callable[[Array], Array], x: Array) -> Array:
    grads = jax.grad(lambda x: jnp.sum(model(x)))(x)
    return jnp.linalg.norm(grads, axis=-1).mean(axis=0)[::-1]


@partial(jax.jit, static_argnums=0)
def _module_flow(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> Array:
    return _flow(nnx.merge(graphdef, state), x)


def decay_per_step(norms: np.ndarray) -> float:
    """The geometric-mean factor by which the norm changes per step of lag: ``(n[-1] / n[0]) ** (1 / (T - 1))``."""
    return float((norms[-1] / norms[0]) ** (1.0 / (len(norms) - 1)))


def set_forget_bias(model: nnx.Module, value: float) -> None:
    """Sets the forget-gate slice of the bias of every LSTM and ConvLSTM layer in ``model`` to ``value``, in place."""
    for _, module in nnx.iter_modules(model):
        if isinstance(module, LSTM):
            size = module.hidden_size
            module.b[...] = module.b[...].at[size : 2 * size].set(value)
        elif isinstance(module, ConvLSTM):
            size = module.filters
            module.bias[...] = module.bias[...].at[size : 2 * size].set(value)


def fresh_curves(config: ModelConfig, x: Array, *, seed: int = 0, forget_biases: Sequence[float] = (1.0, 0.0)) -> dict:
    """Gradient-flow curves of untrained models on windows ``x``: the LSTM ``config`` with each forget bias (same
    weights otherwise) and tanh RNNs of the same width and depth, initialised as Keras and as PyTorch do."""
    curves = {}
    for bias in forget_biases:
        model = Forecaster(config, rngs=nnx.Rngs(seed))
        set_forget_bias(model, bias)
        curves[f"LSTM, forget bias {bias:g} (untrained)"] = gradient_flow(model, x)
    depth = config.layers if config.arch != "conv" else 1
    for init, name in (("torch", "PyTorch"), ("keras", "Keras")):
        rnn = RNNForecaster(config.n_features, config.units, layers=depth, init=init, rngs=nnx.Rngs(seed))
        curves[f"tanh RNN, {name} init (untrained)"] = gradient_flow(rnn, x)
    return curves


def trained_rnn_curves(run: Any, frame: pd.DataFrame, x: Array) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Gradient-flow curves of tanh RNNs (Keras and PyTorch initialisations) of the run's width and depth, trained
    with the run's settings (epochs, batch size, learning rate, seed) on the training windows of ``frame``.

    Also returns the test RMSE (price units) of the run's model, of each RNN and of the naive baseline on ``frame``'s
    test days: how far back a model looks says nothing of how well it forecasts.
    """
    from jaxlstm.data import prepare
    from jaxlstm.evaluate import evaluate
    from jaxlstm.train import TrainConfig, fit

    data, config = run.config["data"], run.model.config
    dataset = prepare(
        frame, features=data["features"], target=data["target"], window=data["window"], split=data["split"]
    )
    names = {field.name for field in dataclasses.fields(TrainConfig)} - {"devices"}
    train_config = TrainConfig(**{k: v for k, v in run.config.get("train", {}).items() if k in names})
    depth = config.layers if config.arch != "conv" else 1
    evaluation = evaluate(run.model, dataset)
    curves, rmse = {}, {"naive": evaluation.naive.rmse, "run": evaluation.model.rmse}
    for init, name in (("torch", "PyTorch"), ("keras", "Keras")):
        rnn = RNNForecaster(config.n_features, config.units, layers=depth, init=init, rngs=nnx.Rngs(train_config.seed))
        fit(rnn, dataset.x_train, dataset.y_train, train_config, progress=False)
        label = f"tanh RNN, {name} init, trained like the run"
        curves[label], rmse[label] = gradient_flow(rnn, x), evaluate(rnn, dataset).model.rmse
    return curves, rmse


# --- figures ----------------------------------------------------------------------------------------------


def _save(fig: plt.Figure, path: Path) -> None:
    """Writes a PNG atomically: a hidden temporary file beside ``path``, renamed into place."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)


def _time_axis(ax: plt.Axes, labels: Sequence[str], every: int | None = None) -> None:
    every = every or max(1, len(labels) // 8)
    ticks = list(range(0, len(labels), every))
    if ticks[-1] != len(labels) - 1:
        ticks.append(len(labels) - 1)
    ax.set_xticks(ticks, [labels[t] for t in ticks], rotation=30, ha="right", fontsize=8)


def plot_gate_heatmaps(
    trace: GateTrace,
    time_labels: Sequence[str],
    path: Path,
    *,
    title: str,
    sample: int = 0,
    xlabel: str = "input day (time step)",
) -> None:
    """One figure, six panels: the gates i, f, g, o and the states c, h of one window, as units x time images."""
    panels = [  # colour scales fit each panel's values (gates: their range; signed values: symmetric about 0)
        ("input gate i", trace.input, "viridis", False),
        ("forget gate f", trace.forget, "viridis", False),
        ("cell candidate g", trace.candidate, "RdBu_r", True),
        ("output gate o", trace.output, "viridis", False),
        ("cell state c", trace.c, "RdBu_r", True),
        ("hidden state h", trace.h, "RdBu_r", True),
    ]
    units = "unit" if trace.h.ndim == 3 else f"position x filter ({' x '.join(map(str, trace.h.shape[2:]))})"
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 14), sharex=True)  # manual layout: 2x faster to draw
    fig.subplots_adjust(left=0.07, right=0.95, top=0.94, bottom=0.08, hspace=0.3)
    for ax, (name, values, cmap, signed) in zip(axes, panels, strict=True):
        image = np.asarray(values[sample]).reshape(len(time_labels), -1).T  # (units, time)
        low, high = float(image.min()), float(image.max())
        bound = max(abs(low), abs(high)) or 1.0
        limits = (-bound, bound) if signed else (low, max(high, low + 1e-6))
        shown = ax.imshow(image, aspect="auto", cmap=cmap, vmin=limits[0], vmax=limits[1], interpolation="nearest")
        ax.set(ylabel=units, title=f"{name}  (values {low:.2f} .. {high:.2f})")
        fig.colorbar(shown, ax=ax, pad=0.01, fraction=0.03)
    _time_axis(axes[-1], time_labels)
    axes[-1].set_xlabel(xlabel)
    fig.suptitle(title)
    _save(fig, path)


def plot_states(
    trace: GateTrace,
    time_labels: Sequence[str],
    path: Path,
    *,
    title: str,
    inputs: np.ndarray | None = None,
    input_names: Sequence[str] = (),
    sample: int = 0,
) -> None:
    """Line plots over the window: the input (price units) when given, then ``c`` and ``h`` of every unit."""
    rows = 3 if inputs is not None else 2
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3 * rows + 1), sharex=True, layout="constrained")
    steps = np.arange(len(time_labels))
    if inputs is not None:
        for column, name in enumerate(input_names):
            days = (np.arange(len(inputs)) + 1) * len(time_labels) / len(inputs) - 1  # a ConvLSTM step reads days
            axes[0].plot(days, inputs[:, column], label=name)
        axes[0].set(ylabel="price", title="input window")
        axes[0].legend(fontsize=8)
    for ax, name, values in ((axes[-2], "cell state c", trace.c), (axes[-1], "hidden state h", trace.h)):
        lines = np.asarray(values[sample]).reshape(len(time_labels), -1)
        ax.plot(steps, lines, linewidth=0.7, alpha=0.6)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set(ylabel=name.split()[-1], title=f"{name}, one line per unit")
    for ax in axes:
        ax.grid(alpha=0.3)
    _time_axis(axes[-1], time_labels)
    fig.suptitle(title)
    _save(fig, path)


def plot_gradient_flow(curves: dict[str, np.ndarray], path: Path, *, title: str) -> None:
    """Two log-scale panels over the lag: the gradient norms, and the same divided by their value at lag 0."""
    fig, (raw, relative) = plt.subplots(1, 2, figsize=(13, 5), layout="constrained")
    for name, norms in curves.items():
        lags = np.arange(len(norms))
        style = {"linestyle": "--" if "RNN" in name else "-", "linewidth": 1.2 if "untrained" in name else 2.2}
        raw.plot(lags, norms, label=name, **style)
        relative.plot(lags, norms / norms[0], label=name, **style)
    raw.set(xlabel="lag k (days before the last input day)", ylabel="mean || d prediction / d x[t-k] ||", yscale="log")
    relative.set(xlabel="lag k (days before the last input day)", ylabel="relative to lag 0", yscale="log")
    for ax in (raw, relative):
        ax.grid(alpha=0.3, which="both")
    relative.legend(fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


# --- command line -----------------------------------------------------------------------------------------


def add_gates_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``jaxlstm gates``."""
    gates = commands.add_parser(
        "gates",
        help="plot every gate of a trained run over one window (heatmaps and state lines)",
        description="Trace the input, forget, candidate and output gates and the states c and h of every layer and "
        "direction over one window of the run's data, and write one heatmap figure (gate x unit x day) and one "
        "line plot of c and h per layer and direction.",
    )
    gates.add_argument("--run", type=Path, required=True, help="run directory written by `jaxlstm train`")
    _add_data_arguments(gates)
    which = gates.add_mutually_exclusive_group()
    which.add_argument(
        "--window-index",
        type=int,
        help="window number among all windows of the data (0 = the first 60 days; negative counts from the end, "
        "-1 being the window that forecasts the day after the data). Default: the last test window",
    )
    which.add_argument("--date", help="the window that forecasts this day, YYYY-MM-DD")
    gates.add_argument("--out", type=Path, help="directory for the PNG files (default: RUN/gates)")


def add_gradflow_parser(commands: argparse._SubParsersAction) -> None:
    """Registers ``jaxlstm gradflow``."""
    gradflow = commands.add_parser(
        "gradflow",
        help="plot how far back in the window the prediction's gradient reaches (LSTM vs tanh RNN)",
        description="Plot the mean norm of d(prediction)/d(input k days back) against k, on a log scale, for a "
        "trained run or a fresh model, beside untrained LSTMs with forget bias 0 and 1 and plain tanh RNNs.",
    )
    source = gradflow.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", type=Path, help="run directory written by `jaxlstm train`")
    source.add_argument("--fresh", action="store_true", help="an untrained model built from --arch/--layers/--units")
    _add_data_arguments(gradflow)
    fresh = gradflow.add_argument_group("fresh model")
    fresh.add_argument("--arch", choices=ARCHITECTURES, default="vanilla")
    fresh.add_argument("--layers", type=int, help="recurrent layers (default: 1 for vanilla and conv, else 4)")
    fresh.add_argument("--units", type=int, help="units per layer (default: 50; conv: 64 filters)")
    fresh.add_argument(
        "--forget-bias", type=float, default=1.0, help="forget-gate bias of the untrained LSTM (drawn beside 0 and 1)"
    )
    gradflow.add_argument(
        "--train-rnn",
        action="store_true",
        help="with --run: also train tanh RNNs of the run's width and depth with the run's settings and data, and "
        "plot their curves (one short training per RNN initialisation)",
    )
    gradflow.add_argument("--windows", type=int, default=58, help="average over the last N windows of the data")
    gradflow.add_argument("--seed", type=int, default=0, help="seeds the untrained models")
    gradflow.add_argument("--out", type=Path, help="directory for gradflow.png/json (default: RUN/gradflow)")


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--csv", type=Path, help="Yahoo daily CSV (default: the data the run was trained on)")
    parser.add_argument("--start", help="first date kept, YYYY-MM-DD (with --csv)")
    parser.add_argument("--end", help="last date kept, YYYY-MM-DD (with --csv)")


def _run_frame(run_config: dict, args: argparse.Namespace) -> pd.DataFrame:
    """The run's own rows (its CSV between its first and last dates), or ``--csv`` with ``--start/--end``."""
    from jaxlstm.data import load_prices, select_dates

    data = run_config["data"]
    missing = data.get("missing", "error")
    if args.csv is None:
        if args.start or args.end:
            raise ConfigError("--start/--end choose rows of --csv; without --csv the run's own rows are used")
        return select_dates(load_prices(Path(data["csv"]), missing=missing), data["start"], data["end"])
    return select_dates(load_prices(args.csv, missing=missing), args.start, args.end)


def _run_windows(run: Any, frame: pd.DataFrame) -> tuple[np.ndarray, pd.DatetimeIndex]:
    from jaxlstm.data import prediction_windows

    data = run.config["data"]
    return prediction_windows(
        frame,
        features=data["features"],
        target=data["target"],
        window=data["window"],
        feature_scaler=run.feature_scaler,
    )


def _choose_window(args: argparse.Namespace, targets: pd.DatetimeIndex) -> int:
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
            f"--window-index {args.window_index} is out of range; the data has {count} windows (0..{count - 1})"
        )
    return args.window_index % count


def _time_labels(config: ModelConfig, dates: pd.DatetimeIndex) -> list[str]:
    if config.arch != "conv":
        return [str(day.date()) for day in dates]
    length = config.subsequence_length
    return [f"{dates[s].strftime('%m-%d')}..{dates[s + length - 1].date()}" for s in range(0, len(dates), length)]


def gates_command(args: argparse.Namespace) -> None:
    """``jaxlstm gates``."""
    from jaxlstm.runs import load_run

    run = load_run(args.run)
    frame = _run_frame(run.config, args)
    x, targets = _run_windows(run, frame)
    index = _choose_window(args, targets)
    window = run.config["data"]["window"]
    dates = frame.index[index : index + window]
    traces = trace_gates(run.model, x[index : index + 1])
    out = args.out or args.run / "gates"
    _make_directory(out)
    labels = _time_labels(run.model.config, dates)
    if run.model.config.arch == "conv":
        xlabel = f"ConvLSTM step ({run.model.config.subsequence_length} input days each)"
    else:
        xlabel = "input day (time step)"
    forecast = str(targets[index].date())
    prices = run.feature_scaler.inverse_transform(x[index])
    span = f"window {dates[0].date()}..{dates[-1].date()} -> forecasts {forecast}"
    print(f"{'layer':>5} {'direction':9} {'mean i':>7} {'mean f':>7} {'mean g':>7} {'mean o':>7} {'max |c|':>8}")
    written = []
    for trace in traces:
        name = f"layer{trace.layer}-{trace.direction}"
        title = f"{args.run.name}: layer {trace.layer} ({trace.direction}), {span}"
        plot_gate_heatmaps(trace, labels, out / f"gates-{name}.png", title=title, xlabel=xlabel)
        plot_states(
            trace,
            labels,
            out / f"states-{name}.png",
            title=title,
            inputs=prices,
            input_names=run.config["data"]["features"],
        )
        written += [f"gates-{name}.png", f"states-{name}.png"]
        means = [float(np.mean(getattr(trace, gate))) for gate in GATE_NAMES]
        print(
            f"{trace.layer:>5} {trace.direction:9} "
            + " ".join(f"{m:7.3f}" for m in means)
            + f" {float(np.abs(trace.c).max()):8.3f}"
        )
    print(f"{span}; wrote {len(written)} figures to {out}/")


def gradflow_command(args: argparse.Namespace) -> None:
    """``jaxlstm gradflow``."""
    from jaxlstm.cli import BUNDLED_CSV, TUTORIAL_ROWS, load_frame
    from jaxlstm.data import prepare
    from jaxlstm.models import preset
    from jaxlstm.runs import load_run

    if args.windows < 1:
        raise ConfigError(f"--windows must be a positive number of windows, got {args.windows}")
    curves: dict[str, np.ndarray] = {}
    rmse: dict[str, float] = {}
    biases = (args.forget_bias, *(b for b in (1.0, 0.0) if b != args.forget_bias))
    if args.run is not None:
        if args.arch != "vanilla" or args.layers is not None or args.units is not None:
            raise ConfigError("--arch/--layers/--units describe a --fresh model; with --run the run's model is used")
        run = load_run(args.run)
        frame = _run_frame(run.config, args)
        x, _ = _run_windows(run, frame)
        x = x[:-1][-args.windows :] if len(x) > 1 else x
        config = run.model.config
        curves[f"trained: {args.run.name} ({config.arch})"] = gradient_flow(run.model, x)
        if args.train_rnn:
            rnn_curves, rmse = trained_rnn_curves(run, frame, x)
            curves.update(rnn_curves)
        out = args.out or args.run / "gradflow"
        others = "tanh RNNs trained alike and untrained models" if args.train_rnn else "untrained models"
        title = f"Gradient flow through time: {args.run.name} against {others}"
    else:
        if args.train_rnn:
            raise ConfigError("--train-rnn trains RNNs like a run: pass --run runs/NAME")
        config = preset(args.arch, layers=args.layers, units=args.units)
        last_rows = TUTORIAL_ROWS if args.csv is None and args.start is None and args.end is None else None
        frame = load_frame(
            args.csv or BUNDLED_CSV, start=args.start, end=args.end, last_rows=last_rows, missing="error"
        )
        x = prepare(frame).x_test[-args.windows :]
        out = args.out or Path("runs/gradflow")
        title = f"Gradient flow through time: untrained {config.arch} LSTM ({config.units} units) and tanh RNNs"
    curves.update(fresh_curves(config, x, seed=args.seed, forget_biases=biases))
    _make_directory(out)
    plot_gradient_flow(curves, out / "gradflow.png", title=title)
    summary = {
        name: {
            "norms": [float(n) for n in norms],
            "relative_at_lag": {str(k): float(norms[k] / norms[0]) for k in (1, 5, 10, 20, 30, len(norms) - 1)},
            "decay_per_step": decay_per_step(norms),
        }
        for name, norms in curves.items()
    }
    content = {"windows": len(x), "curves": summary, **({"test_rmse": rmse} if rmse else {})}
    (out / "gradflow.json").write_text(json.dumps(content, indent=2) + "\n")
    last = len(x[0]) - 1
    print(f"{'':44} {'lag 0':>10} {'lag 10 / 0':>11} {f'lag {last} / 0':>11} {'per step':>9}")
    for name, norms in curves.items():
        print(
            f"{name:44} {norms[0]:10.3g} {norms[10] / norms[0]:11.3g} {norms[-1] / norms[0]:11.3g} "
            f"{decay_per_step(norms):9.3f}"
        )
    if rmse:
        print("test RMSE (price units): " + "; ".join(f"{name} {value:.2f}" for name, value in rmse.items()))
    print(f"averaged over {len(x)} windows; wrote {out}/gradflow.png and gradflow.json")


def _make_directory(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
