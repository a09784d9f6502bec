"""The bad-input catalogue of docs/errors.md, row by row, through the command line; determinism and properties.

Every catalogue row runs ``jaxlstm.commands.main`` in-process on a small CSV (40 rows, window 5, 1-epoch vanilla model)
and checks: exit status 2, one ``jaxlstm: error: ...`` line on stderr holding the expected words, no traceback, and
not one byte changed in the test's directory (so the output directory is left absent, or exactly as it was).
"""

import datetime
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlstm.commands import main
from jaxlstm.config import TrainConfig, preset
from jaxlstm.nn.models import Forecaster
from jaxlstm.runs import BACKTEST_FILES, RUN_FILES, save_model
from jaxlstm.training.checkpoint import CheckpointWriter, load_checkpoint, save_checkpoint
from tests.conftest import ROOT

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume"
N_ROWS = 40
TINY = ["--arch", "vanilla", "--units", "4", "--epochs", "1", "--window", "5", "--split", "30", "--quiet"]
DOCS = ROOT / "docs" / "errors.md"
DOCUMENTED_ELSEWHERE = {
    "argparse",
    "run-locked",
    "config-unknown-key",
    "config-newer-version",
    "unsorted-dates",
    "training-diverges",
    "resume-damaged-newest",
    "resume-other-command",
    "backtest-resume-csv-changed",
    "fetch-without-yfinance",
    "fetch-no-rows",
    "fetch-download-failed",
    "fetch-fails-checks",
    "fetch-out-exists",
    "forecast-days-beyond-horizon",
    "forecast-unknown-calendar",
    "forecast-calendar-too-short",
    "forecast-levels-not-measured",
    "forecast-backtest-calibrates-itself",
    "forecast-other-settings",
    "forecast-not-a-backtest",
    "forecast-too-few-errors",
    "forecast-converted-run",
    "forecast-target-not-positive",
    "forecast-validation-split",
    "convert-horizon-mismatch",
    "interrupted",
    "cache-unusable",
    "processes-incomplete",
    "process-id-out-of-range",
    "lab-unknown-cell",
    "lab-bad-lags",
    "lab-fixed-lengths",
    "lab-run-not-a-model",
    "gates-html-conv",
}
"""Rows of docs/errors.md tested by their own tests below (or in test_checkpoint.py, test_cli.py, test_fetch.py,
test_forecast.py, test_lab.py and test_introspect.py), not by the catalogue loop."""


def yahoo_rows(n: int = N_ROWS, seed: int = 0, start: str = "2020-01-01", volatility: float = 0.02) -> list[str]:
    """``n`` data lines of a Yahoo CSV: a geometric random walk on business days, 6 decimals as Yahoo writes them."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=n)
    close = 100.0 * np.exp(np.cumsum(volatility * rng.standard_normal(n)))
    open_ = close * np.exp(0.005 * rng.standard_normal(n))
    high, low = np.maximum(open_, close) * 1.01, np.minimum(open_, close) * 0.99
    volume = rng.integers(1_000, 100_000, n)
    return [
        f"{d:%Y-%m-%d},{o:.6f},{h:.6f},{lo:.6f},{c:.6f},{c:.6f},{v}"
        for d, o, h, lo, c, v in zip(dates, open_, high, low, close, volume, strict=True)
    ]


def write_csv(directory: Path, rows: list[str] | None = None, header: str = HEADER, name: str = "prices.csv") -> Path:
    path = directory / name
    path.write_text("\n".join([header, *(yahoo_rows() if rows is None else rows)]) + "\n")
    return path


def edited(line: int, field: int, value: str) -> list[str]:
    """The default rows with field ``field`` of data line ``line`` (1-based, the header is line 1) replaced."""
    rows = yahoo_rows()
    fields = rows[line - 2].split(",")
    fields[field] = value
    rows[line - 2] = ",".join(fields)
    return rows


def train(tmp: Path, csv: Path | None = None, *extra: str) -> list[str]:
    """``jaxlstm train`` on ``csv`` (default: a valid one) into ``tmp/out``; ``extra`` overrides the defaults."""
    csv = write_csv(tmp) if csv is None else csv
    return ["train", "--csv", str(csv), *TINY, "--out", str(tmp / "out"), *extra]


def predict(tmp: Path, run: Path, csv: Path | None = None, *extra: str) -> list[str]:
    csv = write_csv(tmp) if csv is None else csv
    return ["predict", "--run", str(run), "--csv", str(csv), "--out", str(tmp / "predictions.csv"), *extra]


def copy_run(run: Path, tmp: Path, name: str = "run", *, interrupted: bool = False) -> Path:
    """A copy of the fixture's finished run; ``interrupted`` deletes its final files (checkpoints stay)."""
    copy = tmp / name
    shutil.copytree(run, copy)
    if interrupted:
        for file in RUN_FILES:
            (copy / file).unlink()
    return copy


def _predict_over_a_file(tmp: Path, run: Path) -> list[str]:
    """``predict --out`` onto a file that already exists (without ``--overwrite``)."""
    argv = predict(tmp, run)
    (tmp / "predictions.csv").write_text("mine\n")
    return argv


def fake_run(tmp: Path, *names: str) -> Path:
    out = tmp / "out"
    for name in names:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("x")
    return out


