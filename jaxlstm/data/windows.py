"""Cut a series of prices into the tutorial's training and test windows, scaled as the tutorial scales them.

The reference tutorial forecasts a day's ``Open`` from the ``window`` (60) days before it:

1. The rows are split chronologically: the first ``split`` rows (172) train, the rest test.
2. A ``MinMaxScaler(feature_range=(0, 1))`` is fit on the training rows only, so test values may leave
   [0, 1]: the model never sees the future range.
3. Training sample ``i`` (``window <= i < n_train``) is ``x = scaled[i - window:i]``, ``y = scaled[i]``:
   the ``window`` days strictly before day ``i`` predict day ``i``.
4. The test inputs are the last ``window`` training rows followed by the test rows, scaled with the
   training scaler, so every test day ``i`` (``n_train <= i < n_rows``) gets the sample
   ``scaled[i - window:i]``, which for the first test days starts inside the training rows.

On the tutorial's 230 GOOG rows (2020-04-01..2021-03-01) this gives ``x_train`` (112, 60, 1) and ``x_test``
(58, 60, 1). Samples are always shaped (samples, timesteps, features), Keras's layout.

With a ``horizon`` H > 1, window ``i - window:i`` forecasts days ``i .. i + H - 1``. A direct model trains on the
windows whose H days all lie in the training rows (``y_train`` (n, H)); a recursive one on one-day targets, as
above. Test window ``k`` forecasts test days ``k .. k + H - 1``, so there are ``n_test - H + 1`` of them.

The windows are read-only views of one scaled float32 copy of the series (:func:`window_view`), which training
recognises (:func:`window_series`) and gathers from inside its compiled epoch.
"""

from __future__ import annotations

import dataclasses
import hashlib
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pandas.tseries.offsets import BDay
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.config import DataConfig, Strategy, check_count, check_split, feature_names
from jaxlstm.data.prices import load_frame, numeric_columns, source_of, span_text
from jaxlstm.data.transforms import paths, to_prices
from jaxlstm.errors import ConfigError, DataError, plural

__all__ = [
    "DEFAULT_SPLIT",
    "DEFAULT_WINDOW",
    "Dataset",
    "LatestData",
    "hash_array",
    "load_dataset",
    "prediction_windows",
    "prepare",
    "prepare_as",
    "prepare_latest",
    "record",
    "training_input",
    "window_series",
    "window_view",
]

DEFAULT_WINDOW: int = DataConfig.window
"""Days of history per sample, as in the tutorial."""
DEFAULT_SPLIT: int = DataConfig.split
"""Training rows, as in the tutorial (172 of its 230 rows)."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """The tutorial's arrays for one series; ``x`` and ``y`` are scaled, ``*_prices`` in price units.

    Sample ``k`` of ``x_train`` holds the ``window`` rows before ``train_dates[k]`` and ``y_train[k]`` the
    scaled target on that date (and, for a direct model of ``horizon`` H > 1, on the H - 1 days after it: (n, H));
    likewise test window ``k`` forecasts ``test_dates[k]`` (and the H - 1 test days after it, ``y_test[k]``).
    With H = 1, n_fit = n_train - window and n_origins = n_test. The windows are read-only views of one scaled copy
    of the series (:func:`window_view`): they take the memory of the series, not ``window`` times it.
    """

    features: tuple[str, ...]
    target: str
    window: int
    x_train: np.ndarray  # (n_fit, window, n_features) float32, scaled features
    y_train: np.ndarray  # (n_fit,) or (n_fit, H) for a direct model: float32, scaled target
    x_test: np.ndarray  # (n_origins, window, n_features) float32, scaled with the training scaler
    y_test: np.ndarray  # (n_origins,) or (n_origins, H) for H > 1: float32, scaled with the training scaler
    train_dates: pd.DatetimeIndex  # (n_fit,) date of each training target (its first day)
    test_dates: pd.DatetimeIndex  # (n_test,) every test day
    test_prices: np.ndarray  # (n_test,) float64, the target in price units
    previous_prices: np.ndarray  # (n_test,) float64, the target on the row before each test day
    feature_scaler: MinMaxScaler  # fit on the training rows of ``features``
    target_scaler: MinMaxScaler  # fit on the training rows of ``target`` (one column)
    horizon: int = 1
    strategy: Strategy = "direct"

    def __repr__(self) -> str:
        return (
            f"Dataset(features={self.features}, target={self.target!r}, window={self.window}, "
            f"x_train={self.x_train.shape} for {span_text(self.train_dates)}, "
            f"x_test={self.x_test.shape} for {span_text(self.test_dates)})"
        )

    def to_prices(self, scaled: np.ndarray) -> np.ndarray:
        """Map scaled target values, any shape, back to price units: the same shape, float64."""
        return to_prices(self.target_scaler, scaled)


def load_dataset(config: DataConfig) -> tuple[pd.DataFrame, Dataset]:
    """The rows ``config`` chooses (:func:`load_frame`) and their training and test windows (:func:`prepare_as`)."""
    frame = load_frame(config)
    return frame, prepare_as(frame, config)


def prepare_as(frame: pd.DataFrame, config: DataConfig) -> Dataset:
    """:func:`prepare` with ``config``'s features, target, window, split, horizon and strategy."""
    return prepare(
        frame,
        features=config.features,
        target=config.target,
        window=config.window,
        split=config.split,
        horizon=config.horizon,
        strategy=config.strategy,
    )


