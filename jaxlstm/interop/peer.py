"""What the Keras and PyTorch bridges share: a framework-neutral view of a peer's recurrent model, already in jaxlstm's
conventions (float32 NumPy arrays: :class:`PeerModel`), the layers and head of any jaxlstm module, and the checks
that load a peer into them, or build a jaxlstm model from one, naming the first mismatch.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.config import ModelConfig, preset
from jaxlstm.errors import ConfigError
from jaxlstm.nn.cell import LSTMParams
from jaxlstm.nn.layers import LSTM, Bidirectional, Stacked
from jaxlstm.nn.models import Forecaster

__all__ = [
    "InteropError",
    "M",
    "Module",
    "PeerLayer",
    "PeerModel",
    "as_array",
    "check_and_assign",
    "describe",
    "directions_of",
    "filled",
    "infer_config",
    "kind_of",
    "module_parts",
    "own_dropouts",
    "peer_dropout",
    "select_layer",
    "shape_of",
]

Module = Forecaster | Stacked | LSTM | Bidirectional
M = TypeVar("M", Forecaster, Stacked, LSTM, Bidirectional)


class InteropError(ConfigError):
    """A peer's model does not fit the jaxlstm model (or cannot be expressed in the peer); nothing was loaded."""


# --------------------------------------------------------------------------------------------------------------
# A framework-neutral view of a peer's model, already in jaxlstm's conventions (float32 NumPy arrays).


@dataclass(frozen=True)
class PeerLayer:
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
class PeerModel:
    source: str  # for messages: "Keras file model.keras", "nn.LSTM"
    layers: tuple[PeerLayer, ...]
    head: tuple[np.ndarray, np.ndarray] | None  # Dense kernel (F, outputs) and bias (outputs,)
    head_name: str = "Dense"


def as_array(value: Any) -> np.ndarray:
    """A float32 NumPy copy of a NumPy array, an h5py dataset, a JAX array or a torch tensor."""
    if hasattr(value, "detach"):  # torch.Tensor
        value = value.detach().cpu().numpy()
    return np.array(value, dtype=np.float32)


def kind_of(n_directions: int) -> str:
    return "bidirectional" if n_directions == 2 else "unidirectional"


def shape_of(array: Any) -> tuple[int, ...]:
    """The shape of an array, a torch tensor, or an NNX variable (concrete or abstract)."""
    return tuple(int(n) for n in (array.shape if hasattr(array, "shape") else np.shape(array)))


# --------------------------------------------------------------------------------------------------------------
# Our side: the recurrent layers and the head of any jaxlstm module, and loading a peer into them.


def module_parts(module: Module) -> tuple[list[Any], nnx.Linear | None, float | None]:
    """(recurrent layers, Dense head or None, dropout rate or None) of a jaxlstm module."""
    if isinstance(module, Forecaster):
        return list(module.recurrent.layers), module.head, float(module.recurrent.dropout_rate)
    if isinstance(module, Stacked):
        return list(module.layers), None, float(module.dropout_rate)
    if isinstance(module, LSTM | Bidirectional):
        return [module], None, None
    raise TypeError(f"expected a Forecaster, Stacked, LSTM or Bidirectional module, got {type(module).__name__}")


def directions_of(layer: Any, index: int) -> list[LSTM]:
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


def describe(arrays: Iterable[Any]) -> str:
    return ", ".join(str(shape_of(array)) for array in arrays)


