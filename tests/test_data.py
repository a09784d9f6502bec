"""Tests of jaxlstm.data: the tutorial's windowing, checked against the tutorial's own code, and input checks.

The oracles are independent of the code under test: the tutorial's pandas + MinMaxScaler + for-loop code
written out verbatim, plain ``pd.read_csv`` reads, known values from ../shared/data/SOURCES.md, and
date-based reasoning in the property test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.data import (
    DEFAULT_SPLIT,
    DEFAULT_WINDOW,
    load_prices,
    prediction_windows,
    prepare,
    select_dates,
    window_series,
)
from jaxlstm.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
BUNDLED = REPO / "data"
SHARED = REPO.parent / "shared" / "data"
HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
TUTORIAL = ("2020-04-01", "2021-03-01")


def shared_csv(name: str) -> Path:
    """A real Yahoo CSV from ../shared/data (never copied into the repo); skip the test when absent."""
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"{path} is not available")
    return path


def write_csv(tmp_path: Path, text: str | bytes, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def rows(*lines: str) -> str:
    """A Yahoo CSV: the header, then ``lines``."""
    return "\n".join((HEADER, *lines)) + "\n"


GOOD = [
    "2020-01-02,10,11,9,10.5,10.5,100",
    "2020-01-03,11,12,10,11.5,11.5,200",
    "2020-01-06,12,13,11,12.5,12.5,300",
]


# --- the tutorial, verbatim ------------------------------------------------------------------------


def tutorial(csv_path: Path, start: str, end: str, split: int = 172, window: int = 60) -> dict:
    """The tutorial's data code, unchanged except that one file is cut by date instead of two files."""
    dataset = pd.read_csv(csv_path)
    dataset = dataset[(dataset["Date"] >= start) & (dataset["Date"] <= end)].reset_index(drop=True)
    dataset_train = dataset.iloc[:split]
    dataset_test = dataset.iloc[split:]

    training_set = dataset_train.iloc[:, 1:2].values
    sc = MinMaxScaler(feature_range=(0, 1))
    training_set_scaled = sc.fit_transform(training_set)
    X_train = []
    y_train = []
    for i in range(window, split):
        X_train.append(training_set_scaled[i - window : i, 0])
        y_train.append(training_set_scaled[i, 0])
    X_train, y_train = np.array(X_train), np.array(y_train)
    X_train = np.reshape(X_train, (X_train.shape[0], X_train.shape[1], 1))

    real_stock_price = dataset_test.iloc[:, 1:2].values
    dataset_total = pd.concat((dataset_train["Open"], dataset_test["Open"]), axis=0)
    inputs = dataset_total[len(dataset_total) - len(dataset_test) - window :].values
    inputs = inputs.reshape(-1, 1)
    inputs = sc.transform(inputs)
    X_test = []
    for i in range(window, window + len(dataset_test)):
        X_test.append(inputs[i - window : i, 0])
    X_test = np.array(X_test)
    X_test = np.reshape(X_test, (X_test.shape[0], X_test.shape[1], 1))
    return {
        "X_train": X_train,
        "y_train": y_train,
        "X_test": X_test,
        "real_stock_price": real_stock_price,
        "sc": sc,
        "train_dates": pd.to_datetime(dataset_train["Date"].iloc[window:]),
        "test_dates": pd.to_datetime(dataset_test["Date"]),
        "previous": dataset["Open"].values[split - 1 : -1],
    }


TUTORIAL_CASES = [
    pytest.param(lambda: shared_csv("GOOG.csv"), *TUTORIAL, id="shared-GOOG-tutorial-window"),
    pytest.param(lambda: BUNDLED / "GOOG.csv", "2012-01-01", "2012-12-31", id="bundled-GOOG-2012"),
    pytest.param(lambda: BUNDLED / "AAPL.csv", "2009-03-01", "2010-02-28", id="bundled-AAPL-2009"),
]


