"""The walk-forward backtest against independent oracles: a uniformity test of the one shuffle and its padded form,
`fit` of each fold and seed alone, hand-computed fold geometry, and a no-look-ahead experiment on the prices
themselves."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats

from jaxlstm.config import BacktestConfig, DataConfig, TrainConfig, preset
from jaxlstm.data import load_frame, load_prices
from jaxlstm.errors import ConfigError, DataError
from jaxlstm.forecasting.backtest import make_folds, run_backtest, verdict
from jaxlstm.forecasting.predict import predict_prices, predict_scaled
from jaxlstm.nn.models import Forecaster
from jaxlstm.training import fit, make_epoch, make_optimizer, shuffled
from tests.conftest import BUNDLED

DATA = DataConfig(window=10)
MODEL = preset("vanilla", units=5)
TRAIN = TrainConfig(epochs=2, batch_size=16)
EXPANDING = BacktestConfig(folds=3, test_days=7, expanding=True)


@pytest.fixture(scope="module")
def frame():
    """The last 160 rows of the bundled GOOG prices."""
    return load_prices(BUNDLED / "GOOG.csv").iloc[-160:]


@pytest.mark.parametrize(("size", "counts"), [(40, [0, 1, 2, 17, 40]), (2000, [1625, 1626, 1999])])
def test_a_padded_shuffle_is_the_shuffle_of_its_valid_samples(size: int, counts: list[int]) -> None:
    """The first n of ``size`` shuffled positions are ``shuffled(key, n)``, the rest stay in place: across the one-
    and two-round regimes (n <= 1625 < n), so that a padded model shuffles exactly as it would alone."""
    padded = jax.jit(shuffled, static_argnums=1)
    for seed in range(3):
        key = jax.random.key(seed)
        for n in counts:
            order = np.asarray(padded(key, size, jnp.int32(n)))
            np.testing.assert_array_equal(order[:n], np.asarray(shuffled(key, n)) if n else [])
            np.testing.assert_array_equal(order[n:], np.arange(n, size))
            np.testing.assert_array_equal(np.sort(order), np.arange(size))


def test_the_shuffle_is_uniform() -> None:
    """Chi-square test of which sample lands in each position, over 3,000 keys (padded and alone): a uniform
    shuffle puts each of 5 samples in each of 5 positions a fifth of the time."""
    keys = jax.random.split(jax.random.key(0), 3000)
    for orders in (
        jax.vmap(lambda key: shuffled(key, 5))(keys),
        jax.vmap(lambda key: shuffled(key, 9, jnp.int32(5)))(keys)[:, :5],
    ):
        counts = np.stack([np.bincount(np.asarray(orders[:, position]), minlength=5) for position in range(5)])
        assert stats.chisquare(counts.ravel(), np.full(25, 3000 / 5)).pvalue > 1e-3


def test_a_padded_epoch_equals_the_epoch_of_its_valid_samples() -> None:
    """Two epochs on 21 windows padded to 50 (the padding filled with garbage) end where two epochs built for the
    21 windows end: the same permutation, batches and dropout, and the all-padding batches move nothing."""
    rng = np.random.default_rng(0)
    x, y = rng.random((50, 12, 1), dtype=np.float32), rng.random(50, dtype=np.float32)
    x[21:], y[21:] = 1e3, -1e3
    graphdef, params = nnx.split(Forecaster(MODEL, rngs=nnx.Rngs(0)), nnx.Param)
    optimizer = make_optimizer(TRAIN)
    exact = jax.jit(make_epoch(graphdef, optimizer, 21, 8))
    padded = jax.jit(make_epoch(graphdef, optimizer, 50, 8))
    state_a = state_b = (params, optimizer.init(params))
    for epoch_key in jax.random.split(jax.random.key(4), 2):
        *state_a, loss_a = exact(*state_a, epoch_key, x[:21], y[:21])
        *state_b, loss_b = padded(*state_b, epoch_key, x, y, jnp.int32(21))
        np.testing.assert_allclose(loss_b, loss_a, rtol=1e-6)
    for a, b in zip(jax.tree.leaves(state_a), jax.tree.leaves(state_b), strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6)


def test_fold_geometry_and_scalers_see_only_rows_before_the_cutoff(frame) -> None:
    rolling = make_folds(frame, DATA, BacktestConfig(folds=3, test_days=7, train_days=50))
    expanding = make_folds(frame, DATA, BacktestConfig(folds=3, test_days=7, expanding=True))
    cutoffs = [160 - 21, 160 - 14, 160 - 7]
    for folds, starts in ((rolling, [c - 50 for c in cutoffs]), (expanding, [0, 0, 0])):
        for fold, cutoff, start in zip(folds, cutoffs, starts, strict=True):
            assert (fold.cutoff, fold.train_start) == (frame.index[cutoff], frame.index[start])
            assert len(fold.dataset.x_train) == cutoff - start - 10
            np.testing.assert_array_equal(fold.dataset.test_dates, frame.index[cutoff : cutoff + 7])
            training = frame["Open"].to_numpy()[start:cutoff]
            assert fold.dataset.target_scaler.data_min_[0] == training.min()
            assert fold.dataset.target_scaler.data_max_[0] == training.max()
            # the window of each test day is the 10 actual rows before it, scaled with the fold's scaler
            expected = fold.dataset.feature_scaler.transform(frame[["Open"]].to_numpy()[cutoff - 10 : cutoff])
            np.testing.assert_allclose(fold.dataset.x_test[0, :, 0], expected[:, 0], rtol=1e-6)


@pytest.fixture(scope="module")
def expanding_backtest(frame):
    return run_backtest(make_folds(frame, DATA, EXPANDING), MODEL, TRAIN, 2)


def test_each_model_equals_fit_of_its_fold_and_seed_alone(expanding_backtest) -> None:
    """Expanding folds have 129, 136 and 143 training windows, trained together under per-model masks; each
    model's forecasts and losses equal those of `fit` on its fold with its seed, one model at a time."""
    result = expanding_backtest
    assert [len(fold.dataset.x_train) for fold in result.folds] == [129, 136, 143]
    for k, fold in enumerate(result.folds):
        for s, seed in enumerate(result.seeds):
            alone = Forecaster(MODEL, rngs=nnx.Rngs(seed))
            config = dataclasses.replace(TRAIN, seed=seed, devices=1)
            history = fit(alone, fold.dataset.x_train, fold.dataset.y_train, config, progress=False)
            np.testing.assert_allclose(result.losses[:, k, s], history.loss, rtol=1e-5)
            forecast = predict_prices(alone, fold.dataset.x_test, fold.dataset.target_scaler)
            np.testing.assert_allclose(result.member_forecasts[k, s, :, 0], forecast, rtol=1e-5)
    np.testing.assert_allclose(result.forecasts, result.member_forecasts.mean(axis=1))
    table = result.table()
    assert len(table) == 3 * 7 * 3 and set(table["member"]) == {"seed 0", "seed 1", "ensemble"}


