"""The run configuration: :class:`DataConfig`, :class:`ModelConfig` and :class:`TrainConfig`, composed in one
:class:`RunConfig`, the typed schema of a run's ``config.json``. The tutorial's defaults live here, once.

Each field carries its command-line flag, help text and range rule in its metadata, so the ``jaxlstm`` commands
derive their options from these types, one range check serves the library and the command line, and an error names
the flag: ``TrainConfig(epochs=0)`` raises ``ConfigError("--epochs 0: must be a whole number >= 1, e.g. --epochs
100")``. This module imports no JAX, so that ``jaxlstm --help`` and argument errors answer at once.

``RunConfig.to_dict`` writes a versioned dict; ``RunConfig.from_dict`` reads it back, naming the file and the key
when one is unknown or missing, and upgrades the unversioned ``config.json`` of older runs.

>>> config = RunConfig(DataConfig(), preset("stacked"), TrainConfig(epochs=3))
>>> RunConfig.from_dict(config.to_dict(), source="config.json") == config
True
>>> TrainConfig(batch_size=0)
Traceback (most recent call last):
...
jaxlstm.errors.ConfigError: --batch-size 0: must be a whole number >= 1, e.g. --batch-size 32
"""

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from jaxlstm.errors import ConfigError, RunError

__all__ = [
    "ARCHITECTURES",
    "BUNDLED_CSV",
    "CELLS",
    "CONFIG_VERSION",
    "PRECISIONS",
    "TARGET_TRANSFORMS",
    "TUTORIAL_ROWS",
    "BacktestConfig",
    "DataConfig",
    "ModelConfig",
    "RunConfig",
    "TrainConfig",
    "check_count",
    "check_date",
    "check_levels",
    "check_split",
    "feature_names",
    "flag",
    "minimum_calibration",
    "option_text",
    "parse_levels",
    "preset",
]

BUNDLED_CSV = Path(__file__).resolve().parents[1] / "data" / "GOOG.csv"
"""The bundled public-domain GOOG prices (see data/README.md), used when no CSV is given."""
TUTORIAL_ROWS = 230
"""Rows of the bundled CSV used by default: its last 230, the length of the tutorial's window."""
CONFIG_VERSION = 5
"""Version of the ``config.json`` schema; 1 is the unversioned format of runs written before it, 2 lacks the
horizon (``data.horizon``, ``data.strategy``, ``model.outputs``) and the bands (``backtest.levels``,
``backtest.mc_dropout``, ``backtest.calibration_window``), 3 the precision (``model.precision``), 4 the cell
(``model.cell``)."""

