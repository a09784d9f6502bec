r"""The LSTM variants of Greff et al. (2017, "LSTM: A Search Space Odyssey", IEEE TNNLS 28(10)): every variant's
equations live in this file, and only here, as changes to one peephole LSTM.

Greff et al.'s "vanilla" LSTM is jaxlstm's LSTM (:mod:`jaxlstm.nn.cell`) with peepholes: the input and forget gates
read the old cell state, and the output gate reads the *new* one (Gers & Schmidhuber, 2000):

.. math::

    i_t &= \sigma(x_t W_i + h_{t-1} U_i + p_i \odot c_{t-1} + b_i)      && \text{input gate} \\
    f_t &= \sigma(x_t W_f + h_{t-1} U_f + p_f \odot c_{t-1} + b_f)      && \text{forget gate} \\
    g_t &= \tanh(x_t W_g + h_{t-1} U_g + b_g)                         && \text{cell candidate (block input)} \\
    c_t &= f_t \odot c_{t-1} + i_t \odot g_t                          && \text{cell state} \\
    o_t &= \sigma(x_t W_o + h_{t-1} U_o + p_o \odot c_t + b_o)          && \text{output gate} \\
    h_t &= o_t \odot \tanh(c_t)                                       && \text{hidden state}

Each variant removes or changes one thing (Greff et al., sec. III):

=========  =================================================================================================
``peephole``  the vanilla LSTM above (Greff et al.'s "V")
``nig``    no input gate: :math:`i_t = 1`
``nfg``    no forget gate: :math:`f_t = 1` (the 1997 LSTM, which solved the adding problem without one)
``nog``    no output gate: :math:`o_t = 1`
``niaf``   no input activation function: :math:`g_t = x_t W_g + h_{t-1} U_g + b_g`
``noaf``   no output activation function: :math:`h_t = o_t \odot c_t`
``np``     no peepholes: jaxlstm's own LSTM (tested equal to :class:`~jaxlstm.nn.LSTM`)
``cifg``   coupled input and forget gate: :math:`f_t = 1 - i_t`
``fgr``    full gate recurrence: each of i, f, o also reads the three gates of the step before,
           :math:`+ [i_{t-1}, f_{t-1}, o_{t-1}] R`, ``R`` (3H, 3H) (Greff et al.'s nine extra matrices)
=========  =================================================================================================

A gate that a variant removes has no weights (its block is absent from ``W``, ``U``, ``b`` and the peepholes), so
parameter counts are those of the paper. Layout: the blocks present, in the order i, f, g, o; peepholes (k, H), one row
per sigmoid gate present, in the order i, f, o. Initialisation: glorot-uniform ``W``, orthogonal ``U``, zero bias with
the forget block at 1 (as jaxlstm's LSTM), peepholes and ``R`` zero, so every variant starts as its peephole-free
self and learns them. The trace records the four gates of :class:`~jaxlstm.nn.Gates` for every variant (a removed
gate as its constant value).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> layer = LSTMVariant(1, 8, "cifg", rngs=nnx.Rngs(0))
>>> layer(jnp.ones((2, 5, 1))).shape, layer.W.shape  # i, g, o: no forget block
((2, 5, 8), (1, 24))
"""

from typing import Any, Literal, NamedTuple, get_args

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.nn.cell import Gates
from jaxlstm.nn.layers import GLOROT_UNIFORM, ORTHOGONAL, CellLayer
from jaxlstm.nn.scan import Step, recurrent_input

__all__ = ["VARIANTS", "LSTMVariant", "Variant", "VariantParams", "VariantState", "variant_blocks", "variant_update"]

Array = jax.Array
Variant = Literal["peephole", "nig", "nfg", "nog", "niaf", "noaf", "np", "cifg", "fgr"]
VARIANTS: tuple[str, ...] = get_args(Variant)


class VariantState(NamedTuple):
    """A variant's state: ``h`` and ``c`` (..., H), and for ``fgr`` the gates i, f, o of the last step
    (..., 3H) (width 0 for the others)."""

    h: Array
    c: Array
    gates: Array


class VariantParams(NamedTuple):
    """Weights of one variant cell.

    Attributes:
        W: input kernel, (in_features, kH): the k blocks the variant has, in the order i, f, g, o.
        U: recurrent kernel, (H, kH).
        b: bias, (kH,).
        peepholes: (m, H), one row per sigmoid gate the variant has (order i, f, o); None for ``np``.
        gate_recurrence: ``fgr``: ``R`` (3H, 3H), from the last step's gates i, f, o to this step's; else None.
    """

    W: Array
    U: Array
    b: Array
    peepholes: Array | None
    gate_recurrence: Array | None


def variant_blocks(variant: Variant) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The pre-activation blocks a variant has (of i, f, g, o) and the gates that have peepholes (of i, f, o).

    >>> variant_blocks("cifg")
    (('input', 'candidate', 'output'), ('input', 'output'))
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown LSTM variant {variant!r}; use one of {', '.join(VARIANTS)}")
    removed = {"nig": "input", "nfg": "forget", "nog": "output", "cifg": "forget"}.get(variant)
    blocks = tuple(name for name in ("input", "forget", "candidate", "output") if name != removed)
    peepholes = () if variant == "np" else tuple(name for name in ("input", "forget", "output") if name in blocks)
    return blocks, peepholes