def check_and_assign(module: Module, peer: PeerModel, *, require_head: bool) -> None:
    """Checks every shape first, then copies the peer's weights into ``module``: all or nothing."""
    ours, head, _ = module_parts(module)
    if len(peer.layers) != len(ours):
        theirs = describe(layer.directions[0].W for layer in peer.layers)
        mine = describe(directions_of(layer, index)[0].W for index, layer in enumerate(ours))
        raise InteropError(
            f"{peer.source} has {len(peer.layers)} recurrent layers (kernels {theirs}) but the jaxlstm model has "
            f"{len(ours)} (W {mine}); build it with layers={len(peer.layers)} (--layers {len(peer.layers)})"
        )
    assignments: list[tuple[nnx.Param, np.ndarray]] = []
    for index, (layer, theirs) in enumerate(zip(ours, peer.layers, strict=True)):
        _check_layer(layer, theirs, index, feeds_another=index < len(peer.layers) - 1)
        assignments += _layer_assignments(layer, theirs, index)
    if head is not None and peer.head is None and require_head:
        raise InteropError(
            f"{peer.source} has no {peer.head_name} layer but the jaxlstm Forecaster needs its Dense head "
            f"(kernel {shape_of(head.kernel)})"
        )
    if head is not None and peer.head is not None:
        assignments += _paired(
            head,
            ("kernel", "bias"),
            ("kernel", "bias"),
            peer.head,
            f"{peer.source} {peer.head_name}",
            "the jaxlstm head",
        )
    dropouts = own_dropouts(module, peer)
    for variable, array in assignments:
        variable.set_value(jnp.asarray(array, dtype=variable.dtype))
    for part, (dropout, recurrent_dropout) in dropouts:
        part.dropout, part.recurrent_dropout = dropout, recurrent_dropout