Architecture = Literal["vanilla", "stacked", "bidirectional", "conv"]
ARCHITECTURES: tuple[str, ...] = ("vanilla", "stacked", "bidirectional", "conv")
Cell = Literal["lstm", "gru", "rnn", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr"]
CELLS: tuple[str, ...] = ("lstm", "gru", "rnn", "peephole", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr")
"""The recurrent cells (:mod:`jaxlstm.nn`): the LSTM, the GRU, the tanh RNN and the LSTM variants of Greff et al.
(``jaxlstm.nn.VARIANTS``)."""
MissingPolicy = Literal["error", "drop", "ffill"]
Implementation = Literal["fused", "textbook"]
Convolution = Literal["gemm", "xla"]
Precision = Literal["float32", "bfloat16", "float16"]
PRECISIONS: tuple[str, ...] = ("float32", "bfloat16", "float16")
Optimizer = Literal["adam", "keras_adam"]
TargetTransform = Literal["level", "diff", "log-return"]
TARGET_TRANSFORMS: tuple[str, ...] = ("level", "diff", "log-return")
Strategy = Literal["direct", "recursive"]


# --- one rule per kind of value -------------------------------------------------------------------------------


def flag(name: str) -> str:
    """The command-line flag of a config field: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _quoted(value: Any) -> str:
    """A bad value for a message: numbers as they are, anything else quoted (``--window '60'``)."""
    return str(value) if isinstance(value, numbers.Number) else repr(value)


def option_text(value: Any) -> str:
    """A setting as the command line spells it: ``0.8,0.95`` for a tuple, ``true``/``false`` for a flag."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_count(name: str, value: Any, example: int) -> None:
    """ConfigError unless ``value`` is a whole number >= 1 (``name`` is the flag, e.g. ``--epochs``)."""
    if not _is_integer(value) or value < 1:
        raise ConfigError(f"{name} {_quoted(value)}: must be a whole number >= 1, e.g. {name} {example}")


def _check_positive(name: str, value: Any, example: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < math.inf:
        raise ConfigError(f"{name} {_quoted(value)}: must be a finite number > 0, e.g. {name} {example}")


def _check_fraction(name: str, value: Any, example: float) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ConfigError(f"{name} {_quoted(value)}: must be at least 0 and below 1, e.g. {name} {example}")


def _check_seed(name: str, value: Any, example: int) -> None:
    if not _is_integer(value) or not 0 <= value < 2**32:
        raise ConfigError(
            f"{name} {_quoted(value)}: must be a whole number from 0 to {2**32 - 1}, e.g. {name} {example}"
        )


def _check_flag(name: str, value: Any, example: bool) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} {value!r}: must be true or false, e.g. {name} {str(example).lower()}")


def _check_text(name: str, value: Any, example: str) -> None:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} {value!r}: must be a name, e.g. {name} {example}")


def check_date(name: str, value: Any, example: str = "2020-04-01") -> None:
    """ConfigError unless ``value`` is a ``YYYY-MM-DD`` date: the one check of every date option."""
    try:
        datetime.strptime(value, "%Y-%m-%d")
    except (TypeError, ValueError):
        raise ConfigError(f"{name} {value!r} is not a date; write it as YYYY-MM-DD, e.g. {name} {example}") from None


def check_levels(name: str, value: Any, example: str = "0.8,0.95") -> None:
    """ConfigError unless ``value`` is one or more distinct interval coverages, each strictly between 0 and 1."""
    levels = tuple(value) if isinstance(value, tuple | list) else (value,)
    bad = [level for level in levels if isinstance(level, bool) or not isinstance(level, numbers.Real)]
    bad += [level for level in levels if level not in bad and not 0 < level < 1]
    if not levels or bad or len(set(levels)) < len(levels):
        shown = ",".join(map(str, levels))
        problem = (
            "name at least one level"
            if not levels
            else "each level must lie strictly between 0 and 1"
            if bad
            else "list each level once"
        )
        raise ConfigError(f"{name} {shown}: {problem}, e.g. {name} {example}")


def minimum_calibration(level: float) -> int:
    """The fewest calibration errors that give a finite split conformal interval at ``level``: ``ceil((n + 1) level)
    <= n``, so ``n >= level / (1 - level)`` (19 for 95%, 4 for 80%)."""
    return math.ceil(level / (1 - level) - 1e-9)


def check_split(split: Any) -> None:
    """ConfigError unless ``split`` is a number of training rows (>= 1) or a fraction in (0, 1)."""
    if isinstance(split, bool) or not isinstance(split, numbers.Real):
        raise ConfigError(f"--split {split!r}: must be a number of training rows or a fraction in (0, 1)")
    if _is_integer(split) and split < 1:
        raise ConfigError(f"split={split} must be >= 1 training rows (the tutorial uses 172)")
    if not _is_integer(split) and not 0 < split < 1:
        raise ConfigError(f"split={split} as a fraction must lie in (0, 1), e.g. 0.75; or pass a row count")


def feature_names(features: Any) -> tuple[str, ...]:
    """The input columns as a tuple (a single name is accepted); ConfigError when empty or repeating a column."""
    names = (features,) if isinstance(features, str) else tuple(features)
    if not names or not all(isinstance(name, str) and name for name in names):
        raise ConfigError(
            "--features names no column; pass at least one, e.g. --features Open or --features Open,Close"
        )
    if len(set(names)) < len(names):
        raise ConfigError(f"features {', '.join(names)} repeats a column; list each column once")
    return names


_RULES = {
    "count": check_count,
    "positive": _check_positive,
    "fraction": _check_fraction,
    "seed": _check_seed,
    "flag": _check_flag,
    "text": _check_text,
    "date": check_date,
    "levels": check_levels,
}


def _parse_columns(text: str) -> tuple[str, ...]:
    """``"Open, Close"`` -> ``("Open", "Close")``."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def parse_levels(text: str) -> tuple[float | str, ...]:
    """``"0.8,0.95"`` -> ``(0.8, 0.95)``; a part that is no number stays text, for :func:`check_levels` to name."""

    def number(part: str) -> float | str:
        try:
            return float(part)
        except ValueError:
            return part

    return tuple(number(part.strip()) for part in text.split(",") if part.strip())


def _parse_split(text: str) -> int | float:
    """``"172"`` -> 172 rows, ``"0.75"`` -> a fraction."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _option(
    default: Any, rule: str | None, help: str, *, example: Any = None, choices: tuple = (), **extra: Any
) -> Any:
    """A dataclass field with its command-line flag's help, its range rule and an example value for messages."""
    metadata = {"rule": rule, "help": help, "example": default if example is None else example, "choices": choices}
    return field(default=default, metadata={**metadata, **extra})