@pytest.mark.parametrize(("csv", "start", "end"), TUTORIAL_CASES)
def test_prepare_equals_the_tutorial_code(csv, start, end):
    path = csv()
    expected = tutorial(path, start, end)
    ds = prepare(select_dates(load_prices(path), start, end))

    np.testing.assert_array_equal(ds.x_train, expected["X_train"].astype(np.float32))
    np.testing.assert_array_equal(ds.y_train, expected["y_train"].astype(np.float32))
    np.testing.assert_array_equal(ds.x_test, expected["X_test"].astype(np.float32))
    np.testing.assert_array_equal(ds.test_prices, expected["real_stock_price"][:, 0])
    np.testing.assert_array_equal(
        ds.y_test, expected["sc"].transform(expected["real_stock_price"])[:, 0].astype(np.float32)
    )
    np.testing.assert_array_equal(ds.previous_prices, expected["previous"])
    np.testing.assert_array_equal(ds.train_dates, expected["train_dates"])
    np.testing.assert_array_equal(ds.test_dates, expected["test_dates"])
    assert ds.x_train.dtype == ds.y_train.dtype == ds.x_test.dtype == ds.y_test.dtype == np.float32
    assert ds.test_prices.dtype == ds.previous_prices.dtype == np.float64
    assert (ds.features, ds.target, ds.window) == (("Open",), "Open", DEFAULT_WINDOW)
    assert len(ds.train_dates) == DEFAULT_SPLIT - DEFAULT_WINDOW


def test_tutorial_window_has_112_training_and_58_test_windows():
    frame = select_dates(load_prices(shared_csv("GOOG.csv")), *TUTORIAL)
    ds = prepare(frame)
    assert len(frame) == 230
    assert ds.x_train.shape == (112, 60, 1)
    assert ds.y_train.shape == (112,)
    assert ds.x_test.shape == (58, 60, 1)
    assert ds.y_test.shape == ds.test_prices.shape == ds.previous_prices.shape == (58,)
    # SOURCES.md: row 172 is 2020-12-03 and row 230 is 2021-03-01; 2020-04-01 opened at 1122.0.
    assert ds.test_dates[0] == pd.Timestamp("2020-12-04")
    assert ds.test_dates[-1] == pd.Timestamp("2021-03-01")
    assert ds.previous_prices[0] == frame.loc["2020-12-03", "Open"]
    assert ds.test_prices[-1] == 2056.52002
    assert ds.train_dates[0] == frame.index[60]
    assert repr(ds) == (
        "Dataset(features=('Open',), target='Open', window=60, x_train=(112, 60, 1) for 2020-06-26..2020-12-03, "
        "x_test=(58, 60, 1) for 2020-12-04..2021-03-01)"
    )


def test_fractional_split_rounds_down_to_a_row_count():
    frame = select_dates(load_prices(BUNDLED / "GOOG.csv"), "2012-01-01", "2012-12-31")
    assert len(frame) == 250
    by_fraction = prepare(frame, split=0.687)  # 171.75 rows
    by_count = prepare(frame, split=171)
    np.testing.assert_array_equal(by_fraction.x_test, by_count.x_test)
    assert len(by_fraction.train_dates) == 171 - 60
    assert len(by_fraction.test_dates) == 250 - 171


@pytest.mark.parametrize(
    "csv",
    [
        pytest.param(lambda: shared_csv("GOOG.csv"), id="shared"),
        pytest.param(lambda: BUNDLED / "GOOG.csv", id="bundled"),
    ],
)
def test_scaler_is_fit_on_training_rows_only(csv):
    path = csv()
    start, end = TUTORIAL if path.parent == SHARED else ("2012-01-01", "2012-12-31")
    raw = pd.read_csv(path)
    opens = raw.loc[(raw["Date"] >= start) & (raw["Date"] <= end), "Open"].to_numpy()
    ds = prepare(select_dates(load_prices(path), start, end))
    assert ds.feature_scaler.data_max_[0] == opens[:172].max()
    assert ds.feature_scaler.data_min_[0] == opens[:172].min()
    assert ds.target_scaler.data_max_[0] == opens[:172].max()
    assert max(ds.x_train.max(), ds.y_train.max()) == 1.0
    assert ds.x_test.max() > 1.0  # the test period rose above the training maximum


