"""Every gate of a model over real windows: the input, forget, candidate and output gates and the states ``c`` and
``h`` of every layer and direction at every time step.

Each layer's own ``trace`` runs it (:meth:`jaxlstm.nn.Stacked.trace`): the layer's loop
(:func:`jaxlstm.nn.scan_cell`) over the textbook gate equations of :func:`jaxlstm.nn.lstm_update`,
recording every step; stacked layers read the previous layer's (merged) outputs without dropout, as at inference.
``jaxlstm gates`` draws them for a saved run (see docs/tour.md).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> model = Forecaster(preset("stacked", layers=2, units=8), rngs=nnx.Rngs(0))
>>> x = jnp.linspace(0, 1, 2 * 20).reshape(2, 20, 1)      # 2 windows of 20 days, 1 feature
>>> traces = trace_gates(model, x)
>>> [(t.layer, t.direction, t.forget.shape) for t in traces]
[(0, 'forward', (2, 20, 8)), (1, 'forward', (2, 20, 8))]
>>> bool(jnp.allclose(model.head(traces[-1].h[:, -1])[:, 0], model(x), atol=1e-6))
True
"""

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.nn import LSTM, Bidirectional, ConvLSTM, Forecaster, Stacked
from jaxlstm.nn.layers import layer_traces

__all__ = ["GATE_NAMES", "GateTrace", "trace_gates"]

Array = jax.Array
GATE_NAMES = ("input", "forget", "candidate", "output")


class GateTrace(NamedTuple):
    """One layer and direction over a batch of windows: the four gates and both states at every time step.

    Every array is (batch, time, units) for an LSTM and (batch, time, *positions, filters) for a ConvLSTM;
    ``[:, t]`` is the step that read input ``t`` (for the backward direction too: it reads the window from the
    end, so its ``[:, 0]`` is its last step).

    Attributes:
        layer: index of the layer in the stack (0 = the one reading the input).
        direction: ``forward`` or ``backward``.
        input, forget, candidate, output: the gates i, f, g, o.
        c: the cell state after each step.
        h: the hidden state (the layer's output) after each step.
    """

    layer: int
    direction: str
    input: Array
    forget: Array
    candidate: Array
    output: Array
    c: Array
    h: Array


def trace_gates(model: Forecaster | Stacked | Bidirectional | LSTM | ConvLSTM, x: Array) -> tuple[GateTrace, ...]:
    """The gates and states of every layer and direction of ``model`` over windows ``x``.

    Args:
        model: a :class:`~jaxlstm.nn.Forecaster` or a recurrent layer (``Stacked``, ``Bidirectional``,
            ``LSTM``, ``ConvLSTM``).
        x: windows (batch, time, features); for a ConvLSTM layer (batch, time, *spatial, channels). A ``conv``
            Forecaster cuts its windows into sub-sequences first, as its ``__call__`` does.

    Returns:
        One :class:`GateTrace` per layer and direction, in order (layer 0 forward, layer 0 backward, layer 1 ...).
        Stacked layers read the previous layer's merged outputs with no dropout (inference mode), so the last
        layer's ``h`` gives the model's prediction: ``head(h[:, -1])`` (bidirectional: concatenated with the
        backward ``h[:, 0]``).
    """
    graphdef, state = nnx.split(model)
    arrays = _trace_arrays(graphdef, state, jnp.asarray(x, jnp.float32))
    labels = [(index, direction) for index, layer in enumerate(_layers(model)) for direction in _directions(layer)]
    return tuple(
        GateTrace(index, direction, *values) for (index, direction), values in zip(labels, arrays, strict=True)
    )


def _layers(model: nnx.Module) -> list[nnx.Module]:
    model = model.recurrent if isinstance(model, Forecaster) else model
    return list(model.layers) if isinstance(model, Stacked) else [model]


def _directions(layer: nnx.Module) -> list[str]:
    if isinstance(layer, Bidirectional):
        return _directions(layer.forward_layer) + _directions(layer.backward_layer)
    return ["backward" if layer.reverse else "forward"]


@partial(jax.jit, static_argnums=0)  # one program per architecture and input shape
def _trace_arrays(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> list[tuple[Array, ...]]:
    model = nnx.merge(graphdef, state)  # a Forecaster cuts a conv model's windows into sub-sequences in its trace
    traces = model.trace(x) if isinstance(model, Forecaster | Stacked) else layer_traces(model, x)[0]
    return [(*trace.gates, trace.states.c, trace.states.h) for trace in traces]