def record(config: DataConfig, frame: pd.DataFrame, dataset: Dataset | None = None) -> DataConfig:
    """``config`` as a run records it: the CSV's absolute path and the first and last dates of ``frame`` (so the
    same rows come back without ``last_rows``); with ``dataset``, also the SHA-256 of its training windows, which
    ``--resume`` checks to train on the very same data."""
    digest = None
    if dataset is not None:
        hashed = hashlib.sha256()
        for array in (dataset.x_train, dataset.y_train):
            hash_array(hashed, array)
        digest = hashed.hexdigest()
    return dataclasses.replace(
        config,
        csv=config.path.resolve(),
        start=str(frame.index[0].date()),
        end=str(frame.index[-1].date()),
        last_rows=None,
        sha256=digest,
    )


def hash_array(hashed: hashlib._Hash, array: np.ndarray, rows: int = 4096) -> None:
    """Feeds ``array``'s bytes in C order to ``hashed``, ``rows`` of its first axis at a time: the digest of
    ``array.tobytes()``, without a copy of a window view whole (60 times its series).

    >>> whole, blocks = hashlib.sha256(), hashlib.sha256()
    >>> x = window_view(np.arange(10_000, dtype=np.float32)[:, None], 60)
    >>> whole.update(x.tobytes()); hash_array(blocks, x, rows=7)
    >>> whole.hexdigest() == blocks.hexdigest()
    True
    """
    for start in range(0, len(array), rows):
        hashed.update(np.ascontiguousarray(array[start : start + rows]).tobytes())


def prepare(
    frame: pd.DataFrame,
    *,
    features: Sequence[str] = ("Open",),
    target: str = "Open",
    window: int = DEFAULT_WINDOW,
    split: int | float = DEFAULT_SPLIT,
    horizon: int = 1,
    strategy: Strategy = "direct",
) -> Dataset:
    """Split, scale and window ``frame`` exactly as the tutorial does (see the module docstring).

    Args:
        frame: (n_rows, ...) prices in ascending date order, as returned by :func:`load_prices`.
        features: input columns (a single name is accepted too).
        target: the column to predict; it may also be a feature.
        window: days of history per sample.
        split: number of training rows, or a fraction in (0, 1) of the rows (rounded down).
        horizon: days forecast from each window.
        strategy: ``direct`` (the model forecasts all ``horizon`` days: targets (n, horizon)) or ``recursive``
            (it forecasts one day and is fed its forecasts: one-day targets); see :class:`~jaxlstm.config.DataConfig`.

    Raises:
        ConfigError: bad ``features``, ``window``, ``split``, ``horizon`` or ``strategy``.
        DataError: a missing, non-numeric or non-finite column, too few rows for the window, split and horizon,
            or a column that is constant over the training rows.
    """
    config = DataConfig(
        features=features, target=target, window=window, split=split, horizon=horizon, strategy=strategy
    )
    n_rows = len(frame)
    n_train = _training_rows(split, n_rows)
    inputs, prices = _columns(frame, config)
    _check_sizes(frame, split, n_train, window, horizon, config.outputs)
    scaled = _scaled(frame, config, inputs, prices, n_train)
    x = scaled.windows[:-1]  # x[k] forecasts rows k + window ..
    y = scaled.target[window:]  # y[k]: row k + window
    n_fit = n_train - window - config.outputs + 1
    n_origins = n_rows - n_train - horizon + 1
    prices = scaled.prices
    return Dataset(
        features=config.features,
        target=target,
        window=window,
        x_train=x[:n_fit],
        y_train=_targets(y[: n_train - window], config.outputs),
        x_test=x[n_train - window :][:n_origins],
        y_test=_targets(y[n_train - window :], horizon),
        train_dates=frame.index[window : window + n_fit],
        test_dates=frame.index[n_train:],
        test_prices=prices[n_train:],
        previous_prices=prices[n_train - 1 : -1],
        feature_scaler=scaled.feature_scaler,
        target_scaler=scaled.target_scaler,
        horizon=horizon,
        strategy=strategy,
    )


