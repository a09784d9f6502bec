"""Load daily price CSVs, check them, and cut them into the tutorial's training and test windows.

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

Every problem with the input raises :class:`~jaxlstm.errors.DataError` (the file or its contents) or
:class:`~jaxlstm.errors.ConfigError` (an argument), with a one-line message that names the file, line,
column or argument and the fix.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import numbers
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, get_args

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from pandas.tseries.offsets import BDay
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.config import (
    DataConfig,
    Strategy,
    TargetTransform,
    check_count,
    check_date,
    check_split,
    feature_names,
)
from jaxlstm.errors import ConfigError, DataError

__all__ = [
    "DEFAULT_SPLIT",
    "DEFAULT_WINDOW",
    "Dataset",
    "LatestData",
    "from_changes",
    "hash_array",
    "load_dataset",
    "load_frame",
    "load_prices",
    "numeric_columns",
    "paths",
    "prediction_windows",
    "prepare",
    "prepare_as",
    "prepare_latest",
    "record",
    "select_dates",
    "to_changes",
    "to_prices",
    "training_input",
    "window_series",
    "window_view",
]

DEFAULT_WINDOW: int = DataConfig.window
"""Days of history per sample, as in the tutorial."""
DEFAULT_SPLIT: int = DataConfig.split
"""Training rows, as in the tutorial (172 of its 230 rows)."""
FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest value the model's float32 arithmetic can hold."""

YAHOO_HEADER = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
"""Columns that must be > 0 when present; Volume must be >= 0."""

MissingPolicy = Literal["error", "drop", "ffill"]

_MISSING_TOKENS = frozenset({"", "null", "nan", "na", "n/a", "none"})  # compared lower-cased
# YYYY-MM-DD, optionally followed by a time of day and a UTC offset (newer yfinance writes
# "2023-01-03 00:00:00-05:00"); only the date part is kept.
_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_SHOWN = 5  # how many dates or names an error message lists before "... (N in all)"


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
            f"x_train={self.x_train.shape} for {_span(self.train_dates)}, "
            f"x_test={self.x_test.shape} for {_span(self.test_dates)})"
        )

    def to_prices(self, scaled: np.ndarray) -> np.ndarray:
        """Map scaled target values, any shape, back to price units: the same shape, float64."""
        return to_prices(self.target_scaler, scaled)


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
            f"{_source(frame)}: {columns[j]} is {values[i, j]:g} on {_day(frame.index[i])}, which has no log-return; "
            f"use --target-transform diff, or leave {columns[j]} out of --features"
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


def load_prices(path: str | Path, *, missing: MissingPolicy = "error") -> pd.DataFrame:
    """Read and check a daily price CSV in Yahoo Finance's format.

    Accepts Yahoo's own downloads (6-decimal prices, ``null`` for missing values, no trailing newline) and
    yfinance's ``to_csv`` files (full float prices, possibly times and UTC offsets after the date).
    Columns other than ``Date`` need not be Yahoo's; Open/High/Low/Close/Adj Close/Volume, when present,
    must be numeric, other columns become float64 when every value is a number and stay text otherwise.

    Rows whose dates are out of order are sorted by date with a ``UserWarning`` rather than rejected:
    several sites export newest-first, and sorting loses nothing. Duplicate dates are an error, since
    there is no right row to keep.

    Args:
        path: the CSV file.
        missing: what to do with rows holding a missing value (``null``, empty, ``NaN``): ``"error"``
            raises, ``"drop"`` removes those rows, ``"ffill"`` repeats the previous row's values.

    Returns:
        (n_rows, n_columns) frame indexed by an ascending ``DatetimeIndex`` named ``"Date"``; its
        ``attrs["source"]`` is the path, used to name the file in later error messages.

    Raises:
        DataError: the file is missing, empty, not a CSV, or has bad dates or values.
        ConfigError: ``missing`` is not one of the three policies.
    """
    if missing not in get_args(MissingPolicy):
        raise ConfigError(f"missing={missing!r} is not a policy; pass --missing error, drop or ffill")
    path = Path(path)
    table = _read_table(path)
    dates = _parse_dates(path, table.pop("Date"))
    _check_unique_dates(path, dates)
    table, dates = _sort_by_date(path, table, dates)
    values = _to_numbers(path, table, dates)
    values = _handle_missing(path, values, dates, missing)
    _check_finite(path, values, dates)
    _check_float32_range(path, values, dates)
    _check_signs(path, values, dates)
    values.index = pd.DatetimeIndex(dates.loc[values.index], name="Date")
    values.attrs["source"] = str(path)
    return values