def _validate(config: Any) -> None:
    """Applies each field's rule (None passes for optional fields) and choices, in field order."""
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        name = item.metadata.get("flag", flag(item.name))
        if value is None and item.metadata.get("optional"):
            continue
        rule = item.metadata.get("rule")
        if rule is not None:
            _RULES[rule](name, value, item.metadata["example"])
        choices = item.metadata.get("choices")
        if choices and value not in choices:
            raise ConfigError(
                f"{name} {value!r}: unknown {item.name.replace('_', ' ')}; use one of {', '.join(choices)}"
            )


class _Section:
    """JSON conversion shared by the three sections of a run configuration."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: paths as strings, tuples as lists."""
        content = {}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            content[item.name] = (
                str(value) if isinstance(value, Path) else list(value) if isinstance(value, tuple) else value
            )
        return content

    @classmethod
    def from_dict(cls, content: Any, *, source: str, section: str) -> Any:
        """The section from ``content``; RunError naming ``source`` and the key when one is unknown or missing."""
        if not isinstance(content, dict):
            raise RunError(
                f"{source}: '{section}' must be a JSON object, got {type(content).__name__}; train the run again"
            )
        names = [item.name for item in dataclasses.fields(cls)]
        unknown = [key for key in content if key not in names]
        if unknown:
            raise RunError(
                f"{source}: unknown key '{section}.{unknown[0]}'; remove it, or use the jaxlstm that wrote the run"
            )
        missing = [name for name in names if name not in content]
        if missing:
            raise RunError(f"{source}: missing key '{section}.{missing[0]}'; add it, or train the run again")
        try:
            return cls(**content)
        except ConfigError as error:
            raise RunError(f"{source}: '{section}': {error}") from None


