"""Keras and PyTorch weight import and export: jaxlstm models proven equal to their peers.

jaxlstm's conventions (:mod:`jaxlstm.cell`) are Keras's: gate order i, f, g, o, ``W`` (in, 4H) is Keras's ``kernel``,
``U`` (H, 4H) its ``recurrent_kernel`` and ``b`` (4H,) its ``bias``, so Keras weights are copied as they are.
PyTorch's ``nn.LSTM`` uses the same gate order but stores ``weight_ih_l{k}`` = ``W.T`` (4H, in),
``weight_hh_l{k}`` = ``U.T`` and two biases whose sum is ``b``; its backward direction carries a ``_reverse``
suffix, and a bidirectional ``nn.LSTM`` concatenates the directions as Keras's ``merge_mode="concat"`` does.
Exporting to PyTorch puts ``b`` into ``bias_ih`` and zeros into ``bias_hh`` (only their sum matters).

Keras (the JAX backend or none at all; files are read with ``h5py``):

- :func:`from_keras` builds a :class:`~jaxlstm.models.Forecaster` from a ``.keras`` file, a ``.weights.h5`` file or
  a live ``keras.Model`` (architecture inferred, see :func:`keras_model_config`);
- :func:`load_keras` loads Keras weights into an existing Forecaster, :class:`~jaxlstm.layers.Stacked`,
  :class:`~jaxlstm.layers.LSTM` or :class:`~jaxlstm.layers.Bidirectional` (any merge mode);
- :func:`to_keras` builds the equivalent ``keras.Sequential``, :func:`save_keras` writes it to ``.keras`` or
  ``.weights.h5``, and :func:`keras_weights` lists our weights in Keras's ``model.get_weights()`` order.

PyTorch (``torch`` is imported only by the functions that need it):

- :func:`from_torch` (Forecaster, with an ``nn.Linear`` head), :func:`stacked_from_torch` (the recurrent stack
  alone, returning sequences as ``nn.LSTM`` does) and :func:`load_torch` (into an existing module) import an
  ``nn.LSTM`` or its ``state_dict``;
- :func:`torch_state_dict` and :func:`to_torch` export.

Any architecture mismatch (units, number of layers, direction, merge mode, ...) raises :class:`InteropError`, a
:class:`~jaxlstm.errors.ConfigError`, with a one-line message naming the layer and both shapes; nothing is
loaded then. ``jaxlstm convert`` (:mod:`jaxlstm.commands.convert`) turns Keras files into run directories and back.

>>> import numpy as np
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> model = Forecaster(preset("stacked", layers=2, units=3), rngs=nnx.Rngs(0))
>>> state = torch_state_dict(model, numpy=True)
>>> [(name, array.shape) for name, array in state.items()][:4]
[('weight_ih_l0', (12, 1)), ('weight_hh_l0', (12, 3)), ('bias_ih_l0', (12,)), ('bias_hh_l0', (12,))]
>>> other = load_torch(Forecaster(preset("stacked", layers=2, units=3), rngs=nnx.Rngs(1)), state)
>>> bool(np.array_equal(other.recurrent.layers[1].U[...], model.recurrent.layers[1].U[...]))
True
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.cell import LSTMParams
from jaxlstm.config import ModelConfig, preset
from jaxlstm.errors import ConfigError
from jaxlstm.fileio import atomic_path
from jaxlstm.layers import LSTM, MERGE_MODES, Bidirectional, Stacked
from jaxlstm.models import Forecaster

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import torch

__all__ = [
    "KERAS_SUFFIXES",
    "InteropError",
    "TorchModules",
    "from_keras",
    "from_torch",
    "keras_model_config",
    "keras_weights",
    "load_keras",
    "load_torch",
    "save_keras",
    "stacked_from_torch",
    "to_keras",
    "to_torch",
    "torch_state_dict",
]

Module = Forecaster | Stacked | LSTM | Bidirectional
M = TypeVar("M", Forecaster, Stacked, LSTM, Bidirectional)
KERAS_SUFFIXES = (".keras", ".weights.h5")


class InteropError(ConfigError):
    """A peer's model does not fit the jaxlstm model (or cannot be expressed in the peer); nothing was loaded."""


# --------------------------------------------------------------------------------------------------------------
# A framework-neutral view of a peer's model, already in jaxlstm's conventions (float32 NumPy arrays).