def load_frame(config: DataConfig) -> pd.DataFrame:
    """The rows ``config`` chooses: its CSV (or the bundled GOOG data), loaded and checked by :func:`load_prices`,
    filtered to ``start``..``end``, then its last ``config.rows_kept()`` rows."""
    frame = select_dates(load_prices(config.path, missing=config.missing), config.start, config.end)
    rows = config.rows_kept()
    return frame if rows is None else frame.iloc[-rows:]


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


def select_dates(frame: pd.DataFrame, start: str | None = None, end: str | None = None) -> pd.DataFrame:
    """Return the rows of ``frame`` dated ``start`` to ``end`` inclusive (``YYYY-MM-DD``; None: no bound).

    Raises:
        ConfigError: a bound is not a ``YYYY-MM-DD`` date, or ``start`` is after ``end``.
        DataError: no row lies in the range (the message gives the data's own range).
    """
    first, last = _parse_bound("start", start), _parse_bound("end", end)
    if first is not None and last is not None and first > last:
        raise ConfigError(f"--start {start} is after --end {end}; pass a start on or before the end")
    keep = np.ones(len(frame), dtype=bool)
    if first is not None:
        keep &= frame.index >= first
    if last is not None:
        keep &= frame.index <= last
    if not keep.any():
        covers = _span(frame.index)
        raise DataError(
            f"{_source(frame)}: no rows from {start or 'the first row'} to {end or 'the last row'}; "
            f"the data covers {covers}, so pass --start/--end inside it"
        )
    return frame[keep]


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
            f"{_source(frame)}: {n_rows} rows, but --window {config.window}{horizon} need at least "
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
            f"{_source(frame)}: {len(frame)} rows, but predicting {target!r} from a {window}-day window "
            f"needs at least {window}; use an earlier --start"
        )
    x = _windows(feature_scaler.transform(inputs), window)
    next_day = pd.DatetimeIndex([frame.index[-1] + BDay(1)])
    return x, frame.index[window:].append(next_day).rename("Date")


# --- reading the file ---------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """The file's text; DataError when it is missing, unreadable, empty, binary or not UTF-8."""
    if not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "file not found"
        raise DataError(f"{path}: {what}; pass the path of a CSV file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read ({err.strerror}); check its permissions") from None
    if not raw.strip():
        raise DataError(f"{path}: file is empty; download the CSV again")
    if b"\x00" in raw[:8192]:
        raise DataError(f"{path}: binary file (NUL bytes), not a CSV; export it as a UTF-8 CSV")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text (byte {err.start}); save it as a UTF-8 CSV") from None