# --- the three sections ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig(_Section):
    """Which rows of which CSV, and how they become windows; the defaults are the tutorial's.

    With no ``csv``, ``start``, ``end`` or ``last_rows``, the data are the last :data:`TUTORIAL_ROWS` rows of the
    bundled :data:`BUNDLED_CSV` (see :meth:`rows_kept`). A trained run records its data resolved by
    :func:`jaxlstm.data.record`: the CSV's absolute path, the first and last dates kept, and ``sha256``, a digest of
    the training windows that ``--resume`` checks.

    Attributes:
        csv: Yahoo daily CSV; None for the bundled GOOG data.
        start, end: first and last dates kept, ``YYYY-MM-DD`` (None: no bound).
        last_rows: keep only the last N rows after the date filter.
        features: input columns.
        target: the column forecast.
        window: days of history per sample (Keras: timesteps).
        horizon: H, the days each window forecasts: the ``horizon`` rows after it.
        strategy: how a window forecasts H days: ``direct``, a Dense(H) head gives all of them at once (its model has
            ``outputs`` H); ``recursive``, a one-day model whose forecast is fed back as the next day's input, H
            times. Only the target can be fed back, so ``recursive`` needs the target as the one feature.
        split: training rows (int), or a fraction of the rows (float).
        missing: rows with null values: ``error``, ``drop`` or ``ffill``.
        sha256: digest of the training windows, recorded by ``jaxlstm train``.
    """

    csv: Path | None = _option(
        None, None, f"Yahoo daily CSV (default: bundled {BUNDLED_CSV.name}, its last {TUTORIAL_ROWS} rows)", parse=Path
    )
    start: str | None = _option(None, "date", "first date kept, YYYY-MM-DD", example="2020-04-01", optional=True)
    end: str | None = _option(None, "date", "last date kept, YYYY-MM-DD", example="2021-03-01", optional=True)
    last_rows: int | None = _option(
        None,
        "count",
        "keep only the last N rows after the date filter",
        example=TUTORIAL_ROWS,
        optional=True,
        parse=int,
    )
    features: tuple[str, ...] = _option(("Open",), None, "input columns, comma-separated", parse=_parse_columns)
    target: str = _option("Open", "text", "column to forecast")
    window: int = _option(60, "count", "past days per sample (Keras: timesteps)", parse=int)
    horizon: int = _option(1, "count", "days forecast from each window", parse=int)
    strategy: Strategy = _option(
        "direct",
        None,
        "multi-day forecasts: a Dense(horizon) head, or a one-day model fed its own forecasts",
        choices=("direct", "recursive"),
    )
    split: int | float = _option(172, None, "training rows (int) or fraction of rows (float)", parse=_parse_split)
    missing: MissingPolicy = _option("error", None, "rows with null values", choices=("error", "drop", "ffill"))
    sha256: str | None = _option(None, None, "", optional=True, cli=False)

    def __post_init__(self) -> None:
        if isinstance(self.csv, str):
            object.__setattr__(self, "csv", Path(self.csv))
        if self.csv is not None and not isinstance(self.csv, Path):
            raise ConfigError(f"--csv {self.csv!r}: must be a file path, e.g. --csv data/GOOG.csv")
        object.__setattr__(self, "features", feature_names(self.features))
        _validate(self)
        check_split(self.split)
        if self.strategy == "recursive" and self.features != (self.target,):
            unknown = [name for name in self.features if name != self.target]
            cannot = f"cannot forecast {', '.join(unknown)}" if unknown else f"needs {self.target} as an input"
            raise ConfigError(
                f"--strategy recursive feeds each forecast back as the next day's {self.target}, but {cannot}; "
                f"use --strategy direct, or --features {self.target}"
            )

    @property
    def outputs(self) -> int:
        """The values a model forecasts per window: ``horizon`` for ``direct``, 1 for ``recursive``."""
        return self.horizon if self.strategy == "direct" else 1

    @property
    def path(self) -> Path:
        """The CSV to read: ``csv``, or the bundled GOOG file."""
        return BUNDLED_CSV if self.csv is None else self.csv

    def rows_kept(self) -> int | None:
        """How many of the last rows to keep: ``last_rows``, or the tutorial's 230 of the bundled data when nothing
        else chooses the rows."""
        if self.csv is None and self.start is None and self.end is None and self.last_rows is None:
            return TUTORIAL_ROWS
        return self.last_rows


