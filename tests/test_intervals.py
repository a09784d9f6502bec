"""Interval methods and calibration scores against independent oracles: SciPy's distributions, scoringrules, the
conformal coverage guarantee by simulation, a brute-force conformal rank, and a backtest's bands rebuilt from the
files it writes and the CSV's own prices."""

import json
import math
import shutil

import jax
import numpy as np
import pandas as pd
import pytest
import scoringrules
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from jaxlstm.commands import main
from jaxlstm.config import BacktestConfig, DataConfig, TrainConfig, preset
from jaxlstm.errors import ConfigError, RunError
from jaxlstm.forecasting.backtest import make_folds, run_backtest
from jaxlstm.forecasting.calibration import calibrate
from jaxlstm.forecasting.intervals import (
    CRPS_LEVELS,
    Conformal,
    Empirical,
    LogNormal,
    Normal,
    conformal_radius,
    crps_quantiles,
    minimum_calibration,
    recent_volatility,
)
from jaxlstm.forecasting.predict import dropout_forecasts, forecast_scaled
from jaxlstm.nn.models import Forecaster
from jaxlstm.runs import load_backtest
from tests.conftest import BUNDLED


@given(
    st.lists(st.floats(0, 10, allow_nan=False), min_size=1, max_size=40),
    st.floats(0.01, 0.99),
)
@settings(max_examples=200, deadline=None)
def test_the_conformal_radius_is_the_smallest_error_covering_enough(errors: list[float], level: float) -> None:
    """Brute force: the smallest calibration error r with #{e <= r} >= (n + 1) level; none (inf) if no error has."""
    n = len(errors)
    enough = [e for e in sorted(errors) if sum(x <= e for x in errors) >= (n + 1) * level - 1e-9]
    expected = enough[0] if enough else math.inf
    assert conformal_radius(np.array(errors), level) == expected


def test_split_conformal_covers_at_least_its_level_on_exchangeable_errors() -> None:
    """Vovk's guarantee, by simulation: with n = 39 calibration errors, the interval at level c covers a new
    exchangeable error with probability ceil((n + 1) c) / (n + 1), at least c and less than c + 1 / (n + 1)."""
    rng = np.random.default_rng(0)
    n, trials = 39, 20000
    errors = np.abs(rng.standard_t(3, size=(trials, n + 1)))
    for level in (0.8, 0.95):
        radius = np.array([conformal_radius(row[:n], level) for row in errors])
        covered = np.mean(errors[:, n] <= radius)
        expected = math.ceil((n + 1) * level) / (n + 1)
        assert covered == pytest.approx(expected, abs=4 * math.sqrt(expected * (1 - expected) / trials))
    assert minimum_calibration(0.95) == 19 and minimum_calibration(0.8) == 4
    assert np.isfinite(conformal_radius(np.ones(19), 0.95)) and np.isinf(conformal_radius(np.ones(18), 0.95))


def test_normal_and_lognormal_bands_are_scipys_distributions() -> None:
    rng = np.random.default_rng(1)
    mean, std = rng.uniform(50, 150, 8), rng.uniform(0.5, 5, 8)
    levels = np.array([0.025, 0.1, 0.5, 0.9, 0.975])
    normal = Normal(mean, std)
    np.testing.assert_allclose(normal.quantiles(levels), stats.norm.ppf(levels, mean[:, None], std[:, None]))
    np.testing.assert_allclose(normal.cdf(mean + std), stats.norm.cdf(1.0))
    members = rng.normal(100, 3, (5, 8))
    spread = Normal.of_members(members)
    np.testing.assert_allclose(spread.std, [np.std(members[:, j], ddof=1) for j in range(8)])
    median, sigma = rng.uniform(50, 150, 8), rng.uniform(0.01, 0.1, 8)
    lognormal = LogNormal(median, sigma)
    expected = stats.lognorm.ppf(levels, sigma[:, None], scale=median[:, None])
    np.testing.assert_allclose(lognormal.quantiles(levels), expected)
    np.testing.assert_allclose(lognormal.cdf(median * 1.05), stats.lognorm.cdf(median * 1.05, sigma, scale=median))
    np.testing.assert_allclose(lognormal.interval(0.8), stats.lognorm.interval(0.8, sigma, scale=median))


