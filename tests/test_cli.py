"""The command line: a short `train` writes a complete run that `predict` reloads; user errors exit 2 cleanly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from jaxlstm.commands import main
from jaxlstm.training.runtime import CACHE_ENV

FAST = ["--arch", "vanilla", "--units", "8", "--epochs", "2", "--quiet"]
RUN_FILES = {
    "config.json",
    "params.msgpack",
    "scalers.json",
    "metrics.json",
    "predictions.csv",
    "loss.png",
    "predictions.png",
    "checkpoints",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "demo"
    assert main(["train", *FAST, "--out", str(out)]) == 0
    return out


def test_train_writes_every_file(run_dir: Path) -> None:
    assert {p.name for p in run_dir.iterdir()} == RUN_FILES
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["train_windows"] == 112 and metrics["test_windows"] == 58
    assert len(metrics["loss"]) == 2
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["epoch-000002.ckpt"]  # the end of training
    table = pd.read_csv(run_dir / "predictions.csv")
    naive_rmse = float(np.sqrt(np.mean((table["Open"] - table["naive"]) ** 2)))
    assert metrics["naive"]["rmse"] == pytest.approx(naive_rmse)
    assert (run_dir / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_predict_reproduces_the_runs_predictions(run_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(run_dir), "--out", str(out)]) == 0
    saved = pd.read_csv(run_dir / "predictions.csv").set_index("Date")
    predicted = pd.read_csv(out).set_index("Date")
    np.testing.assert_allclose(predicted.loc[saved.index, "predicted"], saved["predicted"], rtol=1e-5)
    assert pd.isna(predicted["Open"].iloc[-1])  # the last window forecasts the day after the data


def test_existing_run_is_not_overwritten(run_dir: Path, capsys) -> None:
    before = (run_dir / "params.msgpack").read_bytes()
    assert main(["train", *FAST, "--out", str(run_dir)]) == 2
    assert "already holds files" in capsys.readouterr().err
    assert (run_dir / "params.msgpack").read_bytes() == before


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--epochs", "0"], "--epochs 0: must be a whole number >= 1"),
        (["--csv", "no/such/file.csv"], "no/such/file.csv"),
        (["--features", "Open,Nope"], "Nope"),
        (["--window", "500"], "window"),
        (["--last-rows", "0"], "--last-rows"),
    ],
)
def test_user_errors_exit_2_and_write_nothing(tmp_path: Path, capsys, arguments: list[str], message: str) -> None:
    out = tmp_path / "run"
    assert main(["train", *FAST, "--out", str(out), *arguments]) == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxlstm: error: ") and message in err and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.subprocess
def test_console_script_prints_no_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "jaxlstm", "predict", "--run", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "is not a complete jaxlstm run" in result.stderr


@pytest.mark.subprocess
def test_compilation_cache_is_filled_then_read_and_changes_no_result(tmp_path: Path) -> None:
    """Two processes share a cache folder: the first fills it; the second finds every program there (it adds no
    entry, as it would for a program it had to compile) and predicts the same bits."""
    environment = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    entries = {}
    for run in ("cold", "warm"):
        subprocess.run(
            [sys.executable, "-m", "jaxlstm", "train", *FAST, "--out", str(tmp_path / run)],
            env=environment,
            check=True,
            capture_output=True,
        )
        entries[run] = sorted(path.name for path in (tmp_path / "cache").iterdir())
    assert entries["cold"] and entries["warm"] == entries["cold"]
    cold, warm = ((tmp_path / run / "predictions.csv").read_bytes() for run in ("cold", "warm"))
    assert cold == warm


@pytest.fixture
def without_a_cache():
    """This process without tests/conftest.py's compilation cache, as a fresh process starts."""
    directory = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", directory)


@pytest.mark.usefixtures("without_a_cache")
def test_unusable_cache_folder_warns_and_compiles_without_it(tmp_path: Path, capsys, monkeypatch) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    assert main(["train", *FAST, "--out", str(tmp_path / "run")]) == 0
    warning = capsys.readouterr().err.strip().splitlines()
    assert len(warning) == 1 and warning[0].startswith("jaxlstm: warning: compiling without a cache: cannot create")
    assert f"a-file/cache (Not a directory); set {CACHE_ENV} to a writable folder" in warning[0]
    assert (tmp_path / "run" / "config.json").exists() and not jax.config.jax_compilation_cache_dir


@pytest.mark.slow
def test_a_bfloat16_run_records_its_precision_and_predict_reproduces_it(tmp_path: Path) -> None:
    """--precision bfloat16: float32 weights in the run, the precision in config.json, and predict rebuilds the same
    mixed-precision model (its forecasts equal the run's own)."""
    out = tmp_path / "bf16"
    assert main(["train", *FAST, "--precision", "bfloat16", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model"]["precision"] == "bfloat16"
    predictions = tmp_path / "predictions.csv"
    assert main(["predict", "--run", str(out), "--out", str(predictions)]) == 0
    saved = pd.read_csv(out / "predictions.csv").set_index("Date")
    predicted = pd.read_csv(predictions).set_index("Date")
    np.testing.assert_allclose(predicted.loc[saved.index, "predicted"], saved["predicted"], rtol=1e-5)