@dataclass(frozen=True)
class ModelConfig(_Section):
    """Everything needed to rebuild a :class:`~jaxlstm.nn.Forecaster`, fast-path choices included.

    Attributes:
        arch: ``vanilla`` (one LSTM layer), ``stacked``, ``bidirectional`` or ``conv`` (ConvLSTM1D layers over
            sub-sequences of the window, see :mod:`jaxlstm.nn.convlstm`).
        cell: the recurrent cell of every layer (:data:`CELLS`): ``lstm`` (:class:`~jaxlstm.nn.LSTM`, fast path),
            ``gru`` (:class:`~jaxlstm.nn.GRU`), ``rnn`` (:class:`~jaxlstm.nn.SimpleRNN`) or one of Greff et al.'s
            LSTM variants (:class:`~jaxlstm.nn.LSTMVariant`); ``conv`` takes ``lstm`` only.
        layers: number of recurrent layers.
        units: H, the units of each LSTM (per direction); the filters of each ConvLSTM.
        dropout: rate of the dropout after every recurrent layer.
        n_features: size of each input vector (1 for the tutorial's ``Open`` column).
        outputs: units of the Dense head, the days forecast at once (:attr:`DataConfig.outputs`).
        subsequence_length: ``conv`` only: days per ConvLSTM step (a 60-day window is read as 4 steps of 15 days).
        kernel_size: ``conv`` only: width of the ConvLSTM kernels, in days ("valid" padding).
        implementation: LSTM layers: ``fused`` (the fast path of :mod:`jaxlstm.nn.fused`) or ``textbook`` (a scan of
            :func:`jaxlstm.nn.lstm_step`, differentiated by JAX); both compute the same function and gradients.
        hoist_input: LSTM layers, fused path: compute the input projection for all steps before the loop.
        unroll: time steps per loop iteration of ``jax.lax.scan``.
        convolution: ConvLSTM layers: ``gemm`` (im2col and one matmul) or ``xla`` (``lax.conv_general_dilated``).
        precision: the compute dtype of the layers and the head. ``float32``; or ``bfloat16`` / ``float16``
            (mixed precision): weights, optimizer state, cell state, loss and forecasts stay float32, the matmuls,
            gates and ``h`` are computed in the lower precision.
    """

    arch: Architecture = _option("stacked", None, "LSTM variant", choices=ARCHITECTURES)
    cell: Cell = _option(
        "lstm",
        None,
        "recurrent cell: lstm (the fast path), gru, rnn (tanh), or a Greff et al. 2017 LSTM variant (peephole, nig, "
        "nfg, nog, niaf, noaf, np, cifg, fgr; docs/lab.md)",
        choices=CELLS,
    )
    layers: int = _option(4, "count", "recurrent layers (default: 1 for vanilla and conv, else 4)", parse=int)
    units: int = _option(50, "count", "units per LSTM layer (default: 50; conv: 64 filters)", parse=int)
    dropout: float = _option(0.2, "fraction", "dropout rate after each recurrent layer (default: 0.2)", parse=float)
    n_features: int = _option(1, "count", "", cli=False)
    outputs: int = _option(1, "count", "", cli=False)
    subsequence_length: int = _option(15, "count", "conv: days per ConvLSTM step (default: 15)", parse=int)
    kernel_size: int = _option(3, "count", "conv: ConvLSTM kernel width in days (default: 3)", parse=int)
    implementation: Implementation = _option(
        "fused", None, "LSTM layers: the fused fast path or the textbook scan", choices=("fused", "textbook")
    )
    hoist_input: bool = _option(True, "flag", "fused LSTM: input projection as one matmul before the loop")
    unroll: int = _option(1, "count", "time steps per loop iteration of lax.scan", parse=int)
    convolution: Convolution = _option("gemm", None, "ConvLSTM: how convolutions are computed", choices=("gemm", "xla"))
    precision: Precision = _option(
        "float32", None, "compute dtype; bfloat16/float16 keep float32 weights and cell state", choices=PRECISIONS
    )

    def __repr__(self) -> str:
        """The architecture's fields; the ConvLSTM's only for ``conv``, the fast-path choices only when not default."""
        shown = [
            item.name
            for item in dataclasses.fields(self)
            if item.name in _CORE_FIELDS
            or (item.name in _CONV_FIELDS and self.arch == "conv")
            or (item.name not in _CONV_FIELDS and getattr(self, item.name) != item.default)
        ]
        return f"ModelConfig({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    def __post_init__(self) -> None:
        _validate(self)
        if self.arch == "vanilla" and self.layers != 1:
            raise ConfigError(f"the vanilla architecture has one layer, got layers={self.layers}; use --arch stacked")
        if self.arch == "conv" and self.cell != "lstm":
            raise ConfigError(
                f"the conv architecture is a ConvLSTM; --cell {self.cell} needs --arch vanilla, stacked or "
                "bidirectional"
            )
        if self.arch == "conv" and self.subsequence_length - self.layers * (self.kernel_size - 1) < 1:
            raise ConfigError(
                f"{self.layers} ConvLSTM layer(s) with kernel {self.kernel_size} leave no day of a "
                f"{self.subsequence_length}-day sub-sequence; use fewer layers or a smaller kernel"
            )


_CORE_FIELDS = ("arch", "layers", "units", "dropout", "n_features")
_CONV_FIELDS = ("subsequence_length", "kernel_size", "convolution")


