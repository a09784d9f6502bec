"""Run directories: a trained model with everything needed to reload it and predict, or to resume its training.

A complete run directory holds ``config.json`` (the :class:`~jaxlstm.config.RunConfig`), ``params.msgpack`` (the
weights, Flax msgpack), ``scalers.json`` (the MinMax scalers fit on the training rows), and for a trained run
``metrics.json``, ``predictions.csv``, the PNG plots and ``checkpoints/`` (the newest training checkpoints, see
:mod:`jaxlstm.training.checkpoint`).

While ``jaxlstm train`` runs, the directory holds only ``checkpoints/`` and the lock of
:class:`~jaxlstm.fileio.RunLock`; a run that fails on bad input, or before its first checkpoint, leaves nothing.
When training ends, each final file lands atomically (:mod:`jaxlstm.fileio`), ``config.json`` last: **a run is
complete exactly when its config.json exists**, and every file in it is whole. A directory with checkpoints but no
``config.json`` is an interrupted run that ``jaxlstm train --resume`` finishes.
"""

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jaxlstm.config import RunConfig
from jaxlstm.errors import RunError
from jaxlstm.fileio import RunLock, fsync_directory, write_atomic

__all__ = [
    "BACKTEST_CHECKPOINTS_DIR",
    "BACKTEST_FILES",
    "CALIBRATION_FILES",
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "DROPOUT_FILE",
    "FORECAST_DIR",
    "GATES_DIR",
    "GRADFLOW_DIR",
    "LAB_FILE",
    "LAB_FILES",
    "PARAMS_FILE",
    "READING_DIRS",
    "RUN_FILES",
    "SCALERS_FILE",
    "check_destination",
    "checkpoints_dir",
    "clear_run",
    "damaged_file",
    "interrupted_command",
    "last_checkpoint_epoch",
    "read_config",
    "read_file",
    "run_state",
    "write_json",
]

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
SCALERS_FILE = "scalers.json"
CHECKPOINTS_DIR = "checkpoints"
BACKTEST_CHECKPOINTS_DIR = "backtest-checkpoints"
"""Where ``jaxlstm backtest`` keeps its checkpoints (all models of all folds in each file): a name of its own, so
that an interrupted run says which command finishes it."""
RUN_FILES = (
    PARAMS_FILE,
    SCALERS_FILE,
    "metrics.json",
    "predictions.csv",
    "loss.png",
    "predictions.png",
    CONFIG_FILE,  # last: its presence marks the run complete
)
"""The files of a complete trained run, in the order they land; ``config.json`` comes last."""
BACKTEST_FILES = ("metrics.json", "predictions.csv", "report.md", "backtest.png", "skill.png", CONFIG_FILE)
"""The files of a complete backtest run (``jaxlstm backtest``), ``config.json`` last."""
LAB_FILE = "lab.json"
"""A lab run's results (``jaxlstm lab``): its settings, every (cell, lag, seed)'s scores and learning curve. It lands
last, so it marks a lab run complete as ``config.json`` marks the others."""
LAB_FILES = (
    "report.md",
    "curves.png",
    "gates.png",
    "gates.html",
    "saturation.png",
    "connectivity.png",
    "gradflow.png",
    "models.msgpack",
    LAB_FILE,
)
"""The files of a complete lab run, ``lab.json`` last (the gate figures only where a seed solved the task)."""
DROPOUT_FILE = "dropout-forecasts.npy"
"""A backtest's Monte Carlo dropout draws (``--mc-dropout``), (folds, seeds, samples, origins, H) float64."""
CALIBRATION_FILES = ("intervals.csv", "pit.png", "coverage.png", DROPOUT_FILE)
"""The files a backtest adds for its prediction intervals (:mod:`jaxlstm.forecasting.calibration`), when it has them."""
FORECAST_DIR = "forecast"
"""Where ``jaxlstm forecast`` writes by default, inside the run it forecasts with."""
GATES_DIR = "gates"
"""Where ``jaxlstm gates`` writes by default, inside the run it traces."""
GRADFLOW_DIR = "gradflow"
"""Where ``jaxlstm gradflow`` writes by default, inside the run it reads."""
READING_DIRS = (FORECAST_DIR, GATES_DIR, GRADFLOW_DIR)
"""What the commands that read a run write inside it by default: part of the run, replaced with it by
``--overwrite``."""


