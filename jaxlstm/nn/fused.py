"""The fast path: an LSTM sequence with a hand-scheduled backward pass (``jax.custom_vjp``).

It computes exactly what the textbook scan of :func:`jaxlstm.nn.lstm_step` computes (tested equal, values and
gradients). The forward loop is :func:`jaxlstm.nn.scan_cell`; the backward loop asks JAX for the VJP of the gate
update one step at a time. What changes is the schedule of the work:

- the gates come from :func:`slab_gates`, one ``tanh`` over the whole (..., 4H) slab instead of three sigmoids and
  a tanh on H-wide slices (faster on XLA:CPU: docs/performance.md, benchmarks/cell_activation.py), and the states
  from the cell's own :func:`jaxlstm.nn.cell.lstm_state`;
- the input projection ``x @ W + b`` is one large matmul before the loop instead of a small one per step
  (``hoist_input=True``; on some backends a small matmul in the loop is cheaper, so it is a choice);
- the forward loop keeps the pre-activations ``z_t`` and the previous cell states as residuals;
- the backward loop carries ``(dh, dc)`` and does one small matmul per step, ``dh_{t-1} = dz_t U^T``;
- the weight gradients ``dW = X^T dZ``, ``dU = H_{prev}^T dZ``, ``db = sum dZ`` and the input gradient
  ``dX = dZ W^T`` are four large matmuls after the loop, where autodiff of ``lax.scan`` would do three small
  ones inside every step.

Masked steps (state carried through) and recurrent dropout (``h`` scaled by a per-sequence mask before ``U``)
are options of both loops; without them the program is the one described above. A ``custom_vjp`` has no
forward-mode derivative, so the layers run the textbook loop under ``jax.jvp``
(:func:`jaxlstm.nn.jax_internals.forward_mode_active`).

Arrays are time-major here: ``xs`` (time, batch, in_features), outputs (time, batch, H).
"""

from functools import partial

import jax
import jax.numpy as jnp

from jaxlstm.nn.cell import Gates, LSTMParams, LSTMState, lstm_state, preactivation, project_input, project_state
from jaxlstm.nn.scan import carry_masked, recurrent_input, scan_cell

__all__ = ["lstm_sequence", "slab_gates", "slab_update"]

Array = jax.Array


def slab_gates(preactivation: Array) -> Gates:
    """:func:`jaxlstm.nn.lstm_gates` with one ``tanh`` over the whole pre-activation slab (..., 4H).

    It uses :math:`\\sigma(z) = (1 + \\tanh(z / 2)) / 2`: the i, f, o slices are halved, the g slice is not, one
    ``tanh`` squashes all four, and the sigmoid gates are shifted back to (0, 1).
    """
    hidden_size = preactivation.shape[-1] // 4
    halves = jnp.repeat(jnp.array([0.5, 0.5, 1.0, 0.5], preactivation.dtype), hidden_size)
    squashed = jnp.tanh(preactivation * halves)
    tanh_input, tanh_forget, candidate, tanh_output = jnp.split(squashed, 4, axis=-1)
    input_gate, forget_gate, output_gate = ((1 + half) / 2 for half in (tanh_input, tanh_forget, tanh_output))
    return Gates(input_gate, forget_gate, candidate, output_gate)


def slab_update(preactivation: Array, c: Array) -> tuple[LSTMState, Gates]:
    """:func:`jaxlstm.nn.lstm_update` with the gates of :func:`slab_gates`: the state equations are the cell's
    own (:func:`jaxlstm.nn.lstm_state`)."""
    gates = slab_gates(preactivation)
    return lstm_state(gates, c), gates


