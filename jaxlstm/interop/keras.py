"""Keras: reading ``.keras`` and ``.weights.h5`` files (h5py) and live Keras models into jaxlstm models, and back;
Keras ``GRU`` layers into jaxlstm GRUs, and back."""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from flax import nnx

from jaxlstm.config import ModelConfig, preset
from jaxlstm.fileio import atomic_path
from jaxlstm.interop.peer import (
    InteropError,
    M,
    Module,
    PeerLayer,
    PeerModel,
    as_array,
    check_and_assign,
    describe,
    directions_of,
    filled,
    infer_config,
    module_parts,
    peer_dropout,
    select_layer,
    shape_of,
)
from jaxlstm.nn.cell import LSTMParams
from jaxlstm.nn.gru import GRU
from jaxlstm.nn.layers import MERGE_MODES, Bidirectional
from jaxlstm.nn.models import Forecaster

if TYPE_CHECKING:  # pragma: no cover
    import keras


__all__ = [
    "KERAS_SUFFIXES",
    "from_keras",
    "keras_gru_weights",
    "keras_model_config",
    "keras_weights",
    "load_keras",
    "load_keras_gru",
    "save_keras",
    "to_keras",
]

KERAS_SUFFIXES = (".keras", ".weights.h5")


# --------------------------------------------------------------------------------------------------------------
# Keras: reading files (h5py) and live models into the neutral view.


@dataclass(frozen=True)
class _KerasRecord:
    """One Keras layer: its class, name, config (None when unknown) and weights in ``get_weights()`` order."""

    class_name: str
    name: str
    config: dict[str, Any] | None
    weights: list[np.ndarray]


def _snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``, which names the layers' groups inside ``.weights.h5``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_H5_CLASSES = {"lstm": "LSTM", "bidirectional": "Bidirectional", "dense": "Dense", "dropout": "Dropout"}
_H5_GROUP = re.compile(r"^(?P<kind>[a-z0-9_]+?)(?:_(?P<index>\d+))?$")


def _keras_biases(class_name: str, config: dict[str, Any] | None) -> tuple[bool, bool]:
    """Whether the forward and the backward LSTM of a layer have a bias (``use_bias``; True without a config)."""
    if config is None:
        return True, True
    if class_name != "Bidirectional":
        return (config.get("use_bias", True),) * 2
    forward = config.get("layer", {}).get("config", {}).get("use_bias", True)
    return forward, (config.get("backward_layer") or {}).get("config", {}).get("use_bias", forward)


def _h5_weights(group: Any, class_name: str, where: str, config: dict[str, Any] | None = None) -> list[np.ndarray]:
    """The weights of one layer's group in Keras 3's ``.weights.h5`` layout, in ``get_weights()`` order; ``config``,
    the layer's own from a ``.keras`` file, says whether its LSTMs have a bias."""
    forward, backward = (range(3 if bias else 2) for bias in _keras_biases(class_name, config))
    paths = {
        "LSTM": [f"cell/vars/{i}" for i in forward],
        "Bidirectional": [
            *(f"forward_layer/cell/vars/{i}" for i in forward),
            *(f"backward_layer/cell/vars/{i}" for i in backward),
        ],
        "Dense": ["vars/0", "vars/1"],
    }.get(class_name)
    if paths is None:
        datasets: list[str] = []
        if group is not None:
            group.visit(lambda name: datasets.append(name) if hasattr(group[name], "shape") else None)
        if datasets:
            raise InteropError(f"{where} holds weights ({', '.join(datasets)}) jaxlstm cannot map")
        return []
    if group is None:
        raise InteropError(f"{where} is missing from the weights file")
    missing = [path for path in paths if path not in group]
    if missing:
        raise InteropError(
            f"{where} lacks {', '.join(missing)}: not Keras 3's {class_name} layout (a layer with use_bias=False "
            f"needs its .keras file, whose config says so)"
        )
    return [as_array(group[path][()]) for path in paths]


