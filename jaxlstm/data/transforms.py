"""Target transforms: a target in price units and back, day-over-day changes and back, and the H-day paths that
multi-day forecasts are scored on. Each change uses its own day and the day before only, so it leaks nothing from
later days.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.config import TargetTransform
from jaxlstm.data.prices import day_text, numeric_columns, source_of
from jaxlstm.errors import DataError

__all__ = ["from_changes", "paths", "to_changes", "to_prices"]


def to_prices(target_scaler: MinMaxScaler, scaled: np.ndarray) -> np.ndarray:
    """Scaled target values, any shape, back in price units with the fitted target scaler: the same shape,
    float64."""
    scaled = np.asarray(scaled, dtype=np.float64)
    return target_scaler.inverse_transform(scaled.reshape(-1, 1)).reshape(scaled.shape)


def paths(values: np.ndarray, horizon: int) -> np.ndarray:
    """The ``horizon`` consecutive values from each day on, (n,) -> (n - horizon + 1, horizon); row ``k`` is
    ``values[k:k + horizon]``.

    >>> paths(np.arange(5), 3).tolist()
    [[0, 1, 2], [1, 2, 3], [2, 3, 4]]
    """
    return sliding_window_view(np.asarray(values), horizon)


def to_changes(frame: pd.DataFrame, columns: Sequence[str], transform: TargetTransform) -> pd.DataFrame:
    """The day-over-day changes of ``columns``, one row per row of ``frame`` after its first (which has no day
    before it): ``diff``, :math:`x_t - x_{t-1}`; ``log-return``, :math:`\\log(x_t / x_{t-1})`; ``level``, ``frame``
    itself. Each row uses its own day and the day before only, so it leaks nothing from later days.

    >>> frame = pd.DataFrame({"Open": [100.0, 110.0, 99.0]}, index=pd.date_range("2021-01-04", periods=3))
    >>> to_changes(frame, ["Open"], "diff")["Open"].tolist()
    [10.0, -11.0]

    Raises:
        DataError: ``log-return`` of a column with a value <= 0 (a day of zero volume, say).
    """
    if transform == "level":
        return frame
    values = numeric_columns(frame, columns)
    if transform == "log-return" and (values <= 0).any():
        i, j = np.argwhere(values <= 0)[0]
        raise DataError(
            f"{source_of(frame)}: {columns[j]} is {values[i, j]:g} on {day_text(frame.index[i])}, which has no "
            f"log-return; use --target-transform diff, or leave {columns[j]} out of --features"
        )
    change = np.diff(values, axis=0) if transform == "diff" else np.diff(np.log(values), axis=0)
    changes = pd.DataFrame(change, index=frame.index[1:], columns=list(columns))
    changes.attrs = dict(frame.attrs)
    return changes


def from_changes(transform: TargetTransform, previous: np.ndarray, change: np.ndarray) -> np.ndarray:
    """Prices from the day before's ``previous`` prices (n,) and forecasts of :func:`to_changes`: (n,), one day;
    or (n, H), H days in a row, which add up (``diff``) or compound (``log-return``) from ``previous``. Returns the
    shape of ``change``."""
    change = np.asarray(change, dtype=np.float64)
    if transform == "level":
        return change
    if change.ndim == 2:
        previous, change = np.asarray(previous)[:, None], np.cumsum(change, axis=-1)
    return previous + change if transform == "diff" else previous * np.exp(change)