def _forward(
    params: LSTMParams,
    xs: Array,
    state: LSTMState,
    mask: Array | None,
    recurrent_scale: Array | None,
    reverse: bool,
    unroll: int,
    hoist_input: bool,
) -> tuple[Array, LSTMState, Array, Array]:
    """Runs the loop; returns outputs (T, B, H), the final state, pre-activations (T, B, 4H), old c (T, B, H)."""
    if hoist_input:
        inputs = project_input(params, xs)

        def step_preactivation(projected_t: Array, h: Array) -> Array:
            return projected_t + project_state(params, recurrent_input(h, recurrent_scale))
    else:

        def step_preactivation(x_t: Array, h: Array) -> Array:
            return preactivation(params, x_t, recurrent_input(h, recurrent_scale))

        inputs = xs
    final, (outputs, preactivations, previous_c) = scan_cell(
        step_preactivation,
        inputs,
        state,
        update=slab_update,
        reverse=reverse,
        unroll=unroll,
        record="residuals",
        mask=mask,
    )
    return outputs, final, preactivations, previous_c


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5))
def lstm_sequence(
    params: LSTMParams,
    xs: Array,
    state: LSTMState,
    reverse: bool = False,
    unroll: int = 1,
    hoist_input: bool = True,
    mask: Array | None = None,
    recurrent_scale: Array | None = None,
) -> tuple[Array, LSTMState]:
    """LSTM over a time-major sequence with a fused backward pass.

    Args:
        params: the cell's weights.
        xs: inputs, (time, batch, in_features).
        state: initial ``(h, c)``, each (batch, H).
        reverse: walk from the last step to the first; outputs stay aligned with ``xs``.
        unroll: steps per loop iteration in both loops.
        hoist_input: compute ``xs @ W + b`` as one matmul before the loop.
        mask: (time, batch) booleans, False at steps to skip (state carried through, as
            :func:`~jaxlstm.nn.scan_cell` does); None runs every step.
        recurrent_scale: (batch, H), what ``h`` is multiplied by before the recurrent kernel at every step (the
            recurrent dropout's mask, scaled by ``1 / (1 - rate)``); None for no recurrent dropout.

    Returns:
        Outputs (time, batch, H) and the final state.
    """
    outputs, final, _, _ = _forward(params, xs, state, mask, recurrent_scale, reverse, unroll, hoist_input)
    return outputs, final


def _sequence_forward(
    params: LSTMParams,
    xs: Array,
    state: LSTMState,
    reverse: bool,
    unroll: int,
    hoist_input: bool,
    mask: Array | None,
    recurrent_scale: Array | None,
) -> tuple[tuple[Array, LSTMState], tuple]:
    outputs, final, preactivations, previous_c = _forward(
        params, xs, state, mask, recurrent_scale, reverse, unroll, hoist_input
    )
    return (outputs, final), (params, xs, state.h, mask, recurrent_scale, outputs, preactivations, previous_c)


def _sequence_backward(
    reverse: bool, unroll: int, hoist_input: bool, residuals: tuple, cotangents: tuple[Array, LSTMState]
) -> tuple[LSTMParams, Array, LSTMState, None, Array | None]:
    params, xs, initial_h, mask, recurrent_scale, outputs, preactivations, previous_c = residuals
    d_outputs, d_final = cotangents

    def update(preactivation: Array, c_before: Array) -> LSTMState:
        new_state = slab_update(preactivation, c_before)[0]
        return LSTMState(h=new_state.h.astype(outputs.dtype), c=new_state.c.astype(c_before.dtype))

    def step(carry: LSTMState, inputs: tuple[Array, Array, Array, Array | None]) -> tuple[LSTMState, Array]:
        d_output, preactivation, c_before, keep = inputs
        d_state = LSTMState(h=carry.h + d_output, c=carry.c)
        _, cell_vjp = jax.vjp(update, preactivation, c_before)
        if keep is not None:
            nothing = jax.tree.map(jnp.zeros_like, d_state)
            d_state, d_skipped = carry_masked(keep, d_state, nothing), carry_masked(keep, nothing, d_state)
        d_preactivation, d_c_before = cell_vjp(d_state)
        d_before = LSTMState(h=recurrent_input(d_preactivation @ params.U.T, recurrent_scale), c=d_c_before)
        if keep is not None:
            d_before = jax.tree.map(jnp.add, d_before, d_skipped)
        return d_before, d_preactivation

    d_initial, d_preactivations = jax.lax.scan(
        step, d_final, (d_outputs, preactivations, previous_c, mask), reverse=not reverse, unroll=unroll
    )
    if reverse:
        previous_h = jnp.concatenate([outputs[1:], initial_h[None]])
    else:
        previous_h = jnp.concatenate([initial_h[None], outputs[:-1]])
    d_params = LSTMParams(
        W=jnp.einsum("tbi,tbg->ig", xs, d_preactivations),
        U=jnp.einsum("tbh,tbg->hg", recurrent_input(previous_h, recurrent_scale), d_preactivations),
        b=jnp.sum(d_preactivations, axis=(0, 1)),
    )
    d_recurrent_scale = None
    if recurrent_scale is not None:
        d_recurrent_scale = jnp.einsum("tbh,tbh->bh", previous_h, d_preactivations @ params.U.T)
    return d_params, d_preactivations @ params.W.T, d_initial, None, d_recurrent_scale


lstm_sequence.defvjp(_sequence_forward, _sequence_backward)