def _records_from_h5(h5: Any, config_layers: list[dict[str, Any]] | None, source: str) -> list[_KerasRecord]:
    if "layers" not in h5:
        raise InteropError(
            f"{source} has no 'layers' group: not a Keras 3 weights file (a Keras 2 .h5? load and re-save it with "
            "Keras 3 as .keras)"
        )
    groups = h5["layers"]
    records = []
    if config_layers is not None:  # the .keras config gives the order; name the groups as Keras's saver does
        used: dict[str, int] = {}
        for layer in config_layers:
            class_name = layer.get("class_name", "?")
            base = _snake_case(class_name)
            used[base] = used.get(base, -1) + 1
            group_name = base if used[base] == 0 else f"{base}_{used[base]}"
            config = layer.get("config", {})
            name = config.get("name", group_name)
            where = f"{source} layer {name!r} (layers/{group_name})"
            group = groups.get(group_name)
            weights = [] if class_name == "InputLayer" else _h5_weights(group, class_name, where, config)
            records.append(_KerasRecord(class_name, name, config, weights))
        return records
    # A bare .weights.h5 stores no config: order the groups by their index suffix, kind by kind.
    found: dict[str, list[tuple[int, str]]] = {}
    for group_name in groups:
        match = _H5_GROUP.match(group_name)
        kind = match["kind"] if match else group_name
        if kind == "input_layer":
            continue
        if kind not in _H5_CLASSES:
            raise InteropError(
                f"{source} holds a layer {group_name!r} jaxlstm cannot map; it maps LSTM, Bidirectional(LSTM), "
                "Dropout and Dense"
            )
        found.setdefault(kind, []).append((int(match["index"] or 0), group_name))
    if "lstm" in found and "bidirectional" in found:
        raise InteropError(
            f"{source} mixes LSTM and Bidirectional layers, whose order a bare weights file does not record; "
            "convert the .keras file instead"
        )
    if len(found.get("dense", [])) > 1:
        raise InteropError(
            f"{source} holds {len(found['dense'])} Dense layers; a jaxlstm Forecaster ends with one Dense head"
        )
    for kind in ("lstm", "bidirectional", "dense"):
        for _, group_name in sorted(found.get(kind, [])):
            class_name = _H5_CLASSES[kind]
            where = f"{source} layer {group_name!r}"
            records.append(
                _KerasRecord(class_name, group_name, None, _h5_weights(groups[group_name], class_name, where))
            )
    return records


def _h5py() -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with keras
        raise InteropError("reading Keras files needs h5py: pip install h5py") from None
    return h5py


def _records_from_file(path: Path) -> tuple[list[_KerasRecord], str]:
    """Reads a ``.keras`` archive (config and weights) or a ``.weights.h5`` file (weights only)."""
    source = f"Keras file {path}"
    if not path.is_file():
        raise InteropError(f"{path} does not exist or is not a file; give a .keras or .weights.h5 file")
    h5py = _h5py()
    try:
        if path.name.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
                weights = archive.read("model.weights.h5")
            layers = config.get("config", {}).get("layers")
            if not isinstance(layers, list):
                raise InteropError(
                    f"{path} holds a {config.get('class_name', '?')} model, not a Sequential or functional stack of "
                    "layers"
                )
            with h5py.File(io.BytesIO(weights), "r") as h5:
                return _records_from_h5(h5, layers, source), source
        if path.name.endswith(".h5"):
            with h5py.File(path, "r") as h5:
                return _records_from_h5(h5, None, source), source
    except (zipfile.BadZipFile, KeyError, OSError, json.JSONDecodeError) as error:
        raise InteropError(f"{path} is not a readable Keras 3 file ({error}); re-save it with model.save()") from None
    raise InteropError(f"{path}: unknown Keras file type; give a .keras or .weights.h5 file")


def _records_from_keras(source: Any) -> tuple[list[_KerasRecord], str]:
    """A live ``keras.Model`` (its layers) or a single ``keras.layers.LSTM`` / ``Bidirectional`` layer."""
    import keras

    if isinstance(source, keras.Model):
        layers, name = list(source.layers), f"Keras model {source.name!r}"
    elif isinstance(source, keras.layers.Layer):
        layers, name = [source], f"Keras layer {source.name!r}"
    else:
        raise TypeError(f"expected a Keras file path, keras.Model or Keras layer, got {type(source).__name__}")
    records = []
    for layer in layers:
        class_name = type(layer).__name__
        weights = [as_array(w) for w in layer.get_weights()]
        if class_name in ("LSTM", "Bidirectional", "Dense") and not weights:
            raise InteropError(
                f"Keras layer {layer.name!r} has no weights yet: build the model (give it a keras.Input or call it)"
            )
        records.append(_KerasRecord(class_name, layer.name, layer.get_config(), weights))
    return records, name