def preset(
    arch: Architecture,
    *,
    layers: int | None = None,
    units: int | None = None,
    dropout: float | None = None,
    n_features: int = 1,
    outputs: int = 1,
    **fast_path: Any,
) -> ModelConfig:
    """The tutorial's model for ``arch``, with any field overridden (None keeps the preset's value).

    ==============  ====================================================================  ==========
    preset          layers                                                                parameters
    ==============  ====================================================================  ==========
    vanilla         LSTM(50), Dropout(0.2), Dense(1)                                          10,451
    stacked         4 x [LSTM(50), Dropout(0.2)], Dense(1)                                    71,051
    bidirectional   4 x [Bidirectional(LSTM(50)), Dropout(0.2)], Dense(1)                    202,101
    conv            4 x 15 days, ConvLSTM1D(64, 3), Dropout(0.2), Flatten, Dense(1)           51,009
    ==============  ====================================================================  ==========

    ``outputs`` > 1 widens the head to Dense(outputs); ``fast_path`` sets the other fields of :class:`ModelConfig`
    (``implementation``, ``unroll``, ...).
    """
    return ModelConfig(
        arch=arch,
        layers=(1 if arch in ("vanilla", "conv") else 4) if layers is None else layers,
        units=(64 if arch == "conv" else 50) if units is None else units,
        dropout=0.2 if dropout is None else dropout,
        n_features=n_features,
        outputs=outputs,
        **{name: value for name, value in fast_path.items() if value is not None},
    )


@dataclass(frozen=True)
class TrainConfig(_Section):
    """Hyperparameters of :func:`jaxlstm.training.fit`; the defaults are the tutorial's (Keras's ``model.fit``).

    Attributes:
        epochs: passes over the training windows.
        batch_size: windows per Adam step; the last partial batch is kept. A batch size above the number of
            windows trains on all of them as one batch, as Keras does.
        learning_rate: Adam's step size.
        adam_epsilon: Adam's epsilon. The default is Keras's 1e-7 (optax's own default is 1e-8).
        seed: seeds the weights, the shuffling and the dropout masks.
        validation_split: fraction of the training windows, the *last* ones chronologically, held out to
            watch the validation loss (as Keras's ``validation_split``); 0 holds out nothing.
        patience: with a validation split, stop after this many epochs without a better validation loss
            and restore the best weights (Keras's ``EarlyStopping(restore_best_weights=True)``).
        clip_norm: clip each step's gradient to this global norm (off when None).
        optimizer: ``adam`` (optax's Adam, the default) or ``keras_adam`` (:func:`jaxlstm.training.keras_adam`,
            Keras's Adam to the last rounding). The two differ by far less than the run to run noise.
        shuffle: reshuffle the windows every epoch (Keras's ``fit(shuffle=True)``); False keeps their order.
        devices: split each batch over this many devices (data parallel; see :func:`jaxlstm.training.split_devices`
            for the default). The same seed gives the same result for the same number of devices.
    """

    epochs: int = _option(100, "count", "passes over the training windows", parse=int)
    batch_size: int = _option(32, "count", "windows per Adam step", parse=int)
    learning_rate: float = _option(1e-3, "positive", "Adam learning rate", flag="--lr", parse=float)
    adam_epsilon: float = _option(1e-7, "positive", "Adam epsilon (Keras: 1e-7)", parse=float)
    seed: int = _option(0, "seed", "seeds weights, shuffling and dropout", parse=int)
    validation_split: float = _option(0.0, "fraction", "last fraction of windows held out", example=0.1, parse=float)
    patience: int | None = _option(
        None,
        "count",
        "early stopping patience in epochs (needs --validation-split)",
        example=10,
        optional=True,
        parse=int,
    )
    clip_norm: float | None = _option(
        None, "positive", "clip gradients to this global norm", example=1.0, optional=True, parse=float
    )
    optimizer: Optimizer = _option(
        "adam", None, "optax's Adam or Keras's, to the last rounding", choices=("adam", "keras_adam")
    )
    shuffle: bool = _option(True, "flag", "reshuffle the windows every epoch")
    devices: int | None = _option(
        None,
        "count",
        "split each batch over N devices (default: one per 16 samples, up to the cores)",
        optional=True,
        example=1,
        parse=int,
    )

    def __post_init__(self) -> None:
        _validate(self)
        if self.patience is not None and self.validation_split == 0.0:
            raise ConfigError("patience needs a validation split: pass --validation-split, e.g. --validation-split 0.1")


