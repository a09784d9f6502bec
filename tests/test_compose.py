"""Commands that compose: what the reading commands write into a run is part of it (``--overwrite`` replaces it
whole), they read the run's own rows by default and say when those leave the model's range, ``--resume`` means the
same in every command, and a one-day model forecasts any number of days by feeding back its own forecasts."""

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxlstm.commands import main
from jaxlstm.config import DataConfig
from jaxlstm.errors import ConfigError
from jaxlstm.forecasting.forecast import forecast_strategy
from jaxlstm.runs import load_run, run_state
from tests.conftest import BUNDLED
from tests.test_reliability import TINY, write_csv

DEMO = ["train", "--arch", "stacked", "--layers", "2", "--units", "4", "--epochs", "2", "--quiet"]
"""``make demo``'s command (the stacked preset on the bundled data), made small."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("compose") / "demo"
    assert main([*DEMO, "--out", str(out)]) == 0
    return out


def test_the_demo_then_every_reading_command_then_the_demo_again(demo: Path, capsys) -> None:
    """gates, gradflow, predict and forecast on the demo's run write into it (gates/, gradflow/, forecast/); the
    run stays a complete jaxlstm run, and the demo's command with --overwrite replaces all of it."""
    for argv in (
        ["gates", "--run", str(demo)],
        ["gradflow", "--run", str(demo), "--windows", "2"],
        ["predict", "--run", str(demo)],
        ["forecast", "--run", str(demo), "--days", "3"],
    ):
        assert main(argv) == 0, argv
        assert run_state(demo) == "complete", argv
    assert {"gates", "gradflow", "forecast"} <= {path.name for path in demo.iterdir()}
    capsys.readouterr()
    assert main([*DEMO, "--out", str(demo), "--overwrite"]) == 0
    assert not {"gates", "gradflow", "forecast"} & {path.name for path in demo.iterdir()}
    assert run_state(demo) == "complete"


def test_resume_of_a_finished_run_says_the_same_in_every_command(demo: Path, capsys) -> None:
    for command in ("train", "backtest"):
        assert main([command, "--resume", str(demo)]) == 2
        err = capsys.readouterr().err
        assert f"--resume {demo}: the `jaxlstm train` run is complete, nothing to resume; use `jaxlstm predict" in err


def test_predict_reads_the_run_own_rows_and_warns_outside_its_range(demo: Path, capsys) -> None:
    """By default the run's 230 rows (171 windows); the whole bundled file (2004-2013, prices far below the
    2012-13 training range) gives one warning line on stderr naming the range and the share of rows outside it."""
    assert main(["predict", "--run", str(demo)]) == 0
    out, err = capsys.readouterr()
    table = pd.read_csv(io.StringIO(out))
    dates = pd.read_csv(BUNDLED / "GOOG.csv")["Date"].iloc[-230:]
    assert len(table) == 230 - 60 + 1 and table["Date"].iloc[0] == dates.iloc[60]  # the day after the first window
    run = load_run(demo)
    low, high = run.feature_scaler.data_min_[0], run.feature_scaler.data_max_[0]
    assert main(["predict", "--run", str(demo), "--csv", str(BUNDLED / "GOOG.csv")]) == 0
    err = capsys.readouterr().err
    prices = pd.read_csv(BUNDLED / "GOOG.csv")["Open"].to_numpy()
    width = high - low
    outside = np.mean((prices < low - 0.1 * width) | (prices > high + 0.1 * width))  # the oracle: by hand
    assert err.count("\n") == 1 and err.startswith("warning: ")
    assert f"({100 * outside:.0f}%)" in err and f"Open {low:.6g}..{high:.6g}" in err


def test_predict_out_needs_overwrite_to_replace_a_file(demo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "p.csv"
    out.write_text("mine\n")
    assert main(["predict", "--run", str(demo), "--out", str(out)]) == 2
    assert out.read_text() == "mine\n"
    assert main(["predict", "--run", str(demo), "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().startswith("Date,Open,predicted")


def test_a_one_day_model_forecasts_days_by_feeding_back_its_forecasts(demo: Path, capsys) -> None:
    """The oracle: the model called day by day in Python, each forecast (scaled as the target) appended to the
    window; the CLI's forecast.csv holds the same prices, on the next NYSE sessions."""
    assert main(["forecast", "--run", str(demo), "--days", "5"]) == 0
    printed = capsys.readouterr().out
    run = load_run(demo)
    frame = pd.read_csv(BUNDLED / "GOOG.csv", index_col="Date", parse_dates=True).iloc[-230:]
    window = run.feature_scaler.transform(frame[["Open"]].to_numpy()[-60:])[None].astype(np.float32)
    expected = []
    for _ in range(5):
        scaled = float(np.asarray(run.model(window))[0])
        expected.append(run.target_scaler.inverse_transform([[scaled]])[0, 0])
        window = np.concatenate([window[:, 1:], np.full((1, 1, 1), scaled, np.float32)], axis=1)
    table = pd.read_csv(demo / "forecast" / "forecast.csv")
    np.testing.assert_allclose(table["forecast"], expected, rtol=1e-5)
    assert table["Date"].tolist() == ["2013-03-04", "2013-03-05", "2013-03-06", "2013-03-07", "2013-03-08"]
    assert "centred on the last price" in printed and "forecasts 1 days" not in printed


def test_the_printout_marks_the_steps_it_leaves_out(demo: Path, capsys) -> None:
    assert main(["forecast", "--run", str(demo), "--days", "20"]) == 0
    lines = capsys.readouterr().out.splitlines()
    steps = [int(line.split()[1]) for line in lines if re.match(r"\d{4}-\d\d-\d\d ", line)]
    assert steps == [1, 2, 3, 4, 5, 18, 19, 20]
    assert any("steps 6-17 are in forecast.csv" in line for line in lines)


def test_features_that_cannot_be_rolled_forward_are_named() -> None:
    data = DataConfig(features=("Open", "High", "Volume"), target="Open")
    with pytest.raises(ConfigError, match=r"High, Volume cannot be rolled forward\); pass --days 1"):
        forecast_strategy(data, 5, "the run")
    assert forecast_strategy(data, 1, "the run") == "direct"
    assert forecast_strategy(DataConfig(horizon=5), 3, "the run") == "direct"
    with pytest.raises(ConfigError, match="forecasts 5 days"):
        forecast_strategy(DataConfig(horizon=5), 6, "the run")


def test_dates_without_csv_are_refused_by_every_reading_command(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "--csv", str(write_csv(tmp_path)), *TINY, "--out", str(run)]) == 0
    for command in ("predict", "gates", "gradflow", "forecast"):
        assert main([command, "--run", str(run), "--end", "2020-02-01"]) == 2
        assert "--start/--end choose rows of --csv" in capsys.readouterr().err