def _check_keras_lstm(config: dict[str, Any] | None, where: str, *, backwards: bool | None = None) -> None:
    """InteropError for a setting that changes what the weights compute. ``return_state`` changes neither the
    weights nor the outputs used, ``use_bias=False`` is a zero bias (:func:`_keras_params`), the dropouts are the
    LSTM's own (:func:`_keras_own_dropout`) and ``go_backwards`` is ``reverse=True``: a bidirectional layer's
    directions must read as ``backwards`` says (None: either way). ``stateful`` is a warning: the state is carried
    by passing it back (``return_state``, then ``initial_state``)."""
    if config is None:
        return
    checks = {"activation": "tanh", "recurrent_activation": "sigmoid"}
    if backwards is not None:
        checks["go_backwards"] = backwards
    for key, expected in checks.items():
        value = config.get(key, expected)
        if value != expected:
            raise InteropError(f"{where} has {key}={value!r}; jaxlstm's LSTM needs {key}={expected!r}")
    if config.get("stateful", False):
        warnings.warn(
            f"{where} has stateful=True; jaxlstm's layers start each call from the state they are given (zero by "
            "default): carry it by passing the final state of one call (return_state=True) as the next call's "
            "initial_state (the weights load unchanged)",
            stacklevel=2,
        )
    if backwards is None and config.get("go_backwards", False) and config.get("return_sequences", False):
        warnings.warn(
            f"{where} has go_backwards=True and return_sequences=True: Keras returns its outputs in reverse time "
            "order, jaxlstm's reverse=True layer aligned with the inputs (flip them with outputs[:, ::-1])",
            stacklevel=2,
        )


def _keras_own_dropout(config: dict[str, Any] | None) -> tuple[float, float] | None:
    """A Keras LSTM's ``(dropout, recurrent_dropout)``, None for an unknown config."""
    if config is None:
        return None
    rates = (float(config.get("dropout", 0.0)), float(config.get("recurrent_dropout", 0.0)))
    return tuple(rate if 0.0 < rate < 1.0 else 0.0 for rate in rates)  # Keras drops nothing at a rate of 0 or 1


def _keras_params(weights: list[np.ndarray], bias: bool) -> tuple[LSTMParams, int]:
    """The kernel, recurrent kernel and bias at the head of ``weights`` (without ``bias``, a zero bias, which
    computes the same), and how many arrays they took."""
    if bias:
        return LSTMParams(*weights[:3]), 3
    return LSTMParams(weights[0], weights[1], np.zeros(np.shape(weights[1])[1], np.asarray(weights[1]).dtype)), 2


_LABELS = ("kernel", "recurrent_kernel", "bias")
"""Keras's names of W, U and b, for messages."""


def _keras_lstm_layer(record: _KerasRecord, where: str) -> PeerLayer:
    """A Keras ``LSTM`` layer in the neutral view."""
    config = record.config
    _check_keras_lstm(config, where)
    params, _ = _keras_params(record.weights, _keras_biases("LSTM", config)[0])
    sequences = None if config is None else bool(config.get("return_sequences", False))
    reverse = config is not None and bool(config.get("go_backwards", False))
    return PeerLayer(
        where, (params,), _LABELS, return_sequences=sequences, reverse=reverse, own_dropout=_keras_own_dropout(config)
    )


def _keras_bidirectional_layer(record: _KerasRecord, where: str) -> PeerLayer:
    """A Keras ``Bidirectional(LSTM)`` layer in the neutral view; InteropError for another wrapped layer, a merge mode
    jaxlstm lacks, or directions with different dropouts."""
    config = record.config
    merge_mode = sequences = own_dropout = None
    if config is not None:
        merge_mode = config.get("merge_mode", "concat")
        if merge_mode not in MERGE_MODES:
            raise InteropError(f"{where} has merge_mode={merge_mode!r}; use one of {', '.join(MERGE_MODES)}")
        for key, backwards in (("layer", False), ("backward_layer", True)):
            inner = config.get(key)
            if inner is None:
                continue
            if inner.get("class_name") != "LSTM":
                raise InteropError(f"{where} wraps a {inner.get('class_name')}; jaxlstm maps LSTM only")
            inner_config = inner.get("config", {})
            _check_keras_lstm(inner_config, f"{where} ({key})", backwards=backwards)
            sequences = bool(inner_config.get("return_sequences", False))
            rates = _keras_own_dropout(inner_config)
            if own_dropout is not None and rates != own_dropout:
                raise InteropError(
                    f"{where}: its directions have different dropouts {own_dropout} and {rates}; jaxlstm's "
                    "Bidirectional LSTMs take one pair of rates"
                )
            own_dropout = rates
    forward_bias, backward_bias = _keras_biases("Bidirectional", config)
    forward, taken = _keras_params(record.weights, forward_bias)
    backward, _ = _keras_params(record.weights[taken:], backward_bias)
    return PeerLayer(
        where, (forward, backward), _LABELS, merge_mode=merge_mode, return_sequences=sequences, own_dropout=own_dropout
    )


