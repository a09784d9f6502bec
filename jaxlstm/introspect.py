"""Looking inside the LSTM: every gate over a real window, and how far back a gradient reaches.

- :func:`trace_gates` runs a model (or one layer) over windows and returns, for every layer and direction, the
  input, forget, candidate and output gates and the states ``c`` and ``h`` at every time step. Each layer's own
  ``trace`` runs it: the layer's loop (:func:`jaxlstm.scan.scan_cell`) over the textbook gate equations of
  :func:`jaxlstm.cell.lstm_update`, recording every step; stacked layers read the previous layer's (merged) outputs
  without dropout, as at inference.
- :func:`gradient_flow` measures ``|| d prediction / d x_{t-k} ||`` for every lag ``k``: how much the prediction
  still depends on the input ``k`` days before the last one. :mod:`jaxlstm.rnn` gives the plain tanh RNN to compare.
- ``jaxlstm gates`` and ``jaxlstm gradflow`` draw both for a saved run (see docs/tour.md; the figures are in
  :mod:`jaxlstm.plots`).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> from jaxlstm.config import preset
>>> from jaxlstm.models import Forecaster
>>> model = Forecaster(preset("stacked", layers=2, units=8), rngs=nnx.Rngs(0))
>>> x = jnp.linspace(0, 1, 2 * 20).reshape(2, 20, 1)      # 2 windows of 20 days, 1 feature
>>> traces = trace_gates(model, x)
>>> [(t.layer, t.direction, t.forget.shape) for t in traces]
[(0, 'forward', (2, 20, 8)), (1, 'forward', (2, 20, 8))]
>>> bool(jnp.allclose(model.head(traces[-1].h[:, -1])[:, 0], model(x), atol=1e-6))
True
>>> gradient_flow(model, x).shape            # one norm per lag, lag 0 = the last day of the window
(20,)
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.config import ModelConfig
from jaxlstm.convlstm import ConvLSTM
from jaxlstm.layers import LSTM, Bidirectional, Stacked, merge
from jaxlstm.models import Forecaster
from jaxlstm.rnn import RNNForecaster

__all__ = [
    "GATE_NAMES",
    "GateTrace",
    "decay_per_step",
    "fresh_curves",
    "gradient_flow",
    "set_forget_bias",
    "trace_gates",
]

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


# --- gate traces ------------------------------------------------------------------------------------------


def _trace_layer(layer: Any, x: Array, index: int) -> tuple[list[GateTrace], Array]:
    """The traces of one layer of a stack (both halves of a Bidirectional one) and the output the next reads."""
    if isinstance(layer, Bidirectional):
        forward, forward_out = _trace_layer(layer.forward_layer, x, index)
        backward, backward_out = _trace_layer(layer.backward_layer, x, index)
        return forward + backward, merge(forward_out, backward_out, layer.merge_mode)
    if not hasattr(layer, "trace"):
        raise TypeError(f"cannot trace the gates of a {type(layer).__name__}; pass a Forecaster, Stacked, LSTM, ...")
    gates, states = layer.trace(x)
    trace = GateTrace(index, "backward" if layer.reverse else "forward", *gates, states.c, states.h)
    if layer.return_sequences:
        return [trace], trace.h
    return [trace], trace.h[:, 0] if layer.reverse else trace.h[:, -1]


def trace_gates(model: Forecaster | Stacked | Bidirectional | LSTM | ConvLSTM, x: Array) -> tuple[GateTrace, ...]:
    """The gates and states of every layer and direction of ``model`` over windows ``x``.

    Args:
        model: a :class:`~jaxlstm.models.Forecaster` or a recurrent layer (``Stacked``, ``Bidirectional``,
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
    x = jnp.asarray(x, jnp.float32)
    if isinstance(model, Forecaster):
        x = model.stack_inputs(x)
    arrays = _trace_arrays(graphdef, state, x)
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
    traces: list[GateTrace] = []
    for index, layer in enumerate(_layers(nnx.merge(graphdef, state))):
        layer_traces, x = _trace_layer(layer, x, index)
        traces += layer_traces
    return [tuple(trace[2:]) for trace in traces]


# --- gradient flow through time ---------------------------------------------------------------------------


def gradient_flow(model: Callable[[Array], Array], x: Array) -> np.ndarray:
    """How much the prediction depends on the input ``k`` steps before the last one, for every lag ``k``.

    Args:
        model: maps windows (batch, time, features) to predictions (batch,), e.g. a
            :class:`~jaxlstm.models.Forecaster` (called without dropout) or a :class:`~jaxlstm.rnn.RNNForecaster`.
        x: windows (batch, time, features).

    Returns:
        ``norms`` (time,): ``norms[k]`` is the mean over the windows of ``|| d y / d x[:, time - 1 - k] ||_2`` (the
        norm over features), so ``norms[0]`` is the sensitivity to the last day and ``norms[time - 1]`` to the first.
        Each prediction depends on its own window only, so one gradient of the sum gives every window's gradient.
    """
    x = jnp.asarray(x, jnp.float32)
    if isinstance(model, nnx.Module):  # compiled once per architecture, whatever the weights
        graphdef, state = nnx.split(model)
        return np.asarray(_module_flow(graphdef, state, x), np.float64)
    return np.asarray(_flow(model, x), np.float64)


def _flow(model: Callable[[Array], Array], x: Array) -> Array:
    grads = jax.grad(lambda x: jnp.sum(model(x)))(x)
    return jnp.linalg.norm(grads, axis=-1).mean(axis=0)[::-1]


@partial(jax.jit, static_argnums=0)
def _module_flow(graphdef: nnx.GraphDef, state: nnx.State, x: Array) -> Array:
    return _flow(nnx.merge(graphdef, state), x)


def decay_per_step(norms: np.ndarray) -> float:
    """The geometric-mean factor by which the norm changes per step of lag: ``(n[-1] / n[0]) ** (1 / (T - 1))``."""
    return float((norms[-1] / norms[0]) ** (1.0 / (len(norms) - 1)))


def set_forget_bias(model: nnx.Module, value: float) -> None:
    """Sets the forget-gate slice of the bias of every LSTM and ConvLSTM layer in ``model`` to ``value``, in place."""
    for _, module in nnx.iter_modules(model):
        if isinstance(module, LSTM):
            size = module.hidden_size
            module.b[...] = module.b[...].at[size : 2 * size].set(value)
        elif isinstance(module, ConvLSTM):
            size = module.filters
            module.bias[...] = module.bias[...].at[size : 2 * size].set(value)


def fresh_curves(config: ModelConfig, x: Array, *, seed: int = 0, forget_biases: Sequence[float] = (1.0, 0.0)) -> dict:
    """Gradient-flow curves of untrained models on windows ``x``: the LSTM ``config`` with each forget bias (same
    weights otherwise) and tanh RNNs of the same width and depth, initialised as Keras and as PyTorch do."""
    curves = {}
    for bias in forget_biases:
        model = Forecaster(config, rngs=nnx.Rngs(seed))
        set_forget_bias(model, bias)
        curves[f"LSTM, forget bias {bias:g} (untrained)"] = gradient_flow(model, x)
    depth = config.layers if config.arch != "conv" else 1
    for init, name in (("torch", "PyTorch"), ("keras", "Keras")):
        rnn = RNNForecaster(config.n_features, config.units, layers=depth, init=init, rngs=nnx.Rngs(seed))
        curves[f"tanh RNN, {name} init (untrained)"] = gradient_flow(rnn, x)
    return curves
