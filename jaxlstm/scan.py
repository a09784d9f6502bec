"""The time loop of the LSTM family: one ``jax.lax.scan`` over the cell, shared by every path that runs it.

The LSTM layer (textbook and fused paths), the ConvLSTM layer and the gate traces all call :func:`scan_cell`;
they differ only in how they compute the pre-activations (matmuls or convolutions, the input half before the
loop or inside it), which update evaluates the gate equations (:func:`jaxlstm.cell.lstm_update`, or the fast
path's equal one-``tanh`` form), and what the loop keeps of each step.

>>> from functools import partial
>>> import jax.numpy as jnp
>>> from jaxlstm.cell import LSTMParams, preactivation
>>> params = LSTMParams(W=jnp.zeros((1, 8)), U=jnp.zeros((2, 8)), b=jnp.zeros(8))
>>> final, outputs = scan_cell(partial(preactivation, params), jnp.ones((5, 3, 1)), LSTMState.zeros((3,), 2))
>>> outputs.shape, final.c.shape
((5, 3, 2), (3, 2))
"""

from collections.abc import Callable
from typing import Any, Literal

import jax

from jaxlstm.cell import Gates, LSTMState, lstm_update

__all__ = ["Record", "scan_cell"]

Array = jax.Array
Record = Literal["outputs", "gates", "residuals"]
Update = Callable[[Array, Array], tuple[LSTMState, Gates]]


def scan_cell(
    step_preactivation: Callable[[Array, Array], Array],
    inputs: Array,
    initial_state: LSTMState,
    *,
    update: Update = lstm_update,
    reverse: bool = False,
    unroll: int = 1,
    record: Record = "outputs",
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
            ``gates``, the :class:`~jaxlstm.cell.Gates` and the :class:`~jaxlstm.cell.LSTMState` after each step;
            ``residuals``, ``(h_t, z_t, c_{t-1})``, what a hand-written backward pass needs.

    Returns:
        The final state and the recorded per-step values.
    """

    def step(state: LSTMState, input_t: Array) -> tuple[LSTMState, Any]:
        z = step_preactivation(input_t, state.h)
        new_state, gates = update(z, state.c)
        if record == "gates":
            return new_state, (gates, new_state)
        if record == "residuals":
            return new_state, (new_state.h, z, state.c)
        return new_state, new_state.h

    return jax.lax.scan(step, initial_state, inputs, reverse=reverse, unroll=unroll)