def _is_ours(name: str) -> bool:
    """A run file, the checkpoints, the lock, or a hidden temporary file left by a killed writer."""
    hidden_temporary = name.startswith(".") and ".tmp-" in name
    kept = (CHECKPOINTS_DIR, BACKTEST_CHECKPOINTS_DIR, *READING_DIRS, RunLock.NAME)
    return name in (*RUN_FILES, *BACKTEST_FILES, *CALIBRATION_FILES, *LAB_FILES, *kept) or hidden_temporary


def run_state(directory: Path) -> str:
    """``"absent"``, ``"empty"``, ``"complete"`` (has config.json, or a lab run's lab.json), ``"interrupted"``
    (checkpoints, no config.json), ``"partial"`` (only run files, e.g. a crash while the final files landed) or
    ``"foreign"`` (other files, or not a directory)."""
    if not directory.exists():
        return "absent"
    if not directory.is_dir():
        return "foreign"
    names = {path.name for path in directory.iterdir()} - {RunLock.NAME}
    if not names:
        return "empty"
    if not all(_is_ours(name) for name in names):
        return "foreign"
    if CONFIG_FILE in names or LAB_FILE in names:
        return "complete"
    if CHECKPOINTS_DIR in names or BACKTEST_CHECKPOINTS_DIR in names:
        return "interrupted"
    return "partial"


def interrupted_command(directory: Path) -> str:
    """The command whose ``--resume`` finishes the interrupted run in ``directory``: ``train`` or ``backtest``."""
    return "backtest" if (directory / BACKTEST_CHECKPOINTS_DIR).exists() else "train"


def checkpoints_dir(directory: Path, command: str) -> Path:
    """Where ``command`` (``train`` or ``backtest``) keeps the checkpoints of the run in ``directory``."""
    return directory / (BACKTEST_CHECKPOINTS_DIR if command == "backtest" else CHECKPOINTS_DIR)


def last_checkpoint_epoch(directory: Path) -> str:
    folder = checkpoints_dir(directory, interrupted_command(directory))
    epochs = sorted(int(p.stem.split("-")[1]) for p in folder.glob("epoch-*.ckpt"))
    return f"checkpoint at epoch {epochs[-1]}" if epochs else "no intact checkpoint"


def check_destination(out: Path, *, overwrite: bool) -> None:
    """Raises :class:`RunError` unless ``out`` can be created, or is empty, or holds a run that may be overwritten.

    Never allows overwriting a directory that holds files other than a jaxlstm run's (``--out .`` must not wipe a
    project), nor a path under a file, nor a directory another process is writing (:class:`~jaxlstm.fileio.RunLock`).
    """
    holder = RunLock.holder(out)
    if holder is not None:
        raise RunLock.held_error(out, holder)
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    ancestor = out
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunError(f"cannot create {out}: {ancestor} is a file, not a directory; choose another --out")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise RunError(f"cannot create {out}: {ancestor} is not writable; choose another --out")
    state = run_state(out)
    if state == "foreign":
        extra = sorted(p.name for p in out.iterdir() if not _is_ours(p.name))
        raise RunError(
            f"{out} holds files that are not a jaxlstm run ({', '.join(extra[:3])}); choose another --out "
            f"(--overwrite only replaces jaxlstm runs)"
        )
    if overwrite:
        return
    if state == "complete":
        raise RunError(f"{out} already holds files of a finished run; choose another --out or pass --overwrite")
    if state == "interrupted":
        raise RunError(
            f"{out} already holds files of an interrupted run ({last_checkpoint_epoch(out)}); finish it with "
            f"`jaxlstm {interrupted_command(out)} --resume {out}`, or choose another --out or pass --overwrite"
        )
    if state == "partial":
        raise RunError(f"{out} already holds files of an incomplete run; choose another --out or pass --overwrite")