def _check_layer(layer: Any, theirs: PeerLayer, index: int, *, feeds_another: bool) -> None:
    """InteropError when jaxlstm layer ``index`` cannot hold the peer's layer: other directions, merge mode, reading
    order or sequence output; or a reversed peer layer that feeds the next one in reverse time order."""
    parts = directions_of(layer, index)
    if len(parts) != len(theirs.directions):
        arch = "bidirectional" if len(theirs.directions) == 2 else "stacked"
        raise InteropError(
            f"{theirs.name} is {kind_of(len(theirs.directions))} ({theirs.labels[0]} "
            f"{describe(p.W for p in theirs.directions)}) but jaxlstm layer {index} is {kind_of(len(parts))} "
            f"(W {describe(p.W for p in parts)}); use the {arch} architecture (--arch {arch})"
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
    if theirs.reverse and theirs.return_sequences and feeds_another:
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


def _layer_assignments(layer: Any, theirs: PeerLayer, index: int) -> list[tuple[nnx.Param, np.ndarray]]:
    """Each W, U and b of jaxlstm layer ``index`` (every direction) paired with the peer's array; InteropError
    naming the first shape that does not fit."""
    parts = directions_of(layer, index)
    assignments = []
    for direction, (part, params) in enumerate(zip(parts, theirs.directions, strict=True)):
        where = "" if len(parts) == 1 else (" (forward)", " (backward)")[direction]
        assignments += _paired(
            part,
            ("W", "U", "b"),
            theirs.labels,
            params,
            f"{theirs.name}{where}:",
            f"jaxlstm layer {index}{where}",
            hint=" (units or input width differ)",
        )
    return assignments


def _paired(
    owner: Any, names: tuple[str, ...], labels: tuple[str, ...], arrays: Any, theirs: str, ours: str, hint: str = ""
) -> list[tuple[nnx.Param, np.ndarray]]:
    """``owner``'s variables ``names`` paired with the peer's ``arrays`` (named ``labels`` by the peer); InteropError
    naming the first whose shape does not fit (``theirs`` and ``ours`` say whose, for the message)."""
    pairs = []
    for name, label, array in zip(names, labels, arrays, strict=True):
        variable = getattr(owner, name)
        if shape_of(array) != shape_of(variable):
            raise InteropError(
                f"{theirs} {label} {shape_of(array)} does not fit {ours} {name} {shape_of(variable)}{hint}"
            )
        pairs.append((variable, array))
    return pairs


def own_dropouts(module: Module, peer: PeerModel) -> list[tuple[LSTM, tuple[float, float]]]:
    """Each of our LSTM layers with the peer's in-layer dropout rates for it. A Forecaster has no setting for them
    (its config would lose them): the rates are dropped there, with a warning."""
    ours = module_parts(module)[0]
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
        pairs.extend((part, theirs.own_dropout) for part in directions_of(layer, index))
    return pairs


def filled(build: Any, peer: PeerModel) -> Any:
    """``build()``'s module holding the peer's weights, built abstractly (``nnx.eval_shape``: no initialiser runs,
    which saves seconds on the tutorial's models) and then filled with every weight."""
    module = nnx.eval_shape(build)
    check_and_assign(module, peer, require_head=True)
    abstract = [leaf for leaf in jax.tree.leaves(nnx.state(module)) if isinstance(leaf, jax.ShapeDtypeStruct)]
    if abstract:  # pragma: no cover - every variable of these modules has a peer counterpart
        raise InteropError(f"{peer.source} left {len(abstract)} jaxlstm variables without a value")
    return module


def select_layer(module: Module, peer: PeerModel, layer: int | None) -> PeerModel:
    """For a bare LSTM/Bidirectional target: the peer reduced to its layer ``layer`` (default: its only one)."""
    if not isinstance(module, LSTM | Bidirectional):
        if layer is not None:
            raise InteropError("layer= selects one peer layer for a bare LSTM or Bidirectional target only")
        return peer
    if layer is None:
        if len(peer.layers) != 1:
            raise InteropError(
                f"{peer.source} has {len(peer.layers)} recurrent layers (kernels "
                f"{describe(p.directions[0].W for p in peer.layers)}); pass layer=<index> to pick one"
            )
        layer = 0
    if not -len(peer.layers) <= layer < len(peer.layers):
        raise InteropError(f"{peer.source} has no recurrent layer {layer}: it has {len(peer.layers)}")
    chosen = peer.layers[layer]
    return replace(peer, layers=(replace(chosen, return_sequences=None),), head=None)


def infer_config(peer: PeerModel, *, dropout: float | None) -> ModelConfig:
    """The :class:`ModelConfig` of the Forecaster that holds ``peer``: uniform units, direction and dropout."""
    if not peer.layers:
        raise InteropError(f"{peer.source} holds no LSTM layer")
    if peer.head is None:
        raise InteropError(f"{peer.source} has no {peer.head_name} head; a jaxlstm Forecaster ends with a Dense head")
    first = peer.layers[0]
    n_directions = len(first.directions)
    units = shape_of(first.directions[0].U)[0]
    for index, layer in enumerate(peer.layers):
        if len(layer.directions) != n_directions:
            raise InteropError(
                f"{layer.name} is {kind_of(len(layer.directions))} (kernel {shape_of(layer.directions[0].W)}) but "
                f"{first.name} is {kind_of(n_directions)} (kernel {shape_of(first.directions[0].W)}); "
                "a jaxlstm Forecaster uses one kind for every layer"
            )
        if shape_of(layer.directions[0].U)[0] != units:
            raise InteropError(
                f"{layer.name} has {shape_of(layer.directions[0].U)[0]} units (recurrent kernel "
                f"{shape_of(layer.directions[0].U)}) but {first.name} has {units} ({shape_of(first.directions[0].U)}); "
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
        dropout=peer_dropout(peer, dropout),
        n_features=shape_of(first.directions[0].W)[0],
        outputs=shape_of(peer.head[0])[1],
    )


def peer_dropout(peer: PeerModel, dropout: float | None) -> float:
    """``dropout`` when given, else the peer's one rate (its Dropout layers), else the tutorial's 0.2."""
    if dropout is not None:
        return dropout
    rates = [layer.dropout for layer in peer.layers]
    known = {rate for rate in rates if rate is not None}
    if len(known) > 1:
        listing = ", ".join(f"{rate} after {layer.name}" for rate, layer in zip(rates, peer.layers, strict=True))
        raise InteropError(f"dropout rates differ ({listing}); jaxlstm uses one rate: pass dropout= (--dropout)")
    return known.pop() if known else ModelConfig.dropout
