"""Matplotlib figures written as PNG files (Agg backend: no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from jaxlstm.train import History


def plot_loss(history: History, path: Path, title: str = "Training loss") -> None:
    """Loss per epoch (scaled MSE, log scale), with the validation loss when there is one."""
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label="training loss")
    if history.val_loss:
        ax.plot(epochs[: len(history.val_loss)], history.val_loss, label="validation loss")
    if history.best_epoch is not None:
        ax.axvline(history.best_epoch, color="grey", linestyle=":", label=f"best epoch ({history.best_epoch})")
    ax.set(xlabel="epoch", ylabel="mean squared error (scaled)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_predictions(
    dates: pd.DatetimeIndex,
    true: np.ndarray,
    predicted: np.ndarray,
    path: Path,
    *,
    naive: np.ndarray | None = None,
    title: str = "Stock price prediction",
    ylabel: str = "Open price",
) -> None:
    """Original against predicted prices over real dates, optionally with the naive baseline."""
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    ax.plot(dates, true, color="red", label="original price")
    ax.plot(dates, predicted, color="blue", label="predicted price (LSTM)")
    if naive is not None:
        ax.plot(dates, naive, color="grey", linestyle="--", linewidth=1, label="naive (yesterday's value)")
    ax.xaxis.set_major_locator(mdates.AutoDateLocator())
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set(xlabel="date", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(path, dpi=110)
    plt.close(fig)
