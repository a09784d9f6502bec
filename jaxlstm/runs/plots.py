"""Every figure of jaxlstm, written as a PNG file.

Figures are built with Matplotlib's object API (``matplotlib.figure.Figure``), never with ``pyplot``: no backend is
chosen, no global state is touched, and no display is needed; each file is written through
:func:`jaxlstm.fileio.atomic_path`.
"""

from collections.abc import Sequence
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from jaxlstm.fileio import atomic_path
from jaxlstm.introspect import LEFT, RIGHT, GateTrace, Saturation
from jaxlstm.introspect.gates import SIGNED
from jaxlstm.training import History

__all__ = [
    "plot_backtest",
    "plot_connectivity",
    "plot_coverage",
    "plot_fan",
    "plot_fold_skill",
    "plot_gate_heatmaps",
    "plot_gradient_flow",
    "plot_lab_curves",
    "plot_loss",
    "plot_marked_gates",
    "plot_pit",
    "plot_predictions",
    "plot_saturation",
    "plot_states",
    "save",
]


def save(fig: Figure, path: Path, dpi: int = 110) -> None:
    """Writes ``fig`` to ``path`` as a PNG, atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


def plot_loss(history: History, path: Path, title: str = "Training loss") -> None:
    """Loss per epoch (scaled MSE, log scale), with the validation loss when there is one."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label="training loss")
    if history.val_loss:
        ax.plot(epochs[: len(history.val_loss)], history.val_loss, label="validation loss")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label=f"best epoch ({history.best_epoch})")
    ax.set(xlabel="epoch", ylabel="mean squared error (scaled)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)


def plot_predictions(
    dates: pd.DatetimeIndex,
    true: np.ndarray,
    predicted: np.ndarray,
    path: Path,
    *,
    naive: np.ndarray | None = None,
    title: str = "Stock price prediction",
    ylabel: str = "Open price",
    naive_label: str = "naive (yesterday's value)",
) -> None:
    """Original against predicted prices over real dates, optionally with the naive baseline."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    ax.plot(dates, true, color="red", label="original price")
    ax.plot(dates, predicted, color="blue", label="predicted price (LSTM)")
    if naive is not None:
        ax.plot(dates, naive, color="grey", linestyle="--", linewidth=1, label=naive_label)
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set(xlabel="date", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, path)


def _time_axis(ax: Axes, labels: Sequence[str], every: int | None = None) -> None:
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
    """One figure, one panel per gate and state of one window (the LSTM's i, f, g, o, c, h; the GRU's z, r, n, h),
    as units x time images."""
    panels = [  # colour scales fit each panel's values (gates: their range; signed values: symmetric about 0)
        (trace.labels[name], values, "RdBu_r" if name in SIGNED else "viridis", name in SIGNED)
        for name, values in trace.series.items()
    ]
    units = "unit" if trace.h.ndim == 3 else f"position x filter ({' x '.join(map(str, trace.h.shape[2:]))})"
    fig = Figure(figsize=(10, 2.3 * len(panels)))
    axes = fig.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]  # a manual layout: faster than "constrained"
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
    save(fig, path)


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
    """Line plots over the window: the input (price units) when given, then the states (``c`` if the cell has one,
    and ``h``) of every unit."""
    states = [(trace.labels[name], values) for name, values in trace.states.items()]
    rows = len(states) + (inputs is not None)
    fig = Figure(figsize=(10, 3 * rows + 1), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    steps = np.arange(len(time_labels))
    if inputs is not None:
        for column, name in enumerate(input_names):
            days = (np.arange(len(inputs)) + 1) * len(time_labels) / len(inputs) - 1  # a ConvLSTM step reads days
            axes[0].plot(days, inputs[:, column], label=name)
        axes[0].set(ylabel="price", title="input window")
        axes[0].legend(fontsize=8)
    for ax, (name, values) in zip(axes[-len(states) :], states, strict=True):
        lines = np.asarray(values[sample]).reshape(len(time_labels), -1)
        ax.plot(steps, lines, linewidth=0.7, alpha=0.6)
        ax.axhline(0, color="black", linewidth=0.5)
        ax.set(ylabel=name.split()[-1], title=f"{name}, one line per unit")
    for ax in axes:
        ax.grid(alpha=0.3)
    _time_axis(axes[-1], time_labels)
    fig.suptitle(title)
    save(fig, path)


def plot_gradient_flow(curves: dict[str, np.ndarray], path: Path, *, title: str, steps: str = "days") -> None:
    """Two log-scale panels over the lag: the gradient norms, and the same divided by their value at lag 0
    (``steps`` names what the lag counts)."""
    fig = Figure(figsize=(13, 5), layout="constrained")
    raw, relative = fig.subplots(1, 2)
    for name, norms in curves.items():
        lags = np.arange(len(norms))
        style = {"linestyle": "--" if "RNN" in name else "-", "linewidth": 1.2 if "untrained" in name else 2.2}
        raw.plot(lags, norms, label=name, **style)
        relative.plot(lags, norms / norms[0], label=name, **style)
    xlabel = f"lag k ({steps} before the last input {'day' if steps == 'days' else 'step'})"
    raw.set(xlabel=xlabel, ylabel="mean || d prediction / d x[t-k] ||", yscale="log")
    relative.set(xlabel=xlabel, ylabel="relative to lag 0", yscale="log")
    for ax in (raw, relative):
        ax.grid(alpha=0.3, which="both")
    relative.legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def plot_backtest(
    dates: Sequence[pd.DatetimeIndex],
    actual: np.ndarray,
    forecast: np.ndarray,
    persistence: np.ndarray,
    path: Path,
    *,
    title: str,
    ylabel: str,
) -> None:
    """Two panels over every fold's test days (one entry per fold: dates (D,), arrays (folds, D)): the actual
    series against the ensemble's forecast, fold boundaries dashed; and each day's absolute error of the forecast
    and of persistence."""
    fig = Figure(figsize=(11, 7), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for k, days in enumerate(dates):
        first = k == 0
        top.plot(days, actual[k], color="red", label="actual" if first else None)
        top.plot(days, forecast[k], color="blue", label="forecast (ensemble)" if first else None)
        top.plot(
            days, persistence[k], color="grey", linestyle="--", linewidth=1, label="persistence" if first else None
        )
        bottom.plot(days, np.abs(forecast[k] - actual[k]), color="blue", label="forecast" if first else None)
        bottom.plot(days, np.abs(persistence[k] - actual[k]), color="grey", label="persistence" if first else None)
        for ax in (top, bottom):
            ax.axvline(days[0], color="black", linestyle=":", linewidth=0.8)
    top.set(ylabel=ylabel, title=title)
    bottom.set(ylabel="absolute error", xlabel="date")
    bottom.xaxis.set_major_formatter(mdates.ConciseDateFormatter(bottom.xaxis.get_major_locator()))
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    save(fig, path)


def plot_fold_skill(ensemble: np.ndarray, members: np.ndarray, path: Path, *, title: str) -> None:
    """Skill against persistence per fold: the ensemble's (folds,) as bars, each seed's (folds, seeds) as dots."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    folds = np.arange(1, len(ensemble) + 1)
    ax.bar(folds, ensemble, color="tab:blue", alpha=0.6, label="ensemble")
    for s in range(members.shape[1]):
        ax.scatter(folds, members[:, s], color="black", s=10, label="seeds" if s == 0 else None)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set(xlabel="fold", ylabel="skill = 1 - RMSE / RMSE(persistence)", title=title, xticks=folds)
    ax.grid(alpha=0.3, axis="y")
    ax.legend()
    save(fig, path)


def plot_pit(pit: dict[str, np.ndarray], path: Path, *, title: str, bins: int = 10) -> None:
    """One histogram per method of its forecasts' PIT values (any shape): flat at 1 for calibrated forecasts, a U
    for intervals too narrow, a hump for intervals too wide."""
    fig = Figure(figsize=(4 * len(pit), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(pit), sharey=True))
    for ax, (method, values) in zip(axes, pit.items(), strict=True):
        ax.hist(np.ravel(values), bins=bins, range=(0, 1), density=True, color="tab:blue", alpha=0.7)
        ax.axhline(1, color="black", linestyle="--", linewidth=0.8, label="calibrated")
        ax.set(title=method, xlabel="PIT (forecast CDF at the actual price)")
        ax.grid(alpha=0.3, axis="y")
    axes[0].set_ylabel("density")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def plot_coverage(coverage: dict[str, np.ndarray], levels: Sequence[float], path: Path, *, title: str) -> None:
    """Empirical coverage per step of the horizon: ``coverage[method]`` (len(levels), H), one line per method and
    level, the nominal levels dotted."""
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    markers = "os^v"
    for j, level in enumerate(levels):
        ax.axhline(level, color="black", linestyle=":", linewidth=0.8)
        for i, (method, values) in enumerate(coverage.items()):
            steps = np.arange(1, values.shape[1] + 1)
            label = f"{method}, {100 * level:g}%"
            ax.plot(steps, values[j], marker=markers[j % len(markers)], color=f"C{i}", label=label)
    horizon = next(iter(coverage.values())).shape[1]
    ax.set(xlabel="days ahead", ylabel="empirical coverage", ylim=(0, 1.02), title=title)
    ax.set_xticks(np.unique(np.linspace(1, horizon, min(horizon, 10)).round().astype(int)))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=len(levels))
    save(fig, path)


