"""Every gate of a model over real windows: each gate and state of every layer and direction at every time step,
for any cell of the family (the LSTM and its variants: i, f, g, o, c, h; the GRU: z, r, n, h; the tanh RNN: h).

Each layer's own ``trace`` runs it (:meth:`jaxlstm.nn.Stacked.trace`): the layer's loop over its cell's textbook
equations (:func:`jaxlstm.nn.lstm_update`, :func:`jaxlstm.nn.gru_update`, ...), recording every step; stacked layers
read the previous layer's (merged) outputs without dropout, as at inference. ``jaxlstm gates`` draws them for a saved
run (see docs/tour.md).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> model = Forecaster(preset("stacked", layers=2, units=8), rngs=nnx.Rngs(0))
>>> x = jnp.linspace(0, 1, 2 * 20).reshape(2, 20, 1)      # 2 windows of 20 days, 1 feature
>>> traces = trace_gates(model, x)
>>> [(t.layer, t.direction, t.cell, t.forget.shape) for t in traces]
[(0, 'forward', 'lstm', (2, 20, 8)), (1, 'forward', 'lstm', (2, 20, 8))]
>>> list(traces[0].series)
['input', 'forget', 'candidate', 'output', 'c', 'h']
>>> bool(jnp.allclose(model.head(traces[-1].h[:, -1])[:, 0], model(x), atol=1e-6))
True
"""

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.nn import GRU, LSTM, Bidirectional, ConvLSTM, Forecaster, LSTMVariant, SimpleRNN, Stacked
from jaxlstm.nn.layers import layer_traces

__all__ = ["GATE_LABELS", "GATE_NAMES", "GateTrace", "trace_gates"]

Array = jax.Array
GATE_NAMES = ("input", "forget", "candidate", "output")  # the LSTM's gates, in its weight order
GATE_LABELS = {  # how figures and the explorer name each series of a trace
    "input": "input gate i",
    "forget": "forget gate f",
    "candidate": "candidate g",
    "output": "output gate o",
    "update": "update gate z",
    "reset": "reset gate r",
    "c": "cell state c",
    "h": "hidden state h",
}
SIGNED = frozenset({"candidate", "c", "h"})  # the series in (-1, 1) or unbounded; every other one is a gate in (0, 1)


class GateTrace(NamedTuple):
    """One layer and direction over a batch of windows: its cell's gates and states at every time step.

    Every array is (batch, time, units), (batch, time, *positions, filters) for a ConvLSTM; ``[:, t]`` is the
    step that read input ``t`` (for the backward direction too: it reads the window from the end, so its
    ``[:, 0]`` is its last step). A series reads as an attribute too: ``trace.forget`` is ``trace.gates["forget"]``.

    Attributes:
        layer: index of the layer in the stack (0 = the one reading the input).
        direction: ``forward`` or ``backward``.
        cell: the layer's cell: ``lstm``, ``gru``, ``rnn``, ``convlstm`` or a variant's name (``cifg``, ...).
        gates: the gates in the cell's order: ``input``, ``forget``, ``candidate``, ``output`` (the LSTM and its
            variants: a variant without a gate records it as ones, NOAF's candidate is ``x W + h U + b``), or
            ``update``, ``reset``, ``candidate`` (the GRU's z, r, n); none for the tanh RNN.
        states: after each step: ``c`` (LSTM cells) and ``h`` (the layer's output).
    """

    layer: int
    direction: str
    cell: str
    gates: dict[str, Array]
    states: dict[str, Array]

    @property
    def series(self) -> dict[str, Array]:
        """The gates, then the states, by name."""
        return {**self.gates, **self.states}

    @property
    def sigmoid_gates(self) -> list[str]:
        """The series that are gates in (0, 1) (every gate but the candidate)."""
        return [name for name in self.series if name not in SIGNED]

    @property
    def labels(self) -> dict[str, str]:
        """How a figure names each series (the GRU's candidate is ``n``, the LSTM's ``g``)."""
        labels = {name: GATE_LABELS.get(name, name) for name in self.series}
        if self.cell == "gru":
            labels["candidate"] = "candidate n"
        return labels

    def __getattr__(self, name: str) -> Array:
        if name.startswith("_"):
            raise AttributeError(name)
        series = self.series
        if name not in series:
            raise AttributeError(f"a {self.cell} layer records no {name!r}; it records {', '.join(series)}")
        return series[name]


def trace_gates(model: Forecaster | Stacked | Bidirectional | Any, x: Array) -> tuple[GateTrace, ...]:
    """The gates and states of every layer and direction of ``model`` over windows ``x``.

    Args:
        model: a :class:`~jaxlstm.nn.Forecaster` or a recurrent layer (``Stacked``, ``Bidirectional``,
            ``LSTM``, ``GRU``, ``SimpleRNN``, ``LSTMVariant``, ``ConvLSTM``).
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
    labels = [(index, leaf) for index, layer in enumerate(_layers(model)) for leaf in _directions(layer)]
    return tuple(
        GateTrace(index, "backward" if leaf.reverse else "forward", _cell_name(leaf), gates._asdict(), _states(states))
        for (index, leaf), (gates, states) in zip(labels, arrays, strict=True)
    )


def _layers(model: nnx.Module) -> list[nnx.Module]:
    model = model.recurrent if isinstance(model, Forecaster) else model
    return list(model.layers) if isinstance(model, Stacked) else [model]


def _directions(layer: nnx.Module) -> list[nnx.Module]:
    """The one-direction layers inside ``layer``, forward first."""
    if isinstance(layer, Bidirectional):
        return _directions(layer.forward_layer) + _directions(layer.backward_layer)
    return [layer]


def _cell_name(layer: nnx.Module) -> str:
    if isinstance(layer, LSTMVariant):
        return layer.variant
    names = {LSTM: "lstm", GRU: "gru", SimpleRNN: "rnn", ConvLSTM: "convlstm"}
    return next((name for kind, name in names.items() if isinstance(layer, kind)), type(layer).__name__.lower())


@partial(jax.jit, static_argnums=0)  # one program per architecture and input shape
def _trace_arrays(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> list[tuple[Any, Any]]:
    """Each layer and direction's gates and states, as its cell's named tuples (a dict's keys would come back
    sorted from jit)."""
    model = nnx.merge(graphdef, state)  # a Forecaster cuts a conv model's windows into sub-sequences in its trace
    traces = model.trace(x) if isinstance(model, Forecaster | Stacked) else layer_traces(model, x)[0]
    return [(trace.gates, trace.states) for trace in traces]


def _states(states: Any) -> dict[str, Array]:
    """``c`` (if the cell has one), then ``h``; a variant's carried gates (FGR's) are not a state to show."""
    fields = states._asdict()
    return {name: fields[name] for name in ("c", "h") if name in fields}