@dataclass(frozen=True, eq=False)
class LatestData:
    """What a model refit on the latest rows trains on and forecasts from: the training windows and targets of every
    row (as :class:`Dataset`'s, with the scalers fit on all the rows) and the window of the last ``window`` rows."""

    x_train: np.ndarray  # (n_fit, window, n_features) float32
    y_train: np.ndarray  # (n_fit,) or (n_fit, outputs) float32
    last_window: np.ndarray  # (1, window, n_features) float32: the last rows, which forecast the days after them
    target_scaler: MinMaxScaler

    def to_prices(self, scaled: np.ndarray) -> np.ndarray:
        """Map scaled target values, any shape, back to price units: the same shape, float64."""
        return to_prices(self.target_scaler, scaled)


def prepare_latest(frame: pd.DataFrame, config: DataConfig) -> LatestData:
    """Every row of ``frame`` as training rows (``config``'s features, target, window, horizon and strategy, its
    split ignored), and the window of its last rows, to forecast the days after the data.

    Raises:
        DataError: as :func:`prepare`: a bad column, or too few rows for one window and its horizon.
    """
    n_rows = len(frame)
    inputs, prices = _columns(frame, config)
    if n_rows < config.window + config.outputs:
        horizon = f" and --horizon {config.outputs}" if config.outputs > 1 else ""
        raise DataError(
            f"{source_of(frame)}: {plural(n_rows, 'row')}, but --window {config.window}{horizon} need at least "
            f"{config.window + config.outputs} to train on; use more rows"
        )
    scaled = _scaled(frame, config, inputs, prices, n_rows)
    n_fit = n_rows - config.window - config.outputs + 1
    return LatestData(
        x_train=scaled.windows[:n_fit],
        y_train=_targets(scaled.target[config.window :], config.outputs),
        last_window=scaled.windows[-1:],
        target_scaler=scaled.target_scaler,
    )


class _Scaled(NamedTuple):
    windows: np.ndarray  # (n_rows - window + 1, window, n_features) float32: window k is rows k .. k + window - 1
    target: np.ndarray  # (n_rows,) float32
    prices: np.ndarray  # (n_rows,) float64, the target in price units
    feature_scaler: MinMaxScaler
    target_scaler: MinMaxScaler


def _columns(frame: pd.DataFrame, config: DataConfig) -> tuple[np.ndarray, np.ndarray]:
    """``config``'s features (n_rows, n_features) and target (n_rows,) in ``frame``, checked."""
    return numeric_columns(frame, config.features), numeric_columns(frame, (config.target,))[:, 0]


def _scaled(frame: pd.DataFrame, config: DataConfig, inputs: np.ndarray, prices: np.ndarray, n_train: int) -> _Scaled:
    """Every window of the features ``inputs`` and the scaled target ``prices``, the scalers fit on the first
    ``n_train`` rows."""
    feature_scaler = _fit_scaler(frame, inputs[:n_train], config.features)
    target_scaler = _fit_scaler(frame, prices[:n_train, None], (config.target,))
    return _Scaled(
        windows=_windows(feature_scaler.transform(inputs), config.window),
        target=target_scaler.transform(prices[:, None])[:, 0].astype(np.float32),
        prices=prices,
        feature_scaler=feature_scaler,
        target_scaler=target_scaler,
    )


def _targets(scaled: np.ndarray, days: int) -> np.ndarray:
    """Scaled targets (n,) as the targets of windows forecasting ``days`` days: (n,) for one, else (n - days + 1,
    days)."""
    return scaled if days == 1 else np.ascontiguousarray(paths(scaled, days))


