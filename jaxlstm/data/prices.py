"""Daily price CSVs in Yahoo Finance's format, read and checked row by row, and the rows a run chooses.

Every problem with the input raises :class:`~jaxlstm.errors.DataError` (the file or its contents) or
:class:`~jaxlstm.errors.ConfigError` (an argument), with a one-line message that names the file, line,
column or argument and the fix.

>>> frame = load_prices("data/GOOG.csv")
>>> frame.index[0].date(), list(frame.columns)[:4]
(datetime.date(2004, 8, 19), ['Open', 'High', 'Low', 'Close'])
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import get_args

import numpy as np
import pandas as pd

from jaxlstm.config import DataConfig, MissingPolicy, check_date
from jaxlstm.errors import ConfigError, DataError, plural

__all__ = [
    "DAILY_MEDIAN_GAP",
    "FLOAT32_MAX",
    "PRICE_COLUMNS",
    "YAHOO_HEADER",
    "day_text",
    "listing",
    "load_frame",
    "load_prices",
    "numeric_columns",
    "select_dates",
    "source_of",
    "span_text",
]

FLOAT32_MAX = float(np.finfo(np.float32).max)
"""The largest value the model's float32 arithmetic can hold."""

YAHOO_HEADER = ("Date", "Open", "High", "Low", "Close", "Adj Close", "Volume")
PRICE_COLUMNS = ("Open", "High", "Low", "Close", "Adj Close")
"""Columns that must be > 0 when present; Volume must be >= 0."""

_MISSING_TOKENS = frozenset({"", "null", "nan", "na", "n/a", "none"})  # compared lower-cased
# YYYY-MM-DD, optionally followed by a time of day and a UTC offset (newer yfinance writes
# "2023-01-03 00:00:00-05:00"); only the date part is kept.
_DATE_PATTERN = r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
_SHOWN = 5  # how many dates or names an error message lists before "... (N in all)"
# A number written with thousands separators, "1,234.50" or "1,234,567": commas between groups of three digits, a
# point for the decimals. Only a quoted field can hold a comma, so such a cell is unambiguous; any other comma
# ("1.234,50", "12,5") stays "not a number".
_GROUPED_PATTERN = r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?"
DAILY_MEDIAN_GAP = 4
"""The largest median gap, in calendar days, between consecutive dates of daily rows (weekends and holidays give
gaps of 3 and 4 days; weekly rows give 7)."""
_SPACINGS = ((10, "weekly"), (20, "fortnightly"), (45, "monthly"), (100, "quarterly"), (400, "yearly"))


def load_prices(path: str | Path, *, missing: MissingPolicy = "error") -> pd.DataFrame:
    """Read and check a daily price CSV in Yahoo Finance's format.

    Accepts Yahoo's own downloads (6-decimal prices, ``null`` for missing values, no trailing newline) and
    yfinance's ``to_csv`` files (full float prices, possibly times and UTC offsets after the date).
    Columns other than ``Date`` need not be Yahoo's; Open/High/Low/Close/Adj Close/Volume, when present,
    must be numeric, other columns become float64 when every value is a number and stay text otherwise.

    Rows whose dates are out of order are sorted by date with a ``UserWarning`` rather than rejected:
    several sites export newest-first, and sorting loses nothing. Duplicate dates are an error, since
    there is no right row to keep, and so are rows further apart than daily bars (a median gap between
    consecutive dates above 4 calendar days: weekly or monthly data), since windows, horizons and
    forecast dates count trading days. Numbers may carry thousands separators in quoted fields
    (``"1,234.50"``, ``"1,234,567"``).

    Args:
        path: the CSV file.
        missing: what to do with rows holding a missing value (``null``, empty, ``NaN``): ``"error"``
            raises, ``"drop"`` removes those rows, ``"ffill"`` repeats the previous row's values.

    Returns:
        (n_rows, n_columns) frame indexed by an ascending ``DatetimeIndex`` named ``"Date"``; its
        ``attrs["source"]`` is the path, used to name the file in later error messages.

    Raises:
        DataError: the file is missing, empty, not a CSV, has bad dates or values, or is not daily.
        ConfigError: ``missing`` is not one of the three policies.
    """
    if missing not in get_args(MissingPolicy):
        raise ConfigError(f"missing={missing!r} is not a policy; pass --missing error, drop or ffill")
    path = Path(path)
    table = _read_table(path)
    dates = _parse_dates(path, table.pop("Date"))
    _check_unique_dates(path, dates)
    table, dates = _sort_by_date(path, table, dates)
    _check_daily(path, dates)
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
        covers = span_text(frame.index)
        raise DataError(
            f"{source_of(frame)}: no rows from {start or 'the first row'} to {end or 'the last row'}; "
            f"the data covers {covers}, so pass --start/--end inside it"
        )
    return frame[keep]


