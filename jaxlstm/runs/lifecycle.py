"""A run directory's whole life, for every command that writes one (``train``, ``backtest``, ``convert`` and those to
come):
the destination checked before any work, an interrupted run found again, which process writes, the lock, the
checkpoints, the final files, and what a failure or Ctrl-C leaves and says.

    directory = RunDirectory.create(out, "train", overwrite=False)     # or RunDirectory.reopen(out, "train")
    ...                                                                 # load and check the data, build the model
    with directory.session(meta) as on_checkpoint:                     # the lock; the checkpoint writer
        history = fit(..., on_checkpoint=on_checkpoint)
        if directory.writes:
            save_trained_run(directory.path, ...)                      # the final files, config.json last

While the session runs, the directory holds only its checkpoints and the lock (:class:`~jaxlstm.fileio.RunLock`); an
overwritten run is deleted just before the first checkpoint is written, so a run that fails on bad input, or before
its first checkpoint, leaves the old directory as it was. With several processes
(:func:`jaxlstm.training.runtime.start_processes`), process 0 writes and the others train their share and write
nothing; their ``on_checkpoint`` discards what it gets (the gather before it is collective, so they still call it).
"""

import contextlib
import shutil
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax

from jaxlstm.config import RunConfig
from jaxlstm.errors import RunError, TrainingError
from jaxlstm.fileio import RunLock
from jaxlstm.runs.directory import (
    LAB_FILE,
    check_destination,
    checkpoints_dir,
    clear_run,
    damaged_file,
    interrupted_command,
    read_config,
    run_state,
)
from jaxlstm.training import Checkpoint, CheckpointWriter, TrainState, latest_checkpoint, list_checkpoints

__all__ = ["COMMANDS", "RunDirectory"]

COMMANDS = {
    "train": "use `jaxlstm predict --run {out}`",
    "backtest": "see its report.md",
    "convert": "use `jaxlstm predict --run {out}`",
    "lab": "see its report.md",
}
"""The commands that write a run directory, and what to do with one of their finished runs."""


def _finished_by(path: Path, command: str) -> str:
    """The command that wrote the finished run in ``path``, from its ``config.json`` (``command`` if unreadable)."""
    if (path / LAB_FILE).exists():
        return "lab"
    try:
        config = read_config(path)
    except RunError:
        return command
    if config.converted_from is not None:
        return "convert"
    return "backtest" if config.backtest is not None else "train"


def _discard(state: TrainState) -> None:
    """The checkpoints of a process that does not write."""
    del state