def _keras_head(record: _KerasRecord, where: str) -> tuple[np.ndarray, np.ndarray]:
    """A Keras ``Dense`` head's kernel and bias; InteropError unless it is linear with a bias."""
    config = record.config
    if config is not None:
        if config.get("activation", "linear") not in ("linear", None):
            raise InteropError(f"{where} has activation={config['activation']!r}; the head is linear")
        if not config.get("use_bias", True):
            raise InteropError(f"{where} has use_bias=False; the jaxlstm head has a bias")
    return record.weights[0], record.weights[1]


def _keras_peer(records: list[_KerasRecord], source: str) -> PeerModel:
    """The neutral view of a Keras layer list: LSTM / Bidirectional(LSTM), Dropout after them, one Dense head."""
    layers: list[PeerLayer] = []
    head = None
    read_layer = {"LSTM": _keras_lstm_layer, "Bidirectional": _keras_bidirectional_layer}
    for record in records:
        where = f"Keras layer {record.name!r}"
        if record.class_name == "InputLayer":
            continue
        if head is not None:
            raise InteropError(f"{where} ({record.class_name}) follows the Dense head; jaxlstm ends with it")
        if record.class_name in read_layer:
            layers.append(read_layer[record.class_name](record, where))
        elif record.class_name == "Dropout":
            if not layers:
                raise InteropError(f"{where}: a Dropout before the first LSTM has no jaxlstm counterpart")
            if layers[-1].dropout is not None:
                raise InteropError(f"{where} is a second Dropout after {layers[-1].name}; jaxlstm has one per layer")
            rate = None if record.config is None else float(record.config.get("rate", 0.0))
            layers[-1] = replace(layers[-1], dropout=rate)
        elif record.class_name == "Dense":
            head = _keras_head(record, where)
        else:
            raise InteropError(
                f"{where} is a {record.class_name}; jaxlstm maps LSTM, Bidirectional(LSTM), Dropout and Dense"
            )
    if records and all(r.config is not None for r in records):  # a known config: no Dropout means rate 0
        layers = [layer if layer.dropout is not None else replace(layer, dropout=0.0) for layer in layers]
    return PeerModel(source, tuple(layers), head, "Dense")


def _read_keras(source: Any) -> PeerModel:
    if isinstance(source, str | os.PathLike):
        records, name = _records_from_file(Path(source))
    else:
        records, name = _records_from_keras(source)
    return _keras_peer(records, name)


def keras_model_config(source: str | os.PathLike | keras.Model, *, dropout: float | None = None) -> ModelConfig:
    """The :class:`~jaxlstm.config.ModelConfig` of the Keras model in ``source``.

    Units, layers, direction and input width come from the weights' shapes; the dropout rate from the Dropout
    layers of a ``.keras`` file or live model (0 where none follows a layer). A bare ``.weights.h5`` records no
    dropout: the tutorial's 0.2 is assumed unless ``dropout`` is given. Raises :class:`InteropError` for a model
    no Forecaster can hold (mixed units or directions, a non-concat merge, layers other than LSTM,
    Bidirectional(LSTM), Dropout and one Dense head).
    """
    return infer_config(_read_keras(source), dropout=dropout)