@dataclass(frozen=True)
class BacktestConfig(_Section):
    """The folds of a walk-forward backtest (:mod:`jaxlstm.forecasting.backtest`) and the models trained in each.

    Fold ``k`` has a cutoff, its first test day. Its model trains on the rows before the cutoff (the last
    ``train_days`` of them, or all of them with ``expanding``), with its scaler fit on those rows only, and forecasts
    each of its ``test_days`` test days one step ahead from the actual history before that day. The folds follow one
    another, ``test_days`` apart: the last one ends with the data, unless ``first_cutoff`` sets where the first
    begins.

    Attributes:
        folds: K, the number of folds.
        test_days: D, the test days of each fold.
        train_days: the rows each fold trains on (a rolling window), ignored with ``expanding``.
        expanding: train each fold on every row before its cutoff.
        first_cutoff: the first test day of the first fold, ``YYYY-MM-DD`` (None: step back from the end).
        seeds: S, the models per fold, seeded ``seed``, ``seed + 1``, ... (``TrainConfig.seed``); the fold's
            forecast is their mean.
        mc_dropout: with a number N, each model also forecasts N times with its dropout on (Monte Carlo dropout),
            the draws of a fold's models making a fourth kind of band; None: not.
        calibration_window: with a number N, each conformal band is calibrated on the last N errors of its step
            only (a rolling calibration set); None: on every earlier error.
        levels: the coverages of the prediction intervals whose calibration the backtest measures
            (:mod:`jaxlstm.forecasting.calibration`).
        target_transform: ``level``, the tutorial's: the models see and predict prices; ``diff`` or
            ``log-return``: they see and predict the day-over-day changes of every feature and of the target
            (:func:`jaxlstm.data.to_changes`), and each forecast becomes a price from the day before's actual price.
            Forecasts are always scored in price units.
    """

    folds: int = _option(5, "count", "walk-forward folds", parse=int)
    test_days: int = _option(20, "count", "test days of each fold", parse=int)
    train_days: int = _option(172, "count", "rows each fold trains on, before its cutoff (a rolling window)", parse=int)
    expanding: bool = _option(False, "flag", "train each fold on every row before its cutoff instead")
    first_cutoff: str | None = _option(
        None, "date", "first test day of the first fold (default: the folds end with the data)", optional=True
    )
    seeds: int = _option(
        5, "count", "models per fold (seeds seed, seed + 1, ...); the forecast is their mean", parse=int
    )
    target_transform: TargetTransform = _option(
        "level",
        None,
        "what the models learn and predict: prices, or their daily diff or log-return (scored in prices)",
        choices=TARGET_TRANSFORMS,
    )
    mc_dropout: int | None = _option(
        None,
        "count",
        "Monte Carlo dropout: forecasts per model with dropout on, for a fourth kind of band (default: none)",
        example=50,
        optional=True,
        parse=int,
    )
    calibration_window: int | None = _option(
        None,
        "count",
        "conformal bands: calibrate on the last N errors of each step only (default: every earlier error)",
        example=100,
        optional=True,
        parse=int,
    )
    levels: tuple[float, ...] = _option(
        (0.8, 0.95),
        "levels",
        "coverages of the prediction intervals calibrated, comma-separated",
        example="0.8,0.95",
        parse=parse_levels,
    )

    def __post_init__(self) -> None:
        if isinstance(self.levels, list):
            object.__setattr__(self, "levels", tuple(self.levels))
        _validate(self)
        need = minimum_calibration(max(self.levels))
        if self.calibration_window is not None and self.calibration_window < need:
            raise ConfigError(
                f"--calibration-window {self.calibration_window}: conformal bands at {100 * max(self.levels):g}% "
                f"need at least {need} errors; use --calibration-window {need} or more, or lower --levels"
            )


