"""`jaxlstm forecast` against independent oracles: the exchanges' published 2013 holiday and early-close schedules,
the model run by hand on the CSV's last window, conformal bands rebuilt from the backtest's predictions.csv, a refit
equal to `fit` of each seed alone on windows cut from the CSV with NumPy, and the bad-input cases (one line, exit 2,
nothing written)."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flax import nnx
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.commands import main
from jaxlstm.config import ModelConfig, TrainConfig
from jaxlstm.errors import ConfigError, DataError, RunError
from jaxlstm.forecasting.forecast import trading_days
from jaxlstm.forecasting.predict import predict_scaled
from jaxlstm.nn.models import Forecaster
from jaxlstm.runs import load_run
from jaxlstm.training.single import fit
from tests.conftest import BUNDLED

SETTINGS = ["--arch", "vanilla", "--units", "4", "--epochs", "2", "--window", "10", "--horizon", "3", "--quiet"]
FOLDS = ["--train-days", "40", "--folds", "8", "--test-days", "7", "--seeds", "3"]


def test_nyse_sessions_skip_its_2013_holidays_and_mark_early_closes() -> None:
    """NYSE 2013 (nyse.com, holidays and trading hours): closed Good Friday, March 29, and Independence Day, July 4;
    1 p.m. close on July 3. The LSE (londonstockexchange.com) closed Good Friday and Easter Monday, April 1."""
    days, early = trading_days(pd.Timestamp("2013-03-27"), 3)
    assert [d.date().isoformat() for d in days] == ["2013-03-28", "2013-04-01", "2013-04-02"]
    assert not early.any()
    days, early = trading_days(pd.Timestamp("2013-07-01"), 3, "NYSE")
    assert [d.date().isoformat() for d in days] == ["2013-07-02", "2013-07-03", "2013-07-05"]
    assert early.tolist() == [False, True, False]
    days, _ = trading_days(pd.Timestamp("2013-03-27"), 3, "XLON")
    assert [d.date().isoformat() for d in days] == ["2013-03-28", "2013-04-02", "2013-04-03"]


def test_an_unknown_calendar_and_one_too_short_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--calendar 'MARS': unknown exchange calendar; use an exchange_calendars"):
        trading_days(pd.Timestamp("2013-03-01"), 3, "MARS")
    with pytest.raises(DataError, match=r"the XNYS calendar knows sessions up to .*; forecast fewer --days"):
        trading_days(pd.Timestamp.today(), 100_000)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A 3-day direct backtest (8 folds of 7 days, 3 seeds, rolling 40 rows, all of the bundled GOOG) and a train run
    of the same settings (the tutorial's 230 rows)."""
    root = tmp_path_factory.mktemp("forecast")
    assert main(["backtest", *SETTINGS, *FOLDS, "--out", str(root / "backtest")]) == 0
    assert main(["train", *SETTINGS, "--out", str(root / "train")]) == 0
    return root


