"""`jaxlstm fetch` without the network: a stand-in for yfinance returns the frame yfinance 1.x would (a (Price,
Ticker) column MultiIndex, dates as a DatetimeIndex named Date), and the test checks what lands on disk."""

import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxlstm.commands import main
from jaxlstm.data import load_prices


def yfinance_answer(days: int = 5, ticker: str = "GOOG") -> pd.DataFrame:
    rng = np.random.default_rng(3)
    close = 100 + np.cumsum(rng.normal(0, 1, days))
    columns = {
        "Adj Close": close * 0.98,
        "Close": close,
        "High": close + 1.23456789,
        "Low": close - 1.0,
        "Open": close + 0.5,
        "Volume": rng.integers(10**6, 10**7, days).astype(np.int64),
    }
    frame = pd.DataFrame(columns, index=pd.bdate_range("2021-03-01", periods=days, name="Date"))
    frame.columns = pd.MultiIndex.from_product([frame.columns, [ticker]], names=["Price", "Ticker"])
    return frame


@pytest.fixture
def yfinance(monkeypatch):
    """A stand-in yfinance module; ``calls`` records every download's arguments, ``answer`` is what it returns."""
    module = types.SimpleNamespace(calls=[], answer=yfinance_answer())

    def download(ticker, **options):
        module.calls.append({"ticker": ticker, **options})
        if isinstance(module.answer, Exception):
            raise module.answer
        return module.answer

    module.download = download
    monkeypatch.setitem(sys.modules, "yfinance", module)
    return module


def fetch(tmp_path: Path, *extra: str) -> list[str]:
    return ["fetch", "GOOG", "--start", "2021-03-01", "--end", "2021-03-05", "--out", str(tmp_path / "g.csv"), *extra]


def test_fetch_writes_the_csv_train_reads(yfinance, tmp_path: Path, capsys) -> None:
    assert main(fetch(tmp_path)) == 0
    call = yfinance.calls[0]
    assert (call["ticker"], call["start"], call["end"], call["auto_adjust"]) == (
        "GOOG",
        "2021-03-01",
        "2021-03-06",
        False,
    )
    text = (tmp_path / "g.csv").read_text()
    assert text.splitlines()[0] == "Date,Open,High,Low,Close,Adj Close,Volume"
    assert text.splitlines()[1].startswith("2021-03-01,") and len(text.splitlines()) == 6
    frame = load_prices(tmp_path / "g.csv")
    answer = yfinance.answer.droplevel(1, axis="columns")
    for name in ("Open", "High", "Low", "Close", "Adj Close", "Volume"):
        np.testing.assert_allclose(frame[name].to_numpy(), answer[name].to_numpy(), atol=5e-7)
    assert "wrote 5 days of GOOG (2021-03-01..2021-03-05, adjusted for splits)" in capsys.readouterr().out


def test_fully_adjusted_prices_have_adj_close_equal_to_close(yfinance, tmp_path: Path) -> None:
    yfinance.answer = yfinance.answer.drop(columns="Adj Close", level=0)  # auto_adjust=True has no Adj Close
    assert main(fetch(tmp_path, "--adjust", "all")) == 0
    assert yfinance.calls[0]["auto_adjust"] is True
    frame = load_prices(tmp_path / "g.csv")
    np.testing.assert_array_equal(frame["Adj Close"].to_numpy(), frame["Close"].to_numpy())


def test_gaps_are_written_as_null_with_a_warning(yfinance, tmp_path: Path, capsys) -> None:
    yfinance.answer.iloc[2, :] = np.nan
    assert main(fetch(tmp_path)) == 0
    assert "2021-03-03,null,null,null,null,null,null" in (tmp_path / "g.csv").read_text()
    err = capsys.readouterr().err
    assert (
        err == "jaxlstm: warning: 1 of the days hold null values (Yahoo's gaps); train with --missing drop or "
        "--missing ffill\n"
    )
    assert len(load_prices(tmp_path / "g.csv", missing="drop")) == 4


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("absent", "jaxlstm fetch needs yfinance: pip install 'jaxlstm[yahoo]'; or save the daily prices from"),
        ("empty", "Yahoo Finance returned no rows for GOOG from 2021-03-01 to 2021-03-05: an unknown symbol, no"),
        ("offline", "downloading GOOG from 2021-03-01 to 2021-03-05 failed (ConnectionError: no route); check the"),
        ("zero price", "the prices of GOOG fail the checks of train: {out}: line 4 (2021-03-03): Open is 0; prices"),
        ("exists", "--out {out} already exists; pass --overwrite or choose another --out"),
        ("bad date", "--start '2021-13-01' is not a date; write it as YYYY-MM-DD"),
    ],
)
def test_fetch_failures_are_one_line_and_write_nothing(
    yfinance, monkeypatch, tmp_path: Path, capsys, setup: str, message: str
) -> None:
    argv = fetch(tmp_path)
    if setup == "absent":
        monkeypatch.setitem(sys.modules, "yfinance", None)  # import yfinance raises ImportError
    elif setup == "empty":
        yfinance.answer = yfinance.answer.iloc[:0]
    elif setup == "offline":
        yfinance.answer = ConnectionError("no route")
    elif setup == "zero price":
        yfinance.answer.iloc[2, yfinance.answer.columns.get_loc(("Open", "GOOG"))] = 0.0
    elif setup == "exists":
        (tmp_path / "g.csv").write_text("mine")
    else:
        argv[argv.index("2021-03-01")] = "2021-13-01"
    before = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxlstm: error: ") and err.count("\n") == 1
    assert message.format(out=tmp_path / "g.csv") in err, err
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == before