def variant_update(
    variant: Variant, params: VariantParams, state: VariantState, x: Array, recurrent_scale: Array | None = None
) -> tuple[VariantState, Gates]:
    """One step of ``variant``, as the module docstring writes it.

    Args:
        variant: which of :data:`VARIANTS`.
        params: the cell's weights.
        state: ``(h, c, gates)``, (..., H), (..., H) and (..., 3H or 0).
        x: input, (..., in_features).
        recurrent_scale: (..., H), what ``h`` is multiplied by where it enters ``U`` (the recurrent dropout).

    Returns:
        The new state and the four gates (a removed gate as its constant).
    """
    blocks, peephole_gates = variant_blocks(variant)
    z = dict(
        zip(
            blocks,
            jnp.split(
                x @ params.W + recurrent_input(state.h, recurrent_scale) @ params.U + params.b, len(blocks), axis=-1
            ),
            strict=True,
        )
    )
    if variant == "fgr":
        for name, recurrent in zip(
            ("input", "forget", "output"), jnp.split(state.gates @ params.gate_recurrence, 3, axis=-1), strict=True
        ):
            z[name] = z[name] + recurrent
    peephole = {} if params.peepholes is None else dict(zip(peephole_gates, params.peepholes, strict=True))
    one = jnp.ones_like(state.c)

    def gate(name: str, c: Array) -> Array:
        """A sigmoid gate from its pre-activation and its peephole on ``c``; 1 where the variant removed it."""
        if name not in z:
            return one
        return jax.nn.sigmoid(z[name] + peephole[name] * c) if name in peephole else jax.nn.sigmoid(z[name])

    input_gate = gate("input", state.c)
    forget_gate = 1.0 - input_gate if variant == "cifg" else gate("forget", state.c)
    candidate = z["candidate"] if variant == "niaf" else jnp.tanh(z["candidate"])
    c = forget_gate * state.c + input_gate * candidate
    output_gate = gate("output", c)
    h = output_gate * (c if variant == "noaf" else jnp.tanh(c))
    previous_gates = jnp.concatenate([input_gate, forget_gate, output_gate], -1) if variant == "fgr" else state.gates
    return VariantState(h, c, previous_gates), Gates(input_gate, forget_gate, candidate, output_gate)


class LSTMVariant(CellLayer):
    """A layer of one of Greff et al.'s LSTM variants: :func:`variant_update` run over time (the textbook loop: the
    fast path is the LSTM's own).

    Its state is :class:`VariantState` ``(h, c, gates)``; ``initial_state`` takes it or its arrays as a tuple.

    Args:
        in_features: size of each input vector.
        hidden_size: H, the number of units.
        variant: one of :data:`VARIANTS` (see the module docstring).
        param_dtype: the dtype the weights are stored (and trained) in.
        rngs: source of the ``params`` key.
        options: ``return_sequences``, ``reverse``, ``unroll``, ``dropout``, ``recurrent_dropout``, ``dtype``,
            ``cell_dtype``: the options of every layer of the family (:class:`~jaxlstm.nn.layers.CellLayer`).
    """

    name = "LSTMVariant"

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        variant: Variant = "peephole",
        *,
        param_dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
        **options: Any,
    ):
        self._configure(in_features, hidden_size, param_dtype=param_dtype, **options)
        blocks, peephole_gates = variant_blocks(variant)
        self.variant = variant
        width = len(blocks) * hidden_size
        bias = jnp.zeros((len(blocks), hidden_size), param_dtype)
        if "forget" in blocks:
            bias = bias.at[blocks.index("forget")].set(1.0)
        recurrence = 3 * hidden_size if variant == "fgr" else 0
        self.W = nnx.Param(GLOROT_UNIFORM(rngs.params(), (in_features, width), param_dtype))
        self.U = nnx.Param(ORTHOGONAL(rngs.params(), (hidden_size, width), param_dtype))
        self.b = nnx.Param(bias.reshape(width))
        # no zero-size weights for what a variant lacks: they have nothing to train, and the many-models program
        # reshapes every weight
        self.peepholes = (
            nnx.Param(jnp.zeros((len(peephole_gates), hidden_size), param_dtype)) if peephole_gates else None
        )
        self.gate_recurrence = nnx.Param(jnp.zeros((recurrence, recurrence), param_dtype)) if recurrence else None

    @property
    def params(self) -> VariantParams:
        """The weights as a plain :class:`VariantParams`."""
        optional = (None if weight is None else weight[...] for weight in (self.peepholes, self.gate_recurrence))
        return VariantParams(self.W[...], self.U[...], self.b[...], *optional)

    def zeros(self, batch: int, dtype: jnp.dtype) -> VariantState:
        """The zero ``(h, c, gates)``: (batch, H) in ``dtype``, ``c`` in ``cell_dtype``, gates (batch, 3H or 0)."""
        zeros = jnp.zeros((batch, self.hidden_size), dtype)
        gates = jnp.zeros((batch, 3 * self.hidden_size if self.variant == "fgr" else 0), dtype)
        return VariantState(zeros, zeros.astype(self.cell_dtype or dtype), gates)

    def cell_step(self, params: VariantParams, recurrent_scale: Array | None) -> Step:
        """:func:`variant_update` of this layer's variant as a loop body."""
        return lambda x_t, state: variant_update(self.variant, params, state, x_t, recurrent_scale)
