"""Multi-day horizons against independent oracles: windows and targets cut from the CSV's own prices with NumPy, a
Python loop that feeds each forecast back, prices compounded day by day, `fit` of each fold and seed alone, a
no-look-ahead experiment, and metrics recomputed from the files the commands write."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from flax import nnx

from jaxlstm.commands import main
from jaxlstm.config import BacktestConfig, DataConfig, TrainConfig, preset
from jaxlstm.data import from_changes, load_prices, prepare
from jaxlstm.errors import ConfigError, DataError
from jaxlstm.forecasting.backtest import make_folds, run_backtest
from jaxlstm.forecasting.predict import forecast_scaled, predict_scaled
from jaxlstm.nn.models import Forecaster
from jaxlstm.training.single import fit
from tests.conftest import BUNDLED

MODEL = preset("vanilla", units=5)
TRAIN = TrainConfig(epochs=2, batch_size=16)


@pytest.fixture(scope="module")
def frame():
    """The last 160 rows of the bundled GOOG prices."""
    return load_prices(BUNDLED / "GOOG.csv").iloc[-160:]


def test_direct_windows_and_targets_are_the_csvs_next_days(frame) -> None:
    """Window k holds the 10 rows before day 10 + k; its targets are the Open of that day and the 2 after it, all
    inside the 100 training rows; test window k forecasts test days k .. k + 2."""
    dataset = prepare(frame, window=10, split=100, horizon=3)
    opens = frame["Open"].to_numpy()
    assert dataset.x_train.shape == (100 - 10 - 3 + 1, 10, 1) and dataset.y_train.shape == (88, 3)
    assert dataset.x_test.shape == (60 - 3 + 1, 10, 1)
    float32 = 1e-5 * np.ptp(opens[:100])
    for k in range(len(dataset.x_train)):
        np.testing.assert_allclose(dataset.to_prices(dataset.y_train[k]), opens[10 + k : 13 + k], atol=float32)
        np.testing.assert_allclose(dataset.to_prices(dataset.x_train[k, :, 0]), opens[k : 10 + k], atol=float32)
    for k in range(len(dataset.x_test)):
        np.testing.assert_allclose(dataset.to_prices(dataset.y_test[k]), opens[100 + k : 103 + k], atol=float32)
        np.testing.assert_allclose(dataset.to_prices(dataset.x_test[k, :, 0]), opens[90 + k : 100 + k], atol=float32)
    assert dataset.train_dates[0] == frame.index[10] and len(dataset.test_dates) == 60


def test_a_recursive_dataset_trains_on_one_day(frame) -> None:
    dataset = prepare(frame, window=10, split=100, horizon=3, strategy="recursive")
    one_day = prepare(frame, window=10, split=100)
    np.testing.assert_array_equal(dataset.x_train, one_day.x_train)
    np.testing.assert_array_equal(dataset.y_train, one_day.y_train)
    np.testing.assert_array_equal(dataset.x_test, one_day.x_test[:58])


def test_recursive_forecasts_feed_each_forecast_back_as_the_newest_day(frame) -> None:
    dataset = prepare(frame, window=10, split=100)
    model = Forecaster(MODEL, rngs=nnx.Rngs(3))
    windows = dataset.x_test.copy()
    expected = []
    for _ in range(4):  # the oracle: one day at a time, in NumPy
        forecast = predict_scaled(model, windows)
        expected.append(forecast)
        windows = np.concatenate([windows[:, 1:], forecast[:, None, None]], axis=1)
    rolled = forecast_scaled(model, dataset.x_test, 4, "recursive")
    np.testing.assert_allclose(rolled, np.stack(expected, axis=1), rtol=1e-5, atol=1e-6)
    direct = Forecaster(dataclasses.replace(MODEL, outputs=4), rngs=nnx.Rngs(3))
    assert forecast_scaled(direct, dataset.x_test, 4).shape == (60, 4)


@pytest.mark.parametrize("transform", ["diff", "log-return"])
def test_forecast_changes_compound_into_prices_day_by_day(transform: str) -> None:
    rng = np.random.default_rng(0)
    previous, change = 100 + rng.random(6), rng.normal(0, 0.02, (6, 4))
    expected = np.empty_like(change)
    for k in range(6):
        price = previous[k]
        for h in range(4):
            price = price + change[k, h] if transform == "diff" else price * np.exp(change[k, h])
            expected[k, h] = price
    np.testing.assert_allclose(from_changes(transform, previous, change), expected)
    np.testing.assert_allclose(from_changes(transform, previous, change[:, 0]), expected[:, 0])
    np.testing.assert_array_equal(from_changes("level", previous, expected), expected)  # prices stay prices


@pytest.fixture(scope="module")
def direct_backtest(frame):
    data = DataConfig(window=10, horizon=3, target="Open")
    backtest = BacktestConfig(folds=2, test_days=6, train_days=60, target_transform="diff")
    folds = make_folds(frame, data, backtest)
    return run_backtest(folds, dataclasses.replace(MODEL, outputs=3), TRAIN, 2)


def test_each_multi_day_model_equals_fit_of_its_fold_and_seed_alone(direct_backtest) -> None:
    result = direct_backtest
    assert result.member_forecasts.shape == (2, 2, 6 - 3 + 1, 3)
    for k, fold in enumerate(result.folds):
        np.testing.assert_allclose(result.actual[k, :, 0], fold.actual[:4])
        np.testing.assert_allclose(result.actual[k, :, 2], fold.actual[2:])
        for s, seed in enumerate(result.seeds):
            alone = Forecaster(dataclasses.replace(MODEL, outputs=3), rngs=nnx.Rngs(seed))
            config = dataclasses.replace(TRAIN, seed=seed, devices=1)
            history = fit(alone, fold.dataset.x_train, fold.dataset.y_train, config, progress=False)
            np.testing.assert_allclose(result.losses[:, k, s], history.loss, rtol=1e-5)
            changes = fold.dataset.to_prices(predict_scaled(alone, fold.dataset.x_test))
            prices = fold.previous[:4, None] + np.cumsum(changes, axis=1)
            np.testing.assert_allclose(result.member_forecasts[k, s], prices, rtol=1e-5)


def test_no_multi_day_forecast_sees_a_price_after_its_origin(frame, direct_backtest) -> None:
    """Prices after the 2nd test day of fold 2 change: every forecast made from data up to that day (origins up to
    the day after it) stays, whatever day it is for; the later origins move."""
    fold = direct_backtest.folds[1]
    day = fold.dataset.test_dates[1]
    changed = frame.copy()
    changed.loc[changed.index > day, :] *= 1.5
    data = DataConfig(window=10, horizon=3)
    backtest = BacktestConfig(folds=2, test_days=6, train_days=60, target_transform="diff")
    again = run_backtest(make_folds(changed, data, backtest), dataclasses.replace(MODEL, outputs=3), TRAIN, 2)
    np.testing.assert_array_equal(again.member_forecasts[0], direct_backtest.member_forecasts[0])
    np.testing.assert_array_equal(again.member_forecasts[1, :, :3], direct_backtest.member_forecasts[1, :, :3])
    assert not np.allclose(again.member_forecasts[1, :, 3], direct_backtest.member_forecasts[1, :, 3])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (
            lambda frame: make_folds(frame, DataConfig(horizon=8), BacktestConfig(test_days=5)),
            ConfigError,
            "--horizon 8 is longer than --test-days 5: a fold forecasts its own test days only; use --test-days 8",
        ),
        (
            lambda frame: prepare(frame, window=10, split=150, horizon=11),
            DataError,
            "--horizon 11 is longer than the 10 test days; use a smaller --horizon or --split",
        ),
        (
            lambda frame: prepare(frame, window=10, split=15, horizon=6),
            DataError,
            "15 training rows (of 160), but --window 10 and --horizon 6 need at least 16",
        ),
        (
            lambda frame: DataConfig(features=("Open", "Volume"), strategy="recursive", horizon=3),
            ConfigError,
            "--strategy recursive feeds each forecast back as the next day's Open, but cannot forecast Volume; "
            "use --strategy direct, or --features Open",
        ),
        (lambda frame: DataConfig(horizon=0), ConfigError, "--horizon 0: must be a whole number >= 1"),
    ],
)
def test_horizons_that_cannot_work_are_refused(frame, make, error: type, message: str) -> None:
    with pytest.raises(error) as raised:
        make(frame)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_train_reports_every_step_of_the_horizon(tmp_path, capsys) -> None:
    """metrics.json's per-step RMSEs and pooled RMSE, recomputed from predictions.csv with pandas."""
    out = tmp_path / "run"
    common = ["--arch", "vanilla", "--units", "4", "--epochs", "2", "--quiet", "--window", "20", "--horizon", "3"]
    main(["train", *common, "--out", str(out)])
    table = pd.read_csv(out / "predictions.csv")
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(table.columns) == ["Date", "step", "Open", "predicted", "naive"] and len(table) == 56 * 3
    assert (metrics["horizon"], metrics["strategy"]) == (3, "direct")
    for step in metrics["steps"]:
        rows = table[table["step"] == step["step"]]
        assert step["model"]["rmse"] == pytest.approx(np.sqrt(np.mean((rows["Open"] - rows["predicted"]) ** 2)))
        assert step["naive"]["rmse"] == pytest.approx(np.sqrt(np.mean((rows["Open"] - rows["naive"]) ** 2)))
    assert metrics["model"]["rmse"] == pytest.approx(np.sqrt(np.mean((table["Open"] - table["predicted"]) ** 2)))
    one_day = table[table["step"] == 1]
    np.testing.assert_array_equal(one_day["naive"].to_numpy()[1:], one_day["Open"].to_numpy()[:-1])
    naive = table["naive"].to_numpy().reshape(56, 3)  # each origin's three days: its last known price
    np.testing.assert_array_equal(naive, np.repeat(naive[:, :1], 3, axis=1))
    assert "RMSE by days ahead: 1:" in capsys.readouterr().out