def numeric_columns(frame: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
    """(n_rows, len(names)) float64 values of numeric, finite columns; DataError naming a column that is absent,
    text, or holds a missing or infinite value."""
    absent = [name for name in names if name not in frame.columns]
    if absent:
        raise DataError(
            f"{source_of(frame)}: column {absent[0]!r} not found "
            f"(columns: {listing(map(str, frame.columns), 10)}); "
            f"pass --features/--target with existing columns"
        )
    text = [name for name in names if not pd.api.types.is_numeric_dtype(frame[name])]
    if text:
        raise DataError(
            f"{source_of(frame)}: column {text[0]!r} is not numeric; pass --features/--target with numeric columns"
        )
    values = frame[list(names)].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise DataError(
            f"{source_of(frame)}: {names[j]} is {values[i, j]} on {day_text(frame.index[i])}; "
            f"load the file with --missing drop or ffill"
        )
    return values


# --- reading the file ---------------------------------------------------------------------------------


def _read_text(path: Path) -> str:
    """The file's text; DataError when it is missing, unreadable, empty, binary or not UTF-8."""
    if not path.is_file():
        if path.is_dir():
            raise DataError(f"{path}: is a directory, not a file; pass the path of a CSV file")
        raise DataError(
            f"{path}: file not found; pass the path of a CSV file (a Yahoo daily CSV: `jaxlstm fetch TICKER --start "
            "YYYY-MM-DD` writes one, with pip install 'jaxlstm[yahoo]', or download it from Yahoo Finance)"
        )
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
            f"{path}: no 'Date' column (columns: {listing((name[:30] for name in header), 10)}); "
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
    days = [day_text(day) for day in repeated.drop_duplicates()]
    raise DataError(
        f"{path}: duplicate dates {listing(days)} (first on lines {', '.join(map(str, first_lines))}); "
        f"keep one row per trading day"
    )


def _sort_by_date(path: Path, table: pd.DataFrame, dates: pd.Series) -> tuple[pd.DataFrame, pd.Series]:
    """Sort rows by date (the dates are unique), warning when they were not ascending."""
    if dates.is_monotonic_increasing:
        return table, dates
    later = int(np.argmax(np.diff(dates.to_numpy()) < np.timedelta64(0))) + 1
    row = dates.index[later]
    warnings.warn(
        f"{path}: dates are not in ascending order (line {row + 1}: {day_text(dates.iloc[later])} follows "
        f"{day_text(dates.iloc[later - 1])}); sorted the rows by date",
        UserWarning,
        stacklevel=3,
    )
    order = dates.sort_values().index
    return table.loc[order], dates.loc[order]


def _check_daily(path: Path, dates: pd.Series) -> None:
    """DataError unless the rows are daily bars: a median gap between consecutive (sorted, unique) dates of at most
    :data:`DAILY_MEDIAN_GAP` calendar days. The median ignores the odd long gap (a market closed for a week), and
    the gap a weekend or holiday leaves."""
    if len(dates) < 2:
        return
    gap = float(np.median(np.diff(dates.to_numpy()) / np.timedelta64(1, "D")))
    if gap <= DAILY_MEDIAN_GAP:
        return
    spacing = next((name for limit, name in _SPACINGS if gap <= limit), "sparse")
    raise DataError(
        f"{path}: {spacing} rows: median {plural(gap, 'day')} between dates ({span_text(pd.DatetimeIndex(dates))}, "
        f"{plural(len(dates), 'row')}); jaxlstm models daily bars: pass daily rows (one per trading day)"
    )


def _to_numbers(path: Path, table: pd.DataFrame, dates: pd.Series) -> pd.DataFrame:
    """float64 columns (NaN where missing), reading thousands separators in quoted fields; Yahoo's columns must be
    numeric, others may stay text."""
    columns = {}
    for name, text in table.items():
        absent = text.str.lower().isin(_MISSING_TOKENS)
        written = text
        if text.str.contains(",", regex=False).any():
            grouped = text.str.fullmatch(_GROUPED_PATTERN)
            written = text.where(~grouped, text.str.replace(",", "", regex=False))
        numbers = pd.to_numeric(written.where(~absent), errors="coerce").astype(np.float64)
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
            f"{listing([day_text(dates.loc[row]) for row in rows])} (first on line {rows[0] + 1}); "
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


# --- message helpers ----------------------------------------------------------------------------------


def source_of(frame: pd.DataFrame) -> str:
    """The file a frame came from (set by load_prices), for error messages."""
    return str(frame.attrs.get("source", "input frame"))


def _parse_bound(name: str, value: str | None) -> pd.Timestamp | None:
    if value is None:
        return None
    check_date(f"--{name}", value)
    return pd.Timestamp(value)


def day_text(timestamp: pd.Timestamp) -> str:
    return timestamp.strftime("%Y-%m-%d")


def span_text(dates: pd.DatetimeIndex) -> str:
    return f"{day_text(dates[0])}..{day_text(dates[-1])}" if len(dates) else "no dates"


def _where(row: int, dates: pd.Series) -> str:
    """``line N (YYYY-MM-DD)`` for a row label of the raw table."""
    return f"line {row + 1} ({day_text(dates.loc[row])})"


def _show(value: str) -> str:
    """A cell value quoted for a message, shortened so one bad cell cannot flood the line."""
    return repr(value if len(value) <= 40 else value[:37] + "...")


def listing(items: Iterable[str], limit: int = _SHOWN) -> str:
    """``a, b, c`` or ``a, b, ... (12 in all)``."""
    items = list(items)
    if len(items) <= limit:
        return ", ".join(items)
    return f"{', '.join(items[:limit])}, ... ({len(items)} in all)"