def prediction_windows(
    frame: pd.DataFrame,
    *,
    features: Sequence[str],
    target: str,
    window: int,
    feature_scaler: MinMaxScaler,
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Every ``window``-day input of ``frame``, scaled with an already fitted scaler, for a trained model.

    Window ``k`` is the scaled rows ``k .. k + window - 1``; it predicts the row after them, or, for the
    last window, the business day after the last row (``pandas.tseries.offsets.BDay``; exchange holidays
    are not known).

    Args:
        frame: (n_rows, ...) prices in ascending date order, as returned by :func:`load_prices`.
        features: the columns the scaler was fit on, in the same order.
        target: the predicted column; only named in error messages (it need not be in ``frame``).
        window: days of history per sample, as in training.
        feature_scaler: the training run's fitted feature scaler.

    Returns:
        ``x`` (n_rows - window + 1, window, n_features) float32 and the date each window predicts.

    Raises:
        ConfigError: bad ``features`` or ``window``, or a scaler fit on another number of columns.
        DataError: a missing, non-numeric or non-finite column, or fewer than ``window`` rows.
    """
    names = feature_names(features)
    check_count("--window", window, DEFAULT_WINDOW)
    fitted = getattr(feature_scaler, "n_features_in_", None)
    if fitted != len(names):
        raise ConfigError(
            f"the feature scaler was fit on {fitted} columns but features has {len(names)} "
            f"({', '.join(names)}); pass the features the model was trained on"
        )
    inputs = numeric_columns(frame, names)
    if len(frame) < window:
        raise DataError(
            f"{source_of(frame)}: {plural(len(frame), 'row')}, but predicting {target!r} from a {window}-day window "
            f"needs at least {window}; use an earlier --start"
        )
    x = _windows(feature_scaler.transform(inputs), window)
    next_day = pd.DatetimeIndex([frame.index[-1] + BDay(1)])
    return x, frame.index[window:].append(next_day).rename("Date")


RANGE_MARGIN = 0.1
"""How far beyond the training range (a share of its width) a value may lie before :func:`range_warning` speaks."""


def range_warning(
    frame: pd.DataFrame,
    features: Sequence[str],
    scaler: MinMaxScaler,
    margin: float = RANGE_MARGIN,
    rows: str = "rows",
) -> str | None:
    """One warning line when rows of ``frame`` lie far outside the range ``scaler`` was fit on: any of the
    ``features`` more than ``margin`` of the range's width below its minimum or above its maximum. It names the
    range and the share of ``rows`` (what they are, for the message) outside it; None when every row is within
    it.

    A model trained on MinMax-scaled prices has only ever seen inputs in [0, 1]; far outside, it extrapolates.

    >>> scaler = MinMaxScaler().fit(np.array([[560.0], [771.0]]))
    >>> frame = pd.DataFrame({"Open": [185.0, 600.0, 700.0, 800.0]})
    >>> warning = range_warning(frame, ["Open"], scaler)
    >>> warning.startswith("warning: 2 of 4 rows (50%) lie more than 10% outside"), "(Open 560..771)" in warning
    (True, True)
    """
    names = list(features)
    scaled = scaler.transform(numeric_columns(frame, names))
    outside = np.any((scaled < -margin) | (scaled > 1 + margin), axis=1)
    if not outside.any():
        return None
    bounds = zip(names, scaler.data_min_, scaler.data_max_, strict=True)
    ranges = ", ".join(f"{name} {low:.6g}..{high:.6g}" for name, low, high in bounds)
    return (
        f"warning: {outside.sum()} of {len(outside)} {rows} ({100 * outside.mean():.0f}%) lie more than "
        f"{100 * margin:.0f}% outside the range the run's scaler was fit on ({ranges}): the model extrapolates there"
    )


# --- arrays -------------------------------------------------------------------------------------------


def _training_rows(split: int | float, n_rows: int) -> int:
    """Number of training rows from a row count or a fraction of ``n_rows`` (rounded down)."""
    check_split(split)
    return int(split) if isinstance(split, numbers.Integral) else int(split * n_rows)


def _check_sizes(
    frame: pd.DataFrame, split: int | float, n_train: int, window: int, horizon: int, outputs: int
) -> None:
    n_rows = len(frame)
    if n_train >= n_rows:
        raise DataError(
            f"{source_of(frame)}: {plural(n_rows, 'row')} and --split {split} leaves no test rows; "
            f"use a wider --start/--end range or a smaller --split"
        )
    if n_train < window + outputs:
        needs = f"--window {window}" + (f" and --horizon {outputs}" if outputs > 1 else "")
        raise DataError(
            f"{source_of(frame)}: {n_train} training rows (of {n_rows}), but {needs} need{'s' * (outputs == 1)} at "
            f"least {window + outputs}; use an earlier --start, a larger --split or a smaller --window"
        )
    if n_rows - n_train < horizon:
        raise DataError(
            f"{source_of(frame)}: --horizon {horizon} is longer than the {n_rows - n_train} test days; "
            f"use a smaller --horizon or --split"
        )


def _fit_scaler(frame: pd.DataFrame, train: np.ndarray, names: Sequence[str]) -> MinMaxScaler:
    """MinMaxScaler((0, 1)) fit on (n_train, len(names)) training values; DataError for a flat column."""
    scaler = MinMaxScaler(feature_range=(0, 1)).fit(train)
    flat = scaler.data_range_ == 0
    if flat.any():
        j = int(flat.argmax())
        raise DataError(
            f"{source_of(frame)}: {names[j]} is constant ({scaler.data_min_[j]:g}) "
            f"over the {len(train)} training rows, so it cannot be min-max scaled; "
            f"choose another column or a longer date range"
        )
    return scaler


def _windows(scaled: np.ndarray, window: int) -> np.ndarray:
    """(n, n_features) -> (n - window + 1, window, n_features) float32; window k is rows k..k + window - 1, a
    read-only view of one float32 copy of ``scaled`` (see :func:`window_series`)."""
    return window_view(np.ascontiguousarray(scaled, dtype=np.float32), window)


def window_view(series: np.ndarray, window: int) -> np.ndarray:
    """Every ``window``-row window of ``series`` (..., rows, features) as a read-only view, no copy:
    (..., rows - window + 1, window, features), window ``k`` being rows ``k .. k + window - 1``.

    >>> window_view(np.arange(5.0)[:, None], 3)[:, :, 0]
    array([[0., 1., 2.],
           [1., 2., 3.],
           [2., 3., 4.]])
    """
    return np.moveaxis(sliding_window_view(series, window, axis=-2), -1, -2)


def training_input(x: np.ndarray) -> tuple[np.ndarray, int | None]:
    """What training places on the devices for windows ``x`` (..., n, window, features): the series they view,
    contiguous, and the window length to gather them with; or ``x`` itself and None when it is no such view."""
    series = window_series(x)
    if series is None:
        return np.asarray(x), None
    return np.ascontiguousarray(series), x.shape[-2]


def window_series(x: np.ndarray) -> np.ndarray | None:
    """The series that windows ``x`` (..., n, window, features) are a view of: (..., n + window - 1, features), no
    copy.

    The windows that :func:`prepare` and the others return are read-only views of the scaled series
    (:func:`window_view`), in which window ``k`` starts one row after window ``k - 1``: a million 60-day windows take
    the memory of the series, not 60 times it. Such an array steps as far from one window to the next as from one
    day to the next (its strides along n and window are equal), which this checks; :func:`~jaxlstm.training.fit` and
    :func:`~jaxlstm.training.fit_ensemble` then gather each batch's windows from the series inside the compiled
    epoch. None for any other array (e.g. a copy: ``np.array(x)``).

    >>> from jaxlstm.data import load_prices
    >>> x = prepare(load_prices("data/GOOG.csv").iloc[-230:], split=172).x_train
    >>> x.shape, window_series(x).shape, np.shares_memory(x, window_series(x))
    ((112, 60, 1), (171, 1), True)
    >>> window_series(np.array(x)) is None
    True
    """
    if not isinstance(x, np.ndarray) or x.ndim < 3 or x.shape[-3] == 0 or x.strides[-3] != x.strides[-2]:
        return None
    shape = (*x.shape[:-3], x.shape[-3] + x.shape[-2] - 1, x.shape[-1])
    return np.lib.stride_tricks.as_strided(x, shape, (*x.strides[:-3], *x.strides[-2:]), writeable=False)