# --- the whole run -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunConfig:
    """A run's whole configuration, as ``config.json`` holds it.

    Attributes:
        data: the rows and windows.
        model: the forecaster.
        train: how it was trained; None for a run converted from another framework's weights.
        converted_from: for a converted run, ``{"format": "keras", "path": ...}``.
        backtest: for a walk-forward backtest (``jaxlstm backtest``), its folds and seeds.
    """

    data: DataConfig
    model: ModelConfig
    train: TrainConfig | None
    converted_from: dict[str, str] | None = None
    backtest: BacktestConfig | None = None

    def to_dict(self) -> dict[str, Any]:
        """The versioned, JSON-ready content of ``config.json``."""
        content = {
            "version": CONFIG_VERSION,
            "data": self.data.to_dict(),
            "model": self.model.to_dict(),
            "train": None if self.train is None else self.train.to_dict(),
        }
        if self.converted_from is not None:
            content["converted_from"] = dict(self.converted_from)
        if self.backtest is not None:
            content["backtest"] = self.backtest.to_dict()
        return content

    @classmethod
    def from_dict(cls, content: Any, *, source: str) -> "RunConfig":
        """Reads :meth:`to_dict`'s content (or an older run's); RunError naming ``source`` and the first unknown or
        missing key, or the value out of range."""
        if not isinstance(content, dict):
            raise RunError(f"{source}: not a jaxlstm run configuration (a JSON object); train the run again")
        content = dict(content)
        version = content.pop("version", 1)
        if version == 1:
            content = _upgrade_version_1(content)
        elif version in (2, 3, 4):
            if version == 2:
                content = _upgrade_version_2(content)
            if version < 4:
                content = _model_defaults(content, precision="float32")
            content = _model_defaults(content, cell="lstm")
        elif version != CONFIG_VERSION:
            raise RunError(
                f"{source}: configuration version {version!r}; this jaxlstm reads versions 1 to {CONFIG_VERSION}, "
                f"upgrade jaxlstm to read it"
            )
        known = ("data", "model", "train", "converted_from", "backtest")
        unknown = [key for key in content if key not in known]
        if unknown:
            raise RunError(f"{source}: unknown key '{unknown[0]}'; remove it, or use the jaxlstm that wrote the run")
        missing = [key for key in known[:3] if key not in content]
        if missing:
            raise RunError(f"{source}: missing key '{missing[0]}'; train the run again")
        train = content["train"]
        return cls(
            data=DataConfig.from_dict(content["data"], source=source, section="data"),
            model=ModelConfig.from_dict(content["model"], source=source, section="model"),
            train=None if train is None else TrainConfig.from_dict(train, source=source, section="train"),
            converted_from=content.get("converted_from"),
            backtest=None
            if "backtest" not in content
            else BacktestConfig.from_dict(content["backtest"], source=source, section="backtest"),
        )


def _upgrade_version_1(content: dict[str, Any]) -> dict[str, Any]:
    """Version 1 (no ``version`` key) lacked the fields added since; they take their defaults, which are what
    those runs used."""
    upgraded = dict(content)
    for key, cls in (("data", DataConfig), ("model", ModelConfig), ("train", TrainConfig)):
        section = content.get(key)
        if isinstance(section, dict):
            defaults = {item.name: cls.__dataclass_fields__[item.name].default for item in dataclasses.fields(cls)}
            upgraded[key] = {**_json_defaults(defaults), **section}
    return upgraded


def _upgrade_version_2(content: dict[str, Any]) -> dict[str, Any]:
    """Version 2 forecast one day (``horizon`` 1, ``strategy`` direct, ``outputs`` 1) and its backtests calibrated
    the default levels."""
    upgraded = dict(content)
    added_in_3 = (
        ("data", {"horizon": 1, "strategy": "direct"}),
        ("model", {"outputs": 1}),
        ("backtest", {"levels": [0.8, 0.95], "mc_dropout": None, "calibration_window": None}),
    )
    for key, added in added_in_3:
        if isinstance(content.get(key), dict):
            upgraded[key] = {**added, **content[key]}
    return upgraded


def _model_defaults(content: dict[str, Any], **added: Any) -> dict[str, Any]:
    """``content`` with the model fields added since its version at the values those runs used: version 3 computed
    in float32 (``precision``), version 4 had LSTM cells only (``cell``)."""
    upgraded = dict(content)
    if isinstance(content.get("model"), dict):
        upgraded["model"] = {**added, **content["model"]}
    return upgraded


def _json_defaults(defaults: dict[str, Any]) -> dict[str, Any]:
    return {name: list(value) if isinstance(value, tuple) else value for name, value in defaults.items()}
