"""The forecast statistics against independent implementations: the `dieboldmariano` package (Diebold-Mariano with
the Harvey-Leybourne-Newbold correction), Nixtla's `utilsforecast` (MASE), SciPy's chi-square test of independence
(to which Pesaran-Timmermann is asymptotically equal) and hand arithmetic."""

import math

import numpy as np
import pandas as pd
import pytest
from dieboldmariano import dm_test
from scipy.stats import chi2_contingency
from utilsforecast.losses import mase as nixtla_mase

from jaxlstm.forecasting import diebold_mariano, mase, pesaran_timmermann, skill
from jaxlstm.forecasting.metrics import directional_accuracy, naive_scale


def series(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random walk, a noisy forecast of it and persistence."""
    rng = np.random.default_rng(seed)
    actual = 100 + np.cumsum(rng.normal(0, 1, n + 1))
    forecast = actual[1:] + rng.normal(0, 1.2, n)
    return actual[1:], forecast, actual[:-1]


@pytest.mark.parametrize("horizon", [1, 3])
@pytest.mark.parametrize("loss", ["squared", "absolute"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_diebold_mariano_equals_the_dieboldmariano_package(seed: int, loss: str, horizon: int) -> None:
    actual, forecast, persistence = series(60, seed)
    theirs = dm_test(
        actual,
        forecast,
        persistence,
        loss=(lambda u, v: (u - v) ** 2) if loss == "squared" else (lambda u, v: abs(u - v)),
        h=horizon,
        harvey_correction=True,
    )
    ours = diebold_mariano(actual, forecast, persistence, loss=loss, horizon=horizon)
    np.testing.assert_allclose(ours, theirs, rtol=1e-7)


def test_diebold_mariano_of_identical_forecasts_is_undefined() -> None:
    actual, forecast, _ = series(20, 3)
    assert all(math.isnan(value) for value in diebold_mariano(actual, forecast, forecast))


def test_mase_equals_utilsforecast() -> None:
    actual, forecast, _ = series(30, 4)
    training = 100 + np.cumsum(np.random.default_rng(5).normal(0, 1, 200))
    test = pd.DataFrame({"unique_id": "s", "ds": np.arange(30), "y": actual, "model": forecast})
    train = pd.DataFrame({"unique_id": "s", "ds": np.arange(-200, 0), "y": training})
    theirs = nixtla_mase(test, ["model"], seasonality=1, train_df=train)["model"].iloc[0]
    assert mase(actual, forecast, naive_scale(training)) == pytest.approx(theirs, rel=1e-12)
    # one scale per day, as the pooled backtest uses: each day divided by its own series' scale
    per_day = np.repeat([naive_scale(training), 2 * naive_scale(training)], 15)
    expected = np.mean(np.abs(actual - forecast) / per_day)
    assert mase(actual, forecast, per_day) == pytest.approx(expected, rel=1e-12)


def test_skill_by_hand() -> None:
    """RMSE 2 against persistence's RMSE 4: skill 0.5; the reference itself: 0."""
    actual = np.array([10.0, 10.0, 10.0, 10.0])
    assert skill(actual, actual + np.array([2, -2, 2, -2]), actual + np.array([4, 4, -4, -4])) == pytest.approx(0.5)
    assert skill(actual, actual + 1, actual + 1) == 0.0


def test_pesaran_timmermann_by_hand() -> None:
    """Ten days: actual up on 6, called up on 5, right on 7 (4 up-up, 3 down-down). P = 0.7, Py = 0.6, Px = 0.5,
    P* = 0.6 * 0.5 + 0.4 * 0.5 = 0.5; V(P) = 0.5 * 0.5 / 10 = 0.025;
    V(P*) = 0.2^2 * 0.25 / 10 + 0^2 * 0.24 / 10 + 4 * 0.6 * 0.5 * 0.4 * 0.5 / 10^2 = 0.001 + 0 + 0.0024 = 0.0034;
    PT = (0.7 - 0.5) / sqrt(0.025 - 0.0034) = 0.2 / sqrt(0.0216) = 1.36083; one-sided p = 1 - Phi(1.36083) = 0.0868."""
    actual = np.array([1, 1, 1, 1, 1, 1, -1, -1, -1, -1])
    called = np.array([1, 1, 1, 1, -1, -1, 1, -1, -1, -1])
    statistic, p_value = pesaran_timmermann(actual, called)
    assert statistic == pytest.approx(0.2 / math.sqrt(0.0216), rel=1e-12)
    assert p_value == pytest.approx(0.0868, abs=1e-4)
    assert directional_accuracy(actual, called) == pytest.approx(0.7)


@pytest.mark.parametrize("dependence", [0.0, 0.05, 0.2])
def test_pesaran_timmermann_squared_is_the_chi_square_of_independence_for_large_samples(dependence: float) -> None:
    """PT^2 is asymptotically Pearson's chi-square test of independence on the 2 x 2 table of (up, called up)."""
    rng = np.random.default_rng(int(dependence * 100))
    actual = rng.normal(size=20_000)
    called = dependence * actual + rng.normal(size=20_000)
    statistic, _ = pesaran_timmermann(actual, called)
    table = pd.crosstab(actual > 0, called > 0).to_numpy()
    chi2 = chi2_contingency(table, correction=False)[0]
    assert statistic**2 == pytest.approx(chi2, rel=2e-3, abs=2e-3)


def test_degenerate_inputs_give_nan_or_inf_not_exceptions() -> None:
    """An exact reference, a flat training series, or a single day: no ZeroDivisionError, an undefined value."""
    actual = np.array([1.0, 2.0, 3.0])
    assert skill(actual, actual + 1, actual) == -math.inf
    assert mase(actual, actual + 1, naive_scale(np.ones(10))) == math.inf
    assert all(math.isnan(value) for value in diebold_mariano(actual[:1], actual[:1] + 1, actual[:1]))
