"""Recurrent layers as Flax NNX modules: the cell of :mod:`jaxlstm.cell` run over time with ``jax.lax.scan``.

Arrays are batch-major, as in Keras: inputs (batch, time, features), sequence outputs (batch, time, units).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> layer = LSTM(1, 50, rngs=nnx.Rngs(0))
>>> layer(jnp.ones((32, 60, 1))).shape
(32, 60, 50)
>>> bidirectional = Bidirectional(LSTM(1, 50, rngs=nnx.Rngs(0)), LSTM(1, 50, reverse=True, rngs=nnx.Rngs(1)))
>>> bidirectional(jnp.ones((32, 60, 1))).shape
(32, 60, 100)
"""

import itertools
import math
import numbers
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, Literal, NamedTuple, Protocol, get_args

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.cell import Gates, LSTMParams, LSTMState, preactivation
from jaxlstm.config import Implementation
from jaxlstm.fused import lstm_sequence
from jaxlstm.scan import Record, scan_cell

__all__ = [
    "GLOROT_UNIFORM",
    "LSTM",
    "MERGE_MODES",
    "ORTHOGONAL",
    "Bidirectional",
    "LayerTrace",
    "MergeMode",
    "RecurrentLayer",
    "Stacked",
    "batch_major",
    "dropout_masks",
    "layer_output",
    "merge",
    "scan_lstm",
    "unit_forget_bias",
]

Array = jax.Array
Initializer = Callable[[Array, tuple[int, ...], jnp.dtype], Array]
MergeMode = Literal["concat", "sum", "mul", "ave"]
MERGE_MODES: tuple[str, ...] = get_args(MergeMode)
GLOROT_UNIFORM = nnx.initializers.glorot_uniform()
ORTHOGONAL = nnx.initializers.orthogonal()