@dataclass(frozen=True)
class _PeerLayer:
    """One recurrent layer of a peer: one :class:`LSTMParams` per direction (forward first)."""

    name: str  # for messages: "Keras layer 'lstm_1'", "nn.LSTM layer 1"
    directions: tuple[LSTMParams, ...]
    labels: tuple[str, str, str]  # the peer's names of W, U, b, for messages
    merge_mode: str | None = None  # bidirectional only; None when unknown
    return_sequences: bool | None = None  # None when unknown
    dropout: float | None = None  # rate of the Dropout right after the layer; None when unknown
    reverse: bool = False  # a one-direction layer that reads the sequence from its end (Keras's go_backwards)
    own_dropout: tuple[float, float] | None = None  # the layer's dropout and recurrent_dropout; None when unknown


@dataclass(frozen=True)
class _PeerModel:
    source: str  # for messages: "Keras file model.keras", "nn.LSTM"
    layers: tuple[_PeerLayer, ...]
    head: tuple[np.ndarray, np.ndarray] | None  # Dense kernel (F, outputs) and bias (outputs,)
    head_name: str = "Dense"


def _array(value: Any) -> np.ndarray:
    """A float32 NumPy copy of a NumPy array, an h5py dataset, a JAX array or a torch tensor."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float32)


def _kind(n_directions: int) -> str:
    return "bidirectional" if n_directions == 2 else "unidirectional"


def _shape(array: Any) -> tuple[int, ...]:
    """The shape of an array, a torch tensor, or an NNX variable (concrete or abstract)."""
    return tuple(int(n) for n in (array.shape if hasattr(array, "shape") else np.shape(array)))


# --------------------------------------------------------------------------------------------------------------
# Our side: the recurrent layers and the head of any jaxlstm module, and loading a peer into them.


def _parts(module: Module) -> tuple[list[Any], nnx.Linear | None, float | None]:
    """(recurrent layers, Dense head or None, dropout rate or None) of a jaxlstm module."""
    if isinstance(module, Forecaster):
        return list(module.recurrent.layers), module.head, float(module.recurrent.dropout_rate)
    if isinstance(module, Stacked):
        return list(module.layers), None, float(module.dropout_rate)
    if isinstance(module, LSTM | Bidirectional):
        return [module], None, None
    raise TypeError(f"expected a Forecaster, Stacked, LSTM or Bidirectional module, got {type(module).__name__}")


def _directions(layer: Any, index: int) -> list[LSTM]:
    """The LSTM layers of one of our recurrent layers: [forward] or [forward, backward]."""
    if isinstance(layer, Bidirectional):
        parts = [layer.forward_layer, layer.backward_layer]
    elif isinstance(layer, LSTM):
        parts = [layer]
    else:
        raise InteropError(
            f"jaxlstm layer {index} is a {type(layer).__name__}; Keras/PyTorch conversion maps LSTM and "
            "Bidirectional(LSTM) layers only"
        )
    for part in parts:
        if not isinstance(part, LSTM):
            raise InteropError(f"jaxlstm layer {index} wraps a {type(part).__name__}; only LSTM layers are mapped")
    return parts


def _describe(arrays: Iterable[Any]) -> str:
    return ", ".join(str(_shape(array)) for array in arrays)


def _check_and_assign(module: Module, peer: _PeerModel, *, require_head: bool) -> None:
    """Checks every shape first, then copies the peer's weights into ``module``: all or nothing."""
    ours, head, _ = _parts(module)
    if len(peer.layers) != len(ours):
        theirs = _describe(layer.directions[0].W for layer in peer.layers)
        mine = _describe(_directions(layer, index)[0].W for index, layer in enumerate(ours))
        raise InteropError(
            f"{peer.source} has {len(peer.layers)} recurrent layers (kernels {theirs}) but the jaxlstm model has "
            f"{len(ours)} (W {mine}); build it with layers={len(peer.layers)} (--layers {len(peer.layers)})"
        )
    assignments: list[tuple[nnx.Param, np.ndarray]] = []
    for index, (layer, theirs) in enumerate(zip(ours, peer.layers, strict=True)):
        parts = _directions(layer, index)
        if len(parts) != len(theirs.directions):
            arch = "bidirectional" if len(theirs.directions) == 2 else "stacked"
            raise InteropError(
                f"{theirs.name} is {_kind(len(theirs.directions))} ({theirs.labels[0]} "
                f"{_describe(p.W for p in theirs.directions)}) but jaxlstm layer {index} is {_kind(len(parts))} "
                f"(W {_describe(p.W for p in parts)}); use the {arch} architecture (--arch {arch})"
            )
        if isinstance(layer, Bidirectional) and theirs.merge_mode not in (None, layer.merge_mode):
            raise InteropError(
                f"{theirs.name} merges its directions with {theirs.merge_mode!r} but jaxlstm layer {index} with "
                f"{layer.merge_mode!r}"
            )
        if len(parts) == 1 and theirs.reverse != layer.reverse:
            way = "from its end (go_backwards=True)" if theirs.reverse else "forward"
            raise InteropError(
                f"{theirs.name} reads the sequence {way} but jaxlstm layer {index} has reverse={layer.reverse}; build "
                f"it with LSTM(..., reverse={theirs.reverse})"
            )
        if theirs.reverse and theirs.return_sequences and index < len(peer.layers) - 1:
            raise InteropError(
                f"{theirs.name} has go_backwards=True and feeds its outputs, in reverse time order, to the next "
                "layer; jaxlstm's reversed layer keeps them aligned, which computes another function (wrap it in a "
                "Bidirectional layer)"
            )
        if theirs.return_sequences is not None and theirs.return_sequences != layer.return_sequences:
            raise InteropError(
                f"{theirs.name} has return_sequences={theirs.return_sequences} but jaxlstm layer {index} "
                f"return_sequences={layer.return_sequences}"
            )
        for direction, (part, params) in enumerate(zip(parts, theirs.directions, strict=True)):
            where = "" if len(parts) == 1 else (" (forward)", " (backward)")[direction]
            for ours_name, label, array in zip(("W", "U", "b"), theirs.labels, params, strict=True):
                variable = getattr(part, ours_name)
                if _shape(array) != _shape(variable):
                    raise InteropError(
                        f"{theirs.name}{where}: {label} {_shape(array)} does not fit jaxlstm layer {index}{where} "
                        f"{ours_name} {_shape(variable)} (units or input width differ)"
                    )
                assignments.append((variable, array))
    if head is not None:
        if peer.head is None:
            if require_head:
                raise InteropError(
                    f"{peer.source} has no {peer.head_name} layer but the jaxlstm Forecaster needs its Dense head "
                    f"(kernel {_shape(head.kernel)})"
                )
        else:
            for name, array in zip(("kernel", "bias"), peer.head, strict=True):
                variable = getattr(head, name)
                if _shape(array) != _shape(variable):
                    raise InteropError(
                        f"{peer.source} {peer.head_name} {name} {_shape(array)} does not fit the jaxlstm head "
                        f"{name} {_shape(variable)}"
                    )
                assignments.append((variable, array))
    own_dropouts = _own_dropouts(module, peer)
    for variable, array in assignments:
        variable.set_value(jnp.asarray(array, dtype=variable.dtype))
    for part, (dropout, recurrent_dropout) in own_dropouts:
        part.dropout, part.recurrent_dropout = dropout, recurrent_dropout


