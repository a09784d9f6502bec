"""Gate statistics of any traced model: how often each gate saturates, per unit and layer (Karpathy, Johnson & Fei-Fei
2015, "Visualizing and understanding recurrent networks", sec. 4.2, Fig. 3), and how strongly each hidden state
depends on each input step, the connectivity ``|| d h_t / d x_s ||`` (Madsen 2019, "Visualizing memorization in
RNNs", Distill). :mod:`jaxlstm.runs.plots` draws both (``plot_saturation``, ``plot_connectivity``).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> model = Forecaster(preset("stacked", layers=2, units=4), rngs=nnx.Rngs(0))
>>> x = jnp.linspace(0, 1, 2 * 6).reshape(2, 6, 1)        # 2 windows of 6 days, 1 feature
>>> records = saturation(trace_gates(model, x))
>>> [(r.layer, r.gate, r.left.shape) for r in records][:3]
[(0, 'input', (4,)), (0, 'forget', (4,)), (0, 'output', (4,))]
>>> matrix = connectivity(model, x)                       # (hidden-state step t, input step s)
>>> matrix.shape, bool((matrix[0, 1:] == 0).all())        # h_0 reads x_0 only
((6, 6), True)
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.introspect.gates import GateTrace, trace_gates
from jaxlstm.nn import Bidirectional, Forecaster, Stacked

__all__ = ["LEFT", "RIGHT", "Saturation", "connectivity", "last_hidden_states", "saturation"]

Array = jax.Array
LEFT, RIGHT = 0.1, 0.9  # a gate value below LEFT is left-saturated (nearly closed), above RIGHT right-saturated
COLUMNS_AT_ONCE = 16  # input steps whose tangents run together in connectivity (memory: 16 x features x h)


class Saturation(NamedTuple):
    """How often one gate of one layer and direction saturates, per unit.

    Attributes:
        layer: index of the layer in the stack (0 = the one reading the input).
        direction: ``forward`` or ``backward``.
        cell: the layer's cell (``lstm``, ``gru``, a variant's name, ...).
        gate: the gate's name in the trace (``input``, ``forget``, ``output``, ``update``, ``reset``).
        label: how a figure names it (``forget gate f``).
        left: (units,) the share of (window, step) pairs at which the unit's gate is below :data:`LEFT`.
        right: (units,) the share at which it is above :data:`RIGHT`.
    """

    layer: int
    direction: str
    cell: str
    gate: str
    label: str
    left: np.ndarray
    right: np.ndarray


def saturation(traces: Sequence[GateTrace]) -> list[Saturation]:
    """The left- and right-saturation of every gate in (0, 1) (``trace.sigmoid_gates``) of every trace.

    Args:
        traces: from :func:`~jaxlstm.introspect.trace_gates`; each gate (batch, time, units), or (batch, time,
            *positions, filters) for a ConvLSTM, whose units are then its positions x filters, flattened.

    Returns:
        One :class:`Saturation` per trace and gate, in the traces' order and each cell's gate order; each share is
        over every window and step of the batch, strict inequalities (a gate at exactly 0.1 is not left-saturated).
        A gate a variant removes is recorded as ones, so it is right-saturated at every step. A tanh RNN has none.
    """
    records = []
    for trace in traces:
        for name in trace.sigmoid_gates:
            values = np.asarray(trace.series[name])
            values = values.reshape(values.shape[0] * values.shape[1], -1)  # (window and step, unit)
            left, right = (values < LEFT).mean(axis=0), (values > RIGHT).mean(axis=0)
            records.append(Saturation(trace.layer, trace.direction, trace.cell, name, trace.labels[name], left, right))
    return records


def last_hidden_states(model: Forecaster | Stacked | Any, x: Array) -> Array:
    """The last recurrent layer's ``h`` after every step, (batch, steps, units), over windows x (batch, time, features).

    The layer's forward direction for a :class:`~jaxlstm.nn.Bidirectional` (its only direction for a reversed
    layer), even when it returns its last step only; a ConvLSTM's positions x filters flattened into units, its steps
    those of its sub-sequences (a ``conv`` Forecaster's ``time // subsequence_length``). Stacked layers read the
    previous layer's outputs without dropout, as :func:`~jaxlstm.introspect.trace_gates` runs them.
    """
    traces = trace_gates(model, x)
    h = next(trace.h for trace in traces if trace.layer == traces[-1].layer)  # forward first
    return h.reshape(h.shape[0], h.shape[1], -1)


def connectivity(model: Forecaster | Stacked | Bidirectional | Callable[[Array], Array] | Any, x: Array) -> np.ndarray:
    """Madsen's connectivity: how strongly the hidden state after step ``t`` depends on the input at step ``s``.

    Args:
        model: a recurrent model (a :class:`~jaxlstm.nn.Forecaster`, ``Stacked`` or a layer), whose
            :func:`last_hidden_states` are differentiated, or any ``sequence_fn`` mapping windows (batch, time,
            features) to hidden states (batch, steps, units) in which each window depends on its own inputs only.
        x: windows (batch, time, features).

    Returns:
        ``matrix`` (steps, time), float64: ``matrix[t, s]`` is the mean over the windows ``b`` of the Frobenius norm
        ``|| d h[b, t, :] / d x[b, s, :] ||_2`` over units and features. A forward layer's ``h_t`` reads no later
        input, so ``matrix[t, s]`` is exactly 0 for ``s > t`` (for ``s < t`` in a reversed one).
    """
    x = jnp.asarray(x, jnp.float32)
    if isinstance(model, nnx.Module):  # compiled once per architecture, whatever the weights
        graphdef, state = nnx.split(model)
        return np.asarray(_module_connectivity(graphdef, state, x), np.float64)
    return np.asarray(jax.jit(partial(_connectivity, model))(x), np.float64)


def _connectivity(sequence_fn: Callable[[Array], Array], x: Array) -> Array:
    """Forward mode, one tangent per input step and feature (a few features: far fewer than the steps x units
    reverse mode would need): a tangent of ``x[:, s, f]`` in every window at once gives each window's own
    derivatives, as each window's hidden states depend on its own inputs only."""
    batch, time, features = x.shape
    feature = jnp.arange(features)
    _, tangent_of = jax.linearize(sequence_fn, x)  # the forward pass once; each tangent then costs its linear part

    def column(s: Array) -> Array:
        tangents = jnp.zeros((features, batch, time, features), x.dtype).at[feature, :, s, feature].set(1.0)
        derivatives = jax.vmap(tangent_of)(tangents)  # (features, batch, steps, units): d h / d x[:, s, f]
        return jnp.sqrt(jnp.sum(derivatives**2, axis=(0, 3))).mean(axis=0)  # (steps,)

    return jax.lax.map(column, jnp.arange(time), batch_size=COLUMNS_AT_ONCE).T


@partial(jax.jit, static_argnums=0)
def _module_connectivity(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> Array:
    return _connectivity(partial(last_hidden_states, nnx.merge(graphdef, state)), x)
