"""What ``train --resume`` and ``backtest --resume`` share: refusing other settings, finding the newest intact
checkpoint of the right command's interrupted run, and saying what was kept when training stops."""

import argparse
import contextlib
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import option_flags
from jaxlstm.errors import ConfigError, RunError, TrainingError

__all__ = ["interrupted_run", "reject_settings", "reporting_checkpoints"]

_FINISHED = {
    "train": "use `jaxlstm predict --run {out}`",
    "backtest": "see its report.md",
}


def reject_settings(args: argparse.Namespace, *sections: type) -> None:
    """ConfigError if ``args`` sets an option of ``sections``, ``--out`` or ``--overwrite`` beside ``--resume``."""
    given = option_flags(args, *sections)
    given += [name for name in ("--out", "--overwrite") if getattr(args, name[2:])]
    if given:
        raise ConfigError(
            f"--resume continues with the settings saved in the run; drop {', '.join(given)} "
            f"(only --quiet and --checkpoint-every go with --resume)"
        )


def interrupted_run(out: Path, command: str) -> tuple[Any, Any]:
    """The newest intact checkpoint of the interrupted ``command`` run in ``out`` and the run's saved
    configuration; RunError when ``out`` holds no such run (missing, a file, finished, or another command's)."""
    from jaxlstm.checkpoint import latest_checkpoint
    from jaxlstm.config import RunConfig
    from jaxlstm.runs import checkpoints_dir, interrupted_command, run_state

    state = run_state(out)
    if state == "absent":
        raise RunError(f"--resume {out}: no such run directory; pass the --out of the interrupted run")
    if not out.is_dir():
        raise RunError(f"--resume {out}: not a directory; pass the --out of the interrupted run")
    if state == "complete":
        raise RunError(f"--resume {out}: the run is complete, nothing to resume; " + _FINISHED[command].format(out=out))
    if state == "interrupted" and interrupted_command(out) != command:
        other = interrupted_command(out)
        raise RunError(
            f"--resume {out}: an interrupted `jaxlstm {other}` run; finish it with `jaxlstm {other} --resume`"
        )
    checkpoint = latest_checkpoint(checkpoints_dir(out, command), warn=_warn)
    config = RunConfig.from_dict(checkpoint.meta.get("config"), source=str(checkpoint.path))
    if config.train is None or (config.backtest is not None) != (command == "backtest"):
        raise RunError(f"{checkpoint.path}: its saved settings are not a `jaxlstm {command}` run's; start a new run")
    return checkpoint, config


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=2)


def _last_checkpoint(directory: Path) -> str:
    from jaxlstm.checkpoint import list_checkpoints

    found = list_checkpoints(directory)
    return f"epoch {found[0][0]}, {found[0][1]}" if found else "none"


@contextlib.contextmanager
def reporting_checkpoints(out: Path, command: str, writer: Any, *, resumed: bool) -> Iterator[None]:
    """Around training with ``writer`` (a :class:`~jaxlstm.checkpoint.CheckpointWriter`): a TrainingError names the
    last good checkpoint, and Ctrl-C says how to finish the run."""
    from jaxlstm.checkpoint import list_checkpoints
    from jaxlstm.runs import checkpoints_dir

    directory = checkpoints_dir(out, command)
    try:
        yield
    except TrainingError as error:
        kept = _last_checkpoint(directory) if (writer.last or resumed) else "none was written"
        raise TrainingError(f"{error} (last good checkpoint: {kept})") from None
    except KeyboardInterrupt:
        found = list_checkpoints(directory) if (writer.last or resumed) else []
        hint = (
            f"finish it with `jaxlstm {command} --resume {out}` (from epoch {found[0][0]})"
            if found
            else "no checkpoint was written yet"
        )
        print(f"jaxlstm: interrupted; {hint}", file=sys.stderr)
        raise