def _own_dropouts(module: Module, peer: _PeerModel) -> list[tuple[LSTM, tuple[float, float]]]:
    """Each of our LSTM layers with the peer's in-layer dropout rates for it. A Forecaster has no setting for them
    (its config would lose them): the rates are dropped there, with a warning."""
    ours = _parts(module)[0]
    pairs = []
    for index, (layer, theirs) in enumerate(zip(ours, peer.layers, strict=True)):
        if theirs.own_dropout is None:
            continue
        if isinstance(module, Forecaster):
            if any(theirs.own_dropout):
                dropout, recurrent_dropout = theirs.own_dropout
                warnings.warn(
                    f"{theirs.name} has dropout={dropout}, recurrent_dropout={recurrent_dropout}, dropout inside "
                    f"the LSTM; the Forecaster has no such setting and drops it (the weights load unchanged; "
                    f"LSTM(..., dropout=, recurrent_dropout=) layers have it)",
                    stacklevel=3,
                )
            continue
        pairs.extend((part, theirs.own_dropout) for part in _directions(layer, index))
    return pairs


def _filled(build: Any, peer: _PeerModel) -> Any:
    """``build()``'s module holding the peer's weights, built abstractly (``nnx.eval_shape``: no initialiser runs,
    which saves seconds on the tutorial's models) and then filled with every weight."""
    module = nnx.eval_shape(build)
    _check_and_assign(module, peer, require_head=True)
    abstract = [leaf for leaf in jax.tree.leaves(nnx.state(module)) if isinstance(leaf, jax.ShapeDtypeStruct)]
    if abstract:  # pragma: no cover - every variable of these modules has a peer counterpart
        raise InteropError(f"{peer.source} left {len(abstract)} jaxlstm variables without a value")
    return module


