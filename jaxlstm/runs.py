"""Run directories: a trained model with everything needed to reload it and predict, or to resume its training.

A complete run directory holds ``config.json`` (model, training and data settings), ``params.msgpack`` (the weights,
Flax msgpack), ``scalers.json`` (the MinMax scalers fit on the training rows), ``metrics.json``, ``predictions.csv``,
the PNG plots, and ``checkpoints/`` (the newest training checkpoints, see :mod:`jaxlstm.checkpoint`).

While ``jaxlstm train`` runs, the directory holds only ``checkpoints/``: it is created at the first checkpoint, so
a run that fails on bad input, or before its first checkpoint, leaves nothing. When training ends, the final files
are written into a hidden temporary directory inside the run, fsync'ed, and renamed into place one by one with
``config.json`` last: **a run is complete exactly when its config.json exists**, and every file in it is whole.
A directory with checkpoints but no ``config.json`` is an interrupted run that ``jaxlstm train --resume`` finishes.

:func:`write_run` (used by ``jaxlstm convert``) instead fills a temporary directory beside the destination and
renames it into place in one step.
"""

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization
from sklearn.preprocessing import MinMaxScaler

from jaxlstm.checkpoint import fsync_directory
from jaxlstm.errors import RunError
from jaxlstm.models import Forecaster, ModelConfig

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
SCALERS_FILE = "scalers.json"


CHECKPOINTS_DIR = "checkpoints"
RUN_FILES = (
    PARAMS_FILE,
    SCALERS_FILE,
    "metrics.json",
    "predictions.csv",
    "loss.png",
    "predictions.png",
    CONFIG_FILE,  # last: its presence marks the run complete
)
"""The files of a complete run, in the order they land; ``config.json`` comes last."""


def run_state(directory: Path) -> str:
    """``"absent"``, ``"empty"``, ``"complete"`` (has config.json), ``"interrupted"`` (checkpoints, no config.json),
    ``"partial"`` (only run files, e.g. a crash while the final files landed) or ``"foreign"`` (other files)."""
    if not directory.exists():
        return "absent"
    names = {path.name for path in directory.iterdir()}
    if not names:
        return "empty"
    if names - {*RUN_FILES, CHECKPOINTS_DIR} - {name for name in names if name.startswith(".final.tmp-")}:
        return "foreign"
    if CONFIG_FILE in names:
        return "complete"
    if CHECKPOINTS_DIR in names:
        return "interrupted"
    return "partial"


def _last_checkpoint_epoch(directory: Path) -> str:
    epochs = sorted(int(p.stem.split("-")[1]) for p in (directory / CHECKPOINTS_DIR).glob("epoch-*.ckpt"))
    return f"checkpoint at epoch {epochs[-1]}" if epochs else "no intact checkpoint"


def check_destination(out: Path, *, overwrite: bool) -> None:
    """Raises :class:`RunError` unless ``out`` can be created, or is empty, or holds a run that may be overwritten.

    Never allows overwriting a directory that holds files other than a jaxlstm run's (``--out .`` must not wipe a
    project), nor a path under a file.
    """
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
        extra = sorted(p.name for p in out.iterdir() if p.name not in {*RUN_FILES, CHECKPOINTS_DIR})
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
            f"{out} already holds files of an interrupted run ({_last_checkpoint_epoch(out)}); finish it with "
            f"`jaxlstm train --resume {out}`, or choose another --out or pass --overwrite"
        )
    if state == "partial":
        raise RunError(f"{out} already holds files of an incomplete run; choose another --out or pass --overwrite")


def clear_run(out: Path) -> None:
    """Deletes the jaxlstm run in ``out`` (``config.json`` first, so it never looks complete meanwhile), keeping the
    directory. Refuses (RunError) if ``out`` holds other files."""
    if not out.exists():
        return
    check_destination(out, overwrite=True)
    try:
        for name in (CONFIG_FILE, *RUN_FILES):
            (out / name).unlink(missing_ok=True)
        for path in out.iterdir():  # checkpoints/ and leftover temporary directories
            shutil.rmtree(path)
    except OSError as error:
        raise RunError(f"{out}: cannot delete the old run ({error.strerror}); delete it by hand") from None
    fsync_directory(out)


