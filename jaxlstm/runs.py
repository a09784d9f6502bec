"""Run directories: a trained model with everything needed to reload it and predict.

A run directory holds ``config.json`` (model, training and data settings), ``params.msgpack`` (the weights, Flax
msgpack), ``scalers.json`` (the MinMax scalers fit on the training rows), ``metrics.json``, ``predictions.csv`` and
the PNG plots. It is written into a hidden temporary directory beside its destination and renamed into place
only when complete, so a failed or interrupted run leaves nothing half-written.
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

from jaxlstm.errors import RunError
from jaxlstm.models import Forecaster, ModelConfig

CONFIG_FILE = "config.json"
PARAMS_FILE = "params.msgpack"
SCALERS_FILE = "scalers.json"


def check_destination(out: Path, *, overwrite: bool) -> None:
    """Raises :class:`RunError` unless ``out`` is absent, empty, or may be overwritten."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RunError(f"{out} already holds files (another run?); choose another --out or pass --overwrite")


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
    """Reloads a run directory written by ``jaxlstm train``."""
    try:
        config = json.loads((directory / CONFIG_FILE).read_text())
        scalers = json.loads((directory / SCALERS_FILE).read_text())
        weights = serialization.msgpack_restore((directory / PARAMS_FILE).read_bytes())
    except FileNotFoundError as error:
        raise RunError(f"{directory} is not a complete jaxlstm run: {Path(error.filename).name} is missing") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise RunError(f"{directory} holds a corrupt run file ({error}); train it again") from None
    model = Forecaster(ModelConfig(**config["model"]), rngs=nnx.Rngs(0))
    state = nnx.state(model, nnx.Param)
    expected = jax.tree.map(np.shape, nnx.to_pure_dict(state))
    try:
        nnx.replace_by_pure_dict(state, weights)
    except (KeyError, ValueError) as error:
        raise RunError(f"{directory}/{PARAMS_FILE} does not match the saved model config ({error})") from None
    if jax.tree.map(np.shape, nnx.to_pure_dict(state)) != expected:
        raise RunError(f"{directory}/{PARAMS_FILE} holds weights of other shapes than its config.json describes")
    nnx.update(model, state)
    return Run(
        model=model,
        feature_scaler=scaler_from_dict(scalers["features"]),
        target_scaler=scaler_from_dict(scalers["target"]),
        config=config,
    )