def _select_layer(module: Module, peer: _PeerModel, layer: int | None) -> _PeerModel:
    """For a bare LSTM/Bidirectional target: the peer reduced to its layer ``layer`` (default: its only one)."""
    if not isinstance(module, LSTM | Bidirectional):
        if layer is not None:
            raise InteropError("layer= selects one peer layer for a bare LSTM or Bidirectional target only")
        return peer
    if layer is None:
        if len(peer.layers) != 1:
            raise InteropError(
                f"{peer.source} has {len(peer.layers)} recurrent layers (kernels "
                f"{_describe(p.directions[0].W for p in peer.layers)}); pass layer=<index> to pick one"
            )
        layer = 0
    if not -len(peer.layers) <= layer < len(peer.layers):
        raise InteropError(f"{peer.source} has no recurrent layer {layer}: it has {len(peer.layers)}")
    chosen = peer.layers[layer]
    return replace(peer, layers=(replace(chosen, return_sequences=None),), head=None)


def _infer_config(peer: _PeerModel, *, dropout: float | None) -> ModelConfig:
    """The :class:`ModelConfig` of the Forecaster that holds ``peer``: uniform units, direction and dropout."""
    if not peer.layers:
        raise InteropError(f"{peer.source} holds no LSTM layer")
    if peer.head is None:
        raise InteropError(f"{peer.source} has no {peer.head_name} head; a jaxlstm Forecaster ends with a Dense head")
    first = peer.layers[0]
    n_directions = len(first.directions)
    units = _shape(first.directions[0].U)[0]
    for index, layer in enumerate(peer.layers):
        if len(layer.directions) != n_directions:
            raise InteropError(
                f"{layer.name} is {_kind(len(layer.directions))} (kernel {_shape(layer.directions[0].W)}) but "
                f"{first.name} is {_kind(n_directions)} (kernel {_shape(first.directions[0].W)}); "
                "a jaxlstm Forecaster uses one kind for every layer"
            )
        if _shape(layer.directions[0].U)[0] != units:
            raise InteropError(
                f"{layer.name} has {_shape(layer.directions[0].U)[0]} units (recurrent kernel "
                f"{_shape(layer.directions[0].U)}) but {first.name} has {units} ({_shape(first.directions[0].U)}); "
                "a jaxlstm Forecaster uses the same units in every layer"
            )
        if n_directions == 2 and layer.merge_mode not in (None, "concat"):
            raise InteropError(
                f"{layer.name} merges with {layer.merge_mode!r}; the Forecaster concatenates (load it into a "
                "Bidirectional layer with load_keras instead)"
            )
        last = index == len(peer.layers) - 1
        if layer.return_sequences is not None and layer.return_sequences == last:
            raise InteropError(
                f"{layer.name} has return_sequences={layer.return_sequences}; a Forecaster's layers all return "
                "sequences except the last"
            )
    arch = "bidirectional" if n_directions == 2 else "vanilla" if len(peer.layers) == 1 else "stacked"
    return preset(
        arch,
        layers=len(peer.layers),
        units=units,
        dropout=_peer_dropout(peer, dropout),
        n_features=_shape(first.directions[0].W)[0],
        outputs=_shape(peer.head[0])[1],
    )


def _peer_dropout(peer: _PeerModel, dropout: float | None) -> float:
    """``dropout`` when given, else the peer's one rate (its Dropout layers), else the tutorial's 0.2."""
    if dropout is not None:
        return dropout
    rates = [layer.dropout for layer in peer.layers]
    known = {rate for rate in rates if rate is not None}
    if len(known) > 1:
        listing = ", ".join(f"{rate} after {layer.name}" for rate, layer in zip(rates, peer.layers, strict=True))
        raise InteropError(f"dropout rates differ ({listing}); jaxlstm uses one rate: pass dropout= (--dropout)")
    return known.pop() if known else ModelConfig.dropout


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
    return [_array(group[path][()]) for path in paths]


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
        weights = [_array(w) for w in layer.get_weights()]
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


