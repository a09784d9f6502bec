"""PyTorch: ``nn.LSTM`` (and ``nn.Linear`` heads) and ``nn.GRU``, and their ``state_dict``s, into jaxlstm models, and
back."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from flax import nnx

from jaxlstm.errors import plural
from jaxlstm.interop.peer import (
    InteropError,
    M,
    Module,
    PeerLayer,
    PeerModel,
    as_array,
    check_and_assign,
    directions_of,
    filled,
    infer_config,
    kind_of,
    module_parts,
    select_layer,
    shape_of,
)
from jaxlstm.nn.cell import LSTMParams
from jaxlstm.nn.gru import GRU
from jaxlstm.nn.layers import LSTM, Bidirectional, Stacked
from jaxlstm.nn.models import Forecaster

if TYPE_CHECKING:  # pragma: no cover
    import torch


# --------------------------------------------------------------------------------------------------------------
# PyTorch: nn.LSTM state_dicts.

__all__ = [
    "TorchModules",
    "from_torch",
    "gru_torch_state_dict",
    "load_torch",
    "load_torch_gru",
    "stacked_from_torch",
    "to_torch",
    "torch_state_dict",
]

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
    return {str(key): as_array(value) for key, value in lstm.items()}


def _read_torch(lstm: Any, head: Any) -> PeerModel:
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
        peer_layers.append(PeerLayer(f"nn.LSTM layer {index}", tuple(directions), labels, merge_mode=merge_mode))
    peer_head = None
    if head is not None:
        head_state = _state_dict(head) if not isinstance(head, Mapping) else {k: as_array(v) for k, v in head.items()}
        if set(head_state) != {"weight", "bias"}:
            raise InteropError(f"the head must be an nn.Linear (weight, bias), got keys {sorted(head_state)}")
        peer_head = (head_state["weight"].T.copy(), head_state["bias"])
    return PeerModel("nn.LSTM", tuple(peer_layers), peer_head, "nn.Linear")


def from_torch(lstm: Any, head: Any, *, dropout: float = 0.0) -> Forecaster:
    """A new :class:`~jaxlstm.nn.Forecaster` from an ``nn.LSTM`` (or its state_dict) and an ``nn.Linear`` head.

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
    return filled(lambda: Forecaster(infer_config(peer, dropout=dropout), rngs=nnx.Rngs(0)), peer)


def stacked_from_torch(lstm: Any) -> Stacked:
    """A :class:`~jaxlstm.nn.Stacked` (no dropout) equal to ``nn.LSTM(..., batch_first=True)``; for a whole
    forecaster (the LSTM and its ``nn.Linear`` head), use :func:`from_torch`.

    Every layer returns sequences, so its output is ``nn.LSTM``'s ``output``; run the layers' ``scan`` to get
    the final ``(h, c)`` of each layer and direction (``h_n``, ``c_n``).
    """
    peer = _read_torch(lstm, None)
    first = peer.layers[0].directions[0]

    def build() -> Stacked:
        in_features = shape_of(first.W)[0]
        layers = []
        for index, layer in enumerate(peer.layers):
            units = shape_of(layer.directions[0].U)[0]
            forward = LSTM(in_features, units, return_sequences=True, rngs=nnx.Rngs(index))
            if len(layer.directions) == 2:
                layers.append(Bidirectional(forward, LSTM(in_features, units, reverse=True, rngs=nnx.Rngs(index))))
            else:
                layers.append(forward)
            in_features = layers[-1].out_features
        return Stacked(layers)

    return filled(build, peer)


def load_torch(module: M, lstm: Any, head: Any = None, *, layer: int | None = None) -> M:
    """Loads an ``nn.LSTM`` (or its state_dict) and optionally an ``nn.Linear`` head into ``module``, in place.

    Args:
        module: a :class:`~jaxlstm.nn.Forecaster`, :class:`~jaxlstm.nn.Stacked`, or a bare
            :class:`~jaxlstm.nn.LSTM` / :class:`~jaxlstm.nn.Bidirectional` (concat merge only).
        lstm: the ``nn.LSTM`` or its ``state_dict()`` (tensors or NumPy arrays). Both biases are summed.
        head: an ``nn.Linear(features, 1)`` or its state_dict, loaded into a Forecaster's head; when None the
            head keeps its weights.
        layer: for a bare LSTM or Bidirectional ``module``, which ``nn.LSTM`` layer to load (default: the only one).

    Raises:
        InteropError: the architectures differ; the message names the layer and both shapes.
    """
    peer = select_layer(module, _read_torch(lstm, head), layer)
    check_and_assign(module, peer, require_head=False)
    return module


