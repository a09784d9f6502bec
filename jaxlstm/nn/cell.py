r"""The LSTM cell: every gate equation of jaxlstm lives in this file, and only here.

One step of a long short-term memory cell (Hochreiter & Schmidhuber, 1997; forget gate by Gers et al., 2000)
maps an input :math:`x_t` and the previous state :math:`(h_{t-1}, c_{t-1})` to a new state:

.. math::

    z_t &= x_t W + h_{t-1} U + b                          && \text{pre-activations, } (4H,) \\
    i_t &= \sigma(z_t^{[0:H]})                             && \text{input gate} \\
    f_t &= \sigma(z_t^{[H:2H]})                            && \text{forget gate} \\
    g_t &= \tanh(z_t^{[2H:3H]})                            && \text{cell candidate} \\
    o_t &= \sigma(z_t^{[3H:4H]})                           && \text{output gate} \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t               && \text{cell state} \\
    h_t &= o_t \odot \tanh(c_t)                            && \text{hidden state (the output)}

Conventions, used everywhere in jaxlstm:

- gate order **i, f, g, o** along the last axis of ``W``, ``U`` and ``b``;
- state **(h, c)**;
- ``W`` has shape (in, 4H) and multiplies from the right (``x @ W``), ``U`` has shape (H, 4H), one bias (4H,).

These are exactly Keras's ``kernel``, ``recurrent_kernel`` and ``bias`` (Keras names the gates i, f, c, o: the same
order). PyTorch stores ``weight_ih`` = ``W.T`` and ``weight_hh`` = ``U.T`` and splits the bias in two
(``bias_ih + bias_hh = b``). Flax Linen's carry is ``(c, h)``, the other way round.

The cell is split so that fast paths can reorganise the work without copying the equations: :func:`lstm_gates`
holds the gate activations and :func:`lstm_state` the cell and hidden states, written exactly as above, and
:func:`lstm_update` is the two in a row; :func:`preactivation` computes :math:`z_t` from its two halves,
:func:`project_input` (:math:`x_t W + b`, which a layer may compute for all time steps before its loop) and
:func:`project_state` (:math:`h_{t-1} U`); :func:`lstm_step` is the textbook step. A convolutional LSTM computes
:math:`z_t` with convolutions and calls :func:`lstm_update` too. The fast path (:mod:`jaxlstm.nn.fused`) computes the
same gates with one ``tanh`` over the whole slab (:math:`\sigma(z) = (1 + \tanh(z/2)) / 2`: the one line that it
writes differently, tested equal to :func:`lstm_gates`) and then calls :func:`lstm_state`.

>>> import jax.numpy as jnp
>>> params = LSTMParams(W=jnp.zeros((1, 8)), U=jnp.zeros((2, 8)), b=jnp.zeros(8))
>>> state = lstm_step(params, LSTMState.zeros((), 2), jnp.ones(1))
>>> state.c  # i = sigmoid(0) = 0.5 and g = tanh(0) = 0, so c = 0.5 * 0 + 0.5 * 0
Array([0., 0.], dtype=float32)
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = [
    "Gates",
    "LSTMParams",
    "LSTMState",
    "lstm_gates",
    "lstm_state",
    "lstm_step",
    "lstm_update",
    "preactivation",
    "project_input",
    "project_state",
]

Array = jax.Array


class LSTMState(NamedTuple):
    """The recurrent state: hidden state ``h`` and cell state ``c``, each shaped (..., H)."""

    h: Array
    c: Array

    @classmethod
    def zeros(cls, batch_shape: tuple[int, ...], hidden_size: int, dtype: jnp.dtype = jnp.float32) -> "LSTMState":
        """A zero state shaped ``batch_shape + (hidden_size,)``, as Keras and PyTorch start by default."""
        zeros = jnp.zeros((*batch_shape, hidden_size), dtype)
        return cls(h=zeros, c=zeros)


class LSTMParams(NamedTuple):
    """Weights of one LSTM cell, gate order i, f, g, o.

    Attributes:
        W: input kernel, (in_features, 4H).
        U: recurrent kernel, (H, 4H).
        b: bias, (4H,).
    """

    W: Array
    U: Array
    b: Array


class Gates(NamedTuple):
    """The four gate activations of one step, each shaped (..., H)."""

    input: Array
    forget: Array
    candidate: Array
    output: Array


def lstm_gates(preactivation: Array) -> Gates:
    """The four gates from the pre-activations ``z`` (..., 4H): i, f, o squashed by the sigmoid, g by tanh; each
    (..., H)."""
    z_input, z_forget, z_candidate, z_output = jnp.split(preactivation, 4, axis=-1)
    input_gate = jax.nn.sigmoid(z_input)
    forget_gate = jax.nn.sigmoid(z_forget)
    candidate = jnp.tanh(z_candidate)
    output_gate = jax.nn.sigmoid(z_output)
    return Gates(input_gate, forget_gate, candidate, output_gate)


def lstm_state(gates: Gates, c: Array) -> LSTMState:
    """The new state from the gates and the old cell state ``c`` (..., H): ``c`` forgets and takes in, ``h`` is its
    squashed, gated output."""
    c_new = gates.forget * c + gates.input * gates.candidate
    h_new = gates.output * jnp.tanh(c_new)
    return LSTMState(h=h_new, c=c_new)


def lstm_update(preactivation: Array, c: Array) -> tuple[LSTMState, Gates]:
    """The gate equations: from pre-activations ``z`` (..., 4H) and the old cell state ``c`` (..., H).

    Returns the new state ``(h, c)``, each (..., H), and the gates that produced it.
    """
    gates = lstm_gates(preactivation)
    return lstm_state(gates, c), gates


def project_input(params: LSTMParams, x: Array) -> Array:
    """The input half of the pre-activations, ``x W + b``: x (..., in_features) -> (..., 4H)."""
    return x @ params.W + params.b


def project_state(params: LSTMParams, h: Array) -> Array:
    """The recurrent half of the pre-activations, ``h U``: h (..., H) -> (..., 4H)."""
    return h @ params.U


def preactivation(params: LSTMParams, x: Array, h: Array) -> Array:
    """``z = x W + h U + b``, (..., 4H), from the input x (..., in_features) and the previous h (..., H)."""
    return project_input(params, x) + project_state(params, h)


def lstm_step(params: LSTMParams, state: LSTMState, x: Array) -> LSTMState:
    """One textbook LSTM step.

    Args:
        params: the cell's weights.
        state: ``(h, c)``, each (..., H).
        x: input, (..., in_features).

    Returns:
        The new state ``(h, c)``, each (..., H).
    """
    return lstm_update(preactivation(params, x, state.h), state.c)[0]