def plot_fan(
    history: pd.Series,
    dates: pd.DatetimeIndex,
    forecast: np.ndarray,
    bands: dict[float, np.ndarray],
    path: Path,
    *,
    title: str,
    ylabel: str = "price",
    centre: tuple[str, np.ndarray] | None = None,
) -> None:
    """A fan chart: the actual ``history`` (a Series by date), then the ``forecast`` (H,) on ``dates`` (H,) with its
    bands (level -> (2, H) lower and upper), the widest palest; ``centre`` (label, (H,) values), when the bands are
    centred elsewhere than on the forecast, is drawn dashed."""
    fig = Figure(figsize=(10, 4.8), layout="constrained")
    ax = fig.subplots()
    ax.plot(history.index, history.to_numpy(), color="black", linewidth=1.2, label="actual")
    start = pd.DatetimeIndex([history.index[-1]]).append(dates)
    last = history.to_numpy()[-1:]
    for shade, level in enumerate(sorted(bands, reverse=True)):
        lower, upper = bands[level]
        ax.fill_between(
            start,
            np.concatenate([last, lower]),
            np.concatenate([last, upper]),
            color="tab:blue",
            alpha=0.18 + 0.17 * shade,
            linewidth=0,
            label=f"{100 * level:g}% band",
        )
    ax.plot(start, np.concatenate([last, forecast]), color="tab:blue", linewidth=1.6, label="forecast")
    if centre is not None:
        label, values = centre
        ax.plot(start, np.concatenate([last, values]), color="tab:blue", linestyle="--", linewidth=1.0, label=label)
    ax.axvline(history.index[-1], color="grey", linestyle=":", linewidth=0.8)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set(xlabel="date", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    save(fig, path)


def plot_lab_curves(
    curves: dict[tuple[int, str], np.ndarray],
    updates_per_epoch: int,
    path: Path,
    *,
    baselines: dict[int, float],
    threshold: float,
    title: str,
    ylabel: str,
) -> None:
    """The lab's learning curves, one panel per lag: each cell's training loss per epoch (curves[(lag, cell)] is
    (epochs, seeds): the seeds' median thick, each seed thin) over the updates, on a log scale, with the task's
    memoryless loss at that lag (``baselines``, dashed) and the ``threshold`` of "solved" (dotted)."""
    lags = sorted({lag for lag, _ in curves})
    fig = Figure(figsize=(5.5 * len(lags), 4.5), layout="constrained")
    axes = fig.subplots(1, len(lags), sharey=True, squeeze=False)[0]
    cells = list(dict.fromkeys(cell for _, cell in curves))
    colours = {cell: f"C{k}" for k, cell in enumerate(cells)}
    for ax, lag in zip(axes, lags, strict=True):
        for cell in cells:
            if (lag, cell) not in curves:
                continue
            losses = np.asarray(curves[(lag, cell)])
            updates = np.arange(1, len(losses) + 1) * updates_per_epoch
            ax.plot(updates, losses, color=colours[cell], linewidth=0.6, alpha=0.5)
            ax.plot(updates, np.median(losses, axis=1), color=colours[cell], linewidth=2.2, label=cell)
        baseline = baselines[lag]
        ax.axhline(baseline, color="black", linestyle="--", linewidth=1, label=f"baseline {baseline:.4g}")
        ax.axhline(threshold, color="grey", linestyle=":", linewidth=1, label=f"solved below {threshold:g}")
        ax.set(xlabel="updates", ylabel=ylabel, yscale="log", title=f"T = {lag}")
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def plot_marked_gates(
    inputs: np.ndarray,
    input_names: Sequence[str],
    markers: np.ndarray,
    trace: GateTrace,
    path: Path,
    *,
    title: str,
    highlight: int = 3,
) -> None:
    """One sequence of a lab task through a trained cell: the inputs (time, features), then each gate and state
    of ``trace`` (batch 1) as one line per unit over the steps, the marked steps (time,) drawn as red lines; the
    ``highlight`` units whose ``c`` (else ``h``) changes most at the marked steps are drawn thick."""
    steps = np.arange(len(inputs))
    series = trace.series
    memory = np.asarray(series["c" if "c" in series else "h"][0])  # (time, units)
    marked = np.flatnonzero(markers)
    before = np.vstack([np.zeros_like(memory[:1]), memory[:-1]])  # the state before each step (zero at the start)
    jumps = np.abs(memory[marked] - before[marked]).sum(axis=0)
    strongest = np.argsort(jumps)[::-1][:highlight]
    fig = Figure(figsize=(11, 2.1 * (len(series) + 1) + 0.6), layout="constrained")
    axes = fig.subplots(len(series) + 1, 1, sharex=True)
    if len(input_names) <= 3:
        for column, name in enumerate(input_names):
            axes[0].plot(steps, inputs[:, column], linewidth=0.9, label=name)
        axes[0].set(title="inputs", ylabel="value")
        axes[0].legend(fontsize=8, loc="upper right")
    else:  # one-hot symbols: an image, one row per symbol
        axes[0].imshow(
            inputs.T,
            aspect="auto",
            cmap="Greys",
            interpolation="nearest",
            extent=(-0.5, len(steps) - 0.5, len(input_names) - 0.5, -0.5),
        )
        axes[0].set_yticks(range(len(input_names)), input_names, fontsize=7)
        axes[0].set(title="inputs (one-hot)")
    for ax, (name, values) in zip(axes[1:], series.items(), strict=True):
        lines = np.asarray(values[0])
        ax.plot(steps, lines, color="grey", linewidth=0.5, alpha=0.4)
        for unit in strongest:
            ax.plot(steps, lines[:, unit], linewidth=1.8, label=f"unit {unit}")
        ax.set(title=trace.labels[name], ylabel=name)
    axes[1].legend(fontsize=8, loc="upper right", title="units most changed at the markers", title_fontsize=8)
    for ax in axes:
        for step in marked:
            ax.axvline(step, color="red", linewidth=1, alpha=0.7)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("time step (red: the marked steps)")
    fig.suptitle(title)
    save(fig, path)


def plot_saturation(records: Sequence[Saturation], path: Path, *, title: str) -> None:
    """One panel per gate (in the records' order): a dot per unit at (share of steps left-saturated, share
    right-saturated), coloured by layer (a backward direction as triangles); the dashed diagonal ``x + y = 1`` bounds
    the possible shares. Units of the right corner are gates that stay open, those of the left corner closed; those
    at the origin never saturate."""
    gates = list(dict.fromkeys(record.gate for record in records))
    fig = Figure(figsize=(4.2 * len(gates), 4.6), layout="constrained")
    axes = fig.subplots(1, len(gates), squeeze=False)[0]
    for ax, gate in zip(axes, gates, strict=True):
        ax.plot([0, 1], [1, 0], color="grey", linestyle="--", linewidth=1)
        for record in (record for record in records if record.gate == gate):
            backward = record.direction == "backward"
            ax.scatter(
                record.left,
                record.right,
                s=18,
                alpha=0.6,
                clip_on=False,  # units that never saturate, or always do, sit on the axes
                color=f"C{record.layer % 10}",
                marker="^" if backward else "o",
                label=f"layer {record.layer}" + (" backward" if backward else ""),
            )
        label = next(record.label for record in records if record.gate == gate)
        ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", title=label)
        ax.set(
            xlabel=f"fraction of steps left-saturated (< {LEFT:g})", ylabel=f"fraction right-saturated (> {RIGHT:g})"
        )
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def plot_connectivity(matrix: np.ndarray, path: Path, *, title: str, markers: Sequence[int] | None = None) -> None:
    """The connectivity ``matrix`` (steps, time) as an image, hidden-state step ``t`` down, input step ``s`` across,
    on a log colour scale (the zeros a forward layer's ``h_t`` has for every later input left blank); each of the
    ``markers`` (input steps, e.g. the adding problem's marked steps) as a dotted vertical line."""
    fig = Figure(figsize=(7.5, 6), layout="constrained")
    ax = fig.subplots()
    shown = np.ma.masked_less_equal(matrix, 0.0)
    image = ax.imshow(shown, aspect="auto", cmap="viridis", norm=LogNorm(), interpolation="nearest")
    for step in markers or ():
        ax.axvline(step, color="red", linestyle=":", linewidth=1.2)
    ax.set(xlabel="input step s", ylabel="hidden-state step t", title=title)
    fig.colorbar(image, ax=ax, label="mean || d h_t / d x_s ||")
    save(fig, path)
