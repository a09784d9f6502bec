"""Issue 23's small items: thousands separators, weekly rows refused, ``__version__`` and ``--version``, the gradflow
help's default, singular counts, and the fix a corrupt run file names."""

import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import jaxlstm
from jaxlstm.commands import gradflow, main
from jaxlstm.data import load_prices, prepare
from jaxlstm.errors import ConfigError, DataError, plural
from jaxlstm.forecasting.forecast import check_days
from tests.conftest import BUNDLED
from tests.test_reliability import TINY, write_csv, yahoo_rows

# --- 1. thousands separators --------------------------------------------------------------------------

PLAIN = [
    "2020-01-02,999.5,1001.25,998,1000.75,1000.75,1234567",
    "2020-01-03,1234.5,1240,1230,1235,1235,987",
    "2020-01-06,-1234.5,12345.678,1230,1235,1235,1000",  # a negative price: the sign check still sees it
]
GROUPED = [
    '2020-01-02,999.5,"1,001.25",998,"1,000.75","1,000.75","1,234,567"',
    '2020-01-03,"1,234.50","1,240.00","1,230.00","1,235.00","1,235.00",987',
    '2020-01-06,"-1,234.5","12,345.678","1,230","1,235","1,235","1,000"',
]


def test_thousands_separators_in_quoted_fields_load_the_values_of_the_plain_file(tmp_path: Path) -> None:
    plain = load_prices(write_csv(tmp_path, PLAIN[:2], name="plain.csv"))
    grouped = load_prices(write_csv(tmp_path, GROUPED[:2], name="grouped.csv"))
    pd.testing.assert_frame_equal(grouped, plain)
    assert grouped["Volume"].iloc[0] == 1_234_567 and grouped["Open"].iloc[1] == 1234.5
    with pytest.raises(DataError, match=r"line 4 \(2020-01-06\): Open is -1234\.5; prices must be > 0"):
        load_prices(write_csv(tmp_path, GROUPED, name="negative.csv"))