def corrupt_checkpoints(run: Path) -> Path:
    for path in (run / "checkpoints").iterdir():
        path.write_bytes(path.read_bytes()[:100])
    return run


def change_devices(run: Path) -> Path:
    """Rewrites the newest checkpoint as if the run had split its batches over 64 devices."""
    path = max((run / "checkpoints").iterdir())
    checkpoint = load_checkpoint(path)
    config = checkpoint.meta["config"]
    model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
    state = checkpoint.train_state(model, TrainConfig(**config["train"]))
    state.history.devices = 64
    config["train"]["devices"] = 64
    save_checkpoint(path, state, checkpoint.meta)
    return run


BACKTEST = ["--arch", "vanilla", "--units", "4", "--epochs", "1", "--window", "5", "--seeds", "1", "--quiet"]


def current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def backtest(tmp: Path, *extra: str) -> list[str]:
    """``jaxlstm backtest`` on a valid 40-row CSV into ``tmp/out``: 2 folds of 5 days on 20 rows each by default."""
    folds = ["--folds", "2", "--test-days", "5", "--train-days", "20"]
    return ["backtest", "--csv", str(write_csv(tmp)), *BACKTEST, *folds, "--out", str(tmp / "out"), *extra]


def replace_params(run: Path, arch: str, units: int) -> Path:
    save_model(run, Forecaster(preset(arch, units=units), rngs=nnx.Rngs(0)))
    return run


@dataclass(frozen=True)
class Case:
    """One catalogue row: ``make(tmp, run)`` builds the files and returns the argv; ``message`` must be printed."""

    id: str
    make: Callable[[Path, Path], list[str]]
    message: str


def _all_null_volume() -> list[str]:
    return [",".join([*row.split(",")[:-1], "null"]) for row in yahoo_rows()]


def _constant_open() -> list[str]:
    return [",".join([row.split(",")[0], "10.0", *row.split(",")[2:]]) for row in yahoo_rows()]


def _out_under_a_file(tmp: Path, run: Path) -> list[str]:
    (tmp / "afile").write_text("x")
    return train(tmp, None, "--out", str(tmp / "afile" / "run"))


def _bytes_file(content: bytes) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        (tmp / "x.csv").write_bytes(content)
        return train(tmp, tmp / "x.csv")

    return make


def _existing_out(*names: str, extra: tuple[str, ...] = ()) -> Callable[[Path, Path], list[str]]:
    def make(tmp: Path, run: Path) -> list[str]:
        fake_run(tmp, *names)
        return train(tmp, None, *extra)

    return make


def _out_is_a_file(tmp: Path, run: Path) -> list[str]:
    (tmp / "out").write_text("x")
    return train(tmp, None)


def _resume_after_csv_changed(tmp: Path, run: Path) -> list[str]:
    """The run's checkpoints point to a CSV whose prices differ from the ones it was trained on."""
    copy = copy_run(run, tmp, interrupted=True)
    changed = write_csv(tmp, yahoo_rows(seed=1), name="changed.csv")
    for path in (copy / "checkpoints").iterdir():
        checkpoint = load_checkpoint(path)
        checkpoint.meta["config"]["data"]["csv"] = str(changed)
        model = Forecaster(preset("vanilla", units=4), rngs=nnx.Rngs(0))
        state = checkpoint.train_state(model, TrainConfig(**checkpoint.meta["config"]["train"]))
        save_checkpoint(path, state, checkpoint.meta)
    return ["train", "--resume", str(copy)]


def _predict_corrupt_weights(tmp: Path, run: Path) -> list[str]:
    copy = copy_run(run, tmp)
    (copy / "params.msgpack").write_bytes(b"\x93junk")
    return predict(tmp, copy)


def _resume_without_checkpoints(tmp: Path, run: Path) -> list[str]:
    (tmp / "empty").mkdir()
    return ["train", "--resume", str(tmp / "empty")]