def test_multi_feature_windows_equal_the_tutorial_loops():
    features, target, window, split = ["Open", "High", "Low", "Close", "Volume"], "Close", 20, 0.7
    raw = pd.read_csv(BUNDLED / "GOOG.csv")
    raw = raw[(raw["Date"] >= "2011-01-01") & (raw["Date"] <= "2011-12-31")].reset_index(drop=True)
    n_train = int(split * len(raw))
    sc = MinMaxScaler(feature_range=(0, 1)).fit(raw[features].iloc[:n_train].values)
    target_sc = MinMaxScaler(feature_range=(0, 1)).fit(raw[[target]].iloc[:n_train].values)
    scaled, scaled_target = sc.transform(raw[features].values), target_sc.transform(raw[[target]].values)
    X, y = [], []
    for i in range(window, len(raw)):
        X.append(scaled[i - window : i, :])
        y.append(scaled_target[i, 0])
    X, y = np.array(X, dtype=np.float32), np.array(y, dtype=np.float32)

    frame = select_dates(load_prices(BUNDLED / "GOOG.csv"), "2011-01-01", "2011-12-31")
    ds = prepare(frame, features=features, target=target, window=window, split=split)
    np.testing.assert_array_equal(np.concatenate([ds.x_train, ds.x_test]), X)
    np.testing.assert_array_equal(np.concatenate([ds.y_train, ds.y_test]), y)
    assert ds.x_train.shape == (n_train - window, window, len(features))
    np.testing.assert_array_equal(ds.test_prices, raw[target].values[n_train:])


def test_windows_are_views_of_one_copy_of_the_scaled_series():
    """A 20,000-row series: its windows take the memory of the series once (not 60 times it), equal the
    tutorial's loop, are read-only, and window_series gives back that series."""
    rng = np.random.default_rng(0)
    opens = 100 + np.cumsum(rng.normal(size=20_000)) * 0.1
    frame = pd.DataFrame({"Open": opens}, index=pd.date_range("2000-01-01", periods=len(opens), freq="min"))
    ds = prepare(frame, split=0.9)
    owner = ds.x_train
    while owner.base is not None:
        owner = owner.base
    assert owner.nbytes == len(opens) * 4  # float32, every row once
    scaled = (opens - opens[:18_000].min()) / (opens[:18_000].max() - opens[:18_000].min())
    loops = np.array([scaled[i - 60 : i] for i in range(60, 18_000)], np.float32)[:, :, None]
    np.testing.assert_allclose(ds.x_train, loops, atol=1e-6)
    assert not ds.x_train.flags.writeable
    series = window_series(ds.x_train)
    assert series.shape == (18_000 - 1, 1) and np.shares_memory(series, ds.x_train)
    np.testing.assert_array_equal(series[np.arange(len(ds.x_train))[:, None] + np.arange(60)], ds.x_train)
    assert window_series(np.array(ds.x_train)) is None and window_series(ds.x_train[:, :, 0]) is None


# --- loading real files ------------------------------------------------------------------------------


def test_loads_yahoo_download_format():
    frame = load_prices(shared_csv("GOOG.csv"))  # 6 decimals, no trailing newline
    assert frame.shape == (4222, 6)
    assert list(frame.columns) == HEADER.split(",")[1:]
    assert frame.index.name == "Date"
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert frame.index.is_monotonic_increasing
    assert (frame.dtypes == np.float64).all()
    assert frame.loc["2021-05-26", "Open"] == 2412.834961  # the last line, which has no newline
    assert frame.loc["2020-09-01", "Close"] == 1660.709961


def test_loads_yfinance_to_csv_format():
    frame = load_prices(shared_csv("MSFT.csv"))
    assert frame.shape == (2248, 6)
    assert (frame.dtypes == np.float64).all()
    assert frame.index[0] == pd.Timestamp("2013-01-02")
    assert frame.loc["2013-01-02", "High"] == 27.729999542236328
    assert frame.loc["2013-01-02", "Volume"] == 52899300