def write_final_files(out: Path, write: Callable[[Path], None]) -> None:
    """Calls ``write(tmp)`` to fill a hidden temporary directory inside ``out``, then renames each file into ``out``,
    ``config.json`` last, so that ``out`` holds either an incomplete run (no config.json) or a complete one."""
    for stale in out.glob(".final.tmp-*"):  # left by a process killed while writing the final files
        shutil.rmtree(stale, ignore_errors=True)
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".final.tmp-", dir=out))
    except OSError as error:
        raise RunError(f"{out}: cannot write the run ({error.strerror}); choose another --out") from None
    try:
        write(tmp)
        names = sorted((path.name for path in tmp.iterdir()), key=lambda name: name == CONFIG_FILE)
        for name in names:
            with open(tmp / name, "rb") as file:
                os.fsync(file.fileno())
        for name in names:
            if name == CONFIG_FILE:
                fsync_directory(out)  # every other file has landed before the one that marks the run complete
            os.replace(tmp / name, out / name)
        fsync_directory(out)
    except OSError as error:
        raise RunError(
            f"{out}: cannot write the run ({error.strerror}); free disk space or choose another --out"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_run(out: Path, write: Callable[[Path], None], *, overwrite: bool) -> None:
    """Calls ``write(tmp)`` to fill a temporary directory, then renames it to ``out`` atomically."""
    check_destination(out, overwrite=overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_json(path: Path, content: Any) -> None:
    """Pretty JSON, ending with a newline."""
    path.write_text(json.dumps(content, indent=2) + "\n")


def scaler_to_dict(scaler: MinMaxScaler) -> dict[str, list[float]]:
    """The fitted ranges of a ``MinMaxScaler(feature_range=(0, 1))``."""
    return {"data_min": scaler.data_min_.tolist(), "data_max": scaler.data_max_.tolist()}


def scaler_from_dict(content: dict[str, list[float]]) -> MinMaxScaler:
    """Refits a ``MinMaxScaler`` that maps exactly as the saved one did."""
    return MinMaxScaler().fit(np.array([content["data_min"], content["data_max"]], np.float64))


def save_model(directory: Path, model: Forecaster) -> None:
    """Writes the weights to ``params.msgpack``."""
    pure = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    (directory / PARAMS_FILE).write_bytes(serialization.msgpack_serialize(pure))


@dataclass(frozen=True)
class Run:
    """A reloaded run: its model with trained weights, its scalers, and its saved config."""

    model: Forecaster
    feature_scaler: MinMaxScaler
    target_scaler: MinMaxScaler
    config: dict[str, Any]


def load_run(directory: Path) -> Run:
    """Reloads a run directory written by ``jaxlstm train``; RunError naming what is missing or mismatched."""
    if not directory.exists():
        raise RunError(f"{directory} is not a complete jaxlstm run: no such directory; pass --run runs/NAME")
    name = CONFIG_FILE
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        name = SCALERS_FILE
        scalers = json.loads((directory / SCALERS_FILE).read_text())
        name = PARAMS_FILE
        weights = serialization.msgpack_restore((directory / PARAMS_FILE).read_bytes())
    except FileNotFoundError as error:
        if run_state(directory) == "interrupted":
            raise RunError(
                f"{directory} is an interrupted run ({_last_checkpoint_epoch(directory)}) with no final weights yet; "
                f"finish it with `jaxlstm train --resume {directory}`"
            ) from None
        raise RunError(f"{directory} is not a complete jaxlstm run: {Path(error.filename).name} is missing") from None
    except NotADirectoryError:
        raise RunError(f"{directory} is a file; pass a run directory written by `jaxlstm train`") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise RunError(f"{directory}/{name} is corrupt ({error}); train the run again") from None
    try:
        model = Forecaster(ModelConfig(**config["model"]), rngs=nnx.Rngs(0))
        feature_scaler = scaler_from_dict(scalers["features"])
        target_scaler = scaler_from_dict(scalers["target"])
    except (KeyError, TypeError, ValueError) as error:
        raise RunError(
            f"{directory}: {CONFIG_FILE} or {SCALERS_FILE} lacks or garbles {error}; train the run again"
        ) from None
    state = nnx.state(model, nnx.Param)
    expected = jax.tree.map(np.shape, nnx.to_pure_dict(state))
    try:
        nnx.replace_by_pure_dict(state, weights)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise RunError(
            f"{directory}/{PARAMS_FILE} does not match the model in its {CONFIG_FILE} ({error}); "
            f"the files come from different runs, train it again"
        ) from None
    if jax.tree.map(np.shape, nnx.to_pure_dict(state)) != expected:
        raise RunError(
            f"{directory}/{PARAMS_FILE} holds weights of other shapes than its {CONFIG_FILE} describes; "
            f"the files come from different runs, train it again"
        )
    nnx.update(model, state)
    return Run(
        model=model,
        feature_scaler=feature_scaler,
        target_scaler=target_scaler,
        config=config,
    )