def unit_forget_bias(key: Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> Array:
    """Zero bias with the forget-gate slice set to 1 (Keras's ``unit_forget_bias=True``); shape (4H,)."""
    del key
    hidden_size = shape[-1] // 4
    return jnp.zeros(shape, dtype).at[..., hidden_size : 2 * hidden_size].set(1.0)


class LayerTrace(NamedTuple):
    """Every step of one layer over a batch: the four gates and the state after each step, batch-major, each
    (batch, time, ..., H); ``[:, t]`` is the step that read input ``t`` (for a reversed layer too)."""

    gates: Gates
    states: LSTMState


def scan_lstm(
    params: LSTMParams,
    x: Array,
    initial_state: LSTMState,
    *,
    reverse: bool = False,
    unroll: int = 1,
    record: Record = "outputs",
) -> tuple[Any, LSTMState]:
    """Runs :func:`~jaxlstm.cell.lstm_step` over the time axis: the textbook LSTM layer.

    Args:
        params: the cell's weights.
        x: inputs, (batch, time, in_features).
        initial_state: ``(h, c)``, each (batch, H).
        reverse: walk from the last time step to the first. Outputs stay aligned with the inputs'
            time axis (``outputs[:, t]`` is the state after reading ``x[:, t]``), as in Keras's Bidirectional.
        unroll: time steps per loop iteration, passed to ``jax.lax.scan``.
        record: what to keep of every step (see :func:`~jaxlstm.scan.scan_cell`).

    Returns:
        The recorded steps, batch-major (``outputs`` (batch, time, H), the hidden state after every step, by
        default), and the final state.
    """
    final_state, recorded = scan_cell(
        partial(preactivation, params),
        jnp.swapaxes(x, 0, 1),
        initial_state,
        reverse=reverse,
        unroll=unroll,
        record=record,
    )
    return batch_major(recorded), final_state


def batch_major(recorded: Any) -> Any:
    """The time-major steps recorded by :func:`~jaxlstm.scan.scan_cell`, every array (time, batch, ...) made
    (batch, time, ...)."""
    return jax.tree.map(lambda array: jnp.swapaxes(array, 0, 1), recorded)


class RecurrentLayer(Protocol):
    """What :class:`Bidirectional` and :class:`Stacked` need of a layer: :class:`LSTM` and ConvLSTM fit."""

    reverse: bool
    return_sequences: bool
    out_features: int

    def __call__(self, x: Array, initial_state: Any = None, *, return_state: bool = False) -> Any: ...

    def trace(self, x: Array) -> LayerTrace: ...


class LSTM(nnx.Module):
    """An LSTM layer: :func:`scan_lstm` with the weights as NNX parameters.

    The default initialisers are Keras's (glorot-uniform ``W``, orthogonal ``U``, unit forget bias), so that a
    model built here trains like the tutorial's Keras model.

    Args:
        in_features: size of each input vector.
        hidden_size: H, the number of units.
        return_sequences: return every step's ``h`` (batch, time, H) rather than the final ``h`` (batch, H).
        reverse: read the sequence from the end (the backward half of a bidirectional layer).
        unroll: time steps per loop iteration of ``jax.lax.scan``.
        implementation: ``fused`` (default) runs :func:`jaxlstm.fused.lstm_sequence`, the fast path with a
            hand-scheduled backward pass; ``textbook`` runs :func:`scan_lstm` and lets JAX differentiate the loop.
            Both compute the same function and gradients (tested to 1e-5). The fast path is a ``jax.custom_vjp``,
            so it has reverse-mode derivatives only: for ``jax.jvp``, ``jax.jacfwd`` or Hessians, use
            ``textbook``.
        hoist_input: for ``fused``, compute the input projection as one matmul before the loop (measured faster
            on XLA:CPU too once the cell computes its gates from one slab; see benchmarks/).
        rngs: source of the ``params`` key.
    """

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        return_sequences: bool = True,
        reverse: bool = False,
        unroll: int = 1,
        implementation: Implementation = "fused",
        hoist_input: bool = True,
        kernel_init: Initializer = GLOROT_UNIFORM,
        recurrent_init: Initializer = ORTHOGONAL,
        bias_init: Initializer = unit_forget_bias,
        rngs: nnx.Rngs,
    ):
        if not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in (in_features, hidden_size)
        ):
            raise ValueError(
                f"LSTM(in_features={in_features!r}, hidden_size={hidden_size!r}): both must be whole numbers >= 1"
            )
        self.in_features = in_features
        self.hidden_size = hidden_size
        self.out_features = hidden_size
        self.return_sequences = return_sequences
        self.reverse = reverse
        self.unroll = unroll
        self.implementation = implementation
        self.hoist_input = hoist_input
        self.W = nnx.Param(kernel_init(rngs.params(), (in_features, 4 * hidden_size), jnp.float32))
        self.U = nnx.Param(recurrent_init(rngs.params(), (hidden_size, 4 * hidden_size), jnp.float32))
        self.b = nnx.Param(bias_init(rngs.params(), (4 * hidden_size,), jnp.float32))

    @property
    def params(self) -> LSTMParams:
        """The weights as a plain :class:`~jaxlstm.cell.LSTMParams`."""
        return LSTMParams(W=self.W[...], U=self.U[...], b=self.b[...])

    def zero_state(self, x: Array) -> LSTMState:
        """The zero ``(h, c)`` for inputs x (batch, time, in_features): each (batch, H)."""
        return LSTMState.zeros(x.shape[:1], self.hidden_size, x.dtype)

    def _inputs(self, x: Array) -> Array:
        """``x`` checked, (batch, time, in_features) with at least one step, and promoted to a floating type at
        least as wide as the weights' (integers and float16 compute in float32)."""
        x = jnp.asarray(x)
        if x.ndim != 3 or x.shape[-1] != self.in_features:
            hint = "; add a batch axis, x[None]" if x.shape[-1:] == (self.in_features,) and x.ndim == 2 else ""
            raise ValueError(f"LSTM inputs must be (batch, time, {self.in_features}), got {x.shape}{hint}")
        if x.shape[1] == 0:
            raise ValueError(f"LSTM inputs {x.shape} hold no time step; pass sequences of at least one step")
        return x.astype(jnp.promote_types(x.dtype, self.W.dtype))

    def _initial_state(self, x: Array, initial_state: LSTMState | Sequence[Array] | None) -> LSTMState:
        """The zero state, or ``initial_state`` (an :class:`~jaxlstm.cell.LSTMState`, or ``(h, c)`` as a tuple or
        list) checked to be (batch, H) each, in ``x``'s dtype."""
        if initial_state is None:
            return self.zero_state(x)
        if len(initial_state) != 2:
            raise ValueError(f"initial_state must be (h, c), got {len(initial_state)} arrays")
        needed = (x.shape[0], self.hidden_size)
        for name, array in zip(("h", "c"), initial_state, strict=True):
            if jnp.shape(array) != needed:
                raise ValueError(f"initial_state {name} must be (batch, H) = {needed}, got {jnp.shape(array)}")
        return LSTMState(*(jnp.asarray(array, x.dtype) for array in initial_state))

    def scan(self, x: Array, initial_state: LSTMState | Sequence[Array] | None = None) -> tuple[Array, LSTMState]:
        """All outputs (batch, time, H) and the final state; the state starts at zero unless given (as an
        :class:`~jaxlstm.cell.LSTMState` or an ``(h, c)`` tuple or list, each (batch, H)).

        Raises:
            ValueError: inputs not (batch, time, in_features) with at least one step, or a state of another shape.
        """
        x = self._inputs(x)
        state = self._initial_state(x, initial_state)
        if self.implementation == "textbook":
            return scan_lstm(self.params, x, state, reverse=self.reverse, unroll=self.unroll)
        outputs, final_state = lstm_sequence(
            self.params, jnp.swapaxes(x, 0, 1), state, self.reverse, self.unroll, self.hoist_input
        )
        return jnp.swapaxes(outputs, 0, 1), final_state

    def trace(self, x: Array, initial_state: LSTMState | Sequence[Array] | None = None) -> LayerTrace:
        """Every gate and state over x (batch, time, in_features): the textbook loop, recording each step."""
        x = self._inputs(x)
        state = self._initial_state(x, initial_state)
        gates, states = scan_lstm(self.params, x, state, reverse=self.reverse, unroll=self.unroll, record="gates")[0]
        return LayerTrace(gates, states)

    def __call__(
        self, x: Array, initial_state: LSTMState | Sequence[Array] | None = None, *, return_state: bool = False
    ) -> Array | tuple[Array, LSTMState]:
        """Outputs (batch, time, H) with ``return_sequences``, else the final ``h`` (batch, H); with
        ``return_state``, also the final :class:`~jaxlstm.cell.LSTMState` (Keras's ``return_state=True``)."""
        return layer_output(self, *self.scan(x, initial_state), return_state)