@pytest.mark.parametrize(
    ("name", "n_rows", "first", "last"),
    [("GOOG", 2148, "2004-08-19", "2013-03-01"), ("AAPL", 2015, "2005-03-01", "2013-03-01")],
)
def test_bundled_sample_data(name, n_rows, first, last):
    path = BUNDLED / f"{name}.csv"
    assert path.read_text().splitlines()[0] == HEADER
    frame = load_prices(path)
    assert len(frame) == n_rows
    assert (frame.index[0], frame.index[-1]) == (pd.Timestamp(first), pd.Timestamp(last))
    # Unadjusted prices: no split inside the range, so no day opens below half the previous close.
    assert (frame["Open"] / frame["Close"].shift() > 0.5).iloc[1:].all()


def test_yahoo_null_row_is_an_error_by_default():
    with pytest.raises(DataError, match=r"2022-01-27.*--missing drop.*--missing ffill"):
        load_prices(shared_csv("with_nulls.csv"))


def test_yahoo_null_row_can_be_dropped_or_filled():
    path = shared_csv("with_nulls.csv")
    dropped = load_prices(path, missing="drop")
    filled = load_prices(path, missing="ffill")
    assert len(dropped) == 4392
    assert pd.Timestamp("2022-01-27") not in dropped.index
    assert len(filled) == 4393
    pd.testing.assert_series_equal(filled.loc["2022-01-27"], filled.loc["2022-01-26"], check_names=False)
    assert not dropped.isna().any(axis=None) and not filled.isna().any(axis=None)


# --- checks of the file --------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        load_prices(tmp_path / "nope.csv")


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_prices(tmp_path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path, text):
    with pytest.raises(DataError, match="file is empty"):
        load_prices(write_csv(tmp_path, text))


@pytest.mark.parametrize("text", [HEADER, HEADER + "\n", HEADER + "\n\n"])
def test_header_only(tmp_path, text):
    with pytest.raises(DataError, match="header but no data rows"):
        load_prices(write_csv(tmp_path, text))


def test_binary_file(tmp_path):
    zip_bytes = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00b\xee\x9dh^\x01"
    with pytest.raises(DataError, match="binary file"):
        load_prices(write_csv(tmp_path, zip_bytes, "prices.xlsx"))


def test_undecodable_file(tmp_path):
    with pytest.raises(DataError, match=r"not UTF-8 text \(byte 56\)"):
        load_prices(write_csv(tmp_path, (HEADER + "\n2020-01-02,caf\xe9").encode("latin-1")))


def test_ragged_rows_are_not_a_csv(tmp_path):
    with pytest.raises(DataError, match=r"not a valid CSV \(Expected 7 fields in line 3, saw 8\)"):
        load_prices(write_csv(tmp_path, rows(GOOD[0], GOOD[1] + ",999")))


def test_no_date_column(tmp_path):
    with pytest.raises(DataError, match=r"no 'Date' column \(columns: Day, Open\)"):
        load_prices(write_csv(tmp_path, "Day,Open\n2020-01-02,1\n"))


@pytest.mark.parametrize(
    "text",
    [
        '{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid cookie"}}}',
        "<!DOCTYPE html>\n<html><head><title>Yahoo</title></head>\n<body>Will be right back</body></html>\n",
    ],
    ids=["yahoo-json-error", "html-page"],
)
def test_error_page_saved_as_csv(tmp_path, text):
    with pytest.raises(DataError, match=r"prices\.csv: (no 'Date' column|not a valid CSV)"):
        load_prices(write_csv(tmp_path, text))


def test_semicolon_separated_file_names_the_expected_header(tmp_path):
    with pytest.raises(DataError, match=r"no 'Date' column.*comma-separated"):
        load_prices(write_csv(tmp_path, "Date;Open\n2020-01-02;1\n"))


@pytest.mark.parametrize(
    ("header", "problem"), [("Date,Open,", "has no name"), ("Date,Open,Open", "'Open' appears more")]
)
def test_bad_header_names(tmp_path, header, problem):
    with pytest.raises(DataError, match=problem):
        load_prices(write_csv(tmp_path, f"{header}\n2020-01-02,1,2\n"))


