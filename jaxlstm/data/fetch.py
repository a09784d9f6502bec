"""Daily prices of any ticker from Yahoo Finance, through yfinance (the ``yahoo`` extra), as the Yahoo CSV that
:func:`jaxlstm.data.load_prices` reads.

Yahoo's Open, High, Low and Close are adjusted for splits (not dividends) and its Adj Close for both:
``adjust="splits"`` keeps them so, as Yahoo's own CSV download does; ``adjust="all"`` adjusts Open, High, Low and
Close for dividends too (yfinance's ``auto_adjust``), and Adj Close equals Close. The network is reached through
``download``, yfinance's by default; tests pass a stand-in that returns the frame yfinance would.

>>> frame = pd.DataFrame(
...     {"Open": [10.0], "High": [11.0], "Low": [9.5], "Close": [10.5], "Adj Close": [10.25], "Volume": [1000.0]},
...     index=pd.DatetimeIndex(["2021-01-04"], name="Date"),
... )
>>> print(yahoo_csv(fetch_prices("X", "2021-01-04", "2021-01-04", download=lambda *a, **k: frame)), end="")
Date,Open,High,Low,Close,Adj Close,Volume
2021-01-04,10.000000,11.000000,9.500000,10.500000,10.250000,1000
"""

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd

from jaxlstm.config import check_date
from jaxlstm.data.prices import YAHOO_HEADER
from jaxlstm.errors import ConfigError, DataError

__all__ = ["ADJUSTMENTS", "fetch_prices", "yahoo_csv"]

Adjustment = Literal["splits", "all"]
ADJUSTMENTS: tuple[str, ...] = ("splits", "all")
NO_YFINANCE = (
    "jaxlstm fetch needs yfinance: pip install 'jaxlstm[yahoo]'; or save the daily prices from finance.yahoo.com as a "
    "CSV and pass it with --csv"
)


def _day(name: str, value: str) -> pd.Timestamp:
    check_date(name, value)
    return pd.Timestamp(value)


def fetch_prices(
    ticker: str,
    start: str,
    end: str | None = None,
    *,
    adjust: Adjustment = "splits",
    download: Callable[..., Any] | None = None,
) -> pd.DataFrame:
    """The daily prices of ``ticker`` from ``start`` to ``end`` inclusive (``YYYY-MM-DD``; default: today), with
    Yahoo's columns (Open, High, Low, Close, Adj Close, Volume), indexed by date.

    Raises:
        ConfigError: a bad date, ``start`` after ``end``, an unknown ``adjust``, or yfinance not installed.
        DataError: the download failed or returned no rows (an unknown symbol, no trading days, no network).
    """
    if adjust not in ADJUSTMENTS:
        raise ConfigError(f"--adjust {adjust!r}: use one of {', '.join(ADJUSTMENTS)}")
    first = _day("--start", start)
    last = pd.Timestamp.today().normalize() if end is None else _day("--end", end)
    if first > last:
        raise ConfigError(f"--start {start} is after --end {end or last.date()}; pass a start on or before the end")
    if download is None:
        try:
            import yfinance
        except ImportError:
            raise ConfigError(NO_YFINANCE) from None
        download = yfinance.download
    where = f"{ticker} from {first.date()} to {last.date()}"
    try:  # yfinance's end is exclusive
        table = download(
            ticker,
            start=first.strftime("%Y-%m-%d"),
            end=(last + pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
            auto_adjust=adjust == "all",
            actions=False,
            progress=False,
        )
    except Exception as error:  # yfinance raises whatever its HTTP stack raises
        raise DataError(f"downloading {where} failed ({type(error).__name__}: {error}); check the network") from None
    if table is None or table.empty:
        raise DataError(
            f"Yahoo Finance returned no rows for {where}: an unknown symbol, no trading days, or no network; check "
            f"the symbol and dates, or pass a CSV with --csv"
        )
    if isinstance(table.columns, pd.MultiIndex):  # (price, ticker) columns, yfinance's default for one ticker too
        table = table.droplevel(1, axis="columns")
    if adjust == "all":
        table = table.assign(**{"Adj Close": table["Close"]})
    absent = [name for name in YAHOO_HEADER[1:] if name not in table.columns]
    if absent:
        raise DataError(f"Yahoo Finance's answer for {where} lacks {', '.join(absent)}; try again later")
    dates = pd.DatetimeIndex(table.index).tz_localize(None).normalize()
    frame = table[list(YAHOO_HEADER[1:])].set_axis(pd.DatetimeIndex(dates, name="Date"))
    return frame[(frame.index >= first) & (frame.index <= last)].astype(np.float64)


def yahoo_csv(frame: pd.DataFrame) -> str:
    """``frame`` (as :func:`fetch_prices` returns it) as the text of a Yahoo daily CSV: prices with 6 decimals, whole
    volumes, missing values as ``null``, as Yahoo writes them."""
    table = frame.copy()
    table["Volume"] = table["Volume"].round().astype("Int64")
    table.index = table.index.strftime("%Y-%m-%d")
    return table.to_csv(index_label="Date", float_format="%.6f", na_rep="null", lineterminator="\n")
