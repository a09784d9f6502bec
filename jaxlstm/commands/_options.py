"""What the commands share: options derived from the config types, the data-source options, and JAX's start-up."""

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from jaxlstm.config import DataConfig, ModelConfig, flag, preset
from jaxlstm.errors import RunError

__all__ = [
    "add_config_options",
    "add_data_source",
    "config_values",
    "model_from_options",
    "option_flags",
    "output_directory",
    "start_jax",
]


def _shown(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


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
            help_text += f" (default: {_shown(item.default)})"
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


def start_jax() -> None:
    """Process settings before the first JAX computation: each CPU core a JAX device, and the persistent
    compilation cache (:mod:`jaxlstm.runtime`). Commands call it once their arguments are checked."""
    from jaxlstm.runtime import use_compilation_cache, use_cpu_cores

    use_cpu_cores()
    use_compilation_cache()


def output_directory(out: Path) -> Path:
    """Creates the directory a command writes its figures into; RunError when ``out`` is a file."""
    if out.exists() and not out.is_dir():
        raise RunError(f"{out} exists and is not a directory; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot create {out} ({error.strerror}); choose another --out") from None
    return out