@pytest.mark.parametrize("bad", ["2020-13-01", "2020-02-30", "01/03/2020", "yesterday", ""])
def test_unparseable_date_names_line_and_value(tmp_path, bad):
    path = write_csv(tmp_path, rows(GOOD[0], bad + GOOD[1][10:]))
    with pytest.raises(DataError, match=rf"line 3: Date '{bad}' is not a date.*YYYY-MM-DD"):
        load_prices(path)


def test_line_numbers_count_blank_lines(tmp_path):
    path = write_csv(tmp_path, rows(GOOD[0], "", "2020-13-01" + GOOD[1][10:]))
    with pytest.raises(DataError, match="line 4: Date"):
        load_prices(path)


def test_dates_with_time_and_utc_offset_keep_the_local_date(tmp_path):
    path = write_csv(
        tmp_path,
        rows("2023-03-10 00:00:00-05:00,1,1,1,1,1,1", "2023-03-13 00:00:00-04:00,2,2,2,2,2,2"),
    )
    assert list(load_prices(path).index) == [pd.Timestamp("2023-03-10"), pd.Timestamp("2023-03-13")]


def test_bom_crlf_and_blank_lines_are_accepted(tmp_path):
    text = "\ufeff" + rows(GOOD[0], "", *GOOD[1:]).replace("\n", "\r\n")
    frame = load_prices(write_csv(tmp_path, text.encode("utf-8")))
    assert len(frame) == 3 and frame["Open"].tolist() == [10, 11, 12]


def test_duplicate_dates_are_named(tmp_path):
    path = write_csv(tmp_path, rows(GOOD[0], GOOD[1], GOOD[1], GOOD[2]))
    with pytest.raises(DataError, match=r"duplicate dates 2020-01-03 \(first on lines 3, 4\)"):
        load_prices(path)


def test_unsorted_dates_are_sorted_with_a_warning(tmp_path):
    path = write_csv(tmp_path, rows(GOOD[2], GOOD[0], GOOD[1]))
    with pytest.warns(UserWarning, match=r"not in ascending order \(line 3: 2020-01-02 follows 2020-01-06\)"):
        frame = load_prices(path)
    assert frame.index.is_monotonic_increasing
    assert frame["Open"].tolist() == [10, 11, 12]  # each row kept its values


def test_non_numeric_price_names_column_line_and_value(tmp_path):
    path = write_csv(tmp_path, rows(GOOD[0], "2020-01-03,11,12,10,abc,11.5,200"))
    with pytest.raises(DataError, match=r"line 3 \(2020-01-03\): Close 'abc' is not a number"):
        load_prices(path)


def test_extra_text_column_is_kept_but_cannot_be_a_feature(tmp_path):
    path = write_csv(tmp_path, "Date,Open,Ticker\n2020-01-02,1,GOOG\n2020-01-03,2,GOOG\n")
    frame = load_prices(path)
    assert frame["Open"].dtype == np.float64
    assert frame["Ticker"].tolist() == ["GOOG", "GOOG"]
    with pytest.raises(DataError, match=r"column 'Ticker' is not numeric"):
        prepare(frame, features=["Ticker"], window=1, split=1)


def test_null_rows_list_their_dates(tmp_path):
    nulls = [f"2020-02-{day:02d},null,null,null,null,null,null" for day in range(3, 10)]
    path = write_csv(tmp_path, rows(*GOOD, *nulls))
    with pytest.raises(
        DataError,
        match=r"7 row\(s\) with missing values.* on 2020-02-03, 2020-02-04, 2020-02-05, 2020-02-06, "
        r"2020-02-07, \.\.\. \(7 in all\) \(first on line 5\); pass --missing drop .* --missing ffill",
    ):
        load_prices(path)


def test_empty_field_is_a_missing_value(tmp_path):
    path = write_csv(tmp_path, rows(GOOD[0], "2020-01-03,11,12,10,,11.5,200", GOOD[2]))
    with pytest.raises(DataError, match="on 2020-01-03"):
        load_prices(path)
    assert load_prices(path, missing="ffill").loc["2020-01-03", "Close"] == 10.5
    assert len(load_prices(path, missing="drop")) == 2