def test_predict_writes_every_day_a_direct_model_forecasts(tmp_path) -> None:
    """`predict` on the run's own rows: its column +h at a test day's row is the forecast train wrote for the day h - 1
    test days later at step h."""
    out = tmp_path / "run"
    main(
        ["train", "--arch", "vanilla", "--units", "4", "--epochs", "1", "--quiet", "--horizon", "3", "--out", str(out)]
    )
    main(["predict", "--run", str(out), "--out", str(tmp_path / "p.csv")])
    predicted = pd.read_csv(tmp_path / "p.csv").set_index("Date")
    assert list(predicted.columns) == ["Open", "predicted +1", "predicted +2", "predicted +3"]
    trained = pd.read_csv(out / "predictions.csv")
    origins = trained[trained["step"] == 1]["Date"].to_numpy()
    for step in (1, 2, 3):
        rows = trained[trained["step"] == step]
        np.testing.assert_allclose(predicted.loc[origins, f"predicted +{step}"], rows["predicted"], rtol=1e-6)


@pytest.mark.slow
def test_gradflow_trains_its_rnns_for_the_runs_horizon(tmp_path) -> None:
    """`gradflow --train-rnn` on a 3-day run: the RNNs get the run's Dense(3) head, and the run's test RMSE it reports
    is the one train wrote (over every step)."""
    out = tmp_path / "run"
    settings = ["--arch", "vanilla", "--units", "4", "--epochs", "1", "--quiet", "--horizon", "3", "--window", "20"]
    main(["train", *settings, "--out", str(out)])  # a 20-day window: shorter than gradflow's longest reported lag
    assert main(["gradflow", "--run", str(out), "--train-rnn", "--windows", "5", "--out", str(tmp_path / "g")]) == 0
    reported = json.loads((tmp_path / "g" / "gradflow.json").read_text())["test_rmse"]
    assert reported["run"] == pytest.approx(json.loads((out / "metrics.json").read_text())["model"]["rmse"])
    assert len(reported) == 4 and all(np.isfinite(value) for value in reported.values())