def layer_output(layer: Any, outputs: Array, final_state: LSTMState, return_state: bool) -> Any:
    """A recurrent layer's result from its :meth:`~LSTM.scan`: every output or the last ``h`` (as
    ``layer.return_sequences`` says), and with ``return_state`` the final state too, ``(output, state)``."""
    output = outputs if layer.return_sequences else final_state.h
    return (output, final_state) if return_state else output


def merge(forward: Array, backward: Array, mode: MergeMode) -> Array:
    """Combines the two directions' outputs as Keras's ``Bidirectional(merge_mode=...)`` does."""
    if mode == "concat":
        return jnp.concatenate([forward, backward], axis=-1)
    if mode == "sum":
        return forward + backward
    if mode == "mul":
        return forward * backward
    return (forward + backward) / 2


class Bidirectional(nnx.Module):
    """Runs a forward and a backward layer over the same input and merges their outputs.

    Its state is the pair ``(forward, backward)`` of its layers' states; ``initial_state`` takes that pair (each an
    :class:`~jaxlstm.cell.LSTMState` or ``(h, c)``, None for zeros) or Keras's flat ``[h_fwd, c_fwd, h_bwd, c_bwd]``,
    and ``return_state=True`` returns ``(output, (forward_state, backward_state))``.

    Args:
        forward_layer: a layer with ``reverse=False``.
        backward_layer: the same kind of layer with ``reverse=True`` and the same ``return_sequences``.
        merge_mode: ``concat`` (default, as in Keras), ``sum``, ``mul`` or ``ave``.
    """

    def __init__(self, forward_layer: RecurrentLayer, backward_layer: RecurrentLayer, merge_mode: MergeMode = "concat"):
        if forward_layer.reverse or not backward_layer.reverse:
            raise ValueError("Bidirectional needs a forward layer (reverse=False) and a backward one (reverse=True)")
        if forward_layer.return_sequences != backward_layer.return_sequences:
            raise ValueError("Bidirectional needs both layers to agree on return_sequences")
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {merge_mode!r}; use one of {', '.join(MERGE_MODES)}")
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.reverse = False
        self.return_sequences = forward_layer.return_sequences
        width = forward_layer.out_features
        self.out_features = 2 * width if merge_mode == "concat" else width

    def __call__(self, x: Array, initial_state: Any = None, *, return_state: bool = False) -> Any:
        """Merged outputs: (batch, time, out_features) or (batch, out_features); with ``return_state``, also the
        final ``(forward_state, backward_state)``."""
        forward_state, backward_state = _direction_states(initial_state)
        forward, forward_final = self.forward_layer(x, forward_state, return_state=True)
        backward, backward_final = self.backward_layer(x, backward_state, return_state=True)
        output = merge(forward, backward, self.merge_mode)
        return (output, (forward_final, backward_final)) if return_state else output