def test_conformal_bands_and_pit_from_their_errors() -> None:
    """Bands forecast -+ r * scale per step; the PIT counts the calibration errors below the actual error."""
    errors = np.array([[0.01, 0.02], [0.03, 0.05], [0.02, 0.01], [0.04, 0.03]])  # 4 earlier forecasts, 2 steps
    bands = Conformal(np.array([[100.0, 101.0]]), np.array([[99.0, 99.0]]), errors)
    lower, upper = bands.interval(0.6)  # rank ceil(5 * 0.6) = 3: the 3rd smallest error of each step
    np.testing.assert_allclose(lower, [[100 - 0.03 * 99, 101 - 0.03 * 99]])
    np.testing.assert_allclose(upper, [[100 + 0.03 * 99, 101 + 0.03 * 99]])
    assert np.isinf(bands.interval(0.9)[1]).all()  # rank 5 of 4 errors
    pit = bands.cdf(np.array([[100 + 0.025 * 99, 101 - 0.06 * 99]]))
    np.testing.assert_allclose(pit, [[0.5 + 0.5 * 2 / 5, 0.5 - 0.5 * 4 / 5]])
    np.testing.assert_allclose(Conformal.errors_of(np.array([110.0]), np.array([100.0]), np.array([50.0])), [0.2])
    scale = Conformal.random_walk_scale(np.array([100.0, 50.0]), np.array([0.01, 0.02]), 4)
    np.testing.assert_allclose(scale, [[1.0, math.sqrt(2), math.sqrt(3), 2.0]] * 2)


def test_crps_from_quantiles_is_scoringrules_and_approximates_the_closed_form() -> None:
    rng = np.random.default_rng(2)
    actual, median, sigma = rng.uniform(90, 110, 50), np.full(50, 100.0), np.full(50, 0.05)
    quantiles = LogNormal(median, sigma).quantiles(CRPS_LEVELS)
    ours = crps_quantiles(actual, quantiles)
    np.testing.assert_allclose(ours, scoringrules.crps_quantile(actual, quantiles, CRPS_LEVELS, backend="numpy"))
    exact = scoringrules.crps_lognormal(actual, np.log(median), sigma, backend="numpy")
    np.testing.assert_allclose(ours.mean(), exact.mean(), rtol=0.03)


def test_recent_volatility_is_the_std_of_the_last_log_returns() -> None:
    prices = np.array([100.0, 102.0, 101.0, 104.0, 103.0])
    returns = [math.log(101 / 102), math.log(104 / 101), math.log(103 / 104)]
    assert recent_volatility(prices, 3) == pytest.approx(np.std(returns, ddof=1))