def _torch_layers(module: Module) -> tuple[list[Any], nnx.Linear | None, float | None]:
    """Our layers, checked to fit one ``nn.LSTM``: one direction kind, equal units, concat merges."""
    layers, head, rate = module_parts(module)
    n_directions = len(directions_of(layers[0], 0))
    units = directions_of(layers[0], 0)[0].hidden_size
    for index, layer in enumerate(layers):
        parts = directions_of(layer, index)
        if len(parts) != n_directions:
            raise InteropError(
                f"jaxlstm layer {index} is {kind_of(len(parts))} (W {shape_of(parts[0].W)}) but layer 0 is "
                f"{kind_of(n_directions)}; one nn.LSTM has one direction setting"
            )
        for part in parts:
            if part.hidden_size != units:
                raise InteropError(
                    f"jaxlstm layer {index} has U {shape_of(part.U)} but layer 0 has {plural(units, 'unit')}; "
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
        for suffix, part in zip(("", "_reverse"), directions_of(layer, index), strict=False):
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
    first = directions_of(layers[0], 0)[0]
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


# --------------------------------------------------------------------------------------------------------------
# PyTorch: nn.GRU state_dicts. PyTorch orders the gates r, z, n and jaxlstm (Keras) z, r, h: the first two blocks
# swap, both ways; its two biases are jaxlstm's two rows, b_hn inside the reset product in both (reset_after=True).


def _swap_reset_update(array: np.ndarray) -> np.ndarray:
    """The gate blocks along the last axis from z, r, h to r, z, n, or back (the same swap)."""
    first, second, third = np.split(array, 3, axis=-1)
    return np.concatenate([second, first, third], axis=-1)


def _gru_layers(module: GRU | Bidirectional | Stacked) -> list[list[GRU]]:
    """Each layer's GRU directions, [forward] or [forward, backward], checked to be what ``nn.GRU`` can hold."""
    layers = list(module.layers) if isinstance(module, Stacked) else [module]
    parts = []
    for index, layer in enumerate(layers):
        directions = [layer.forward_layer, layer.backward_layer] if isinstance(layer, Bidirectional) else [layer]
        if isinstance(layer, Bidirectional) and layer.merge_mode != "concat":
            raise InteropError(f"jaxlstm layer {index} merges with {layer.merge_mode!r}; nn.GRU concatenates")
        for part in directions:
            if not isinstance(part, GRU):
                raise InteropError(f"jaxlstm layer {index} is a {type(part).__name__}; nn.GRU holds GRU layers only")
            if not part.reset_after:
                raise InteropError(
                    f"jaxlstm layer {index} is a GRU with reset_after=False; nn.GRU applies the reset gate after its "
                    "matmul: build it with reset_after=True"
                )
        if len(directions) == 1 and layer.reverse:
            raise InteropError(f"jaxlstm layer {index} reads backwards on its own; nn.GRU has no such layer")
        parts.append(directions)
    return parts


def gru_torch_state_dict(module: GRU | Bidirectional | Stacked, *, numpy: bool = False) -> dict[str, Any]:
    """The ``nn.GRU`` state_dict of a GRU layer, a Bidirectional GRU or a Stacked of them, in ``nn.GRU``'s key
    order: ``weight_ih_l{k}`` (3H, in) and ``weight_hh_l{k}`` (3H, H) are ``W.T`` and ``U.T`` with the gates
    reordered r, z, n; ``bias_ih_l{k}`` and ``bias_hh_l{k}`` are ``b``'s two rows, reordered; ``_reverse`` keys hold
    the backward direction. CPU tensors, or NumPy arrays with ``numpy=True``.

    Raises:
        InteropError: a layer that ``nn.GRU`` cannot hold (another cell, ``reset_after=False``, a merge mode
            other than concat, a lone reversed layer).
    """
    state: dict[str, Any] = {}
    for index, directions in enumerate(_gru_layers(module)):
        for suffix, part in zip(("", "_reverse"), directions, strict=False):
            W, U, b = (np.asarray(array, np.float32) for array in part.params)
            state[f"weight_ih_l{index}{suffix}"] = np.array(_swap_reset_update(W).T, order="C")
            state[f"weight_hh_l{index}{suffix}"] = np.array(_swap_reset_update(U).T, order="C")
            state[f"bias_ih_l{index}{suffix}"] = _swap_reset_update(b[0])
            state[f"bias_hh_l{index}{suffix}"] = _swap_reset_update(b[1])
    if numpy:
        return state
    import torch

    return {key: torch.from_numpy(value) for key, value in state.items()}


def load_torch_gru(module: M, gru: Any) -> M:
    """Loads an ``nn.GRU`` (or its state_dict) into a GRU layer, a Bidirectional GRU or a Stacked of them, with
    the same layers, directions and sizes; returns ``module``. The inverse of :func:`gru_torch_state_dict`.

    Raises:
        InteropError: the keys or a shape differ (the message names the key and both shapes); nothing is loaded.
    """
    theirs = _state_dict(gru)
    ours = gru_torch_state_dict(module, numpy=True)
    if set(theirs) != set(ours):
        extra, absent = sorted(set(theirs) - set(ours)), sorted(set(ours) - set(theirs))
        raise InteropError(
            f"the nn.GRU has {', '.join(extra) or 'no extra keys'} and lacks {', '.join(absent) or 'nothing'}: its "
            "layers or directions differ from the jaxlstm module's"
        )
    for key, value in ours.items():
        if theirs[key].shape != value.shape:
            raise InteropError(f"{key}: nn.GRU has {theirs[key].shape}, the jaxlstm module {value.shape}")
    for index, directions in enumerate(_gru_layers(module)):
        for suffix, part in zip(("", "_reverse"), directions, strict=False):
            key = f"l{index}{suffix}"
            part.W[...] = _swap_reset_update(theirs[f"weight_ih_{key}"].T)
            part.U[...] = _swap_reset_update(theirs[f"weight_hh_{key}"].T)
            part.b[...] = np.stack([_swap_reset_update(theirs[f"bias_{kind}_{key}"]) for kind in ("ih", "hh")])
    return module