def test_no_forecast_sees_a_price_after_its_day(frame, expanding_backtest) -> None:
    """Every price after the 3rd test day of fold 2 is changed: no forecast for that day or earlier moves, and the
    later ones do (so the experiment can detect a leak)."""
    day = expanding_backtest.folds[1].dataset.test_dates[2]
    changed = frame.copy()
    changed.loc[changed.index > day, :] *= 1.5
    again = run_backtest(make_folds(changed, DATA, EXPANDING), MODEL, TRAIN, 2)
    dates = np.stack([fold.dataset.test_dates for fold in again.folds])
    up_to_day = dates <= day
    assert up_to_day.sum() == 7 + 3
    for k in range(3):
        before, after = expanding_backtest.member_forecasts[k], again.member_forecasts[k]
        np.testing.assert_array_equal(after[:, up_to_day[k]], before[:, up_to_day[k]])
    assert not np.allclose(again.member_forecasts[2], expanding_backtest.member_forecasts[2])


@pytest.mark.parametrize("transform", ["diff", "log-return"])
def test_a_transformed_fold_learns_daily_changes_and_scores_in_prices(frame, transform: str) -> None:
    """The fold's windows and targets are the day-over-day changes of the CSV's own columns (computed here with
    NumPy), scaled on the training rows; its test targets turn back into the CSV's prices."""
    data = dataclasses.replace(DATA, features=("Open", "Close"))
    fold = make_folds(frame, data, BacktestConfig(folds=2, test_days=5, train_days=40, target_transform=transform))[0]
    values = frame[["Open", "Close"]].to_numpy()
    change = np.diff(values, axis=0) if transform == "diff" else np.log(values[1:] / values[:-1])
    cutoff = 160 - 10  # row of the first test day, in prices; change row i is price row i + 1
    assert fold.cutoff == frame.index[cutoff] and fold.train_start == frame.index[cutoff - 40]
    float32 = 1e-6 * np.ptp(change[:, 0])  # the targets are float32
    targets = fold.dataset.to_prices(fold.dataset.y_train)
    np.testing.assert_allclose(targets, change[cutoff - 1 - 30 : cutoff - 1, 0], atol=float32)
    np.testing.assert_allclose(fold.dataset.feature_scaler.data_min_, change[cutoff - 41 : cutoff - 1].min(axis=0))
    window = fold.dataset.feature_scaler.inverse_transform(fold.dataset.x_test[0])
    np.testing.assert_allclose(window, change[cutoff - 11 : cutoff - 1], atol=float32)
    np.testing.assert_allclose(fold.actual, values[cutoff : cutoff + 5, 0])
    np.testing.assert_allclose(fold.previous, values[cutoff - 1 : cutoff + 4, 0])
    np.testing.assert_allclose(fold.to_prices(fold.dataset.y_test), fold.actual, rtol=1e-6)


