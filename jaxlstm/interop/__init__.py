"""Keras and PyTorch weight import and export, one module per peer (:mod:`~jaxlstm.interop.keras`,
:mod:`~jaxlstm.interop.torch`, sharing :mod:`~jaxlstm.interop.peer`): jaxlstm models proven equal to their peers.

jaxlstm's conventions (:mod:`jaxlstm.nn.cell`) are Keras's: gate order i, f, g, o, ``W`` (in, 4H) is Keras's ``kernel``,
``U`` (H, 4H) its ``recurrent_kernel`` and ``b`` (4H,) its ``bias``, so Keras weights are copied as they are.
PyTorch's ``nn.LSTM`` uses the same gate order but stores ``weight_ih_l{k}`` = ``W.T`` (4H, in),
``weight_hh_l{k}`` = ``U.T`` and two biases whose sum is ``b``; its backward direction carries a ``_reverse``
suffix, and a bidirectional ``nn.LSTM`` concatenates the directions as Keras's ``merge_mode="concat"`` does.
Exporting to PyTorch puts ``b`` into ``bias_ih`` and zeros into ``bias_hh`` (only their sum matters).

Keras (the JAX backend or none at all; files are read with ``h5py``):

- :func:`from_keras` builds a :class:`~jaxlstm.nn.Forecaster` from a ``.keras`` file, a ``.weights.h5`` file or
  a live ``keras.Model`` (architecture inferred, see :func:`keras_model_config`);
- :func:`load_keras` loads Keras weights into an existing Forecaster, :class:`~jaxlstm.nn.Stacked`,
  :class:`~jaxlstm.nn.LSTM` or :class:`~jaxlstm.nn.Bidirectional` (any merge mode);
- :func:`to_keras` builds the equivalent ``keras.Sequential``, :func:`save_keras` writes it to ``.keras`` or
  ``.weights.h5``, and :func:`keras_weights` lists our weights in Keras's ``model.get_weights()`` order.

PyTorch (``torch`` is imported only by the functions that need it):

- :func:`from_torch` (Forecaster, with an ``nn.Linear`` head), :func:`stacked_from_torch` (the recurrent stack
  alone, returning sequences as ``nn.LSTM`` does) and :func:`load_torch` (into an existing module) import an
  ``nn.LSTM`` or its ``state_dict``;
- :func:`torch_state_dict` and :func:`to_torch` export.

GRUs (:class:`~jaxlstm.nn.GRU`, Keras's layout): :func:`load_keras_gru` and :func:`keras_gru_weights` copy a Keras
``GRU`` layer's weights as they are; :func:`load_torch_gru` and :func:`gru_torch_state_dict` map an ``nn.GRU`` (any
layers, either direction) by swapping its r, z blocks to z, r.

Any architecture mismatch (units, number of layers, direction, merge mode, ...) raises :class:`InteropError`, a
:class:`~jaxlstm.errors.ConfigError`, with a one-line message naming the layer and both shapes; nothing is
loaded then. ``jaxlstm convert`` (:mod:`jaxlstm.commands.convert`) turns Keras files into run directories and back.

>>> import numpy as np
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> from jaxlstm.nn import Forecaster
>>> model = Forecaster(preset("stacked", layers=2, units=3), rngs=nnx.Rngs(0))
>>> state = torch_state_dict(model, numpy=True)
>>> [(name, array.shape) for name, array in state.items()][:4]
[('weight_ih_l0', (12, 1)), ('weight_hh_l0', (12, 3)), ('bias_ih_l0', (12,)), ('bias_hh_l0', (12,))]
>>> other = load_torch(Forecaster(preset("stacked", layers=2, units=3), rngs=nnx.Rngs(1)), state)
>>> bool(np.array_equal(other.recurrent.layers[1].U[...], model.recurrent.layers[1].U[...]))
True
"""

from __future__ import annotations

from jaxlstm.interop.keras import (
    KERAS_SUFFIXES,
    from_keras,
    keras_gru_weights,
    keras_model_config,
    keras_weights,
    load_keras,
    load_keras_gru,
    save_keras,
    to_keras,
)
from jaxlstm.interop.peer import InteropError
from jaxlstm.interop.torch import (
    TorchModules,
    from_torch,
    gru_torch_state_dict,
    load_torch,
    load_torch_gru,
    stacked_from_torch,
    to_torch,
    torch_state_dict,
)

__all__ = [
    "KERAS_SUFFIXES",
    "InteropError",
    "TorchModules",
    "from_keras",
    "from_torch",
    "gru_torch_state_dict",
    "keras_gru_weights",
    "keras_model_config",
    "keras_weights",
    "load_keras",
    "load_keras_gru",
    "load_torch",
    "load_torch_gru",
    "save_keras",
    "stacked_from_torch",
    "to_keras",
    "to_torch",
    "torch_state_dict",
]
