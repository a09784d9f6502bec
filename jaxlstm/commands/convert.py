"""``jaxlstm convert``: a Keras file into a run directory, or a run directory into a Keras file."""

import argparse
import json
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import add_config_options, config_values, start_jax
from jaxlstm.config import DataConfig, RunConfig
from jaxlstm.errors import ConfigError, plural

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm convert``."""
    parser = commands.add_parser(
        "convert",
        help="convert a Keras model (.keras or .weights.h5) into a run directory, or a run into a Keras file",
        description="Convert between Keras files and jaxlstm run directories. Keras -> run: the architecture is "
        "read from the file (a .keras config, or a .weights.h5's shapes) and checked against --arch/--layers/--units "
        "when given. Keras files hold no MinMax scalers, so a run needs --scaler-from RUN (reuse a run's scalers and "
        "data settings), --csv CSV (refit them on its training rows, as `jaxlstm train` does) or --tutorial-data "
        "(the bundled GOOG rows the tutorial trained on). Run -> Keras: writes the equivalent keras.Sequential.",
    )
    parser.add_argument("source", type=Path, help="a .keras or .weights.h5 file, or a run directory")
    parser.add_argument("dest", type=Path, help="a run directory, or a .keras or .weights.h5 file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing destination")
    model = parser.add_argument_group("model (Keras -> run; default: read from the file)")
    model.add_argument("--arch", choices=("vanilla", "stacked", "bidirectional"), help="expected LSTM variant")
    model.add_argument("--layers", type=int, help="expected number of LSTM layers")
    model.add_argument("--units", type=int, help="expected units per LSTM layer")
    model.add_argument("--dropout", type=float, help="dropout rate recorded in the run (default: the file's, else 0.2)")
    scalers = parser.add_argument_group("scalers (Keras -> run; one of --scaler-from, --csv, --tutorial-data)")
    scalers.add_argument("--scaler-from", type=Path, metavar="RUN", help="reuse this run's scalers and data settings")
    scalers.add_argument("--tutorial-data", action="store_true", help="the bundled GOOG data, last 230 rows")
    add_config_options(scalers, DataConfig)
    parser.set_defaults(handler=run)


def _is_keras_file(path: Path) -> bool:
    return path.name.endswith((".keras", ".h5"))


def _scalers_and_data(args: argparse.Namespace, n_features: int) -> tuple[dict[str, Any], DataConfig]:
    """The run's ``scalers.json`` content and its data settings, from --scaler-from or a CSV."""
    from jaxlstm.data import load_dataset, record
    from jaxlstm.runs import CONFIG_FILE, SCALERS_FILE, scalers_of

    if args.scaler_from is not None:
        try:
            content = json.loads((args.scaler_from / CONFIG_FILE).read_text())
            scalers = json.loads((args.scaler_from / SCALERS_FILE).read_text())
        except (OSError, ValueError) as error:
            raise ConfigError(f"--scaler-from {args.scaler_from}: not a readable jaxlstm run ({error})") from None
        data = RunConfig.from_dict(content, source=str(args.scaler_from / CONFIG_FILE)).data
        if len(data.features) != n_features:
            raise ConfigError(
                f"--scaler-from {args.scaler_from} scales {plural(len(data.features), 'feature')} but the Keras model "
                f"reads {n_features}; pick a run with the same features"
            )
        return scalers, data
    data = DataConfig(**config_values(args, DataConfig))
    if len(data.features) != n_features:
        raise ConfigError(
            f"--features names {plural(len(data.features), 'column')} but the Keras model reads {n_features}"
        )
    frame, dataset = load_dataset(data)
    return scalers_of(dataset), record(data, frame)


def run(args: argparse.Namespace) -> None:
    """``jaxlstm convert``: a Keras file to a run directory (``config.json``, ``params.msgpack``, ``scalers.json``)
    or a run directory to a Keras file."""
    source, dest = args.source, args.dest
    if _is_keras_file(source):
        if _is_keras_file(dest):
            raise ConfigError(f"{dest}: converting a Keras file writes a run directory; give a directory name")
        chosen = [args.scaler_from is not None, args.csv is not None, args.tutorial_data]
        if sum(chosen) != 1:
            raise ConfigError(
                "Keras files hold no MinMax scalers: pass exactly one of --scaler-from RUN, --csv CSV or "
                "--tutorial-data"
            )
        start_jax()
        from jaxlstm.interop import from_keras
        from jaxlstm.runs import RunDirectory, save_run

        directory = RunDirectory.create(dest, "convert", overwrite=args.overwrite)
        model = from_keras(source, dropout=args.dropout, arch=args.arch, layers=args.layers, units=args.units)
        scalers, data = _scalers_and_data(args, model.config.n_features)
        if model.config.outputs != data.outputs:
            raise ConfigError(
                f"{source}: its Dense head forecasts {model.config.outputs} day(s) at once, but the data settings "
                f"(--horizon {data.horizon}, --strategy {data.strategy}) need {data.outputs}; pass --horizon "
                f"{model.config.outputs} --strategy direct, or a --scaler-from run of that horizon"
            )
        config = RunConfig(data, model.config, None, converted_from={"format": "keras", "path": str(source)})
        directory.write(lambda out: save_run(out, config, model, scalers))
        print(f"wrote {dest}/ ({model.config.arch}, {model.config.layers} x {plural(model.config.units, 'unit')})")
    elif source.is_dir():
        from jaxlstm.interop import KERAS_SUFFIXES

        if not dest.name.endswith(KERAS_SUFFIXES):
            raise ConfigError(
                f"{dest}: converting a run writes a Keras file; its name must end in .keras or .weights.h5"
            )
        start_jax()
        from jaxlstm.interop import save_keras
        from jaxlstm.runs import load_run

        save_keras(load_run(source).model, dest, overwrite=args.overwrite)
        print(f"wrote {dest}")
    else:
        raise ConfigError(f"{source}: give a .keras or .weights.h5 file, or a run directory")
