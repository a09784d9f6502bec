"""The interval and distribution scores against the `scoringrules` package (Zanetta & Allen) and hand arithmetic."""

import numpy as np
import pytest
import scoringrules

from jaxlstm.forecasting.metrics import coverage, crps_ensemble, crps_normal, interval_score, pinball_loss


@pytest.fixture(scope="module")
def days() -> tuple[np.ndarray, np.ndarray]:
    """Actual prices and a 7-member ensemble forecast of them, 50 days."""
    rng = np.random.default_rng(11)
    actual = 100 + np.cumsum(rng.normal(0, 1, 50))
    members = actual[:, None] + rng.normal(0.3, 1.5, (50, 7))
    return actual, members


def test_crps_of_an_ensemble_is_scoringrules_energy_form(days) -> None:
    actual, members = days
    reference = scoringrules.crps_ensemble(actual, members, estimator="nrg")
    np.testing.assert_allclose(crps_ensemble(actual, members), reference, rtol=1e-12)
    np.testing.assert_allclose(crps_ensemble(actual, members[:, :1]), np.abs(actual - members[:, 0]), rtol=1e-12)


def test_crps_of_a_normal_forecast_is_scoringrules_closed_form(days) -> None:
    actual, members = days
    mean, std = members.mean(axis=1), members.std(axis=1)
    np.testing.assert_allclose(crps_normal(actual, mean, std), scoringrules.crps_normal(actual, mean, std), rtol=1e-12)


@pytest.mark.parametrize("level", [0.025, 0.1, 0.5, 0.9, 0.975])
def test_pinball_loss_is_scoringrules_quantile_score(days, level: float) -> None:
    actual, members = days
    quantile = np.quantile(members, level, axis=1)
    reference = np.mean(scoringrules.quantile_score(actual, quantile, level))
    assert pinball_loss(actual, quantile, level) == pytest.approx(reference, rel=1e-12)


@pytest.mark.parametrize("miss_rate", [0.05, 0.2])
def test_interval_score_and_coverage(days, miss_rate: float) -> None:
    actual, members = days
    lower, upper = np.quantile(members, [miss_rate / 2, 1 - miss_rate / 2], axis=1)
    reference = np.mean(scoringrules.interval_score(actual, lower, upper, miss_rate))
    assert interval_score(actual, lower, upper, miss_rate) == pytest.approx(reference, rel=1e-12)
    inside = sum(low <= y <= high for y, low, high in zip(actual, lower, upper, strict=True))
    assert coverage(actual, lower, upper) == inside / len(actual)


def test_interval_score_by_hand() -> None:
    """Width 2; the second day misses by 1 below, the third by 3 above; 80% intervals (2 / 0.2 = 10 per unit)."""
    actual, lower, upper = np.array([5.0, 2.0, 10.0]), np.array([4.0, 3.0, 5.0]), np.array([6.0, 5.0, 7.0])
    assert interval_score(actual, lower, upper, 0.2) == pytest.approx((2 + 2 + 10 + 2 + 30) / 3)
    assert coverage(actual, lower, upper) == pytest.approx(1 / 3)