def test_leading_missing_value_cannot_be_forward_filled(tmp_path):
    path = write_csv(tmp_path, rows("2020-01-02,null,11,9,10.5,10.5,100", *GOOD[1:]))
    with pytest.raises(DataError, match=r"line 2 \(2020-01-02\): Open is missing and no earlier row"):
        load_prices(path, missing="ffill")


def test_dropping_every_row_is_an_error(tmp_path):
    path = write_csv(tmp_path, rows("2020-01-02,null,null,null,null,null,null"))
    with pytest.raises(DataError, match="leaves nothing"):
        load_prices(path, missing="drop")


def test_unknown_missing_policy(tmp_path):
    with pytest.raises(ConfigError, match=r"missing='zero' is not a policy"):
        load_prices(write_csv(tmp_path, rows(*GOOD)), missing="zero")


@pytest.mark.parametrize("value", ["inf", "-Infinity"])
def test_infinite_values(tmp_path, value):
    path = write_csv(tmp_path, rows(GOOD[0], f"2020-01-03,11,{value},10,11.5,11.5,200"))
    with pytest.raises(DataError, match=r"line 3 \(2020-01-03\): High is -?inf; values must be finite"):
        load_prices(path)


@pytest.mark.parametrize(
    ("column", "line"), [(1, "2020-01-03,0,12,10,11.5,11.5,200"), (5, "2020-01-03,11,12,10,11.5,-1,200")]
)
def test_non_positive_prices(tmp_path, column, line):
    name = HEADER.split(",")[column]
    with pytest.raises(DataError, match=rf"line 3 \(2020-01-03\): {name} is -?[01]; prices must be > 0"):
        load_prices(write_csv(tmp_path, rows(GOOD[0], line)))


def test_zero_volume_is_allowed_but_negative_volume_is_not(tmp_path):
    assert load_prices(write_csv(tmp_path, rows("2020-01-02,10,11,9,10.5,10.5,0")))["Volume"].iloc[0] == 0
    with pytest.raises(DataError, match="Volume is -5; volumes cannot be negative"):
        load_prices(write_csv(tmp_path, rows("2020-01-02,10,11,9,10.5,10.5,-5")))


def test_only_existing_columns_are_checked(tmp_path):
    frame = load_prices(write_csv(tmp_path, "Date,Close\n2020-01-02,5\n2020-01-03,6\n"))
    assert frame["Close"].tolist() == [5, 6]


def test_error_messages_are_one_line(tmp_path):
    path = write_csv(tmp_path, rows(*GOOD, "2020-01-07,null,null,null,null,null,null"))
    with pytest.raises(DataError) as caught:
        load_prices(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


# --- date selection ------------------------------------------------------------------------------------


@pytest.fixture
def small(tmp_path) -> pd.DataFrame:
    return load_prices(write_csv(tmp_path, rows(*GOOD)))


def test_select_dates_is_inclusive(small):
    assert list(select_dates(small, "2020-01-03", "2020-01-06")["Open"]) == [11, 12]
    assert list(select_dates(small, end="2020-01-03")["Open"]) == [10, 11]
    assert list(select_dates(small, start="2020-01-04")["Open"]) == [12]
    assert len(select_dates(small)) == 3


@pytest.mark.parametrize("bad", ["2020-02-30", "03/01/2020", "soon"])
def test_select_dates_rejects_bad_date_strings(small, bad):
    with pytest.raises(ConfigError, match=rf"--end '{bad}' is not a date; write it as YYYY-MM-DD"):
        select_dates(small, "2020-01-01", bad)


def test_select_dates_rejects_start_after_end(small):
    with pytest.raises(ConfigError, match="--start 2020-02-01 is after --end 2020-01-01"):
        select_dates(small, "2020-02-01", "2020-01-01")


def test_select_dates_names_the_empty_range_and_the_data_range(small):
    with pytest.raises(
        DataError,
        match=r"prices\.csv: no rows from 2021-01-01 to the last row; the data covers 2020-01-02\.\.2020-01-06",
    ):
        select_dates(small, "2021-01-01")


# --- checks of prepare() -------------------------------------------------------------------------------


@pytest.fixture
def series() -> pd.DataFrame:
    """100 business days with a rising, varying Open and Close."""
    index = pd.bdate_range("2020-01-01", periods=100, name="Date")
    steps = np.arange(100, dtype=np.float64)
    return pd.DataFrame({"Open": 10 + steps + np.sin(steps), "Close": 11 + steps}, index=index)


@pytest.mark.parametrize(
    ("kwargs", "column"), [({"features": ["Open", "Hi"]}, "'Hi'"), ({"target": "Adj Close"}, "'Adj Close'")]
)
def test_prepare_names_a_missing_column_and_the_available_ones(series, kwargs, column):
    with pytest.raises(
        DataError, match=rf"column {column} not found \(columns: Open, Close\); pass --features/--target"
    ):
        prepare(series, window=5, split=50, **kwargs)


@pytest.mark.parametrize("window", [0, -3, 2.5, True, "60"])
def test_prepare_rejects_bad_window(series, window):
    with pytest.raises(ConfigError, match=r"--window .*: must be a whole number >= 1, e\.g\. --window 60"):
        prepare(series, window=window)


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (0, ">= 1 training rows"),
        (-5, ">= 1 training rows"),
        (0.0, r"in \(0, 1\)"),
        (1.0, r"in \(0, 1\)"),
        (1.5, r"in \(0, 1\)"),
        ("172", "number of training rows"),
        (True, "number of training rows"),
    ],
)
def test_prepare_rejects_bad_split(series, split, message):
    with pytest.raises(ConfigError, match=message):
        prepare(series, window=5, split=split)


