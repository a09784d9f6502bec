"""Forecasting: a trained model's predictions and test metrics (:mod:`~jaxlstm.forecasting.predict`), the metrics
and statistical tests against persistence (:mod:`~jaxlstm.forecasting.metrics`), prediction intervals
(:mod:`~jaxlstm.forecasting.intervals`) and their calibration (:mod:`~jaxlstm.forecasting.calibration`), walk-forward
backtests (:mod:`~jaxlstm.forecasting.backtest`) and forecasts past the data (:mod:`~jaxlstm.forecasting.forecast`).
"""

from jaxlstm.forecasting.backtest import Backtest, Fold, folds_digest, make_folds, run_backtest, scores, summarize
from jaxlstm.forecasting.calibration import Calibration, calibrate, conformal_errors, uncalibrated
from jaxlstm.forecasting.forecast import (
    DEFAULT_CALENDAR,
    Forecast,
    Measured,
    forecast_model,
    refit_and_forecast,
    trading_days,
)
from jaxlstm.forecasting.metrics import Metrics, TestResult, diebold_mariano, mase, metrics, pesaran_timmermann, skill
from jaxlstm.forecasting.predict import (
    Evaluation,
    dropout_forecasts,
    evaluate,
    forecast_scaled,
    predict_prices,
    predict_scaled,
)

__all__ = [
    "DEFAULT_CALENDAR",
    "Backtest",
    "Calibration",
    "Evaluation",
    "Fold",
    "Forecast",
    "Measured",
    "Metrics",
    "TestResult",
    "calibrate",
    "conformal_errors",
    "diebold_mariano",
    "dropout_forecasts",
    "evaluate",
    "folds_digest",
    "forecast_model",
    "forecast_scaled",
    "make_folds",
    "mase",
    "metrics",
    "pesaran_timmermann",
    "predict_prices",
    "predict_scaled",
    "refit_and_forecast",
    "run_backtest",
    "scores",
    "skill",
    "summarize",
    "trading_days",
    "uncalibrated",
]