CATALOGUE = [
    # --- the CSV file --------------------------------------------------------------------------------
    Case(
        "missing-file",
        lambda tmp, run: train(tmp, tmp / "nope.csv"),
        "nope.csv: file not found; pass the path of a CSV file (a Yahoo daily CSV: `jaxlstm fetch TICKER",
    ),
    Case("directory-not-file", lambda tmp, run: train(tmp, tmp), "is a directory, not a file"),
    Case("empty-file", lambda tmp, run: train(tmp, write_csv(tmp, [], header="")), "file is empty"),
    Case("header-only", lambda tmp, run: train(tmp, write_csv(tmp, [])), "header but no data rows"),
    Case("binary-file", _bytes_file(b"PK\x03\x04\x00\x00"), "binary file (NUL bytes), not a CSV"),
    Case("not-utf8", _bytes_file(b"Date,Open\n2020-01-01,\xff"), "not UTF-8 text (byte 21)"),
    Case(
        "ragged-rows",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(5, 6, "1,2,3"))),
        "not a valid CSV",
    ),
    Case(
        "no-date-column",
        lambda tmp, run: train(
            tmp, write_csv(tmp, [r.replace(",", ";") for r in yahoo_rows()], HEADER.replace(",", ";"))
        ),
        "no 'Date' column",
    ),
    Case(
        "duplicate-column",
        lambda tmp, run: train(tmp, write_csv(tmp, header=HEADER.replace("High", "Open"))),
        "column name 'Open' appears more than once",
    ),
    Case("missing-feature-column", lambda tmp, run: train(tmp, None, "--features", "Open,Nope"), "column 'Nope'"),
    Case("missing-target-column", lambda tmp, run: train(tmp, None, "--target", "Nope"), "column 'Nope' not found"),
    Case(
        "non-numeric-value",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(7, 1, "12x5"))),
        "line 7 (2020-01-08): Open '12x5' is not a number",
    ),
    Case(
        "text-column-as-feature",
        lambda tmp, run: train(
            tmp, write_csv(tmp, [r + ",abc" for r in yahoo_rows()], HEADER + ",Note"), "--features", "Note"
        ),
        "column 'Note' is not numeric",
    ),
    Case(
        "yahoo-null-rows",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(9, 1, "null"))),
        "1 row(s) with missing values (null/empty) on 2020-01-10 (first on line 9); pass --missing drop",
    ),
    Case(
        "nan-value",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(9, 4, "NaN"))),
        "missing values (null/empty) on 2020-01-10",
    ),
    Case(
        "ffill-leading-null",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(2, 1, "null")), "--missing", "ffill"),
        "line 2 (2020-01-01): Open is missing and no earlier row can fill it",
    ),
    Case(
        "drop-leaves-nothing",
        lambda tmp, run: train(tmp, write_csv(tmp, _all_null_volume()), "--missing", "drop"),
        "every row has a missing value",
    ),
    Case(
        "infinite-value",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(6, 2, "inf"))),
        "line 6 (2020-01-07): High is inf; values must be finite",
    ),
    Case(
        "unparseable-date",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(4, 0, "01/03/2020"))),
        "line 4: Date '01/03/2020' is not a date",
    ),
    Case(
        "duplicate-dates",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(4, 0, "2020-01-01"))),
        "duplicate dates 2020-01-01 (first on lines 2, 4)",
    ),
    Case(
        "weekly-rows",
        lambda tmp, run: train(
            tmp,
            write_csv(
                tmp,
                [f"{day:%Y-%m-%d},10,11,9,10.5,10.5,100" for day in pd.date_range("2020-01-06", periods=40, freq="7D")],
            ),
        ),
        "prices.csv: weekly rows: median 7 days between dates (2020-01-06..2020-10-05, 40 rows); jaxlstm models daily "
        "bars: pass daily rows (one per trading day)",
    ),
    Case(
        "zero-price",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(8, 4, "0"))),
        "line 8 (2020-01-09): Close is 0; prices must be > 0",
    ),
    Case(
        "negative-price",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(8, 1, "-3.5"))),
        "Open is -3.5; prices must be > 0",
    ),
    Case(
        "negative-volume",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(8, 6, "-100"))),
        "Volume is -100; volumes cannot be negative",
    ),
    Case(
        "constant-series",
        lambda tmp, run: train(tmp, write_csv(tmp, _constant_open())),
        "Open is constant (10) over the 30 training rows, so it cannot be min-max scaled",
    ),
    # --- rows, split and dates ---------------------------------------------------------------------------
    Case(
        "too-few-training-rows",
        lambda tmp, run: train(tmp, None, "--window", "30"),
        "30 training rows (of 40), but --window 30 needs at least 31",
    ),
    Case(
        "no-test-rows",
        lambda tmp, run: train(tmp, None, "--split", "40"),
        "40 rows and --split 40 leaves no test rows",
    ),
    Case("split-larger-than-data", lambda tmp, run: train(tmp, None, "--split", "500"), "--split 500 leaves no test"),
    Case("split-fraction-out-of-range", lambda tmp, run: train(tmp, None, "--split", "1.5"), "must lie in (0, 1)"),
    Case("split-zero", lambda tmp, run: train(tmp, None, "--split", "0"), "split=0 must be >= 1 training rows"),
    Case(
        "dates-select-nothing",
        lambda tmp, run: train(tmp, None, "--start", "2030-01-01"),
        "no rows from 2030-01-01 to the last row; the data covers 2020-01-01..2020-02-25",
    ),
    Case("bad-start-date", lambda tmp, run: train(tmp, None, "--start", "2020-13-45"), "--start '2020-13-45' is not"),
    Case(
        "start-after-end",
        lambda tmp, run: train(tmp, None, "--start", "2020-02-01", "--end", "2020-01-01"),
        "--start 2020-02-01 is after --end 2020-01-01",
    ),
    Case(
        "too-few-rows-after-filter",
        lambda tmp, run: train(tmp, None, "--end", "2020-01-20"),
        "leaves no test rows",
    ),
    Case("last-rows-zero", lambda tmp, run: train(tmp, None, "--last-rows", "0"), "--last-rows 0: must be"),
    # --- numeric options ---------------------------------------------------------------------------------
    Case("window-zero", lambda tmp, run: train(tmp, None, "--window", "0"), "--window 0: must be a whole number >= 1"),
    Case("window-negative", lambda tmp, run: train(tmp, None, "--window", "-3"), "--window -3: must be"),
    Case("batch-size-zero", lambda tmp, run: train(tmp, None, "--batch-size", "0"), "--batch-size 0: must be"),
    Case("epochs-zero", lambda tmp, run: train(tmp, None, "--epochs", "0"), "--epochs 0: must be a whole number >= 1"),
    Case("epochs-negative", lambda tmp, run: train(tmp, None, "--epochs", "-5"), "--epochs -5: must be"),
    Case("units-zero", lambda tmp, run: train(tmp, None, "--units", "0"), "--units 0: must be a whole number >= 1"),
    Case(
        "layers-zero",
        lambda tmp, run: train(tmp, None, "--arch", "stacked", "--layers", "0"),
        "--layers 0: must be a whole number >= 1",
    ),
    Case(
        "vanilla-with-layers",
        lambda tmp, run: train(tmp, None, "--layers", "2"),
        "the vanilla architecture has one layer, got layers=2; use --arch stacked",
    ),
    Case("dropout-one", lambda tmp, run: train(tmp, None, "--dropout", "1"), "--dropout 1.0: must be at least 0"),
    Case("learning-rate-zero", lambda tmp, run: train(tmp, None, "--lr", "0"), "--lr 0.0: must be a finite number > 0"),
    Case("learning-rate-nan", lambda tmp, run: train(tmp, None, "--lr", "nan"), "--lr nan: must be a finite number"),
    Case("adam-epsilon-negative", lambda tmp, run: train(tmp, None, "--adam-epsilon", "-1"), "--adam-epsilon -1.0"),
    Case("clip-norm-zero", lambda tmp, run: train(tmp, None, "--clip-norm", "0"), "--clip-norm 0.0: must be"),
    Case(
        "validation-split-out-of-range",
        lambda tmp, run: train(tmp, None, "--validation-split", "1.5"),
        "--validation-split 1.5: must be at least 0 and below 1",
    ),
    Case(
        "validation-split-too-small",
        lambda tmp, run: train(tmp, None, "--validation-split", "0.01"),
        "25 windows cannot be split with validation_split=0.01",
    ),
    Case("patience-without-validation", lambda tmp, run: train(tmp, None, "--patience", "3"), "patience needs"),
    Case("seed-negative", lambda tmp, run: train(tmp, None, "--seed", "-1"), "--seed -1: must be a whole number"),
    Case("repeated-feature", lambda tmp, run: train(tmp, None, "--features", "Open,Open"), "repeats a column"),
    Case("empty-features", lambda tmp, run: train(tmp, None, "--features", ","), "--features names no column"),
    Case("checkpoint-every-zero", lambda tmp, run: train(tmp, None, "--checkpoint-every", "0"), "--checkpoint-every 0"),
    Case(
        "value-beyond-float32",
        lambda tmp, run: train(tmp, write_csv(tmp, edited(12, 1, "1e308"))),
        "prices.csv: line 12 (2020-01-15): Open is 1e+308, beyond the 3.4e+38 that the model's float32 arithmetic "
        "can hold; fix or delete that row",
    ),
    Case(
        "model-too-large-for-memory",
        lambda tmp, run: train(tmp, None, "--units", "200000"),
        "training this model needs about ",
    ),
    # --- backtest ----------------------------------------------------------------------------------------
    Case(
        "backtest-too-few-rows",
        lambda tmp, run: backtest(tmp, "--folds", "10", "--test-days", "10"),
        "prices.csv: 10 folds of 10 test days need more than 100 rows, the data has 40; use fewer --folds",
    ),
    Case(
        "backtest-train-days-before-the-data",
        lambda tmp, run: backtest(tmp, "--train-days", "35"),
        "prices.csv: fold 1 (first test day 2020-02-12) needs 35 training rows before it, but the data has 30",
    ),
    Case(
        "backtest-first-cutoff-too-late",
        lambda tmp, run: backtest(tmp, "--first-cutoff", "2020-02-20"),
        "2 folds of 5 test days from 2020-02-20 need 10 rows from there, but the data ends 4 rows later",
    ),
    Case(
        "backtest-window-longer-than-training",
        lambda tmp, run: backtest(tmp, "--train-days", "5"),
        "fold 1 (first test day 2020-02-12) trains on 5 rows, but --window 5 needs at least 6",
    ),
    Case(
        "backtest-expanding-with-train-days",
        lambda tmp, run: backtest(tmp, "--expanding"),
        "--expanding trains each fold on every row before its cutoff; drop --train-days",
    ),
    Case(
        "backtest-zero-seeds", lambda tmp, run: backtest(tmp, "--seeds", "0"), "--seeds 0: must be a whole number >= 1"
    ),
    Case(
        "backtest-missing-target-column",
        lambda tmp, run: backtest(tmp, "--target", "Nope"),
        "prices.csv: column 'Nope' not found (columns: Open, High, Low, Close, Adj Close, Volume)",
    ),
    Case(
        "backtest-log-return-of-zero",
        lambda tmp, run: [
            *backtest(tmp, "--features", "Open,Volume", "--target-transform", "log-return"),
            "--csv",
            str(write_csv(tmp, edited(12, 6, "0"))),
        ],
        "prices.csv: Volume is 0 on 2020-01-15, which has no log-return; use --target-transform diff, or leave "
        "Volume out of --features",
    ),
    Case(
        "backtest-horizon-longer-than-test-days",
        lambda tmp, run: backtest(tmp, "--horizon", "6"),
        "--horizon 6 is longer than --test-days 5: a fold forecasts its own test days only; use --test-days 6 or "
        "more, or a shorter --horizon",
    ),
    Case(
        "backtest-levels-outside-zero-and-one",
        lambda tmp, run: backtest(tmp, "--levels", "0.8,1.5"),
        "--levels 0.8,1.5: each level must lie strictly between 0 and 1, e.g. --levels 0.8,0.95",
    ),
    Case(
        "backtest-calibration-window-too-short",
        lambda tmp, run: backtest(tmp, "--calibration-window", "5"),
        "--calibration-window 5: conformal bands at 95% need at least 19 errors; use --calibration-window 19 or "
        "more, or lower --levels",
    ),
    Case(
        "backtest-mc-dropout-without-dropout",
        lambda tmp, run: backtest(tmp, "--mc-dropout", "20", "--dropout", "0"),
        "--mc-dropout draws the models' dropout masks, but --dropout is 0; pass --dropout 0.2",
    ),
    # --- horizons ------------------------------------------------------------------------------------------
    Case(
        "horizon-longer-than-test-rows",
        lambda tmp, run: train(tmp, None, "--horizon", "11"),
        "prices.csv: --horizon 11 is longer than the 10 test days; use a smaller --horizon or --split",
    ),
    Case(
        "horizon-longer-than-training",
        lambda tmp, run: train(tmp, None, "--horizon", "8", "--window", "25"),
        "prices.csv: 30 training rows (of 40), but --window 25 and --horizon 8 need at least 33; use an earlier "
        "--start, a larger --split or a smaller --window",
    ),
    Case(
        "recursive-with-other-features",
        lambda tmp, run: train(tmp, None, "--strategy", "recursive", "--features", "Open,Volume"),
        "--strategy recursive feeds each forecast back as the next day's Open, but cannot forecast Volume; use "
        "--strategy direct, or --features Open",
    ),
    # --- the output directory ----------------------------------------------------------------------------
    Case(
        "out-holds-a-finished-run",
        _existing_out(*RUN_FILES),
        "already holds files of a finished run; choose another --out or pass --overwrite",
    ),
    Case(
        "out-holds-an-interrupted-run",
        _existing_out("checkpoints/epoch-000010.ckpt"),
        "already holds files of an interrupted run (checkpoint at epoch 10); finish it with `jaxlstm train --resume",
    ),
    Case(
        "out-holds-other-files",
        _existing_out("notes.txt", extra=("--overwrite",)),
        "holds files that are not a jaxlstm run (notes.txt); choose another --out",
    ),
    Case("out-is-a-file", _out_is_a_file, "exists and is not a directory"),
    Case("out-under-a-file", _out_under_a_file, "afile is a file, not a directory"),
    # --- resume ------------------------------------------------------------------------------------------
    Case(
        "resume-with-settings",
        lambda tmp, run: ["train", "--resume", str(copy_run(run, tmp, interrupted=True)), "--units", "8"],
        "--resume continues with the settings saved in the run; drop --units",
    ),
    Case("resume-missing", lambda tmp, run: ["train", "--resume", str(tmp / "nope")], "no such run directory"),
    Case(
        "resume-a-file", lambda tmp, run: ["train", "--resume", str(write_csv(tmp))], "not a directory; pass the --out"
    ),
    Case(
        "resume-finished-run",
        lambda tmp, run: ["train", "--resume", str(copy_run(run, tmp))],
        "the `jaxlstm train` run is complete, nothing to resume; use `jaxlstm predict --run",
    ),
    Case(
        "resume-finished-run-as-backtest",
        lambda tmp, run: ["backtest", "--resume", str(copy_run(run, tmp))],
        "the `jaxlstm train` run is complete, nothing to resume; use `jaxlstm predict --run",
    ),
    Case("resume-without-checkpoints", _resume_without_checkpoints, "no checkpoints to resume from"),
    Case(
        "resume-damaged-checkpoints",
        lambda tmp, run: ["train", "--resume", str(corrupt_checkpoints(copy_run(run, tmp, interrupted=True)))],
        "all 2 checkpoint(s) are damaged (newest: ",
    ),
    Case("resume-csv-changed", _resume_after_csv_changed, "changed.csv changed since the run started"),
    Case(
        "resume-other-device-count",
        lambda tmp, run: ["train", "--resume", str(change_devices(copy_run(run, tmp, interrupted=True)))],
        "split over 64 device(s), but JAX sees",
    ),
    # --- predict -----------------------------------------------------------------------------------------
    Case("predict-missing-run", lambda tmp, run: predict(tmp, tmp / "nope"), "no such directory"),
    Case(
        "predict-interrupted-run",
        lambda tmp, run: predict(tmp, copy_run(run, tmp, interrupted=True)),
        "is an interrupted run (checkpoint at epoch 2) with no final weights yet; finish it with",
    ),
    Case(
        "predict-other-architecture",
        lambda tmp, run: predict(tmp, replace_params(copy_run(run, tmp), "stacked", 4)),
        "params.msgpack does not match the model in its config.json",
    ),
    Case(
        "predict-other-units",
        lambda tmp, run: predict(tmp, replace_params(copy_run(run, tmp), "vanilla", 8)),
        "params.msgpack holds weights of other shapes than its config.json describes",
    ),
    Case("predict-corrupt-weights", _predict_corrupt_weights, "run/params.msgpack is corrupt ("),
    Case(
        "predict-csv-lacks-features",
        lambda tmp, run: predict(tmp, run, write_csv(tmp, [r.split(",", 2)[0] + ",1" for r in yahoo_rows()], "Date,X")),
        "no column 'Open', but the run",
    ),
    Case(
        "predict-too-few-rows",
        lambda tmp, run: predict(tmp, run, write_csv(tmp, yahoo_rows(4))),
        "4 rows, but predicting 'Open' from a 5-day window needs at least 5",
    ),
    Case(
        "predict-null-rows",
        lambda tmp, run: predict(tmp, run, write_csv(tmp, edited(9, 1, "null"))),
        "row(s) with missing values",
    ),
    Case(
        "predict-out-directory-missing",
        lambda tmp, run: [*predict(tmp, run)[:-1], str(tmp / "no" / "p.csv")],
        "directory " + "{tmp}/no does not exist",
    ),
    Case(
        "predict-out-exists",
        lambda tmp, run: _predict_over_a_file(tmp, run),
        "predictions.csv already exists; choose another --out or pass --overwrite",
    ),
    Case(
        "dates-without-csv",
        lambda tmp, run: ["predict", "--run", str(run), "--start", "2020-01-01"],
        "--start/--end choose rows of --csv; without --csv the run's own rows are used (pass --csv ",
    ),
]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run on the 40-row CSV, with checkpoints at epochs 1 and 2."""
    tmp = tmp_path_factory.mktemp("tiny")
    argv = [*train(tmp, write_csv(tmp), "--epochs", "2", "--checkpoint-every", "1")]
    argv[argv.index("--out") + 1] = str(tmp / "run")
    assert main(argv) == 0
    return tmp / "run"


def snapshot(directory: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(directory)): None if path.is_dir() else path.read_bytes()
        for path in sorted(directory.rglob("*"))
    }


@pytest.mark.parametrize("case", CATALOGUE, ids=[case.id for case in CATALOGUE])
def test_catalogue(case: Case, tmp_path: Path, tiny_run: Path, capsys) -> None:
    argv = case.make(tmp_path, tiny_run)
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err.startswith("jaxlstm: error: ") and err.count("\n") == 1, err
    assert case.message.replace("{tmp}", str(tmp_path)) in err
    assert "Traceback" not in err and out == ""
    assert snapshot(tmp_path) == before  # nothing written, nothing deleted


def test_every_catalogue_row_is_documented() -> None:
    rows = [line for line in DOCS.read_text().splitlines() if line.startswith("| `") and line.count(" | ") >= 4]
    documented = {row.split("|")[1].strip(" `") for row in rows}
    assert documented == {case.id for case in CATALOGUE} | DOCUMENTED_ELSEWHERE


@pytest.mark.parametrize("argv", [["--epochs", "abc"], ["--arch", "nope"], ["--missing", "skip"]])
def test_argparse_errors_exit_2(tmp_path: Path, argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(train(tmp_path, None, *argv))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "jaxlstm train: error: argument" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_training_diverges_keeps_the_last_good_checkpoint(tmp_path: Path, capsys) -> None:
    """A learning rate of 1e30 makes the second epoch's loss infinite (one batch per epoch): the error names the
    epoch and the checkpoint of epoch 1, which stays; no final file is written."""
    assert main(train(tmp_path, None, "--lr", "1e30", "--epochs", "5", "--checkpoint-every", "1")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "the training loss became inf at epoch 2; lower --lr or set --clip-norm" in err
    assert "(last good checkpoint: epoch 1, " in err
    out = tmp_path / "out"
    assert [p.name for p in out.iterdir()] == ["checkpoints"]
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["epoch-000001.ckpt"]
    assert load_checkpoint(out / "checkpoints" / "epoch-000001.ckpt").epoch == 1


def test_unsorted_dates_are_sorted_with_a_one_line_warning(tmp_path: Path, capsys) -> None:
    rows = yahoo_rows()
    rows[3], rows[4] = rows[4], rows[3]
    assert main(train(tmp_path, write_csv(tmp_path, rows))) == 0
    err = capsys.readouterr().err
    assert err.startswith("jaxlstm: warning: ") and "not in ascending order" in err and err.count("\n") == 1
    assert (tmp_path / "out" / "config.json").exists()


@pytest.mark.subprocess
def test_a_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    csv = write_csv(tmp_path, edited(9, 1, "null"))
    result = subprocess.run(
        [sys.executable, "-m", "jaxlstm", *train(tmp_path, csv)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("jaxlstm: error: ") and result.stderr.count("\n") == 1
    assert "--missing drop" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_same_seed_gives_identical_weights_and_metrics(tmp_path: Path, tiny_run: Path) -> None:
    """On CPU, the same seed and data give the same bits: weights and every metric except the timings."""
    argv = train(tmp_path, None, "--epochs", "2", "--checkpoint-every", "1")
    assert main(argv) == 0
    again = tmp_path / "out"
    assert (again / "params.msgpack").read_bytes() == (tiny_run / "params.msgpack").read_bytes()

    def metrics(run: Path) -> dict:
        content = json.loads((run / "metrics.json").read_text())
        return {k: v for k, v in content.items() if not k.endswith("seconds")}

    assert metrics(again) == metrics(tiny_run)
    assert (again / "predictions.csv").read_bytes() == (tiny_run / "predictions.csv").read_bytes()


@st.composite
def random_walk_csvs(draw) -> tuple[list[str], int]:
    n_rows = draw(st.integers(12, 80))
    seed = draw(st.integers(0, 2**32 - 1))
    volatility = draw(st.floats(0.001, 0.2))
    start = draw(st.dates(min_value=datetime.date(1990, 1, 1), max_value=datetime.date(2030, 1, 1)))
    return yahoo_rows(n_rows, seed=seed, start=str(start), volatility=volatility), n_rows


@pytest.mark.slow
@given(random_walk_csvs())
@settings(max_examples=3, deadline=None)
def test_any_valid_random_walk_csv_trains_for_one_epoch(tmp_path_factory, case) -> None:
    rows, n_rows = case
    tmp = tmp_path_factory.mktemp("walk")
    argv = ["train", "--csv", str(write_csv(tmp, rows)), *TINY, "--split", "0.75", "--out", str(tmp / "out")]
    assert main(argv) == 0
    metrics = json.loads((tmp / "out" / "metrics.json").read_text())
    assert metrics["train_windows"] == int(0.75 * n_rows) - 5
    assert np.isfinite(metrics["model"]["rmse"]) and len(metrics["loss"]) == 1


def test_resume_skips_a_damaged_newest_checkpoint(tmp_path: Path, tiny_run: Path, capsys) -> None:
    """The newest checkpoint (epoch 2) is truncated: resume warns, continues from epoch 1, and still ends with the
    same bits as the uninterrupted run."""
    run = copy_run(tiny_run, tmp_path, interrupted=True)
    newest = run / "checkpoints" / "epoch-000002.ckpt"
    newest.write_bytes(newest.read_bytes()[:-50])
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("jaxlstm: warning: skipped a damaged checkpoint: ") and "epoch-000002.ckpt" in err
    assert (run / "params.msgpack").read_bytes() == (tiny_run / "params.msgpack").read_bytes()


def test_ctrl_c_exits_130_and_says_how_to_resume(tmp_path: Path, monkeypatch, capsys) -> None:
    save = CheckpointWriter.__call__

    def save_then_interrupt(self, state):
        save(self, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(CheckpointWriter, "__call__", save_then_interrupt)
    assert main(train(tmp_path, None, "--epochs", "3", "--checkpoint-every", "1")) == 130
    err = capsys.readouterr().err
    assert err == f"jaxlstm: interrupted; finish it with `jaxlstm train --resume {tmp_path / 'out'}` (from epoch 1)\n"
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["checkpoints"]


def test_overwrite_keeps_the_old_run_until_the_new_one_checkpoints(tmp_path: Path, tiny_run: Path, capsys) -> None:
    old = copy_run(tiny_run, tmp_path, "out")
    (old / ".final.tmp-stale").mkdir()  # left by a process killed while writing its final files
    csv = write_csv(tmp_path)
    before = snapshot(tmp_path)
    assert main(train(tmp_path, csv, "--overwrite", "--window", "0")) == 2  # bad input: the old run stays
    assert snapshot(tmp_path) == before
    capsys.readouterr()
    assert main(train(tmp_path, csv, "--overwrite", "--seed", "3")) == 0
    assert sorted(p.name for p in old.iterdir()) == sorted((*RUN_FILES, "checkpoints"))
    assert [p.name for p in (old / "checkpoints").iterdir()] == ["epoch-000001.ckpt"]
    assert json.loads((old / "config.json").read_text())["train"]["seed"] == 3


HOLD_LOCK = """
import sys, time
from pathlib import Path
from jaxlstm.fileio import RunLock
with RunLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