def test_a_train_run_forecasts_from_the_csvs_last_window_with_conformal_bands(runs, capsys) -> None:
    """The forecast is the model on the last 10 Opens scaled with the run's scaler (by hand); the conformal bands are
    forecast -+ r spreads, r from the seeds' errors in the backtest's predictions.csv in units of the random walk's
    spread, today's spread the last price x the std of the last 10 log-returns x sqrt(days ahead); the printout
    quotes the coverage metrics.json measured for one-model conformal bands."""
    out = runs / "train-forecast"
    argv = ["forecast", "--run", str(runs / "train"), "--calibrate-with", str(runs / "backtest"), "--out", str(out)]
    assert main([*argv, "--days", "2"]) == 0
    printed = capsys.readouterr().out
    table = pd.read_csv(out / "forecast.csv")
    assert table["Date"].tolist() == ["2013-03-04", "2013-03-05"] and table["step"].tolist() == [1, 2]
    opens = pd.read_csv(BUNDLED / "GOOG.csv")["Open"].to_numpy()[-230:]
    run = load_run(runs / "train")
    scaler = MinMaxScaler().fit(opens[:172, None])
    window = scaler.transform(opens[-10:, None])[None].astype(np.float32)
    expected = scaler.inverse_transform(predict_scaled(run.model, window).reshape(-1, 1))[:2, 0]
    np.testing.assert_allclose(table["forecast"], expected, rtol=1e-5)
    predictions = pd.read_csv(runs / "backtest" / "predictions.csv")
    seeds = predictions[predictions["member"] != "ensemble"]
    volatility = np.std(np.diff(np.log(opens[-11:])), ddof=1)  # of the last 10 daily log-returns
    for step in (1, 2):
        rows = seeds[seeds["step"] == step]
        spread = rows["persistence"] * rows["volatility"] * math.sqrt(step)
        errors = np.sort(np.abs(rows["actual"] - rows["forecast"]) / spread)
        for level in (0.8, 0.95):
            radius = errors[math.ceil((len(errors) + 1) * level) - 1] * opens[-1] * volatility * math.sqrt(step)
            forecast = table["forecast"][step - 1]
            bounds = (
                table[f"conformal {100 * level:g}% lower"][step - 1],
                table[f"conformal {100 * level:g}% upper"][step - 1],
            )
            assert bounds == pytest.approx((forecast - radius, forecast + radius))
    measured = json.loads((runs / "backtest" / "metrics.json").read_text())["calibration"]["pooled"]
    coverage = measured["conformal (one model)"]["levels"]["80%"]["coverage"]
    assert f"conformal bands in the backtest: the 80% band covered {100 * coverage:.1f}%" in printed
    assert "ensemble" not in table.columns.str.cat() and (out / "forecast.png").exists()


