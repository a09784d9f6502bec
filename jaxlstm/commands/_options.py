"""What the commands share: options derived from the config types, the data-source options, and JAX's start-up."""

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from jaxlstm.config import DataConfig, ModelConfig, flag, option_text, preset
from jaxlstm.errors import ConfigError, RunError

__all__ = [
    "add_config_options",
    "add_data_source",
    "add_process_options",
    "add_run_options",
    "config_values",
    "model_from_options",
    "option_flags",
    "output_directory",
    "reject_settings",
    "run_frame",
    "start_jax",
]


def add_config_options(
    group: Any, cls: type, names: tuple[str, ...] | None = None, *, helps: dict[str, str] | None = None
) -> None:
    """Adds one option per field of the config dataclass ``cls`` (or of its fields ``names``), from the field's
    metadata: flag, help (or ``helps[name]``), choices and parser. Every option defaults to None ("not given"), so
    that the config's own default applies and ``--resume`` can tell which options were given."""
    for item in dataclasses.fields(cls):
        meta = item.metadata
        if meta.get("cli") is False or (names is not None and item.name not in names):
            continue
        help_text = (helps or {}).get(item.name, meta["help"])
        if "(default:" not in help_text and item.default is not None:
            help_text += f" (default: {option_text(item.default)})"
        name = meta.get("flag", flag(item.name))
        options: dict[str, Any] = {"dest": item.name, "default": None, "help": help_text}
        if meta.get("rule") == "flag":
            options["action"] = argparse.BooleanOptionalAction
        elif meta.get("choices"):
            options["choices"] = meta["choices"]
        elif meta.get("parse"):
            options.update(type=meta["parse"], metavar=name[2:].upper().replace("-", "_"))
        group.add_argument(name, **options)


def config_values(args: argparse.Namespace, cls: type) -> dict[str, Any]:
    """The fields of ``cls`` given on the command line (see :func:`add_config_options`)."""
    values = {item.name: getattr(args, item.name, None) for item in dataclasses.fields(cls)}
    return {name: value for name, value in values.items() if value is not None}


def model_from_options(args: argparse.Namespace, data: DataConfig) -> ModelConfig:
    """The model options given on the command line, over the preset of ``--arch`` (default: stacked), reading
    ``data``'s features."""
    values = config_values(args, ModelConfig)
    return preset(values.pop("arch", "stacked"), n_features=len(data.features), outputs=data.outputs, **values)


def option_flags(args: argparse.Namespace, *classes: type) -> list[str]:
    """The flags of the config fields of ``classes`` that were given on the command line."""
    return [
        item.metadata.get("flag", flag(item.name))
        for cls in classes
        for item in dataclasses.fields(cls)
        if getattr(args, item.name, None) is not None
    ]


def add_data_source(parser: argparse.ArgumentParser, *, missing: bool = False) -> None:
    """``--csv``, ``--start``, ``--end`` (and ``--missing``) for a command that reads a run's data or another CSV."""
    parser.add_argument("--csv", type=Path, help="Yahoo daily CSV (default: the data the run was trained on)")
    parser.add_argument("--start", help="first date kept, YYYY-MM-DD (with --csv)")
    parser.add_argument("--end", help="last date kept, YYYY-MM-DD (with --csv)")
    if missing:
        add_config_options(parser, DataConfig, ("missing",))


def run_frame(data: DataConfig, args: argparse.Namespace) -> Any:
    """The rows a command that reads a run works on: by default the run's own (its CSV between its first and last
    dates, as it trained), or ``--csv`` with ``--start/--end``; ``--missing`` when given, else the run's."""
    from jaxlstm.data import load_frame

    missing = getattr(args, "missing", None) or data.missing
    if args.csv is None:
        if args.start or args.end:
            raise ConfigError(
                "--start/--end choose rows of --csv; without --csv the run's own rows are used (pass --csv "
                f"{data.path} to choose other rows of its file)"
            )
        return load_frame(dataclasses.replace(data, missing=missing))
    return load_frame(
        dataclasses.replace(data, csv=args.csv, start=args.start, end=args.end, last_rows=None, missing=missing)
    )


def add_run_options(parser: Any, default_out: Path, *, checkpoints: str, resume: str) -> None:
    """The options of a command that trains into a run directory (:class:`jaxlstm.runs.RunDirectory`): ``--out``,
    ``--overwrite``, ``--quiet``, ``--checkpoint-every`` (what the checkpoints are: ``checkpoints``), ``--resume``
    (what it finishes: ``resume``), and those of several processes."""
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help=f"run directory to write (default: {default_out})")
    output.add_argument("--overwrite", action="store_true", help="replace an existing run directory")
    output.add_argument("--quiet", action="store_true", help="no progress bar")
    output.add_argument("--checkpoint-every", type=int, default=10, help=f"{checkpoints} (default: 10)")
    output.add_argument("--resume", type=Path, metavar="RUN", help=resume)
    add_process_options(parser)


def add_process_options(parser: Any) -> None:
    """``--coordinator``, ``--processes`` and ``--process-id``: this process's place among several
    (:func:`jaxlstm.training.runtime.start_processes`)."""
    group = parser.add_argument_group(
        "several processes (JAX's multi-process runtime; default: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, "
        "JAX_PROCESS_ID, or SLURM's variables; docs/scale.md)"
    )
    group.add_argument("--coordinator", metavar="HOST:PORT", help="address of process 0, which every process joins")
    group.add_argument("--processes", type=int, metavar="N", help="how many processes run this command together")
    group.add_argument("--process-id", type=int, metavar="I", help="this process's rank, 0..N-1 (0 writes the run)")


def start_jax(args: argparse.Namespace | None = None) -> None:
    """Process settings before the first JAX computation: each CPU core a JAX device, the C heap's arenas capped
    (:func:`~jaxlstm.training.runtime.limit_heap_arenas`), the persistent compilation cache, and, for a command with
    :func:`add_process_options`, the multi-process runtime (:mod:`jaxlstm.training.runtime`). Commands call it once
    their arguments are checked."""
    from jaxlstm.training.runtime import limit_heap_arenas, start_processes, use_compilation_cache, use_cpu_cores

    use_cpu_cores()
    limit_heap_arenas()
    use_compilation_cache()
    start_processes(*(getattr(args, name, None) for name in ("coordinator", "processes", "process_id")))


def reject_settings(args: argparse.Namespace, *sections: type) -> None:
    """ConfigError if ``args`` sets an option of ``sections``, ``--out`` or ``--overwrite`` beside ``--resume``."""
    given = option_flags(args, *sections)
    given += [name for name in ("--out", "--overwrite") if getattr(args, name[2:])]
    if given:
        raise ConfigError(
            f"--resume continues with the settings saved in the run; drop {', '.join(given)} "
            f"(only --quiet and --checkpoint-every go with --resume)"
        )


def output_directory(out: Path) -> Path:
    """Creates the directory a command writes its figures into; RunError when ``out`` is a file."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create {out} ({error.strerror}); choose another --out") from None
    return out