@pytest.mark.processes
def test_a_run_directory_another_process_is_writing_is_refused(tmp_path: Path, tiny_run: Path, capsys) -> None:
    """Docs row `run-locked`: while a real second process holds a run directory's lock, `train` into it (new,
    --overwrite or --resume) exits 2 naming that process, and not one byte of the directory changes."""
    run = copy_run(tiny_run, tmp_path, interrupted=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run)], stdout=subprocess.PIPE, text=True, env={"PYTHONPATH": str(ROOT)}
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(run)
        for extra in ((), ("--overwrite",)):
            argv = train(tmp_path, None, *extra)
            argv[argv.index("--out") + 1] = str(run)
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"is being written by another jaxlstm process (pid {holder.pid}); wait for it" in err, err
        assert main(["train", "--resume", str(run), "--quiet"]) == 2
        assert f"(pid {holder.pid})" in capsys.readouterr().err
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_batch_larger_than_the_data_is_the_whole_data(tmp_path: Path, capsys) -> None:
    """As in Keras, --batch-size 100000 on 25 windows trains on all of them as one batch: the same weights as
    --batch-size 25, not a 100,000-row padded batch."""
    weights = []
    for size in ("100000", "25"):
        argv = train(tmp_path, None, "--batch-size", size, "--epochs", "2")
        argv[argv.index("--out") + 1] = str(tmp_path / size)
        assert main(argv) == 0
        weights.append((tmp_path / size / "params.msgpack").read_bytes())
    assert weights[0] == weights[1]