def _read_table(path: Path) -> pd.DataFrame:
    """The data rows as stripped strings, one column per header name; index + 1 is the line number."""
    try:
        raw = pd.read_csv(
            io.StringIO(_read_text(path)), header=None, dtype=str, na_filter=False, skip_blank_lines=False
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        reason = str(err).split("C error: ")[-1].strip()
        raise DataError(
            f"{path}: not a valid CSV ({reason}); every row needs as many comma-separated fields as the header"
        ) from None
    header = [name.strip() for name in raw.iloc[0]]
    _check_header(path, header)
    table = raw.iloc[1:].map(str.strip)
    table.columns = header
    table = table[(table != "").any(axis=1)]  # blank lines
    if table.empty:
        raise DataError(f"{path}: header but no data rows; download the CSV again for a range with trading days")
    return table


def _check_header(path: Path, header: list[str]) -> None:
    if "Date" not in header:
        raise DataError(
            f"{path}: no 'Date' column (columns: {_listing((name[:30] for name in header), 10)}); "
            f"expected a comma-separated Yahoo Finance CSV with header {','.join(YAHOO_HEADER)}"
        )
    if "" in header:
        raise DataError(f"{path}: header field {header.index('') + 1} has no name; name that column or delete it")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column name {repeated[0]!r} appears more than once; rename the duplicates")


# --- checking rows ------------------------------------------------------------------------------------


def _parse_dates(path: Path, text: pd.Series) -> pd.Series:
    """Timestamps (midnight) of ``YYYY-MM-DD[ time[offset]]`` strings; DataError names the first bad one."""
    valid = text.str.fullmatch(_DATE_PATTERN)
    dates = pd.to_datetime(text.str.slice(0, 10).where(valid), format="%Y-%m-%d", errors="coerce")
    bad = dates.isna()
    if bad.any():
        row = bad.idxmax()
        raise DataError(
            f"{path}: line {row + 1}: Date {_show(text.loc[row])} is not a date ({bad.sum()} bad in all); "
            f"write dates as YYYY-MM-DD"
        )
    return dates


def _check_unique_dates(path: Path, dates: pd.Series) -> None:
    repeated = dates[dates.duplicated(keep=False)]
    if repeated.empty:
        return
    first_lines = repeated[repeated == repeated.iloc[0]].index + 1
    days = [_day(day) for day in repeated.drop_duplicates()]
    raise DataError(
        f"{path}: duplicate dates {_listing(days)} (first on lines {', '.join(map(str, first_lines))}); "
        f"keep one row per trading day"
    )


def _sort_by_date(path: Path, table: pd.DataFrame, dates: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Sort rows by date (the dates are unique), warning when they were not ascending."""
    if dates.is_monotonic_increasing:
        return table, dates
    later = int(np.argmax(np.diff(dates.to_numpy()) < np.timedelta64(0))) + 1
    row = dates.index[later]
    warnings.warn(
        f"{path}: dates are not in ascending order (line {row + 1}: {_day(dates.iloc[later])} follows "
        f"{_day(dates.iloc[later - 1])}); sorted the rows by date",
        UserWarning,
        stacklevel=3,
    )
    order = dates.sort_values().index
    return table.loc[order], dates.loc[order]


def _to_numbers(path: Path, table: pd.DataFrame, dates: pd.Series) -> pd.DataFrame:
    """float64 columns (NaN where missing); Yahoo's columns must be numeric, others may stay text."""
    columns = {}
    for name, text in table.items():
        absent = text.str.lower().isin(_MISSING_TOKENS)
        numbers = pd.to_numeric(text.where(~absent), errors="coerce").astype(np.float64)
        bad = numbers.isna() & ~absent
        if bad.any() and name in YAHOO_HEADER:
            row = bad.idxmax()
            raise DataError(
                f"{path}: {_where(row, dates)}: {name} {_show(text.loc[row])} is not a number; fix or delete that row"
            )
        columns[name] = text if bad.any() else numbers
    return pd.DataFrame(columns, index=table.index)


def _handle_missing(path: Path, values: pd.DataFrame, dates: pd.Series, policy: MissingPolicy) -> pd.DataFrame:
    gaps = values.select_dtypes("number").isna().any(axis=1)
    if not gaps.any():
        return values
    if policy == "error":
        rows = gaps.index[gaps.to_numpy()]
        raise DataError(
            f"{path}: {len(rows)} row(s) with missing values (null/empty) on "
            f"{_listing([_day(dates.loc[row]) for row in rows])} (first on line {rows[0] + 1}); "
            f"pass --missing drop to skip those rows or --missing ffill to repeat the previous row's values"
        )
    if policy == "drop":
        if gaps.all():
            raise DataError(f"{path}: every row has a missing value; --missing drop leaves nothing")
        return values[~gaps]
    filled = values.ffill()
    unfilled = filled.select_dtypes("number").isna()
    if unfilled.any(axis=None):
        row = unfilled.any(axis=1).idxmax()
        column = unfilled.columns[unfilled.loc[row].to_numpy().argmax()]
        raise DataError(
            f"{path}: {_where(row, dates)}: {column} is missing and no earlier row can fill it; "
            f"pass --missing drop instead"
        )
    return filled


def _check_finite(path: Path, values: pd.DataFrame, dates: pd.Series) -> None:
    numeric = values.select_dtypes("number")
    infinite = np.isinf(numeric.to_numpy())
    if infinite.any():
        i, j = np.argwhere(infinite)[0]
        raise DataError(
            f"{path}: {_where(numeric.index[i], dates)}: {numeric.columns[j]} is {numeric.iat[i, j]}; "
            f"values must be finite, fix or delete that row"
        )


def _check_float32_range(path: Path, values: pd.DataFrame, dates: pd.Series) -> None:
    """Numbers beyond float32's range (3.4e38) would train on infinities; name the first such value."""
    numeric = values.select_dtypes("number")
    huge = np.abs(numeric.to_numpy()) > FLOAT32_MAX
    if huge.any():
        i, j = np.argwhere(huge)[0]
        raise DataError(
            f"{path}: {_where(numeric.index[i], dates)}: {numeric.columns[j]} is {numeric.iat[i, j]:g}, beyond the "
            f"{FLOAT32_MAX:.3g} that the model's float32 arithmetic can hold; fix or delete that row"
        )


def _check_signs(path: Path, values: pd.DataFrame, dates: pd.Series) -> None:
    """Prices must be > 0 and Volume >= 0 (a zero-volume day is possible)."""
    for name in (*PRICE_COLUMNS, "Volume"):
        if name not in values:
            continue
        column = values[name]
        bad = column < 0 if name == "Volume" else column <= 0
        if bad.any():
            row = bad.idxmax()
            rule = "volumes cannot be negative" if name == "Volume" else "prices must be > 0"
            raise DataError(
                f"{path}: {_where(row, dates)}: {name} is {column.loc[row]:g}; {rule}, fix or delete that row"
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
            f"{_source(frame)}: {n_rows} rows and --split {split} leaves no test rows; "
            f"use a wider --start/--end range or a smaller --split"
        )
    if n_train < window + outputs:
        needs = f"--window {window}" + (f" and --horizon {outputs}" if outputs > 1 else "")
        raise DataError(
            f"{_source(frame)}: {n_train} training rows (of {n_rows}), but {needs} need{'s' * (outputs == 1)} at least "
            f"{window + outputs}; use an earlier --start, a larger --split or a smaller --window"
        )
    if n_rows - n_train < horizon:
        raise DataError(
            f"{_source(frame)}: --horizon {horizon} is longer than the {n_rows - n_train} test days; "
            f"use a smaller --horizon or --split"
        )


def numeric_columns(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """(n_rows, len(names)) float64 values of numeric, finite columns; DataError naming a column that is absent,
    text, or holds a missing or infinite value."""
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise DataError(
            f"{_source(frame)}: column {absent[0]!r} not found "
            f"(columns: {_listing(map(str, frame.columns), 10)}); "
            f"pass --features/--target with existing columns"
        )
    text = [name for name in names if not pd.api.types.is_numeric_dtype(frame[name])]
    if text:
        raise DataError(
            f"{_source(frame)}: column {text[0]!r} is not numeric; pass --features/--target with numeric columns"
        )
    values = frame[list(names)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{_source(frame)}: {names[j]} is {values[i, j]} on {_day(frame.index[i])}; "
            f"load the file with --missing drop or ffill"
        )
    return values


def _fit_scaler(frame: pd.DataFrame, train: np.ndarray, names: Sequence[str]) -> MinMaxScaler:
    """MinMaxScaler((0, 1)) fit on (n_train, len(names)) training values; DataError for a flat column."""
    scaler = MinMaxScaler(feature_range=(0, 1)).fit(train)
    flat = scaler.data_range_ == 0
    if flat.any():
        j = int(flat.argmax())
        raise DataError(
            f"{_source(frame)}: {names[j]} is constant ({scaler.data_min_[j]:g}) "
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
    day to the next (its strides along n and window are equal), which this checks; :func:`~jaxlstm.train.fit` and
    :func:`~jaxlstm.ensemble.fit_ensemble` then gather each batch's windows from the series inside the compiled
    epoch. None for any other array (e.g. a copy: ``np.array(x)``).

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


# --- message helpers ----------------------------------------------------------------------------------


def _source(frame: pd.DataFrame) -> str:
    """The file a frame came from (set by load_prices), for error messages."""
    return str(frame.attrs.get("source", "input frame"))


def _parse_bound(name: str, value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    check_date(f"--{name}", value)
    return pd.Timestamp(value)


def _day(timestamp: pd.Timestamp) -> str:
    return timestamp.strftime("%Y-%m-%d")


def _span(dates: pd.DatetimeIndex) -> str:
    return f"{_day(dates[0])}..{_day(dates[-1])}" if len(dates) else "no dates"


def _where(row: int, dates: pd.Series) -> str:
    """``line N (YYYY-MM-DD)`` for a row label of the raw table."""
    return f"line {row + 1} ({_day(dates.loc[row])})"


def _show(value: str) -> str:
    """A cell value quoted for a message, shortened so one bad cell cannot flood the line."""
    return repr(value if len(value) <= 40 else value[:37] + "...")


def _listing(items: Iterable[str], limit: int = _SHOWN) -> str:
    """``a, b, c`` or ``a, b, ... (12 in all)``."""
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])}, ... ({len(items)} in all)"
