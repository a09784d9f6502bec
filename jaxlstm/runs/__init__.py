"""Runs: a run directory's files and states (:mod:`~jaxlstm.runs.directory`), its whole life while a command
trains into it (:mod:`~jaxlstm.runs.lifecycle`), train runs and backtest runs trained, written and read back
(:mod:`~jaxlstm.runs.train`, :mod:`~jaxlstm.runs.backtest`), forecasts from them (:mod:`~jaxlstm.runs.forecast`),
and every figure (:mod:`~jaxlstm.runs.plots`).
"""

from jaxlstm.runs.backtest import (
    BacktestRun,
    backtest_run,
    load_backtest,
    read_backtest,
    resume_backtest_run,
    save_backtest,
)
from jaxlstm.runs.directory import (
    BACKTEST_CHECKPOINTS_DIR,
    BACKTEST_FILES,
    CALIBRATION_FILES,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    DROPOUT_FILE,
    FORECAST_DIR,
    PARAMS_FILE,
    RUN_FILES,
    SCALERS_FILE,
    check_destination,
    checkpoints_dir,
    clear_run,
    interrupted_command,
    read_config,
    run_state,
)
from jaxlstm.runs.forecast import forecast_refit, forecast_run, save_forecast
from jaxlstm.runs.lifecycle import RunDirectory
from jaxlstm.runs.train import (
    Run,
    TrainedRun,
    load_run,
    resume_train_run,
    save_model,
    save_run,
    save_trained_run,
    scalers_of,
    train_run,
)

__all__ = [
    "BACKTEST_CHECKPOINTS_DIR",
    "BACKTEST_FILES",
    "CALIBRATION_FILES",
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "DROPOUT_FILE",
    "FORECAST_DIR",
    "PARAMS_FILE",
    "RUN_FILES",
    "SCALERS_FILE",
    "BacktestRun",
    "Run",
    "RunDirectory",
    "TrainedRun",
    "backtest_run",
    "check_destination",
    "checkpoints_dir",
    "clear_run",
    "forecast_refit",
    "forecast_run",
    "interrupted_command",
    "load_backtest",
    "load_run",
    "read_backtest",
    "read_config",
    "resume_backtest_run",
    "resume_train_run",
    "run_state",
    "save_backtest",
    "save_forecast",
    "save_model",
    "save_run",
    "save_trained_run",
    "scalers_of",
    "train_run",
]