def test_an_old_unversioned_run_still_predicts(tmp_path: Path, tiny_run: Path) -> None:
    """A run written before config.json had a version (and the fast-path fields) loads as it did."""
    run = copy_run(tiny_run, tmp_path)
    content = json.loads((run / "config.json").read_text())
    del content["version"]
    for name in ("implementation", "hoist_input", "unroll", "convolution"):
        del content["model"][name]
    (run / "config.json").write_text(json.dumps(content))
    assert main(["predict", "--run", str(run), "--out", str(tmp_path / "old.csv")]) == 0
    assert main(["predict", "--run", str(tiny_run), "--out", str(tmp_path / "new.csv")]) == 0
    assert (tmp_path / "old.csv").read_bytes() == (tmp_path / "new.csv").read_bytes()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["model"].update(colour="red"), "config.json: unknown key 'model.colour'; remove it"),
        (lambda c: c.update(version=6), "config.json: configuration version 6; this jaxlstm reads versions 1 to 5"),
    ],
    ids=["config-unknown-key", "config-newer-version"],
)
def test_a_run_config_that_cannot_be_read_names_the_key(tmp_path: Path, tiny_run: Path, capsys, edit, message) -> None:
    run = copy_run(tiny_run, tmp_path)
    content = json.loads((run / "config.json").read_text())
    edit(content)
    (run / "config.json").write_text(json.dumps(content))
    assert main(["predict", "--run", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxlstm: error: ") and err.count("\n") == 1 and message in err


def test_backtest_writes_its_report_and_ends_with_a_verdict(tmp_path: Path, capsys) -> None:
    assert main(backtest(tmp_path, "--seeds", "2")) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.fullmatch(
        r"ensemble RMSE [\d.]+ vs persistence [\d.]+: (better|worse)(, not significantly)? "
        r"\(Diebold-Mariano p = [\d.e+-]+\)",
        lines[-1],
    ), lines[-1]
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} == set(BACKTEST_FILES)
    assert all(path.stat().st_mode & 0o777 == 0o666 & ~current_umask() for path in out.iterdir())

    def strict(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    metrics = json.loads((out / "metrics.json").read_text(), parse_constant=strict)
    assert metrics["verdict"] == lines[-1] and metrics["models"] == 4 and len(metrics["folds"]) == 2
    table = pd.read_csv(out / "predictions.csv")
    assert len(table) == 2 * 5 * 3 and set(table["member"]) == {"seed 0", "seed 1", "ensemble"}
    ensemble = table[table["member"] == "ensemble"]
    rmse = float(np.sqrt(np.mean((ensemble["forecast"] - ensemble["actual"]) ** 2)))
    assert metrics["pooled"]["ensemble"]["rmse"] == pytest.approx(rmse)
    assert main(["predict", "--run", str(out)]) == 2
    assert "is a backtest run: it holds no model to load; see its report.md" in capsys.readouterr().err
    config = json.loads((out / "config.json").read_text())
    assert config["backtest"] == {
        "folds": 2,
        "test_days": 5,
        "train_days": 20,
        "expanding": False,
        "first_cutoff": None,
        "seeds": 2,
        "target_transform": "level",
        "mc_dropout": None,
        "calibration_window": None,
        "levels": [0.8, 0.95],
    }


@pytest.mark.processes
def test_an_interrupted_backtest_resumes_to_the_uninterrupted_result(tmp_path: Path, monkeypatch, capsys) -> None:
    """Ctrl-C right after the epoch-2 checkpoint, `backtest --resume`: the same forecasts, bit for bit, as one run;
    the checkpoints go once the report is written, and other commands and changed data are refused."""
    settings = ("--epochs", "3", "--seeds", "3", "--checkpoint-every", "1")
    assert main([*backtest(tmp_path, *settings)[:-2], "--out", str(tmp_path / "whole")]) == 0
    save = CheckpointWriter.__call__

    def save_then_interrupt(self, state):
        save(self, state)
        if state.epoch == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(CheckpointWriter, "__call__", save_then_interrupt)
        assert main(backtest(tmp_path, *settings)) == 130
    out = tmp_path / "out"
    err = capsys.readouterr().err
    assert err.endswith(f"interrupted; finish it with `jaxlstm backtest --resume {out}` (from epoch 2)\n")
    assert [p.name for p in out.iterdir()] == ["backtest-checkpoints"]

    assert main(["train", "--resume", str(out)]) == 2
    assert "an interrupted `jaxlstm backtest` run; finish it with `jaxlstm backtest" in capsys.readouterr().err
    assert main(backtest(tmp_path, *settings)) == 2
    assert f"finish it with `jaxlstm backtest --resume {out}`" in capsys.readouterr().err
    assert main(["backtest", "--resume", str(out), "--seeds", "2"]) == 2
    assert "--resume continues with the settings saved in the run; drop --seeds" in capsys.readouterr().err
    csv = tmp_path / "prices.csv"
    original = csv.read_text()
    rows = original.splitlines()
    csv.write_text("\n".join([*rows[:-1], rows[-1].replace(rows[-1].split(",")[1], "999", 1)]) + "\n")
    assert main(["backtest", "--resume", str(out)]) == 2
    assert "prices.csv changed since the backtest started" in capsys.readouterr().err
    csv.write_text(original)

    assert main(["backtest", "--resume", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(BACKTEST_FILES)
    whole = tmp_path / "whole"
    assert (out / "predictions.csv").read_bytes() == (whole / "predictions.csv").read_bytes()
    ours, theirs = (json.loads((run / "metrics.json").read_text()) for run in (out, whole))
    assert ours["pooled"] == theirs["pooled"] and ours["folds"] == theirs["folds"]