@pytest.mark.slow
def test_a_diff_backtest_sees_no_price_after_its_day(frame) -> None:
    backtest = BacktestConfig(folds=2, test_days=5, train_days=60, target_transform="diff", seeds=1)
    before = run_backtest(make_folds(frame, DATA, backtest), MODEL, TRAIN, 1)
    day = before.folds[1].dataset.test_dates[1]
    changed = frame.copy()
    changed.loc[changed.index > day, :] *= 1.5
    after = run_backtest(make_folds(changed, DATA, backtest), MODEL, TRAIN, 1)
    np.testing.assert_array_equal(after.member_forecasts[0], before.member_forecasts[0])
    np.testing.assert_array_equal(after.member_forecasts[1][:, :2], before.member_forecasts[1][:, :2])
    assert not np.allclose(after.member_forecasts[1][:, 2:], before.member_forecasts[1][:, 2:])


def test_a_log_return_of_zero_volume_is_refused(frame) -> None:
    zero = frame.copy()
    zero.iloc[100, zero.columns.get_loc("Volume")] = 0
    data = dataclasses.replace(DATA, features=("Open", "Volume"))
    with pytest.raises(DataError, match=r"Volume is 0 on .*no log-return; use --target-transform diff"):
        make_folds(zero, data, BacktestConfig(folds=2, test_days=5, train_days=40, target_transform="log-return"))