class RunDirectory:
    """One run directory of ``command`` (``train`` or ``backtest``), new or reopened to resume.

    Attributes:
        path: the directory.
        command: the command whose run it holds (its checkpoints folder and messages depend on it).
        overwrite: whether a finished or interrupted run there may be replaced.
        checkpoint: the newest intact checkpoint of an interrupted run being resumed; None for a new run.
        writes: whether this process writes the run: it runs alone, or it is process 0 of several.
    """

    def __init__(self, path: Path, command: str, *, overwrite: bool = False, checkpoint: Checkpoint | None = None):
        if command not in COMMANDS:
            raise ValueError(f"command must be one of {', '.join(COMMANDS)}, got {command!r}")
        self.path = Path(path)
        self.command = command
        self.overwrite = overwrite
        self.checkpoint = checkpoint
        self.writes = jax.process_index() == 0

    @classmethod
    def create(cls, path: Path, command: str, *, overwrite: bool = False) -> "RunDirectory":
        """A new run in ``path``; RunError now, before any work, unless it can be written (see
        :func:`~jaxlstm.runs.directory.check_destination`)."""
        directory = cls(path, command, overwrite=overwrite)
        if directory.writes:  # the others write nothing, and would see process 0's lock
            check_destination(directory.path, overwrite=overwrite)
        return directory

    @classmethod
    def reopen(cls, path: Path, command: str) -> tuple["RunDirectory", RunConfig]:
        """The interrupted ``command`` run in ``path``, at its newest intact checkpoint (damaged newer ones are
        skipped with a warning), and the configuration saved in it; also a finished train run whose weights or
        scalers are damaged (:func:`~jaxlstm.runs.directory.damaged_file`), which its checkpoints rebuild.

        Raises:
            RunError: ``path`` holds no such run (missing, a file, finished, another command's), or no intact
                checkpoint.
        """
        path = Path(path)
        state = run_state(path)
        if state == "absent":
            raise RunError(f"--resume {path}: no such run directory; pass the --out of the interrupted run")
        if not path.is_dir():
            raise RunError(f"--resume {path}: not a directory; pass the --out of the interrupted run")
        repair = state == "complete" and command == "train" and _finished_by(path, command) == "train"
        repair = repair and damaged_file(path) is not None and any(checkpoints_dir(path, command).glob("epoch-*"))
        if state == "complete" and not repair:
            made_by = _finished_by(path, command)
            finished = COMMANDS[made_by].format(out=path)
            raise RunError(f"--resume {path}: the `jaxlstm {made_by}` run is complete, nothing to resume; {finished}")
        if state == "interrupted" and interrupted_command(path) != command:
            other = interrupted_command(path)
            raise RunError(
                f"--resume {path}: an interrupted `jaxlstm {other}` run; finish it with `jaxlstm {other} --resume`"
            )
        checkpoint = latest_checkpoint(checkpoints_dir(path, command), warn=_warn)
        config = RunConfig.from_dict(checkpoint.meta.get("config"), source=str(checkpoint.path))
        if config.train is None or (config.backtest is not None) != (command == "backtest"):
            raise RunError(
                f"{checkpoint.path}: its saved settings are not a `jaxlstm {command}` run's; start a new run"
            )
        return cls(path, command, checkpoint=checkpoint), config

    @property
    def checkpoints(self) -> Path:
        """The folder of this run's checkpoints."""
        return checkpoints_dir(self.path, self.command)

    @contextlib.contextmanager
    def session(self, meta: dict[str, Any]) -> Iterator[Callable[[TrainState], Any]]:
        """While training and writing the final files: holds the lock (checking a new destination again, now that no
        other process can write it) and yields the ``on_checkpoint`` to train with, which keeps the newest
        checkpoints with ``meta`` (what a resume needs: the config, and the scalers or the folds' digest). A
        :class:`~jaxlstm.errors.TrainingError` names the last good checkpoint; Ctrl-C says how to finish the run.
        A process that does not write yields a writer that discards, and holds no lock."""
        if not self.writes:
            yield _discard
            return
        before_first_write = (lambda: clear_run(self.path)) if self.overwrite else None
        writer = CheckpointWriter(self.checkpoints, meta, before_first_write=before_first_write)
        with RunLock(self.path):
            if self.checkpoint is None:
                check_destination(self.path, overwrite=self.overwrite)
            with self._reporting(writer):
                yield writer

    def write(self, save: Callable[[Path], Any]) -> None:
        """Writes a run that needs no training, at once (``jaxlstm convert``): under the lock, the destination checked
        again, an old run it may replace deleted, then ``save(path)``."""
        if not self.writes:
            return
        with RunLock(self.path):
            check_destination(self.path, overwrite=self.overwrite)
            clear_run(self.path)
            save(self.path)

    def drop_checkpoints(self) -> None:
        """Deletes the checkpoints of a complete run whose report is its result (a backtest's)."""
        shutil.rmtree(self.checkpoints, ignore_errors=True)

    @contextlib.contextmanager
    def _reporting(self, writer: CheckpointWriter) -> Iterator[None]:
        """A TrainingError names the last good checkpoint; a KeyboardInterrupt (Ctrl-C) carries how to finish the
        run, which the command line prints."""
        try:
            yield
        except TrainingError as error:
            raise TrainingError(f"{error} (last good checkpoint: {self._last_checkpoint(writer)})") from None
        except KeyboardInterrupt:
            found = list_checkpoints(self.checkpoints) if (writer.last or self.checkpoint) else []
            if found:
                hint = f"finish it with `jaxlstm {self.command} --resume {self.path}` (from epoch {found[0][0]})"
            else:
                hint = "no checkpoint was written yet"
            raise KeyboardInterrupt(hint) from None

    def _last_checkpoint(self, writer: CheckpointWriter) -> str:
        if not (writer.last or self.checkpoint):
            return "none was written"
        found = list_checkpoints(self.checkpoints)
        return f"epoch {found[0][0]}, {found[0][1]}" if found else "none"


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)