def _keras_peer(records: list[_KerasRecord], source: str) -> _PeerModel:
    """The neutral view of a Keras layer list: LSTM / Bidirectional(LSTM), Dropout after them, one Dense head."""
    layers: list[_PeerLayer] = []
    head = None
    labels = ("kernel", "recurrent_kernel", "bias")
    for record in records:
        where = f"Keras layer {record.name!r}"
        config = record.config
        if record.class_name == "InputLayer":
            continue
        if head is not None:
            raise InteropError(f"{where} ({record.class_name}) follows the Dense head; jaxlstm ends with it")
        if record.class_name == "LSTM":
            _check_keras_lstm(config, where)
            params, _ = _keras_params(record.weights, _keras_biases("LSTM", config)[0])
            sequences = None if config is None else bool(config.get("return_sequences", False))
            reverse = config is not None and bool(config.get("go_backwards", False))
            own_dropout = _keras_own_dropout(config)
            layers.append(
                _PeerLayer(
                    where, (params,), labels, return_sequences=sequences, reverse=reverse, own_dropout=own_dropout
                )
            )
        elif record.class_name == "Bidirectional":
            merge_mode = None
            sequences = None
            own_dropout = None
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
            directions = (forward, backward)
            layers.append(
                _PeerLayer(
                    where,
                    directions,
                    labels,
                    merge_mode=merge_mode,
                    return_sequences=sequences,
                    own_dropout=own_dropout,
                )
            )
        elif record.class_name == "Dropout":
            if not layers:
                raise InteropError(f"{where}: a Dropout before the first LSTM has no jaxlstm counterpart")
            if layers[-1].dropout is not None:
                raise InteropError(f"{where} is a second Dropout after {layers[-1].name}; jaxlstm has one per layer")
            rate = None if config is None else float(config.get("rate", 0.0))
            layers[-1] = replace(layers[-1], dropout=rate)
        elif record.class_name == "Dense":
            if config is not None:
                if config.get("activation", "linear") not in ("linear", None):
                    raise InteropError(f"{where} has activation={config['activation']!r}; the head is linear")
                if not config.get("use_bias", True):
                    raise InteropError(f"{where} has use_bias=False; the jaxlstm head has a bias")
            head = (record.weights[0], record.weights[1])
        else:
            raise InteropError(
                f"{where} is a {record.class_name}; jaxlstm maps LSTM, Bidirectional(LSTM), Dropout and Dense"
            )
    if records and all(r.config is not None for r in records):  # a known config: no Dropout means rate 0
        layers = [layer if layer.dropout is not None else replace(layer, dropout=0.0) for layer in layers]
    return _PeerModel(source, tuple(layers), head, "Dense")


def _read_keras(source: Any) -> _PeerModel:
    if isinstance(source, str | os.PathLike):
        records, name = _records_from_file(Path(source))
    else:
        records, name = _records_from_keras(source)
    return _keras_peer(records, name)


def keras_model_config(source: str | os.PathLike | keras.Model, *, dropout: float | None = None) -> ModelConfig:
    """The :class:`~jaxlstm.models.ModelConfig` of the Keras model in ``source``.

    Units, layers, direction and input width come from the weights' shapes; the dropout rate from the Dropout
    layers of a ``.keras`` file or live model (0 where none follows a layer). A bare ``.weights.h5`` records no
    dropout: the tutorial's 0.2 is assumed unless ``dropout`` is given. Raises :class:`InteropError` for a model
    no Forecaster can hold (mixed units or directions, a non-concat merge, layers other than LSTM,
    Bidirectional(LSTM), Dropout and one Dense head).
    """
    return _infer_config(_read_keras(source), dropout=dropout)


def from_keras(
    source: str | os.PathLike | keras.Model,
    *,
    dropout: float | None = None,
    arch: str | None = None,
    layers: int | None = None,
    units: int | None = None,
) -> Forecaster:
    """A new :class:`~jaxlstm.models.Forecaster` holding the Keras model's weights.

    Without ``arch``, ``layers`` and ``units`` the architecture is the file's own (see :func:`keras_model_config`);
    with any of them, the Forecaster is built as they say (the rest read from the file) and the weights are checked
    against it, the message naming the layer and both shapes on a mismatch.
    """
    peer = _read_keras(source)
    if arch is None and layers is None and units is None:
        config = _infer_config(peer, dropout=dropout)
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
            units=units or _shape(first.directions[0].U)[0],
            dropout=_peer_dropout(peer, dropout),
            n_features=_shape(first.directions[0].W)[0],
            outputs=1 if peer.head is None else _shape(peer.head[0])[1],
        )
    return _filled(lambda: Forecaster(config, rngs=nnx.Rngs(0)), peer)


