"""Write the bundled sample CSVs data/GOOG.csv and data/AAPL.csv from bokeh-sampledata's stocks.csv.gz.

The source is Quandl WIKI daily prices (public domain) as shipped in the PyPI package bokeh-sampledata
(see README.md next to this file). Each output is in Yahoo Finance's download format: header
``Date,Open,High,Low,Close,Adj Close,Volume``, ISO dates in ascending order, prices with 6 decimals,
integer volume. Prices are unadjusted, so each series is cut to a range without a stock split.

Usage: ``.venv/bin/python data/extract_sample_data.py`` (rewrites both files; the output is deterministic).
"""

import hashlib
import sys
from pathlib import Path

import pandas as pd
from bokeh_sampledata import __version__, package_path

SOURCE_SHA256 = "5abadf99b2d394f920120a27de6f0df129859d71d4cfb0bf661bcc99446ab1fd"
"""SHA-256 of stocks.csv.gz in bokeh-sampledata 2026.1, the version the committed CSVs were made from."""

YAHOO_COLUMNS = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]

SERIES = {
    # ticker: (first date, last date), inclusive.
    "GOOG": ("2004-08-19", "2013-03-01"),  # the full series: no split before 2014
    "AAPL": ("2005-03-01", "2013-03-01"),  # 2:1 split on 2005-02-28; the unadjusted prices halve there
}


def read_source() -> pd.DataFrame:
    """Read stocks.csv.gz (columns Ticker,Date,Open,High,Low,Close,Volume,Adj Close), checking its hash."""
    path = package_path("stocks.csv.gz")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SOURCE_SHA256:
        sys.exit(
            f"{path}: SHA-256 {digest} differs from bokeh-sampledata 2026.1's {SOURCE_SHA256} "
            f"(installed: {__version__}); install bokeh-sampledata==2026.1 to reproduce the bundled CSVs"
        )
    return pd.read_csv(path, dtype={"Ticker": str, "Date": str})


def extract(source: pd.DataFrame, ticker: str, first: str, last: str) -> pd.DataFrame:
    """Return one ticker's rows between ``first`` and ``last`` (inclusive) with Yahoo's columns."""
    rows = source[(source["Ticker"] == ticker) & source["Date"].between(first, last)]
    rows = rows.sort_values("Date")[YAHOO_COLUMNS]
    if rows.empty or rows["Date"].duplicated().any():
        sys.exit(f"{ticker}: expected unique dates in {first}..{last}, found {len(rows)} rows")
    return rows


def main() -> None:
    """Write data/<ticker>.csv for every series in SERIES."""
    source = read_source()
    out_dir = Path(__file__).resolve().parent
    for ticker, (first, last) in SERIES.items():
        rows = extract(source, ticker, first, last)
        out = out_dir / f"{ticker}.csv"
        rows.to_csv(out, index=False, float_format="%.6f", lineterminator="\n")
        print(f"{out}: {len(rows)} rows, {rows['Date'].iloc[0]}..{rows['Date'].iloc[-1]}")


if __name__ == "__main__":
    main()