@pytest.mark.parametrize(
    ("levels", "message"),
    [
        ((0.8, 1.0), "--levels 0.8,1.0: each level must lie strictly between 0 and 1"),
        ((0.9, 0.9), "--levels 0.9,0.9: list each level once"),
        ((), "--levels : name at least one level"),
    ],
)
def test_levels_outside_zero_and_one_are_refused(levels: tuple, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        BacktestConfig(levels=levels)


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    """A 3-day direct backtest of 8 folds x 7 test days, 3 seeds, 4 dropout draws each: folds 5..8 are scored (19
    errors per step are needed for 95%, each fold gives 5)."""
    out = tmp_path_factory.mktemp("backtest") / "run"
    options = ["--arch", "vanilla", "--units", "4", "--epochs", "2", "--window", "10", "--train-days", "40"]
    folds = ["--folds", "8", "--test-days", "7", "--seeds", "3", "--horizon", "3", "--mc-dropout", "4", "--quiet"]
    main(["backtest", *options, *folds, "--out", str(out)])
    return out


def test_backtest_bands_rebuilt_from_its_predictions_and_the_csv(calibrated_run) -> None:
    """predictions.csv's volatility is the std of the 10 log-returns before each origin, from the CSV. Random walk:
    the last price times exp(-+z vol sqrt(days ahead)); conformal: fold k's errors are the ensemble's (or for one
    model each seed's) in folds before k, each divided by the random walk's spread last price x vol x sqrt(days
    ahead), and its band that many spreads wide; ensemble: the seeds' mean -+ z std. The coverage metrics.json
    reports is the share of intervals.csv rows covering."""
    predictions = pd.read_csv(calibrated_run / "predictions.csv")
    intervals = pd.read_csv(calibrated_run / "intervals.csv")
    metrics = json.loads((calibrated_run / "metrics.json").read_text())["calibration"]
    assert metrics["scored_folds"] == [5, 6, 7, 8] and metrics["calibration_errors"] == [20, 25, 30, 35]
    log_prices = np.log(pd.read_csv(BUNDLED / "GOOG.csv", index_col="Date")["Open"])
    origin = log_prices.index.get_indexer(predictions["Date"]) - predictions["step"] + 1
    volatility = [np.std(np.diff(log_prices.to_numpy()[o - 11 : o]), ddof=1) for o in origin]
    np.testing.assert_allclose(predictions["volatility"], volatility, rtol=1e-9)
    predictions["spread"] = predictions["persistence"] * predictions["volatility"] * np.sqrt(predictions["step"])
    predictions["error"] = np.abs(predictions["actual"] - predictions["forecast"]) / predictions["spread"]
    ensemble, seeds = (predictions[(predictions["member"] == "ensemble") == kind] for kind in (True, False))
    z = stats.norm.ppf(0.9)
    for _, row in intervals[(intervals["fold"] == 6) & (intervals["level"] == 0.8)].iterrows():
        same = ensemble[(ensemble["Date"] == row["Date"]) & (ensemble["step"] == row["step"])]
        forecast, last, spread, vol = same[same["fold"] == 6][["forecast", "persistence", "spread", "volatility"]].iloc[
            0
        ]
        if row["method"] == "conformal":
            earlier = np.sort(ensemble[(ensemble["fold"] < 6) & (ensemble["step"] == row["step"])]["error"])
            radius = earlier[math.ceil((len(earlier) + 1) * 0.8) - 1]
            assert (row["lower"], row["upper"]) == pytest.approx(
                (forecast - radius * spread, forecast + radius * spread)
            )
        elif row["method"] == "random walk":
            sigma = vol * math.sqrt(row["step"])
            assert (row["lower"], row["upper"]) == pytest.approx(
                (last * math.exp(-z * sigma), last * math.exp(z * sigma))
            )
        elif row["method"] == "ensemble":
            members = seeds[(seeds["fold"] == 6) & (seeds["Date"] == row["Date"]) & (seeds["step"] == row["step"])]
            mean, std = members["forecast"].mean(), np.std(members["forecast"], ddof=1)
            assert (row["lower"], row["upper"]) == pytest.approx((mean - z * std, mean + z * std))
    one_model = intervals[(intervals["method"] == "conformal (one model)") & (intervals["fold"] == 6)]
    for (day, step, level), rows in one_model.groupby(["Date", "step", "level"]):
        earlier = np.sort(seeds[(seeds["fold"] < 6) & (seeds["step"] == step)]["error"])  # 3 seeds x 25 forecasts
        radius = earlier[math.ceil((len(earlier) + 1) * level) - 1]
        forecasts = seeds[(seeds["fold"] == 6) & (seeds["Date"] == day) & (seeds["step"] == step)]
        np.testing.assert_allclose(
            np.sort(rows["lower"]), np.sort(forecasts["forecast"] - radius * forecasts["spread"])
        )
    for (method, level), rows in intervals.groupby(["method", "level"]):
        covered = np.mean((rows["lower"] <= rows["actual"]) & (rows["actual"] <= rows["upper"]))
        assert metrics["pooled"][method]["levels"][f"{100 * level:g}%"]["coverage"] == pytest.approx(covered)
        for step, per_step in rows.groupby("step"):
            inside = np.mean((per_step["lower"] <= per_step["actual"]) & (per_step["actual"] <= per_step["upper"]))
            scores = metrics["steps"][step - 1][method]["levels"][f"{100 * level:g}%"]
            assert scores["coverage"] == pytest.approx(inside)
    assert len(intervals) == (4 + 3) * 2 * 4 * 5 * 3  # (methods + a one-model row per seed) x levels x folds x ...
    report = (calibrated_run / "report.md").read_text()
    assert "## Prediction intervals" in report and (calibrated_run / "pit.png").exists()


@pytest.mark.slow
def test_a_backtest_too_short_to_calibrate_says_what_it_needs(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    options = ["--arch", "vanilla", "--units", "4", "--epochs", "1", "--window", "10", "--train-days", "40"]
    main(["backtest", *options, "--folds", "3", "--test-days", "5", "--seeds", "2", "--quiet", "--out", str(out)])
    skipped = json.loads((out / "metrics.json").read_text())["calibration"]["skipped"]
    assert skipped == (
        "conformal intervals at 95% need 19 earlier forecasts per step before a fold, but the 2 folds before the "
        "last give 10; use more --folds or --test-days, or lower --levels"
    )
    assert f"prediction intervals not calibrated: {skipped}" in capsys.readouterr().out
    assert not (out / "intervals.csv").exists()


def test_the_conformal_crps_is_that_of_its_errors_mirrored_around_the_forecast() -> None:
    """The conformal predictive distribution puts the forecast -+ each error (times the last price) at equal odds:
    scoringrules' CRPS of that 2n-member ensemble, which the 99-quantile approximation must match closely."""
    rng = np.random.default_rng(3)
    errors = np.abs(rng.standard_t(4, size=(400, 2))) * 0.01
    forecast, last = np.array([[100.0, 102.0]]), np.array([[99.0, 99.0]])
    actual = np.array([[101.5, 97.0]])
    ours = Conformal(forecast, last, errors).crps(actual)
    for h in range(2):
        members = np.concatenate(
            [forecast[0, h] + last[0, h] * errors[:, h], forecast[0, h] - last[0, h] * errors[:, h]]
        )
        exact = scoringrules.crps_ensemble(actual[0, h], members, backend="numpy")
        assert ours[0, h] == pytest.approx(exact, rel=0.03)
    assert np.isfinite(Conformal(forecast, last, errors[:5]).crps(actual)).all()  # finite however few the errors


def numbers(tree):
    """Every number of a JSON-like tree, keys in order (and the keys too, as their hash, so that they must match)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield hash(key)
            yield from numbers(value)
    elif isinstance(tree, list):
        for value in tree:
            yield from numbers(value)
    else:
        yield float(tree)


def test_a_reloaded_backtest_calibrates_as_it_did(calibrated_run, tmp_path) -> None:
    """load_backtest rebuilds the folds from the CSV and reads the seeds' forecasts: calibrating it again gives the
    run's own metrics; a CSV whose prices changed since is refused."""
    metrics = json.loads((calibrated_run / "metrics.json").read_text(), parse_constant=float)["calibration"]
    again = calibrate(load_backtest(calibrated_run), (0.8, 0.95)).summary()
    np.testing.assert_allclose(list(numbers(again)), list(numbers(metrics)))
    changed = tmp_path / "run"
    shutil.copytree(calibrated_run, changed)
    csv = tmp_path / "GOOG.csv"
    frame = pd.read_csv(BUNDLED / "GOOG.csv")
    frame.loc[len(frame) - 3, "Open"] *= 1.1
    frame.to_csv(csv, index=False)
    config = json.loads((changed / "config.json").read_text())
    config["data"]["csv"] = str(csv)
    (changed / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match=r"GOOG.csv no longer gives the prices .* forecast \(fold 8\); restore the"):
        load_backtest(changed)


def test_empirical_bands_rank_their_draws() -> None:
    """Quantile q is the ceil(m q)-th smallest of m draws; the CDF is SciPy's weak percentile of the actual value."""
    rng = np.random.default_rng(5)
    draws = rng.normal(100, 5, (40, 3))
    bands = Empirical(draws)
    levels = np.array([0.1, 0.5, 0.975])
    expected = np.sort(draws, axis=0)[np.ceil(40 * levels).astype(int) - 1].T
    np.testing.assert_allclose(bands.quantiles(levels), expected)
    actual = np.array([95.0, 100.0, 108.0])
    weak = [stats.percentileofscore(draws[:, j], actual[j], kind="weak") / 100 for j in range(3)]
    np.testing.assert_allclose(bands.cdf(actual), weak)


@pytest.mark.parametrize("strategy", ["direct", "recursive"])
def test_dropout_draws_are_the_model_run_with_each_drawn_key(strategy: str) -> None:
    """Draw i is the model called with the i-th key of the split (a recursive model: the h-th key of that key's split
    for day h, fed back by hand); without dropout every draw is the plain forecast."""
    rng = np.random.default_rng(6)
    x = rng.random((4, 12, 1), dtype=np.float32)
    outputs = 3 if strategy == "direct" else 1
    model = Forecaster(preset("stacked", layers=2, units=5, outputs=outputs), rngs=nnx.Rngs(0))
    key = jax.random.key(7)
    draws = dropout_forecasts(model, x, 3, strategy, 5, key)
    assert draws.shape == (5, 4, 3) and not np.allclose(draws[0], draws[1])
    for i, draw_key in enumerate(jax.random.split(key, 5)):
        if strategy == "direct":
            expected = np.asarray(model(x, dropout_key=draw_key))
        else:
            window, days = x, []
            for day_key in jax.random.split(draw_key, 3):
                forecast = np.asarray(model(window, dropout_key=day_key))
                days.append(forecast)
                window = np.concatenate([window[:, 1:], forecast[:, None, None]], axis=1)
            expected = np.stack(days, axis=1)
        np.testing.assert_allclose(draws[i], expected, rtol=1e-5, atol=1e-6)
    still = Forecaster(preset("stacked", layers=2, units=5, outputs=outputs, dropout=0.0), rngs=nnx.Rngs(0))
    np.testing.assert_allclose(
        dropout_forecasts(still, x, 3, strategy, 2, key)[1], forecast_scaled(still, x, 3, strategy), rtol=1e-6
    )


def test_mc_dropout_bands_are_the_quantiles_of_a_folds_draws() -> None:
    """A backtest with dropout draws: fold k's MC dropout bounds are the empirical quantiles of its seeds' draws,
    pooled (NumPy's, on the Backtest's own draws)."""
    frame = pd.read_csv(BUNDLED / "GOOG.csv", index_col="Date", parse_dates=True).iloc[-200:]
    frame.attrs["source"] = "GOOG.csv"
    data = DataConfig(window=10, horizon=2)
    folds = make_folds(frame, data, BacktestConfig(folds=6, test_days=6, train_days=40))
    result = run_backtest(folds, preset("vanilla", units=4, outputs=2), TrainConfig(epochs=1), 2, dropout_samples=10)
    assert result.dropout_forecasts.shape == (6, 2, 10, 5, 2)
    calibration = calibrate(result, (0.8,))
    bands = calibration.methods["MC dropout"]
    k = calibration.folds[0]
    pooled = result.dropout_forecasts[k].reshape(20, 5, 2)
    lower = np.sort(pooled, axis=0)[math.ceil(20 * 0.1) - 1]
    upper = np.sort(pooled, axis=0)[math.ceil(20 * 0.9) - 1]
    np.testing.assert_allclose(bands.bounds[0, 0, :5], lower)
    np.testing.assert_allclose(bands.bounds[0, 1, :5], upper)


def test_a_calibration_window_keeps_only_the_latest_errors(calibrated_run) -> None:
    """With a window of 7, fold 6's 80% conformal band uses the 7 latest errors of its step (rank ceil(8 x 0.8) = 7:
    the largest of them), taken from predictions.csv in date order."""
    predictions = pd.read_csv(calibrated_run / "predictions.csv")
    ensemble = predictions[predictions["member"] == "ensemble"].copy()
    ensemble["spread"] = ensemble["persistence"] * ensemble["volatility"] * np.sqrt(ensemble["step"])
    ensemble["error"] = np.abs(ensemble["actual"] - ensemble["forecast"]) / ensemble["spread"]
    calibration = calibrate(load_backtest(calibrated_run), (0.8,), window=7)
    bands = calibration.methods["conformal"]
    for step in (1, 2, 3):
        earlier = ensemble[(ensemble["fold"] < 6) & (ensemble["step"] == step)]
        radius = earlier.sort_values(["fold", "Date"])["error"].to_numpy()[-7:].max()
        now = ensemble[(ensemble["fold"] == 6) & (ensemble["step"] == step)]
        lower = bands.bounds[0, 0][bands.fold == 5, step - 1]  # fold 6 is index 5
        np.testing.assert_allclose(lower, now["forecast"] - radius * now["spread"])