@pytest.mark.parametrize("split", [100, 172])
def test_prepare_needs_test_rows(series, split):
    with pytest.raises(DataError, match=rf"100 rows and --split {split} leaves no test rows"):
        prepare(series, window=5, split=split)


def test_prepare_needs_window_plus_one_training_rows(series):
    with pytest.raises(
        DataError, match=r"60 training rows \(of 100\), but --window 60 needs at least 61; use an earlier --start"
    ):
        prepare(series, split=60)
    assert prepare(series, split=61).x_train.shape == (1, 60, 1)


def test_prepare_rejects_a_constant_training_series(series):
    flat = series.assign(Open=5.0)
    with pytest.raises(DataError, match=r"Open is constant \(5\) over the 50 training rows"):
        prepare(flat, window=5, split=50)


def test_prepare_rejects_nan_in_a_hand_built_frame(series):
    holes = series.copy()
    holes.iloc[7, 0] = np.nan
    with pytest.raises(DataError, match="input frame: Open is nan on 2020-01-10"):
        prepare(holes, window=5, split=50)


@pytest.mark.parametrize(
    ("features", "message"), [([], "--features names no column"), (["Open", "Open"], "repeats a column")]
)
def test_prepare_rejects_bad_features(series, features, message):
    with pytest.raises(ConfigError, match=message):
        prepare(series, features=features, window=5, split=50)


def test_prepare_accepts_a_single_feature_name(series):
    assert prepare(series, features="Close", target="Close", window=5, split=50).features == ("Close",)


# --- prediction_windows() ------------------------------------------------------------------------------


def test_prediction_windows_equal_the_loops_and_end_on_the_next_business_day():
    raw = pd.read_csv(BUNDLED / "GOOG.csv").iloc[-80:].reset_index(drop=True)  # ends Friday 2013-03-01
    sc = MinMaxScaler(feature_range=(0, 1)).fit(raw[["Open"]].values[:50])
    inputs = sc.transform(raw[["Open"]].values)
    X = [inputs[i - 60 : i, 0] for i in range(60, len(raw) + 1)]
    X = np.reshape(np.array(X, dtype=np.float32), (len(X), 60, 1))

    frame = load_prices(BUNDLED / "GOOG.csv").iloc[-80:]
    x, dates = prediction_windows(frame, features=["Open"], target="Open", window=60, feature_scaler=sc)
    np.testing.assert_array_equal(x, X)
    assert list(dates[:-1]) == list(pd.to_datetime(raw["Date"].iloc[60:]))
    assert dates[-1] == pd.Timestamp("2013-03-04")  # Monday
    assert dates.name == "Date"