def from_keras(
    source: str | os.PathLike | keras.Model,
    *,
    dropout: float | None = None,
    arch: str | None = None,
    layers: int | None = None,
    units: int | None = None,
) -> Forecaster:
    """A new :class:`~jaxlstm.nn.Forecaster` holding the Keras model's weights.

    Without ``arch``, ``layers`` and ``units`` the architecture is the file's own (see :func:`keras_model_config`);
    with any of them, the Forecaster is built as they say (the rest read from the file) and the weights are checked
    against it, the message naming the layer and both shapes on a mismatch.
    """
    peer = _read_keras(source)
    if arch is None and layers is None and units is None:
        config = infer_config(peer, dropout=dropout)
    else:
        if not peer.layers:
            raise InteropError(f"{peer.source} holds no LSTM layer")
        first = peer.layers[0]
        arch = arch or (
            "bidirectional" if len(first.directions) == 2 else "vanilla" if len(peer.layers) == 1 else "stacked"
        )
        config = preset(
            arch,
            layers=layers or (None if arch == "vanilla" else len(peer.layers)),
            units=units or shape_of(first.directions[0].U)[0],
            dropout=peer_dropout(peer, dropout),
            n_features=shape_of(first.directions[0].W)[0],
            outputs=1 if peer.head is None else shape_of(peer.head[0])[1],
        )
    return filled(lambda: Forecaster(config, rngs=nnx.Rngs(0)), peer)


def load_keras(
    module: M, source: str | os.PathLike | keras.Model | keras.layers.Layer, *, layer: int | None = None
) -> M:
    """Loads Keras weights into an existing jaxlstm ``module`` (in place) and returns it.

    Args:
        module: a :class:`~jaxlstm.nn.Forecaster` (needs the Dense head), a :class:`~jaxlstm.nn.Stacked`
            (the recurrent layers only; a Dense head in ``source`` is ignored), or a bare
            :class:`~jaxlstm.nn.LSTM` / :class:`~jaxlstm.nn.Bidirectional` (any merge mode).
        source: a ``.keras`` file, a ``.weights.h5`` file, a ``keras.Model`` or a Keras ``LSTM`` /
            ``Bidirectional`` layer.
        layer: for a bare LSTM or Bidirectional ``module``, which recurrent layer of ``source`` to load
            (counting LSTM and Bidirectional layers only); needed when ``source`` has several.

    Raises:
        InteropError: the architectures differ (units, layer count, direction, merge mode, return_sequences,
            head width); the message names the layer and both shapes, and nothing is loaded.
    """
    peer = select_layer(module, _read_keras(source), layer)
    check_and_assign(module, peer, require_head=True)
    return module


def keras_weights(module: Module) -> list[np.ndarray]:
    """Our weights in the order of Keras's ``model.get_weights()`` for the equivalent model (:func:`to_keras`).

    Per layer ``[kernel, recurrent_kernel, bias]`` (a Bidirectional layer: forward then backward), then the
    Dense ``[kernel, bias]``. Works for any module whose variables hold arrays, gradients included.
    """
    layers, head, _ = module_parts(module)
    weights = []
    for index, layer in enumerate(layers):
        for part in directions_of(layer, index):
            weights += [np.asarray(part.W[...]), np.asarray(part.U[...]), np.asarray(part.b[...])]
    if head is not None:
        weights += [np.asarray(head.kernel[...]), np.asarray(head.bias[...])]
    return weights