def test_a_backtest_run_refits_its_seeds_on_the_latest_rows(runs) -> None:
    """Each seed's forecast equals `fit` alone on the windows of the CSV's last 40 rows (cut here with NumPy, the
    scaler fit on those rows), from the last 10 rows; the forecast is their mean."""
    out = runs / "refit"
    assert main(["forecast", "--run", str(runs / "backtest"), "--out", str(out)]) == 0
    table = pd.read_csv(out / "forecast.csv")
    opens = pd.read_csv(BUNDLED / "GOOG.csv")["Open"].to_numpy()[-40:]
    scaler = MinMaxScaler().fit(opens[:, None])
    scaled = scaler.transform(opens[:, None])[:, 0].astype(np.float32)
    x = np.stack([scaled[k : k + 10] for k in range(40 - 10 - 3 + 1)])[..., None]
    y = np.stack([scaled[k + 10 : k + 13] for k in range(40 - 10 - 3 + 1)])
    model = ModelConfig(arch="vanilla", layers=1, units=4, outputs=3)
    members = []
    for seed in range(3):
        alone = Forecaster(model, rngs=nnx.Rngs(seed))
        fit(alone, x, y, TrainConfig(epochs=2, seed=seed, devices=1), progress=False)
        forecast = predict_scaled(alone, scaled[None, -10:, None])
        members.append(scaler.inverse_transform(forecast.reshape(-1, 1))[:, 0])
    members = np.array(members)
    np.testing.assert_allclose(table["forecast"], members.mean(axis=0), rtol=1e-5)
    std, z = members.std(axis=0, ddof=1), 1.2815515655446004
    np.testing.assert_allclose(table["ensemble 80% upper"], members.mean(axis=0) + z * std, rtol=1e-5)
    assert {"conformal 95% lower", "random walk 80% upper"} <= set(table.columns)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--days", "4"], "--days 4: {bt} was backtested with --horizon 3: it forecasts 3 days; pass --days 3 or less"),
        (["--calendar", "MARS"], "--calendar 'MARS': unknown exchange calendar"),
        (["--levels", "0.5"], "--levels 0.5: {bt} measured coverage at 0.8,0.95 only; pass --levels 0.8,0.95"),
        (["--levels", "0.8,1.2"], "--levels 0.8,1.2: each level must lie strictly between 0 and 1"),
        (["--days", "0"], "--days 0: must be a whole number >= 1"),
        (["--calibrate-with", "{bt}"], "--calibrate-with: {bt} is a backtest run, which calibrates its own forecasts"),
    ],
)
def test_bad_forecast_options_are_one_line_errors_that_write_nothing(runs, extra, message, capsys) -> None:
    out = runs / "never"
    extra = [part.replace("{bt}", str(runs / "backtest")) for part in extra]
    assert main(["forecast", "--run", str(runs / "backtest"), *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message.replace("{bt}", str(runs / "backtest")) in err and err.count("\n") == 1
    assert not out.exists()


def test_a_train_run_calibrates_only_with_a_backtest_of_its_settings(runs, tmp_path, capsys) -> None:
    other = tmp_path / "other"
    assert main(["train", *SETTINGS[:-1], "--units", "5", "--quiet", "--out", str(other)]) == 0
    argv = ["forecast", "--run", str(other), "--calibrate-with", str(runs / "backtest"), "--out", str(tmp_path / "f")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{runs / 'backtest'} was backtested with --units 4, the run was trained with 5" in err
    assert main([*argv[:4], str(runs / "train"), "--out", str(tmp_path / "f")]) == 2
    assert f"{runs / 'train'} is not a backtest run; pass a directory written by `jaxlstm backtest`" in (
        capsys.readouterr().err
    )
    assert main(["forecast", "--run", str(runs / "train"), "--days", "5", "--out", str(tmp_path / "f")]) == 2
    assert "--days 5: the run (trained with --horizon 3) forecasts 3 days" in capsys.readouterr().err
    assert not (tmp_path / "f").exists()


@pytest.mark.slow
def test_a_backtest_with_too_few_errors_cannot_calibrate_a_forecast(tmp_path, capsys) -> None:
    """2 folds of 5 one-day forecasts give 10 errors per step; 95% bands need 19."""
    short = tmp_path / "short"
    options = ["--arch", "vanilla", "--units", "4", "--epochs", "1", "--window", "10", "--quiet"]
    folds = ["--train-days", "40", "--folds", "2", "--test-days", "5", "--seeds", "2"]
    assert main(["backtest", *options, *folds, "--out", str(short)]) == 0
    assert main(["forecast", "--run", str(short), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    message = f"{short} holds 10 walk-forward errors per step; conformal bands at 95% need 19; backtest with more"
    assert message in err and not (tmp_path / "f").exists()


def test_bands_need_a_trained_run_and_a_positive_target() -> None:
    """A converted run has no training a backtest could repeat; a target with a zero in its last window has no
    log-return volatility to scale bands by."""
    from jaxlstm.config import BacktestConfig, DataConfig, RunConfig, preset
    from jaxlstm.forecasting.forecast import volatility
    from jaxlstm.runs.forecast import _check_same_recipe

    converted = RunConfig(DataConfig(), preset("vanilla"), None, converted_from={"format": "keras", "path": "m.keras"})
    backtest = RunConfig(DataConfig(), preset("vanilla"), TrainConfig(), backtest=BacktestConfig())
    with pytest.raises(RunError, match=r"the run was converted from keras, not trained by jaxlstm, so no backtest"):
        _check_same_recipe(converted, backtest, Path("runs/bt"))
    volume = np.r_[np.full(70, 1000.0), 0.0, np.full(5, 1000.0)]
    with pytest.raises(DataError, match=r"Volume is not positive on every one of the last 61 days, so it has no"):
        volatility(volume, DataConfig(target="Volume", features=("Volume",)))
    assert volatility(volume[:70] * np.exp(np.arange(70) % 2 * 0.01), DataConfig()) == pytest.approx(
        np.std(np.diff(np.log(volume[:70] * np.exp(np.arange(70) % 2 * 0.01)))[-60:], ddof=1)
    )


def test_a_recipe_matches_whatever_a_recursive_horizon_and_never_with_a_validation_split() -> None:
    from jaxlstm.config import BacktestConfig, DataConfig, RunConfig, preset
    from jaxlstm.runs.forecast import _check_same_recipe

    def config(horizon: int, **train) -> RunConfig:
        return RunConfig(DataConfig(horizon=horizon, strategy="recursive"), preset("vanilla"), TrainConfig(**train))

    backtest = dataclasses.replace(config(3), backtest=BacktestConfig())
    _check_same_recipe(config(20), backtest, Path("runs/bt"))  # the same one-day model, fed further
    held_out = config(3, validation_split=0.1, patience=5)
    with pytest.raises(RunError, match=r"the run held out --validation-split 0.1 \(and stopped early\), which a"):
        _check_same_recipe(held_out, backtest, Path("runs/bt"))
