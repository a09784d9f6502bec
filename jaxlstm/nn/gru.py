r"""The gated recurrent unit (Cho et al., 2014, "Learning Phrase Representations using RNN Encoder-Decoder"):
every GRU equation of jaxlstm lives in this file, and only here.

Two gates and no separate cell state. With ``reset_after=True`` (the default of Keras, PyTorch and cuDNN), the reset
gate scales the recurrent half of the candidate *after* its matmul:

.. math::

    a_t &= x_t W + b^{(x)},\qquad r_t^{(h)} = h_{t-1} U + b^{(h)}  && \text{the two halves, } (3H,) \text{ each} \\
    z_t &= \sigma(a_t^{[0:H]} + r_t^{(h)[0:H]})                  && \text{update gate} \\
    r_t &= \sigma(a_t^{[H:2H]} + r_t^{(h)[H:2H]})                && \text{reset gate} \\
    n_t &= \tanh(a_t^{[2H:3H]} + r_t \odot r_t^{(h)[2H:3H]})      && \text{candidate} \\
    h_t &= z_t \odot h_{t-1} + (1 - z_t) \odot n_t               && \text{hidden state (the output)}

With ``reset_after=False`` (the paper's own form) one bias, and the reset gate scales ``h`` *before* its matmul:
:math:`n_t = \tanh(a_t^{[2H:3H]} + (r_t \odot h_{t-1}) U^{[:, 2H:3H]})`.

Layout, Keras's: gate order **z, r, h** along the last axis; ``W`` (in, 3H) is Keras's ``kernel``, ``U`` (H, 3H) its
``recurrent_kernel``, ``b`` its ``bias``: (2, 3H) with ``reset_after=True`` (row 0 the input bias, row 1 the
recurrent one), (3H,) without. PyTorch's ``nn.GRU`` orders the gates r, z, n, stores ``weight_ih`` (3H, in) and
``weight_hh`` (3H, H) transposed, and keeps ``b_hn`` inside the reset product (``reset_after=True``): see
:mod:`jaxlstm.interop.torch`.

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> layer = GRU(1, 8, rngs=nnx.Rngs(0))
>>> layer(jnp.ones((2, 5, 1))).shape, layer.b.shape
((2, 5, 8), (2, 24))
>>> params = GRUParams(W=jnp.zeros((1, 6)), U=jnp.zeros((2, 6)), b=jnp.zeros((2, 6)))
>>> state, gates = gru_update(params, HiddenState(jnp.ones(2)), jnp.ones(1))
>>> state.h  # z = sigmoid(0) = 0.5 and n = tanh(0) = 0: h = 0.5 * 1 + 0.5 * 0
Array([0.5, 0.5], dtype=float32)
"""

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.nn.layers import GLOROT_UNIFORM, ORTHOGONAL, CellLayer
from jaxlstm.nn.rnn import HiddenState
from jaxlstm.nn.scan import Step, recurrent_input

__all__ = ["GRU", "GRUGates", "GRUParams", "gru_update"]

Array = jax.Array


class GRUParams(NamedTuple):
    """Weights of one GRU cell, gate order z, r, h.

    Attributes:
        W: input kernel, (in_features, 3H).
        U: recurrent kernel, (H, 3H).
        b: bias: (2, 3H), the input and the recurrent bias, with ``reset_after=True``; (3H,) without.
    """

    W: Array
    U: Array
    b: Array


class GRUGates(NamedTuple):
    """The gates of one GRU step, each (..., H): the update gate ``z``, the reset gate ``r`` and the candidate
    ``n``."""

    update: Array
    reset: Array
    candidate: Array


def gru_update(
    params: GRUParams, state: HiddenState, x: Array, recurrent_scale: Array | None = None
) -> tuple[HiddenState, GRUGates]:
    """One GRU step, as the module docstring writes it (``reset_after`` read from the bias's shape).

    Args:
        params: the cell's weights.
        state: ``(h,)``, (..., H).
        x: input, (..., in_features).
        recurrent_scale: (..., H), what ``h`` is multiplied by where it enters ``U`` (the recurrent dropout); None
            for none.

    Returns:
        The new state and the gates that produced it.
    """
    h_in = recurrent_input(state.h, recurrent_scale)
    reset_after = params.b.ndim == 2
    x_update, x_reset, x_candidate = jnp.split(x @ params.W + (params.b[0] if reset_after else params.b), 3, axis=-1)
    U_update, U_reset, U_candidate = jnp.split(params.U, 3, axis=-1)
    b_update, b_reset, b_candidate = jnp.split(params.b[1], 3) if reset_after else (0.0, 0.0, 0.0)
    update_gate = jax.nn.sigmoid(x_update + h_in @ U_update + b_update)
    reset_gate = jax.nn.sigmoid(x_reset + h_in @ U_reset + b_reset)
    if reset_after:
        candidate = jnp.tanh(x_candidate + reset_gate * (h_in @ U_candidate + b_candidate))
    else:
        candidate = jnp.tanh(x_candidate + (reset_gate * h_in) @ U_candidate)
    h = update_gate * state.h + (1.0 - update_gate) * candidate
    return HiddenState(h), GRUGates(update_gate, reset_gate, candidate)


class GRU(CellLayer):
    """A GRU layer, Keras's ``GRU``: :func:`gru_update` run over time, with Keras's initialisers (glorot-uniform
    ``W``, orthogonal ``U``, zero bias).

    Its state is :class:`~jaxlstm.nn.rnn.HiddenState` ``(h,)``; ``initial_state`` takes it, ``[h]`` as Keras passes
    it, or ``h``.

    Args:
        in_features: size of each input vector.
        hidden_size: H, the number of units.
        reset_after: apply the reset gate after the recurrent matmul, with two biases (Keras's default and
            PyTorch's only form), or before it, with one (Cho et al.'s).
        param_dtype: the dtype the weights are stored (and trained) in.
        rngs: source of the ``params`` key.
        options: ``return_sequences``, ``reverse``, ``unroll``, ``dropout``, ``recurrent_dropout``, ``dtype``: the
            options of every layer of the family (:class:`~jaxlstm.nn.layers.CellLayer`).
    """

    name = "GRU"

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        reset_after: bool = True,
        param_dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
        **options: Any,
    ):
        self._configure(in_features, hidden_size, param_dtype=param_dtype, **options)
        self.reset_after = reset_after
        width = 3 * hidden_size
        self.W = nnx.Param(GLOROT_UNIFORM(rngs.params(), (in_features, width), param_dtype))
        self.U = nnx.Param(ORTHOGONAL(rngs.params(), (hidden_size, width), param_dtype))
        self.b = nnx.Param(jnp.zeros((2, width) if reset_after else (width,), param_dtype))

    @property
    def params(self) -> GRUParams:
        """The weights as a plain :class:`GRUParams`."""
        return GRUParams(self.W[...], self.U[...], self.b[...])

    def zeros(self, batch: int, dtype: jnp.dtype) -> HiddenState:
        """The zero ``h``, (batch, H)."""
        return HiddenState.zeros(batch, self.hidden_size, dtype)

    def cell_step(self, params: GRUParams, recurrent_scale: Array | None) -> Step:
        """:func:`gru_update` as a loop body."""
        return lambda x_t, state: gru_update(params, state, x_t, recurrent_scale)