@pytest.mark.parametrize(
    ("backtest", "message"),
    [
        (BacktestConfig(folds=30, test_days=10), "30 folds of 10 test days need more than 300 rows, the data has 160"),
        (
            BacktestConfig(folds=2, test_days=10, train_days=150),
            "fold 1 (first test day 2013-02-01) needs 150 training rows before it, but the data has 140",
        ),
        (BacktestConfig(folds=2, test_days=5, first_cutoff="2013-02-27"), "need 10 rows from there, but the data"),
        (BacktestConfig(folds=2, test_days=5, train_days=8), "trains on 8 rows, but --window 10 needs at least 11"),
    ],
)
def test_folds_that_do_not_fit_the_data_are_refused(frame, backtest: BacktestConfig, message: str) -> None:
    with pytest.raises(DataError) as error:
        make_folds(frame, DATA, backtest)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_default_folds_on_the_bundled_data() -> None:
    """The default BacktestConfig on all the bundled GOOG rows: 5 folds of 20 days, each trained on the 172 rows
    before it (the tutorial's training rows), so 112 windows of 60 days."""
    data = DataConfig(csv=BUNDLED / "GOOG.csv")
    folds = make_folds(load_frame(data), data, BacktestConfig())
    assert [len(fold.dataset.x_train) for fold in folds] == [112] * 5
    assert all(len(fold.dataset.x_test) == 20 for fold in folds)


@pytest.mark.parametrize(
    ("rmse", "p_value", "expected"),
    [
        (30.0, 0.01, "ensemble RMSE 30 vs persistence 33.5: better (Diebold-Mariano p = 0.01)"),
        (41.2, 0.02, "ensemble RMSE 41.2 vs persistence 33.5: worse (Diebold-Mariano p = 0.02)"),
        (35.0, 0.4, "ensemble RMSE 35 vs persistence 33.5: worse, not significantly (Diebold-Mariano p = 0.4)"),
        (33.5, float("nan"), "ensemble RMSE 33.5 vs persistence 33.5: no different (Diebold-Mariano undefined)"),
    ],
)
def test_the_verdict_says_better_or_worse_and_whether_it_is_significant(rmse, p_value, expected) -> None:
    pooled = {"rmse": rmse, "persistence": {"rmse": 33.5}, "diebold_mariano": {"squared": {"p_value": p_value}}}
    assert verdict(pooled) == expected


def test_a_first_cutoff_that_is_not_a_date_is_refused_by_the_config() -> None:
    with pytest.raises(ConfigError, match="--first-cutoff '2013-02-30' is not a date; write it as YYYY-MM-DD"):
        BacktestConfig(first_cutoff="2013-02-30")


@pytest.mark.parametrize(
    ("train", "backtest", "message"),
    [
        (
            dataclasses.replace(TRAIN, batch_size=135),
            BacktestConfig(folds=3, test_days=7, expanding=True, seeds=1),
            "fold 1 has 129 training windows, fewer than --batch-size 135, while other folds have more",
        ),
        (
            dataclasses.replace(TRAIN, seed=2**32 - 1),
            BacktestConfig(folds=2, test_days=7, train_days=50, seeds=2),
            "--seed 4294967295 with --seeds 2 reaches seed 4294967296, past 4294967295",
        ),
    ],
)
def test_settings_that_cannot_train_together_are_refused(frame, train, backtest, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        run_backtest(make_folds(frame, DATA, backtest), MODEL, train, backtest.seeds)
    assert message in str(error.value)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["bidirectional", "conv"])
def test_every_preset_and_feature_set_backtests_as_fit_trains_it(frame, arch: str) -> None:
    """Two features, a diff target, one fold and seed: the backtest's model is `fit` of that fold alone (a window of
    15 days: ConvLSTM steps are 15 days long). Vanilla and stacked models: the tests above and test_ensemble.py."""
    data = dataclasses.replace(DATA, features=("Open", "Volume"), window=15)
    model = preset(arch, units=4, n_features=2)
    backtest = BacktestConfig(folds=1, test_days=5, train_days=60, target_transform="diff", seeds=1)
    result = run_backtest(make_folds(frame, data, backtest), model, TRAIN, 1)
    fold = result.folds[0]
    alone = Forecaster(model, rngs=nnx.Rngs(0))
    fit(alone, fold.dataset.x_train, fold.dataset.y_train, dataclasses.replace(TRAIN, devices=1), progress=False)
    expected = fold.previous + fold.dataset.to_prices(predict_scaled(alone, fold.dataset.x_test))  # diff: + yesterday
    np.testing.assert_allclose(result.member_forecasts[0, 0, :, 0], expected, rtol=1e-6)
