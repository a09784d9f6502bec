"""``jaxlstm fetch``: download a ticker's daily prices from Yahoo Finance (yfinance, the ``yahoo`` extra) into the CSV
format that ``train`` reads. The file is checked as ``train`` would read it before it lands; nothing is written when
the download or the check fails."""

import argparse
import warnings
from pathlib import Path
from typing import Any

from jaxlstm.errors import DataError, RunError, plural

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm fetch``."""
    parser = commands.add_parser(
        "fetch",
        help="download a ticker's daily prices from Yahoo Finance into a CSV that train reads",
        description="Download daily Open/High/Low/Close/Adj Close/Volume from Yahoo Finance through yfinance "
        "(pip install 'jaxlstm[yahoo]') and write them in Yahoo's CSV format.",
    )
    parser.add_argument("ticker", help="Yahoo symbol, e.g. GOOG, AAPL, ^GSPC")
    parser.add_argument("--start", required=True, help="first date, YYYY-MM-DD")
    parser.add_argument("--end", help="last date, YYYY-MM-DD (default: today)")
    parser.add_argument(
        "--adjust",
        choices=("splits", "all"),
        default="splits",
        help="splits: Open..Close adjusted for splits, Adj Close also for dividends, as Yahoo's own CSV; "
        "all: every price adjusted for dividends too (default: splits)",
    )
    parser.add_argument("--out", type=Path, help="CSV file to write (default: TICKER.csv)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm fetch``."""
    from jaxlstm.data import load_prices
    from jaxlstm.data.fetch import fetch_prices, yahoo_csv
    from jaxlstm.fileio import atomic_path

    out = args.out or Path(f"{args.ticker.replace('/', '-')}.csv")
    if out.is_dir():
        raise RunError(f"--out {out} is a directory; pass a file name such as {args.ticker}.csv")
    if not out.parent.is_dir():
        raise RunError(f"--out {out}: directory {out.parent} does not exist; create it or choose another --out")
    if out.exists() and not args.overwrite:
        raise RunError(f"--out {out} already exists; pass --overwrite or choose another --out")
    frame = fetch_prices(args.ticker, args.start, args.end, adjust=args.adjust)
    missing = int(frame.isna().any(axis=1).sum())
    try:
        with atomic_path(out) as tmp:
            tmp.write_text(yahoo_csv(frame))
            try:  # what train would refuse stops here, before the file lands
                load_prices(tmp, missing="drop")
            except DataError as error:
                problem = str(error).replace(str(tmp), str(out))
                raise DataError(f"the prices of {args.ticker} fail the checks of train: {problem}") from None
    except OSError as error:
        raise RunError(f"--out {out}: cannot write ({error.strerror}); choose another --out") from None
    days = f"{frame.index[0].date()}..{frame.index[-1].date()}"
    print(f"wrote {plural(len(frame), 'day')} of {args.ticker} ({days}, adjusted for {args.adjust}) to {out}")
    if missing:
        warnings.warn(
            f"{missing} of the days hold null values (Yahoo's gaps); train with --missing drop or --missing ffill",
            stacklevel=1,
        )
