"""Checkpoints: the whole state of a training run after some epoch, written atomically, read back verified.

A checkpoint is one file, ``epoch-NNNNNN.ckpt``, in a run's ``checkpoints/`` directory. It holds everything
:func:`jaxlstm.training.fit` needs to continue the run bit for bit (a
:class:`~jaxlstm.training.TrainState`): the parameters, the optimizer state, the PRNG key, the epoch, the loss
history, the early-stopping state and the device count; plus ``meta``, which the command line fills with the run's
``config.json`` content and its MinMax scalers, so that ``jaxlstm train --resume`` needs nothing else.

Format: Flax's msgpack (``flax.serialization``; no extra dependency, and the same format as ``params.msgpack``).
The file is a msgpack map ``{"format": "jaxlstm-checkpoint", "version": 1, "sha256": ..., "payload": bytes}``, the
payload a msgpack map whose arrays are keyed by their pytree path (``jax.tree_util.keystr``). Restoring checks every
name, shape and dtype against the model and optimizer being resumed, and the SHA-256 catches a truncated or
corrupted file.

Writes are atomic (:func:`jaxlstm.fileio.write_atomic`): the bytes go to a hidden temporary file in the same
directory, are flushed and fsync'ed, then ``os.replace`` renames the file into place and the directory is fsync'ed.
A crash mid-write leaves the previous checkpoints intact (and at most a hidden ``.*.tmp-*`` file, removed by the
next write). The newest ``keep`` checkpoints are kept, so that a damaged newest file still leaves an older one to
resume from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from jaxlstm.config import TrainConfig
from jaxlstm.errors import RunError
from jaxlstm.fileio import write_atomic
from jaxlstm.training.driver import History, PyTree, TrainState
from jaxlstm.training.optimizers import make_optimizer

__all__ = [
    "KEEP",
    "Checkpoint",
    "CheckpointWriter",
    "checkpoint_name",
    "encode",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "jaxlstm-checkpoint"
VERSION = 1
KEEP = 3
"""Checkpoints kept by default: the newest few, so that a damaged newest one leaves an older to resume from."""
_NAME = re.compile(r"epoch-(\d{6,})\.ckpt")


def checkpoint_name(epoch: int) -> str:
    """``epoch-000010.ckpt``: names sort by epoch."""
    return f"epoch-{epoch:06d}.ckpt"


def _flatten(tree: PyTree) -> dict[str, np.ndarray]:
    """Host copies of a pytree's leaves, keyed by their path (``"['head']['kernel'].value"``)."""
    leaves, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {jax.tree_util.keystr(path): np.asarray(jax.device_get(leaf)) for path, leaf in leaves}