def test_prediction_windows_need_window_rows(series):
    scaler = prepare(series, window=5, split=50).feature_scaler
    x, dates = prediction_windows(series.iloc[:5], features=["Open"], target="Open", window=5, feature_scaler=scaler)
    assert x.shape == (1, 5, 1) and list(dates) == [pd.Timestamp("2020-01-08")]
    with pytest.raises(DataError, match=r"4 rows, but predicting 'Open' from a 5-day window needs at least 5"):
        prediction_windows(series.iloc[:4], features=["Open"], target="Open", window=5, feature_scaler=scaler)


def test_prediction_windows_reject_a_scaler_for_other_features(series):
    scaler = prepare(series, window=5, split=50).feature_scaler
    with pytest.raises(ConfigError, match="fit on 1 columns but features has 2"):
        prediction_windows(series, features=["Open", "Close"], target="Open", window=5, feature_scaler=scaler)


# --- properties ----------------------------------------------------------------------------------------


@st.composite
def priced_frames(draw):
    """A frame of positive prices on increasing, irregularly spaced dates, plus window and split."""
    n_rows = draw(st.integers(3, 40))
    window = draw(st.integers(1, n_rows - 2))
    n_train = draw(st.integers(window + 1, n_rows - 1))
    n_features = draw(st.integers(1, 3))
    values = draw(arrays(np.float64, (n_rows, n_features), elements=st.floats(0.01, 1e4)))
    assume((np.ptp(values[:n_train], axis=0) > 0).all())
    gaps = draw(arrays(np.int64, n_rows, elements=st.integers(1, 4)))
    index = pd.DatetimeIndex(pd.Timestamp("2020-01-01") + pd.to_timedelta(np.cumsum(gaps), unit="D"), name="Date")
    columns = [f"c{j}" for j in range(n_features)]
    target = draw(st.sampled_from(columns))
    return pd.DataFrame(values, index=index, columns=columns), window, n_train, target


@given(priced_frames())
@settings(max_examples=60, deadline=None)
def test_windows_hold_the_days_before_their_target(case):
    frame, window, n_train, target = case
    ds = prepare(frame, features=list(frame.columns), target=target, window=window, split=n_train)
    tol = {"rtol": 1e-5, "atol": 1e-6 * float(np.abs(frame.to_numpy()).max())}

    # No training window reaches into the test period.
    assert ds.train_dates.max() < ds.test_dates.min()
    assert list(ds.test_dates) == list(frame.index[n_train:])
    # Each window is exactly the `window` rows strictly before its target date, in order.
    for x, y, dates in ((ds.x_train, ds.y_train, ds.train_dates), (ds.x_test, ds.y_test, ds.test_dates)):
        assert len(x) == len(y) == len(dates)
        for sample, scaled_target, day in zip(x, y, dates, strict=True):
            before = frame[frame.index < day].iloc[-window:]
            assert len(before) == window
            np.testing.assert_allclose(ds.feature_scaler.inverse_transform(sample), before.to_numpy(), **tol)
            np.testing.assert_allclose(ds.to_prices(scaled_target), [frame.loc[day, target]], **tol)
    np.testing.assert_array_equal(ds.previous_prices, frame[target].shift(1).loc[ds.test_dates].to_numpy())


@given(priced_frames())
@settings(max_examples=40, deadline=None)
def test_scaling_then_inverse_scaling_is_the_identity(case):
    frame, window, n_train, target = case
    ds = prepare(frame, features=list(frame.columns), target=target, window=window, split=n_train)
    values = frame.to_numpy()
    exact = {"rtol": 1e-12, "atol": 1e-12 * np.abs(values).max()}  # float64 rounding, relative to the range
    np.testing.assert_allclose(
        ds.feature_scaler.inverse_transform(ds.feature_scaler.transform(values)), values, **exact
    )
    prices = frame[target].to_numpy()
    np.testing.assert_allclose(ds.to_prices(ds.target_scaler.transform(prices[:, None])[:, 0]), prices, **exact)
    # y is float32, so its round trip is exact only to float32 precision.
    np.testing.assert_allclose(ds.to_prices(ds.y_test), ds.test_prices, rtol=1e-5, atol=1e-6 * np.abs(values).max())