def _import_keras() -> Any:
    """Imports Keras, on the JAX backend unless ``KERAS_BACKEND`` says otherwise."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:  # pragma: no cover
        raise InteropError("exporting to Keras needs Keras 3: pip install keras") from None
    return keras


def to_keras(module: Module, *, timesteps: int | None = None) -> keras.Sequential:
    """The equivalent ``keras.Sequential`` with our weights: LSTM or Bidirectional(LSTM) layers, a
    ``Dropout(rate)`` after each when the rate is positive, and ``Dense(outputs)`` for a Forecaster.

    The input is ``keras.Input((timesteps, n_features))``; ``timesteps=None`` accepts any length.
    """
    keras = _import_keras()
    layers, head, rate = module_parts(module)
    stack: list[Any] = [keras.Input((timesteps, directions_of(layers[0], 0)[0].in_features))]
    for index, layer in enumerate(layers):
        parts = directions_of(layer, index)
        if isinstance(layer, Bidirectional):
            forward, backward = parts
            if forward.hidden_size != backward.hidden_size:
                raise InteropError(
                    f"jaxlstm layer {index}: forward U {shape_of(forward.U)} and backward U "
                    f"{shape_of(backward.U)} differ; Keras's Bidirectional needs equal units"
                )
            if (forward.dropout, forward.recurrent_dropout) != (backward.dropout, backward.recurrent_dropout):
                raise InteropError(
                    f"jaxlstm layer {index}: the directions' dropouts differ; Keras's Bidirectional copies one LSTM"
                )
            lstm = keras.layers.LSTM(
                forward.hidden_size,
                return_sequences=layer.return_sequences,
                dropout=forward.dropout,
                recurrent_dropout=forward.recurrent_dropout,
            )
            stack.append(keras.layers.Bidirectional(lstm, merge_mode=layer.merge_mode))
        else:
            if layer.reverse and layer.return_sequences:
                raise InteropError(
                    f"jaxlstm layer {index} reads backwards on its own and returns sequences; Keras's go_backwards "
                    "also reverses the outputs, so wrap it in a Bidirectional layer"
                )
            lstm = keras.layers.LSTM(
                layer.hidden_size,
                return_sequences=layer.return_sequences,
                go_backwards=layer.reverse,
                dropout=layer.dropout,
                recurrent_dropout=layer.recurrent_dropout,
            )
            stack.append(lstm)
        if rate:
            stack.append(keras.layers.Dropout(rate))
    if head is not None:
        stack.append(keras.layers.Dense(head.out_features))
    model = keras.Sequential(stack)
    model.set_weights(keras_weights(module))
    return model


def save_keras(module: Module, path: str | os.PathLike, *, overwrite: bool = True) -> None:
    """Writes :func:`to_keras` of ``module`` to a ``.keras`` file (model) or a ``.weights.h5`` file (weights only).

    The file is written beside ``path`` under a temporary name and renamed into place when complete.
    """
    path = Path(path)
    if not path.name.endswith(KERAS_SUFFIXES):
        raise InteropError(f"{path}: a Keras file must end in .keras or .weights.h5")
    if path.exists() and not overwrite:
        raise InteropError(f"{path} exists; choose another name or pass --overwrite")
    model = to_keras(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        (model.save if path.name.endswith(".keras") else model.save_weights)(tmp)


# --------------------------------------------------------------------------------------------------------------
# Keras: GRU layers. Keras's layout is jaxlstm's (gate order z, r, h; bias (2, 3H) with reset_after=True, else
# (3H,)), so the weights are copied as they are.


def keras_gru_weights(layer: GRU) -> list[np.ndarray]:
    """A GRU layer's weights in the order of Keras's ``GRU.get_weights()``: ``[kernel, recurrent_kernel, bias]``."""
    return [np.asarray(weight) for weight in layer.params]


def load_keras_gru(layer: GRU, source: keras.layers.Layer | list[Any]) -> GRU:
    """Loads a Keras ``GRU`` layer's weights (a live layer, or its ``get_weights()`` list) into ``layer``; returns it.

    Raises:
        InteropError: the Keras layer is not a GRU jaxlstm computes alike (``reset_after`` differs, no bias, an
            activation other than tanh and sigmoid) or a shape differs; the message names both; nothing is loaded.
    """
    config = source.get_config() if hasattr(source, "get_config") else {}
    if config:
        if (config.get("activation"), config.get("recurrent_activation")) != ("tanh", "sigmoid"):
            raise InteropError(
                f"Keras GRU {config.get('name')!r} uses activation={config.get('activation')!r} and "
                f"recurrent_activation={config.get('recurrent_activation')!r}; jaxlstm's GRU uses tanh and sigmoid"
            )
        if config.get("reset_after", True) != layer.reset_after:
            raise InteropError(
                f"Keras GRU {config.get('name')!r} has reset_after={config.get('reset_after')}, the jaxlstm GRU "
                f"reset_after={layer.reset_after}; build the jaxlstm GRU with the same"
            )
    weights = [as_array(weight) for weight in (source.get_weights() if hasattr(source, "get_weights") else source)]
    ours = keras_gru_weights(layer)
    if [weight.shape for weight in weights] != [weight.shape for weight in ours]:
        raise InteropError(
            f"the Keras GRU's weights are {describe(weights)} (kernel, recurrent kernel, bias), the jaxlstm GRU's "
            f"{describe(ours)}"
        )
    for variable, weight in zip((layer.W, layer.U, layer.b), weights, strict=True):
        variable[...] = weight
    return layer