def _unflatten(template: PyTree, saved: dict[str, Any], what: str, path: Path) -> PyTree:
    """``template``'s structure filled with the saved arrays; RunError on any missing, extra or reshaped leaf."""
    leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
    names = [jax.tree_util.keystr(name) for name, _ in leaves]
    if set(names) != set(saved):
        missing, extra = sorted(set(names) - set(saved)), sorted(set(saved) - set(names))
        detail = f"missing {missing[0]}" if missing else f"unexpected {extra[0]}"
        raise RunError(f"{path}: its {what} do not match the run's model and optimizer ({detail}); train a new run")
    values = []
    for name, (_, leaf) in zip(names, leaves, strict=True):
        value = np.asarray(saved[name])
        if value.shape != np.shape(leaf) or value.dtype != np.asarray(leaf).dtype:
            raise RunError(
                f"{path}: {what} {name} is {value.dtype}{list(value.shape)} but the model needs "
                f"{np.asarray(leaf).dtype}{list(np.shape(leaf))}; train a new run"
            )
        values.append(value)
    return jax.tree_util.tree_unflatten(treedef, values)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read back and verified, not yet matched to a model (see :meth:`train_state`)."""

    path: Path
    epoch: int
    finished: bool
    devices: int
    meta: dict[str, Any]
    payload: dict[str, Any]

    def train_state(self, model: nnx.Module, config: TrainConfig, *, models: int | None = None) -> TrainState:
        """The saved state, shaped like ``model``'s parameters and ``config``'s optimizer state; with ``models``, the
        state of an ensemble of that many such models (:func:`jaxlstm.training.fit_ensemble`'s checkpoints:
        every array with a leading models axis, one loss per model and epoch)."""
        params = nnx.state(model, nnx.Param)
        init = make_optimizer(config).init
        if models is not None:
            params = jax.tree.map(lambda leaf: np.zeros((models, *np.shape(leaf)), np.asarray(leaf).dtype), params)
            init = jax.vmap(init)
        opt_state = init(params)
        history = self.payload["history"]
        best = self.payload["best_params"]
        return TrainState(
            epoch=self.epoch,
            params=_unflatten(params, self.payload["params"], "parameters", self.path),
            opt_state=_unflatten(opt_state, self.payload["opt_state"], "optimizer moments", self.path),
            key=jax.random.wrap_key_data(np.asarray(self.payload["key"]), impl=self.payload["key_impl"]),
            history=History(
                loss=np.asarray(history["loss"], np.float64).tolist(),
                val_loss=[float(v) for v in history["val_loss"]],
                best_epoch=history["best_epoch"],
                compile_seconds=float(history["compile_seconds"]),
                train_seconds=float(history["train_seconds"]),
                devices=self.devices,
            ),
            best_params=None if best is None else _unflatten(params, best, "best parameters", self.path),
            best_val_loss=float(self.payload["best_val_loss"]),
            finished=self.finished,
        )


def encode(state: TrainState, meta: dict[str, Any]) -> bytes:
    """The bytes of a checkpoint file for ``state`` (copied to the host) and JSON-ready ``meta``."""
    history = state.history
    key = state.key
    payload = {
        "epoch": int(state.epoch),
        "finished": bool(state.finished),
        "devices": int(history.devices),
        "meta": json.dumps(meta),
        "params": _flatten(state.params),
        "opt_state": _flatten(state.opt_state),
        "best_params": None if state.best_params is None else _flatten(state.best_params),
        "best_val_loss": float(state.best_val_loss),
        "key": np.asarray(jax.device_get(jax.random.key_data(key))),
        "key_impl": str(jax.random.key_impl(key)),
        "history": {
            "loss": np.asarray(history.loss, np.float64),
            "val_loss": [float(v) for v in history.val_loss],
            "best_epoch": history.best_epoch,
            "compile_seconds": float(history.compile_seconds),
            "train_seconds": float(history.train_seconds),
        },
    }
    body = serialization.msgpack_serialize(payload)
    return serialization.msgpack_serialize(
        {"format": FORMAT, "version": VERSION, "sha256": hashlib.sha256(body).hexdigest(), "payload": body}
    )


def save_checkpoint(path: Path, state: TrainState, meta: dict[str, Any]) -> None:
    """Writes ``state`` and ``meta`` to ``path`` atomically; RunError if the disk refuses."""
    try:
        write_atomic(path, encode(state, meta))
    except OSError as error:
        raise RunError(
            f"{path}: cannot write the checkpoint ({error.strerror}); free disk space or check permissions"
        ) from None


def load_checkpoint(path: Path) -> Checkpoint:
    """Reads and verifies one checkpoint file; RunError saying what is wrong (missing, truncated, corrupt, ...)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunError(f"{path}: no such checkpoint; pass a file from the run's checkpoints/ directory") from None
    except OSError as error:
        raise RunError(f"{path}: cannot be read ({error.strerror})") from None
    try:
        outer = serialization.msgpack_restore(raw)
        if not isinstance(outer, dict) or outer.get("format") != FORMAT:
            raise ValueError("no jaxlstm checkpoint header")
    except Exception:  # msgpack raises several types for garbage
        raise RunError(
            f"{path}: truncated or not a jaxlstm checkpoint ({len(raw)} bytes); resume from an older one or retrain"
        ) from None
    if outer.get("version") != VERSION:
        raise RunError(f"{path}: checkpoint format version {outer.get('version')}; this jaxlstm reads {VERSION}")
    body = outer.get("payload")
    if not isinstance(body, bytes) or hashlib.sha256(body).hexdigest() != outer.get("sha256"):
        raise RunError(f"{path}: corrupt checkpoint (checksum mismatch); resume from an older one or retrain")
    payload = serialization.msgpack_restore(body)
    return Checkpoint(
        path=path,
        epoch=int(payload["epoch"]),
        finished=bool(payload["finished"]),
        devices=int(payload["devices"]),
        meta=json.loads(payload["meta"]),
        payload=payload,
    )


def list_checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of the checkpoint files in ``directory``, newest first (temporary files excluded)."""
    if not directory.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NAME.fullmatch(p.name))]
    return sorted(found, reverse=True)


def latest_checkpoint(directory: Path, *, warn: Callable[[str], Any] | None = None) -> Checkpoint:
    """The newest checkpoint in ``directory`` that reads back intact; damaged newer ones are reported to ``warn``.

    Raises:
        RunError: there is no checkpoint, or none is intact.
    """
    found = list_checkpoints(directory)
    if not found:
        raise RunError(f"{directory}: no checkpoints to resume from; start the run again without --resume")
    problems = []
    for _, path in found:
        try:
            checkpoint = load_checkpoint(path)
        except RunError as error:
            problems.append(str(error))
            continue
        for problem in problems:
            if warn is not None:
                warn(f"skipped a damaged checkpoint: {problem}")
        return checkpoint
    raise RunError(f"{directory}: all {len(found)} checkpoint(s) are damaged (newest: {problems[0]})")


class CheckpointWriter:
    """Saves a :class:`~jaxlstm.training.TrainState` to ``directory/epoch-NNNNNN.ckpt``, keeping the newest
    ``keep``.

    Use it as :func:`~jaxlstm.training.fit`'s ``on_checkpoint``. ``before_first_write`` runs once, before the
    first file is written (the command line creates the run directory there, so that a run that fails before its first
    checkpoint leaves nothing on disk).
    """

    def __init__(
        self,
        directory: Path,
        meta: dict[str, Any],
        *,
        keep: int = KEEP,
        before_first_write: Callable[[], Any] | None = None,
    ) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.meta = meta
        self.keep = keep
        self._before_first_write = before_first_write
        self.last: Path | None = None

    def __call__(self, state: TrainState) -> Path:
        if self._before_first_write is not None:
            self._before_first_write()
            self._before_first_write = None
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(f"{self.directory}: cannot create it ({error.strerror}); choose another --out") from None
        for stale in self.directory.glob(".epoch-*.ckpt.tmp-*"):  # left by a process killed mid-write
            with contextlib.suppress(OSError):
                stale.unlink()
        path = self.directory / checkpoint_name(state.epoch)
        save_checkpoint(path, state, self.meta)
        self.last = path
        for _, old in list_checkpoints(self.directory)[self.keep :]:
            with contextlib.suppress(OSError):
                old.unlink()
        return path
