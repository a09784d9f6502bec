"""The time loop of the cell family: one ``jax.lax.scan`` over a cell's step, shared by every path that runs one.

:func:`scan_steps` is the loop itself: any cell's step ``(input_t, state) -> (state, gates)`` (the LSTM's, the GRU's,
the tanh RNN's, the LSTM variants') run over the time axis, with masking, state dtypes and what to record handled
here once. :func:`scan_cell` is that loop for the LSTM's two-part step: the LSTM layer (textbook and fused paths),
the ConvLSTM layer and the gate traces call it, and differ only in how they compute the pre-activations (matmuls or
convolutions, the input half before the loop or inside it), which update evaluates the gate equations
(:func:`jaxlstm.nn.lstm_update`, or the fast path's equal one-``tanh`` form), and what the loop keeps of each step.

A ``mask`` gives Keras's semantics for padded or skipped steps: a masked step leaves the state as it was, so the
final state is the one after each sequence's last valid step, and the output recorded there repeats the state's
``h`` (Keras's ``LSTM``; its ``Bidirectional`` zeroes these outputs, see :mod:`jaxlstm.nn.layers`). The state keeps
the dtypes it starts with: a float32 cell state under bfloat16 compute stays float32.

>>> from functools import partial
>>> import jax.numpy as jnp
>>> from jaxlstm.nn.cell import LSTMParams, preactivation
>>> params = LSTMParams(W=jnp.zeros((1, 8)), U=jnp.zeros((2, 8)), b=jnp.zeros(8))
>>> final, outputs = scan_cell(partial(preactivation, params), jnp.ones((5, 3, 1)), LSTMState.zeros((3,), 2))
>>> outputs.shape, final.c.shape
((5, 3, 2), (3, 2))
"""

from collections.abc import Callable
from typing import Any, Literal

import jax
import jax.numpy as jnp

from jaxlstm.nn.cell import Gates, LSTMState, lstm_update

__all__ = ["Record", "carry_masked", "recurrent_input", "scan_cell", "scan_steps"]

Array = jax.Array
Record = Literal["outputs", "gates", "residuals"]
Update = Callable[[Array, Array], tuple[LSTMState, Gates]]
State = Any  # a NamedTuple of arrays with an ``h`` field: LSTMState (h, c), the GRU's and RNN's HiddenState (h), ...
Step = Callable[[Array, State], tuple[State, Any]]


def scan_steps(
    step: Step,
    inputs: Array,
    initial_state: State,
    *,
    reverse: bool = False,
    unroll: int = 1,
    keep: Callable[[State, State, Any], Any] | None = None,
    mask: Array | None = None,
) -> tuple[State, Any]:
    """Runs a cell's ``step`` over the leading (time) axis of ``inputs``: the one loop of every cell.

    Args:
        step: ``(input_t, state) -> (new_state, gates)``, one step of a cell's equations.
        inputs: time-major, (time, batch, ...).
        initial_state: the cell's state (a NamedTuple with an ``h`` field), each array (batch, ...).
        reverse: walk from the last step to the first; what is recorded stays aligned with ``inputs``.
        unroll: time steps per loop iteration.
        keep: ``(new_state, old_state, gates) -> recorded``, what to keep of every step; None keeps ``h``.
        mask: (time, batch) booleans, False where a step is skipped (its state carried through unchanged); None
            runs every step.

    Returns:
        The final state and the recorded per-step values, time-major.
    """

    def body(state: State, step_inputs: tuple[Array, Array | None]) -> tuple[State, Any]:
        input_t, keep_t = step_inputs
        new_state, gates = step(input_t, state)
        new_state = type(state)(*(new.astype(old.dtype) for new, old in zip(new_state, state, strict=True)))
        if keep_t is not None:
            new_state = carry_masked(keep_t, new_state, state)
        return new_state, (new_state.h if keep is None else keep(new_state, state, gates))

    return jax.lax.scan(body, initial_state, (inputs, mask), reverse=reverse, unroll=unroll)


def recurrent_input(h: Array, recurrent_scale: Array | None) -> Array:
    """What a cell's recurrent kernel reads: ``h``, or ``h`` times the recurrent dropout's per-sequence scale."""
    return h if recurrent_scale is None else h * recurrent_scale


def scan_cell(
    step_preactivation: Callable[[Array, Array], Array],
    inputs: Array,
    initial_state: LSTMState,
    *,
    update: Update = lstm_update,
    reverse: bool = False,
    unroll: int = 1,
    record: Record = "outputs",
    mask: Array | None = None,
) -> tuple[LSTMState, Any]:
    """Runs the cell over the leading (time) axis of ``inputs``.

    Args:
        step_preactivation: ``(input_t, h_prev) -> z_t`` (..., 4H), e.g. ``partial(cell.preactivation, params)``,
            or, with the input projection hoisted out of the loop, ``lambda projected_t, h: projected_t + h @ U``.
        inputs: time-major, (time, batch, ...).
        initial_state: ``(h, c)``, each (batch, ..., H).
        update: the gate equations, ``(z, c_prev) -> (state, gates)``.
        reverse: walk from the last step to the first; what is recorded stays aligned with ``inputs``.
        unroll: time steps per loop iteration.
        record: what to keep of every step, time-major: ``outputs``, each step's ``h`` (time, batch, ..., H);
            ``gates``, the :class:`~jaxlstm.nn.Gates` and the :class:`~jaxlstm.nn.LSTMState` after each step;
            ``residuals``, ``(h_t, z_t, c_{t-1})``, what a hand-written backward pass needs.
        mask: (time, batch) booleans, False where a step is skipped (its state carried through unchanged); None
            runs every step.

    Returns:
        The final state and the recorded per-step values.
    """

    def step(input_t: Array, state: LSTMState) -> tuple[LSTMState, tuple[Gates, Array]]:
        z = step_preactivation(input_t, state.h)
        new_state, gates = update(z, state.c)
        return new_state, (gates, z)

    keeps = {
        "outputs": None,
        "gates": lambda new_state, state, gates_and_z: (gates_and_z[0], new_state),
        "residuals": lambda new_state, state, gates_and_z: (new_state.h, gates_and_z[1], state.c),
    }
    return scan_steps(step, inputs, initial_state, reverse=reverse, unroll=unroll, keep=keeps[record], mask=mask)


def carry_masked(keep: Array, new_state: State, old_state: State) -> State:
    """``new_state`` where ``keep`` (batch,) is True, ``old_state`` where it is False: a masked step's state (any
    cell's state, field by field)."""

    def select(new: Array, old: Array) -> Array:
        return jnp.where(keep.reshape(keep.shape + (1,) * (new.ndim - keep.ndim)), new, old)

    return type(new_state)(*(select(new, old) for new, old in zip(new_state, old_state, strict=True)))