def test_thousands_separators_in_every_row_of_a_yahoo_file_load(tmp_path: Path) -> None:
    """The issue's file: every price and volume of every row grouped, as some exports write them."""
    rows = []
    for line in yahoo_rows():
        date, *values = line.split(",")
        rows.append(",".join([date, *(f'"{1000 * float(v):,.6f}"' for v in values[:-1]), f'"{int(values[-1]):,}"']))
    grouped = load_prices(write_csv(tmp_path, rows, name="grouped.csv"))
    plain = load_prices(write_csv(tmp_path, yahoo_rows(), name="plain.csv"))
    prices = ["Open", "High", "Low", "Close", "Adj Close"]
    np.testing.assert_allclose(grouped[prices].to_numpy(), 1000 * plain[prices].to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(grouped["Volume"].to_numpy(), plain["Volume"].to_numpy())
    pd.testing.assert_index_equal(grouped.index, plain.index)


@pytest.mark.parametrize("cell", ['"1.234,50"', '"12,5"', '"1,23"', '"1,2345"', '",123"', '"1,,234"', '"12 345"'])
def test_other_commas_keep_the_one_line_not_a_number_error(tmp_path: Path, cell: str) -> None:
    fields = PLAIN[1].split(",")
    fields[1] = cell
    path = write_csv(tmp_path, [PLAIN[0], ",".join(fields)])
    with pytest.raises(DataError, match=r"line 3 \(2020-01-03\): Open '.*' is not a number; fix or delete that row"):
        load_prices(path)


# --- 2. daily rows only -------------------------------------------------------------------------------


def rows_on(dates: pd.DatetimeIndex) -> list[str]:
    return [f"{day:%Y-%m-%d},10,11,9,10.5,10.5,100" for day in dates]


@pytest.mark.parametrize(
    ("dates", "message"),
    [
        (pd.date_range("2020-01-06", periods=40, freq="W-MON"), "weekly rows: median 7 days between dates"),
        (pd.date_range("2020-01-01", periods=24, freq="MS"), "monthly rows: median 31 days between dates"),
        (pd.date_range("2000-01-01", periods=12, freq="YS"), "yearly rows: median 365 days between dates"),
        (pd.date_range("2020-01-01", periods=2, freq="14D"), "fortnightly rows: median 14 days between dates"),
    ],
)
def test_rows_further_apart_than_daily_are_refused(tmp_path: Path, dates: pd.DatetimeIndex, message: str) -> None:
    path = write_csv(tmp_path, rows_on(dates))
    with pytest.raises(DataError) as error:
        load_prices(path)
    text = str(error.value)
    assert text.startswith(f"{path}: {message} (") and "\n" not in text
    assert text.endswith("; jaxlstm models daily bars: pass daily rows (one per trading day)")


def test_daily_rows_with_weekends_holidays_and_a_closed_week_load(tmp_path: Path) -> None:
    """Business days (weekends: 3-day gaps), a market shut for a week (9/11: a 7-day gap), rows newest first; a
    short file across Easter (Good Friday and Easter Monday closed: a 5-day gap); one row: all daily."""
    days = pd.bdate_range("2001-08-01", "2001-10-31")
    closed = (days >= "2001-09-11") & (days <= "2001-09-14")
    with pytest.warns(UserWarning, match="not in ascending order"):
        frame = load_prices(write_csv(tmp_path, rows_on(days[~closed])[::-1], name="daily.csv"))
    assert len(frame) == (~closed).sum()
    easter = pd.DatetimeIndex(["2020-04-08", "2020-04-09", "2020-04-14", "2020-04-15"])  # gaps 1, 5, 1
    assert len(load_prices(write_csv(tmp_path, rows_on(easter), name="easter.csv"))) == 4
    assert len(load_prices(write_csv(tmp_path, rows_on(easter[:1]), name="one.csv"))) == 1  # no gap to measure


@pytest.mark.parametrize("path", sorted(BUNDLED.glob("*.csv")), ids=lambda path: path.name)
def test_the_bundled_data_is_daily(path: Path) -> None:
    assert len(load_prices(path)) > 1000


def test_train_on_weekly_rows_exits_2_with_one_line_and_writes_nothing(tmp_path: Path, capsys) -> None:
    csv = write_csv(tmp_path, rows_on(pd.date_range("2020-01-06", periods=40, freq="W-MON")))
    assert main(["train", "--csv", str(csv), *TINY, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"jaxlstm: error: {csv}: weekly rows: median 7 days between dates (2020-01-06..2020-10-05, 40 rows); "
        "jaxlstm models daily bars: pass daily rows (one per trading day)\n"
    )
    assert not (tmp_path / "out").exists()


# --- 3. the version -----------------------------------------------------------------------------------


def test_the_version_is_the_installed_packages(monkeypatch) -> None:
    assert jaxlstm.__version__ == metadata.version("jaxlstm") and "__version__" in dir(jaxlstm)

    def not_installed(name: str) -> str:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert jaxlstm._installed_version() == "0+unknown"


def test_version_option_prints_the_version(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"jaxlstm {jaxlstm.__version__}\n"


@pytest.mark.subprocess
def test_version_option_imports_no_jax() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from jaxlstm.commands import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    main(['--version'])\n"
        "print(out.getvalue().strip(), sorted(m for m in ('jax', 'flax', 'optax', 'pandas') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == f"jaxlstm {jaxlstm.__version__} []"


# --- 4. gradflow's default architecture ---------------------------------------------------------------


def test_gradflow_help_names_the_architecture_a_fresh_model_gets(monkeypatch, capsys) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        main(["gradflow", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    archs = r"vanilla|stacked|bidirectional|conv"
    stated = set(re.findall(rf"default: ({archs})\b", text))
    assert stated == {gradflow.FRESH_ARCH}, text
    assert re.search(rf"--arch \{{[^}}]*\}} LSTM variant \(default: {gradflow.FRESH_ARCH}\)", text), text

    built = []

    def record(arch: str, **_) -> None:
        built.append(arch)
        raise ConfigError("stop before JAX")

    monkeypatch.setattr(gradflow, "preset", record)
    assert main(["gradflow", "--fresh"]) == 2
    assert built == [gradflow.FRESH_ARCH] == ["vanilla"]


# --- 5. singular counts -------------------------------------------------------------------------------


def test_plural_is_singular_for_one() -> None:
    assert plural(1, "day") == "1 day" and plural(2, "day") == "2 days" and plural(0, "row") == "0 rows"
    assert plural(1, "test day") == "1 test day" and plural(3, "process", "processes") == "3 processes"
    assert plural(7.0, "day") == "7 days" and plural(6.5, "day") == "6.5 days" and plural(1.0, "day") == "1 day"
    assert plural(np.int64(1), "seed") == "1 seed" and plural(np.int64(4), "seed") == "4 seeds"


def test_forecast_beyond_a_one_step_run_says_1_day() -> None:
    with pytest.raises(ConfigError, match=r"^--days 3: runs/x forecasts 1 day; pass --days 1 or less, or train"):
        check_days(3, 1, "runs/x", "train with --horizon 3 or --strategy recursive")
    with pytest.raises(ConfigError, match=r"forecasts 2 days; pass --days 2 or less"):
        check_days(3, 2, "runs/x", "train with --horizon 3")


def test_one_row_is_one_row() -> None:
    frame = pd.DataFrame({"Open": [1.0]}, index=pd.DatetimeIndex(["2020-01-02"], name="Date"))
    with pytest.raises(DataError, match=r"input frame: 1 row and --split 1 leaves no test rows"):
        prepare(frame, window=1, split=1)


# --- 6. a corrupt file of a run -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run on a 40-row CSV, with checkpoints at epochs 1 and 2 (as test_reliability's)."""
    tmp = tmp_path_factory.mktemp("small")
    csv = write_csv(tmp)
    argv = ["train", "--csv", str(csv), *TINY, "--epochs", "2", "--checkpoint-every", "1", "--out", str(tmp / "run")]
    assert main(argv) == 0
    return tmp / "run"


def predict(run: Path, tmp: Path) -> list[str]:
    return ["predict", "--run", str(run), "--out", str(tmp / "predictions.csv")]


def test_a_truncated_params_file_names_resume_and_resume_repairs_it(small_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    whole = (run / "params.msgpack").read_bytes()
    (run / "params.msgpack").write_bytes(whole[: len(whole) // 2])
    capsys.readouterr()
    assert main(predict(run, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxlstm: error: {run}/params.msgpack is corrupt (") and err.count("\n") == 1
    fix = f"; `jaxlstm train --resume {run}` rebuilds it from the run's checkpoints\n"
    assert err.endswith(fix) and "train the run again" not in err
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # what the message says, and it works
    assert (run / "params.msgpack").read_bytes() == whole
    assert main(predict(run, tmp_path)) == 0


def test_a_truncated_params_file_without_checkpoints_says_train_again(small_run: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    shutil.rmtree(run / "checkpoints")
    (run / "params.msgpack").write_bytes((run / "params.msgpack").read_bytes()[:50])
    capsys.readouterr()
    assert main(predict(run, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"jaxlstm: error: {run}/params.msgpack is corrupt (") and err.count("\n") == 1
    assert err.endswith("; no checkpoint is left to rebuild it from, so train the run again\n")


def test_a_forecaster_has_no_training_mode_and_says_how_dropout_runs() -> None:
    """model.train() used to do nothing (dropout runs only with a key); it now raises with the call that does."""
    import jax
    from flax import nnx

    from jaxlstm import Forecaster, preset

    model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match=r"no training mode: its dropout runs when a call passes a key, model\(x, "):
        model.train()
    x = np.ones((3, 60, 1), np.float32)
    assert not np.allclose(model(x), model(x, dropout_key=jax.random.key(1)))
    model.eval()  # inference is the default, and eval() leaves it so
    np.testing.assert_array_equal(model(x), model(x))