def clear_run(out: Path) -> None:
    """Deletes the jaxlstm run in ``out`` (``config.json`` first, so it never looks complete meanwhile), keeping the
    directory and its lock. Refuses (RunError) if ``out`` holds other files."""
    if not out.exists():
        return
    check_destination(out, overwrite=True)
    try:
        (out / CONFIG_FILE).unlink(missing_ok=True)
        for path in out.iterdir():
            if path.name == RunLock.NAME:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    except OSError as error:
        raise RunError(f"{out}: cannot delete the old run ({error.strerror}); delete it by hand") from None
    fsync_directory(out)


def _finite_or_null(content: Any) -> Any:
    """``content`` with every NaN or infinity replaced by None: strict JSON has no such numbers."""
    if isinstance(content, dict):
        return {key: _finite_or_null(value) for key, value in content.items()}
    if isinstance(content, list | tuple):
        return [_finite_or_null(value) for value in content]
    if isinstance(content, float) and not np.isfinite(content):
        return None
    return content


def write_json(path: Path, content: Any) -> None:
    """Pretty, strict JSON (NaN and infinities written as null), ending with a newline, written atomically."""
    write_atomic(path, (json.dumps(_finite_or_null(content), indent=2, allow_nan=False) + "\n").encode())


def read_file(directory: Path, name: str, parse: Callable[[bytes], Any]) -> Any:
    """``parse`` of the file ``name`` of a run directory; RunError naming what is missing, unfinished or corrupt."""
    try:
        return parse((directory / name).read_bytes())
    except FileNotFoundError:
        if run_state(directory) == "interrupted":
            raise RunError(
                f"{directory} is an interrupted run ({last_checkpoint_epoch(directory)}) with no final weights "
                f"yet; finish it with `jaxlstm {interrupted_command(directory)} --resume {directory}`"
            ) from None
        raise RunError(f"{directory} is not a complete jaxlstm run: {name} is missing") from None
    except NotADirectoryError:
        raise RunError(f"{directory} is a file; pass a run directory written by `jaxlstm train`") from None
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as error:
        if any(checkpoints_dir(directory, "train").glob("epoch-*.ckpt")):  # a resume rewrites every final file
            fix = f"`jaxlstm train --resume {directory}` rebuilds it from the run's checkpoints"
        else:
            fix = "no checkpoint is left to rebuild it from, so train the run again"
        raise RunError(f"{directory}/{name} is corrupt ({error}); {fix}") from None


def damaged_file(directory: Path) -> str | None:
    """The first final file of the complete train run in ``directory`` that is missing or does not parse (the
    weights, the scalers, the metrics), or None: what ``train --resume`` rebuilds from the checkpoints."""
    from flax import serialization

    for name, parse in ((PARAMS_FILE, serialization.msgpack_restore), (SCALERS_FILE, json.loads)):
        try:
            parse((directory / name).read_bytes())
        except (OSError, ValueError, UnicodeDecodeError):
            return name
    return None


def read_config(directory: Path) -> RunConfig:
    """The configuration of a run directory (written by ``train``, ``convert`` or ``backtest``); RunError naming
    what is missing or unreadable."""
    if not directory.exists():
        raise RunError(f"{directory} is not a complete jaxlstm run: no such directory; pass --run runs/NAME")
    if (directory / LAB_FILE).exists():
        raise RunError(f"{directory} is a lab run (`jaxlstm lab`): it holds no forecasting model; see its report.md")
    return RunConfig.from_dict(read_file(directory, CONFIG_FILE, json.loads), source=str(directory / CONFIG_FILE))