def load_keras(
    module: M, source: str | os.PathLike | keras.Model | keras.layers.Layer, *, layer: int | None = None
) -> M:
    """Loads Keras weights into an existing jaxlstm ``module`` (in place) and returns it.

    Args:
        module: a :class:`~jaxlstm.models.Forecaster` (needs the Dense head), a :class:`~jaxlstm.layers.Stacked`
            (the recurrent layers only; a Dense head in ``source`` is ignored), or a bare
            :class:`~jaxlstm.layers.LSTM` / :class:`~jaxlstm.layers.Bidirectional` (any merge mode).
        source: a ``.keras`` file, a ``.weights.h5`` file, a ``keras.Model`` or a Keras ``LSTM`` /
            ``Bidirectional`` layer.
        layer: for a bare LSTM or Bidirectional ``module``, which recurrent layer of ``source`` to load
            (counting LSTM and Bidirectional layers only); needed when ``source`` has several.

    Raises:
        InteropError: the architectures differ (units, layer count, direction, merge mode, return_sequences,
            head width); the message names the layer and both shapes, and nothing is loaded.
    """
    peer = _select_layer(module, _read_keras(source), layer)
    _check_and_assign(module, peer, require_head=True)
    return module


def keras_weights(module: Module) -> list[np.ndarray]:
    """Our weights in the order of Keras's ``model.get_weights()`` for the equivalent model (:func:`to_keras`).

    Per layer ``[kernel, recurrent_kernel, bias]`` (a Bidirectional layer: forward then backward), then the
    Dense ``[kernel, bias]``. Works for any module whose variables hold arrays, gradients included.
    """
    layers, head, _ = _parts(module)
    weights = []
    for index, layer in enumerate(layers):
        for part in _directions(layer, index):
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
    layers, head, rate = _parts(module)
    stack: list[Any] = [keras.Input((timesteps, _directions(layers[0], 0)[0].in_features))]
    for index, layer in enumerate(layers):
        parts = _directions(layer, index)
        if isinstance(layer, Bidirectional):
            forward, backward = parts
            if forward.hidden_size != backward.hidden_size:
                raise InteropError(
                    f"jaxlstm layer {index}: forward U {_shape(forward.U)} and backward U "
                    f"{_shape(backward.U)} differ; Keras's Bidirectional needs equal units"
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
# PyTorch: nn.LSTM state_dicts.

_TORCH_KEY = re.compile(r"^(?P<kind>weight_ih|weight_hh|bias_ih|bias_hh)_l(?P<layer>\d+)(?P<reverse>_reverse)?$")


class TorchModules(NamedTuple):
    """What :func:`to_torch` returns: the ``nn.LSTM`` (``batch_first=True``) and the ``nn.Linear`` head or None,
    both in eval mode."""

    lstm: torch.nn.LSTM
    head: torch.nn.Linear | None


def _state_dict(lstm: Any) -> dict[str, np.ndarray]:
    if hasattr(lstm, "state_dict") and not isinstance(lstm, Mapping):
        if getattr(lstm, "proj_size", 0):
            raise InteropError(f"nn.LSTM has proj_size={lstm.proj_size}; jaxlstm's LSTM has no projection")
        lstm = lstm.state_dict()
    if not isinstance(lstm, Mapping):
        raise TypeError(f"expected an nn.LSTM or its state_dict, got {type(lstm).__name__}")
    return {str(key): _array(value) for key, value in lstm.items()}


def _read_torch(lstm: Any, head: Any) -> _PeerModel:
    state = _state_dict(lstm)
    layers: dict[int, set[str]] = {}
    for key in state:
        match = _TORCH_KEY.match(key)
        if match is None:
            hint = " (proj_size is not supported)" if key.startswith("weight_hr") else ""
            raise InteropError(f"nn.LSTM state_dict key {key!r} has no jaxlstm counterpart{hint}")
        layers.setdefault(int(match["layer"]), set()).add(match["reverse"] or "")
    if sorted(layers) != list(range(len(layers))) or not layers:
        raise InteropError(f"nn.LSTM state_dict holds layers {sorted(layers)}; expected 0..n-1")
    bidirectional = any("_reverse" in suffixes for suffixes in layers.values())
    peer_layers = []
    for index in range(len(layers)):
        directions = []
        for suffix in ("", "_reverse") if bidirectional else ("",):
            names = [f"{kind}_l{index}{suffix}" for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            for name in names[:2]:
                if name not in state:
                    raise InteropError(f"nn.LSTM state_dict lacks {name!r}")
            w_ih, w_hh = state[names[0]], state[names[1]]
            if w_ih.ndim != 2 or w_hh.ndim != 2:
                raise InteropError(f"nn.LSTM {names[0]} {w_ih.shape} and {names[1]} {w_hh.shape} must be matrices")
            bias = np.zeros(w_ih.shape[0], np.float32)  # nn.LSTM(bias=False) has none: a zero bias is exact
            for name in names[2:]:
                if name in state:
                    bias = bias + state[name]
            directions.append(LSTMParams(W=w_ih.T.copy(), U=w_hh.T.copy(), b=bias))
        labels = (
            f"weight_ih_l{index}.T",
            f"weight_hh_l{index}.T",
            f"bias_ih_l{index} + bias_hh_l{index}",
        )
        merge_mode = "concat" if bidirectional else None
        peer_layers.append(_PeerLayer(f"nn.LSTM layer {index}", tuple(directions), labels, merge_mode=merge_mode))
    peer_head = None
    if head is not None:
        head_state = _state_dict(head) if not isinstance(head, Mapping) else {k: _array(v) for k, v in head.items()}
        if set(head_state) != {"weight", "bias"}:
            raise InteropError(f"the head must be an nn.Linear (weight, bias), got keys {sorted(head_state)}")
        peer_head = (head_state["weight"].T.copy(), head_state["bias"])
    return _PeerModel("nn.LSTM", tuple(peer_layers), peer_head, "nn.Linear")


def from_torch(lstm: Any, head: Any, *, dropout: float = 0.0) -> Forecaster:
    """A new :class:`~jaxlstm.models.Forecaster` from an ``nn.LSTM`` (or its state_dict) and an ``nn.Linear`` head.

    The Forecaster's last layer returns its final ``h`` (the ``h_n`` of ``nn.LSTM``, both directions concatenated)
    to the head; ``dropout`` is the rate applied after every layer in training (``nn.LSTM``'s own ``dropout``
    applies between layers only, so it is not read). For the ``nn.LSTM`` alone, use :func:`stacked_from_torch`.
    """
    if head is None:
        raise InteropError(
            "from_torch builds a Forecaster, which ends with the nn.Linear head: pass it; for the nn.LSTM alone, "
            "use stacked_from_torch(lstm)"
        )
    peer = _read_torch(lstm, head)
    return _filled(lambda: Forecaster(_infer_config(peer, dropout=dropout), rngs=nnx.Rngs(0)), peer)


def stacked_from_torch(lstm: Any) -> Stacked:
    """A :class:`~jaxlstm.layers.Stacked` (no dropout) equal to ``nn.LSTM(..., batch_first=True)``; for a whole
    forecaster (the LSTM and its ``nn.Linear`` head), use :func:`from_torch`.

    Every layer returns sequences, so its output is ``nn.LSTM``'s ``output``; run the layers' ``scan`` to get
    the final ``(h, c)`` of each layer and direction (``h_n``, ``c_n``).
    """
    peer = _read_torch(lstm, None)
    first = peer.layers[0].directions[0]

    def build() -> Stacked:
        in_features = _shape(first.W)[0]
        layers = []
        for index, layer in enumerate(peer.layers):
            units = _shape(layer.directions[0].U)[0]
            forward = LSTM(in_features, units, return_sequences=True, rngs=nnx.Rngs(index))
            if len(layer.directions) == 2:
                layers.append(Bidirectional(forward, LSTM(in_features, units, reverse=True, rngs=nnx.Rngs(index))))
            else:
                layers.append(forward)
            in_features = layers[-1].out_features
        return Stacked(layers)

    return _filled(build, peer)


def load_torch(module: M, lstm: Any, head: Any = None, *, layer: int | None = None) -> M:
    """Loads an ``nn.LSTM`` (or its state_dict) and optionally an ``nn.Linear`` head into ``module``, in place.

    Args:
        module: a :class:`~jaxlstm.models.Forecaster`, :class:`~jaxlstm.layers.Stacked`, or a bare
            :class:`~jaxlstm.layers.LSTM` / :class:`~jaxlstm.layers.Bidirectional` (concat merge only).
        lstm: the ``nn.LSTM`` or its ``state_dict()`` (tensors or NumPy arrays). Both biases are summed.
        head: an ``nn.Linear(features, 1)`` or its state_dict, loaded into a Forecaster's head; when None the
            head keeps its weights.
        layer: for a bare LSTM or Bidirectional ``module``, which ``nn.LSTM`` layer to load (default: the only one).

    Raises:
        InteropError: the architectures differ; the message names the layer and both shapes.
    """
    peer = _select_layer(module, _read_torch(lstm, head), layer)
    _check_and_assign(module, peer, require_head=False)
    return module


def _torch_layers(module: Module) -> tuple[list[Any], nnx.Linear | None, float | None]:
    """Our layers, checked to fit one ``nn.LSTM``: one direction kind, equal units, concat merges."""
    layers, head, rate = _parts(module)
    n_directions = len(_directions(layers[0], 0))
    units = _directions(layers[0], 0)[0].hidden_size
    for index, layer in enumerate(layers):
        parts = _directions(layer, index)
        if len(parts) != n_directions:
            raise InteropError(
                f"jaxlstm layer {index} is {_kind(len(parts))} (W {_shape(parts[0].W)}) but layer 0 is "
                f"{_kind(n_directions)}; one nn.LSTM has one direction setting"
            )
        for part in parts:
            if part.hidden_size != units:
                raise InteropError(
                    f"jaxlstm layer {index} has U {_shape(part.U)} but layer 0 has {units} units; "
                    "nn.LSTM needs equal units"
                )
        if isinstance(layer, Bidirectional) and layer.merge_mode != "concat":
            raise InteropError(f"jaxlstm layer {index} merges with {layer.merge_mode!r}; nn.LSTM concatenates")
        if isinstance(layer, LSTM) and layer.reverse:
            raise InteropError(f"jaxlstm layer {index} reads backwards on its own; nn.LSTM has no such layer")
    return layers, head, rate


def torch_state_dict(module: Module, *, numpy: bool = False) -> dict[str, Any]:
    """The ``nn.LSTM`` state_dict of our recurrent layers, in ``nn.LSTM``'s key order.

    ``weight_ih_l{k}`` = W.T, ``weight_hh_l{k}`` = U.T, ``bias_ih_l{k}`` = b and ``bias_hh_l{k}`` = 0 (only the sum
    of PyTorch's two biases matters); ``_reverse`` keys hold a Bidirectional layer's backward half. A Forecaster's
    head is not included (see :func:`to_torch`). Values are CPU ``torch.Tensor`` s, or NumPy arrays with
    ``numpy=True`` (no torch needed).
    """
    layers, _, _ = _torch_layers(module)
    state: dict[str, Any] = {}
    for index, layer in enumerate(layers):
        for suffix, part in zip(("", "_reverse"), _directions(layer, index), strict=False):
            W, U, b = (np.asarray(array, np.float32) for array in part.params)
            state[f"weight_ih_l{index}{suffix}"] = np.array(W.T, order="C")
            state[f"weight_hh_l{index}{suffix}"] = np.array(U.T, order="C")
            state[f"bias_ih_l{index}{suffix}"] = b.copy()
            state[f"bias_hh_l{index}{suffix}"] = np.zeros_like(b)
    if numpy:
        return state
    import torch

    return {key: torch.from_numpy(value) for key, value in state.items()}


def to_torch(module: Module) -> TorchModules:
    """An ``nn.LSTM(batch_first=True)`` with our recurrent weights and, for a Forecaster, the ``nn.Linear`` head.

    The Forecaster's prediction is ``head(h)`` where ``h`` is the last layer's final hidden state: with
    ``output, (h_n, c_n) = lstm(x)``, ``h = h_n[-1]`` (unidirectional) or ``torch.cat([h_n[-2], h_n[-1]], -1)``
    (bidirectional). The dropout rate becomes ``nn.LSTM``'s ``dropout`` (between layers; none after the last), so
    the modules are returned in eval mode, ready for inference: call ``.train()`` on them to train.
    """
    import torch

    layers, head, rate = _torch_layers(module)
    first = _directions(layers[0], 0)[0]
    lstm = torch.nn.LSTM(
        first.in_features,
        first.hidden_size,
        num_layers=len(layers),
        batch_first=True,
        bidirectional=isinstance(layers[0], Bidirectional),
        dropout=float(rate or 0.0) if len(layers) > 1 else 0.0,
    )
    lstm.load_state_dict(torch_state_dict(module))
    linear = None
    if head is not None:
        linear = torch.nn.Linear(head.in_features, head.out_features)
        linear.load_state_dict(
            {
                "weight": torch.from_numpy(np.array(np.asarray(head.kernel[...], np.float32).T, order="C")),
                "bias": torch.from_numpy(np.asarray(head.bias[...], np.float32).copy()),
            }
        )
    return TorchModules(lstm.eval(), None if linear is None else linear.eval())