def _direction_states(initial_state: Any) -> tuple[Any, Any]:
    """A bidirectional layer's initial states, ``(forward, backward)``, from that pair or Keras's flat
    ``[h_fwd, c_fwd, h_bwd, c_bwd]``."""
    if initial_state is None:
        return None, None
    if len(initial_state) == 4:
        return tuple(initial_state[:2]), tuple(initial_state[2:])
    if len(initial_state) == 2 and all(state is None or len(state) == 2 for state in initial_state):
        return initial_state[0], initial_state[1]
    raise ValueError(
        "a Bidirectional initial_state is (forward (h, c), backward (h, c)) or Keras's [h_fwd, c_fwd, h_bwd, c_bwd], "
        f"got {len(initial_state)} items"
    )


def dropout_masks(key: Array, shapes: Sequence[tuple[int, ...]], rate: float) -> list[Array]:
    """Keep-masks for several dropouts, drawn in one call: element ``True`` with probability ``1 - rate``.

    One draw for all of them matters on XLA:CPU: each call of the PRNG compiles to its own threefry kernel, which
    took 0.3-0.4 s of compilation apiece and made the tutorial's training program 0.8 s slower to compile, and 3 ms
    per epoch slower to run, than this single draw (see docs/performance.md).

    Args:
        key: a PRNG key.
        shapes: the shape of each mask.
        rate: probability that an element is dropped, in [0, 1).

    Returns:
        Boolean masks, one per shape.

    >>> [mask.shape for mask in dropout_masks(jax.random.key(0), [(2, 3), (4,)], 0.2)]
    [(2, 3), (4,)]
    """
    sizes = [math.prod(shape) for shape in shapes]
    keep = jax.random.bernoulli(key, 1.0 - rate, (sum(sizes),))
    ends = list(itertools.accumulate(sizes))
    return [keep[end - size : end].reshape(shape) for shape, size, end in zip(shapes, sizes, ends, strict=True)]


class Stacked(nnx.Module):
    """Recurrent layers one after another, with dropout after each, as in the tutorial's Keras model.

    Dropout is Keras's (and ``nnx.Dropout``'s) inverted dropout: each output element is zeroed with probability
    ``dropout`` and the others are scaled by ``1 / (1 - dropout)``; the masks of all layers come from one
    :func:`dropout_masks` draw.

    Its state is the list of its layers' states, in order: ``initial_state`` takes one entry per layer (each what that
    layer takes, None for zeros), and ``return_state=True`` returns ``(output, [state of each layer])``. To carry
    the state across calls, as Keras's ``stateful=True`` does, pass the states one call returned as the next call's
    ``initial_state``.

    Args:
        layers: the layers, in order; each but the last must return sequences.
        dropout: rate of the dropout applied after every layer, in [0, 1) (0 turns it off).
    """

    def __init__(self, layers: Sequence[RecurrentLayer], dropout: float = 0.0):
        if not layers:
            raise ValueError("Stacked needs at least one layer")
        for index, layer in enumerate(layers[:-1]):
            if not layer.return_sequences:
                raise ValueError(f"layer {index} of a stack must return sequences: the next layer reads them")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.layers = nnx.List(layers)
        self.dropout_rate = dropout
        self.out_features = layers[-1].out_features

    def __call__(
        self,
        x: Array,
        initial_state: Sequence[Any] | None = None,
        *,
        dropout_key: Array | None = None,
        return_state: bool = False,
    ) -> Any:
        """Runs the stack on x (batch, time, features); dropout is applied only when a ``dropout_key`` is given
        (training). Returns the last layer's output, (batch, time, out_features) or (batch, out_features), and with
        ``return_state`` the list of every layer's final state."""
        if initial_state is None:
            initial_state = [None] * len(self.layers)
        if len(initial_state) != len(self.layers):
            raise ValueError(
                f"a Stacked initial_state holds one state per layer (None for zeros): {len(self.layers)}, "
                f"got {len(initial_state)}"
            )
        masks = [None] * len(self.layers)
        if dropout_key is not None and self.dropout_rate > 0.0:
            shapes, output = [], jax.ShapeDtypeStruct(x.shape, x.dtype)
            for layer in self.layers:
                output = jax.eval_shape(layer, output)
                shapes.append(output.shape)
            masks = dropout_masks(dropout_key, shapes, self.dropout_rate)
        states = []
        for layer, state, keep in zip(self.layers, initial_state, masks, strict=True):
            x, final_state = layer(x, state, return_state=True)
            if keep is not None:
                x = jnp.where(keep, x / (1.0 - self.dropout_rate), 0.0)
            states.append(final_state)
        return (x, states) if return_state else x
