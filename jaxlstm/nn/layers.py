"""Recurrent layers as Flax NNX modules: the cell of :mod:`jaxlstm.nn.cell` run over time by the one loop of
:mod:`jaxlstm.nn.scan`, and the wrappers that combine layers (:class:`Bidirectional`, :class:`Stacked`).

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
from typing import Any, Literal, NamedTuple, Protocol, get_args

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.config import Implementation
from jaxlstm.nn.cell import Gates, LSTMParams, LSTMState, lstm_update, preactivation
from jaxlstm.nn.fused import lstm_sequence
from jaxlstm.nn.jax_internals import forward_mode_active
from jaxlstm.nn.scan import Record, Step, recurrent_input, scan_steps

__all__ = [
    "GLOROT_UNIFORM",
    "LSTM",
    "MERGE_MODES",
    "ORTHOGONAL",
    "Bidirectional",
    "CellLayer",
    "LayerTrace",
    "MergeMode",
    "RecurrentLayer",
    "Stacked",
    "batch_major",
    "call_layer",
    "dropout_masks",
    "floating_dtypes",
    "has_own_dropout",
    "keep_gates",
    "layer_output",
    "layer_traces",
    "lstm_layer_step",
    "merge",
    "row_keys",
    "scan_layer",
    "scan_lstm",
    "sequence_mask",
    "split_keys",
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


def scan_layer(
    step: Step,
    x: Array,
    initial_state: Any,
    *,
    reverse: bool = False,
    unroll: int = 1,
    keep: Callable[[Any, Any, Any], Any] | None = None,
    mask: Array | None = None,
) -> tuple[Any, Any]:
    """:func:`~jaxlstm.nn.scan.scan_steps` on batch-major arrays: a cell's ``step`` over x (batch, time, ...).

    Args:
        step: ``(x_t, state) -> (new_state, gates)``, one step of a cell's equations.
        x: inputs, (batch, time, in_features).
        initial_state: the cell's state, each array (batch, ...).
        reverse: walk from the last time step to the first. Outputs stay aligned with the inputs' time axis
            (``outputs[:, t]`` is the state after reading ``x[:, t]``), as in Keras's Bidirectional.
        unroll: time steps per loop iteration, passed to ``jax.lax.scan``.
        keep: what to record of every step (:func:`~jaxlstm.nn.scan.scan_steps`; :func:`keep_gates` records the
            gates and the state); None records each step's ``h``.
        mask: (batch, time) booleans, False at steps to skip (state carried through); None runs every step.

    Returns:
        The recorded steps, batch-major (by default ``outputs`` (batch, time, H)), and the final state.
    """
    final_state, recorded = scan_steps(
        step,
        jnp.swapaxes(x, 0, 1),
        initial_state,
        reverse=reverse,
        unroll=unroll,
        keep=keep,
        mask=None if mask is None else jnp.swapaxes(mask, 0, 1),
    )
    return batch_major(recorded), final_state


def keep_gates(new_state: Any, old_state: Any, gates: Any) -> tuple[Any, Any]:
    """What a trace records of every step: the gates and the state after the step."""
    del old_state
    return gates, new_state


def lstm_layer_step(params: LSTMParams, recurrent_scale: Array | None = None) -> Step:
    """The textbook LSTM step as a loop body, ``(x_t, state) -> (state, gates)``: :func:`~jaxlstm.nn.lstm_update`
    of ``x_t W + h U + b``, ``h`` scaled by the recurrent dropout's ``recurrent_scale`` (batch, H) if given."""

    def step(x_t: Array, state: LSTMState) -> tuple[LSTMState, Gates]:
        return lstm_update(preactivation(params, x_t, recurrent_input(state.h, recurrent_scale)), state.c)

    return step


def scan_lstm(
    params: LSTMParams,
    x: Array,
    initial_state: LSTMState,
    *,
    reverse: bool = False,
    unroll: int = 1,
    record: Record = "outputs",
    mask: Array | None = None,
    recurrent_scale: Array | None = None,
) -> tuple[Any, LSTMState]:
    """Runs :func:`~jaxlstm.nn.lstm_step` over the time axis: the textbook LSTM layer.

    Args:
        params: the cell's weights.
        x: inputs, (batch, time, in_features).
        initial_state: ``(h, c)``, each (batch, H).
        reverse, unroll, mask: as :func:`scan_layer`.
        record: ``outputs`` (each step's ``h``) or ``gates`` (the gates and the state of every step).
        recurrent_scale: (batch, H), what ``h`` is multiplied by before the recurrent kernel at every step (the
            recurrent dropout's mask over ``1 - rate``); None for none.

    Returns:
        The recorded steps, batch-major (``outputs`` (batch, time, H), the hidden state after every step, by
        default), and the final state.
    """
    keep = {"outputs": None, "gates": keep_gates}[record]
    step = lstm_layer_step(params, recurrent_scale)
    return scan_layer(step, x, initial_state, reverse=reverse, unroll=unroll, keep=keep, mask=mask)


def batch_major(recorded: Any) -> Any:
    """The time-major steps recorded by :func:`~jaxlstm.nn.scan_cell`, every array (time, batch, ...) made
    (batch, time, ...)."""
    return jax.tree.map(lambda array: jnp.swapaxes(array, 0, 1), recorded)


class RecurrentLayer(Protocol):
    """What :class:`Bidirectional` and :class:`Stacked` need of a layer: :class:`LSTM` and ConvLSTM fit. A layer
    with dropout of its own (:func:`has_own_dropout`) also takes a ``dropout_key``."""

    reverse: bool
    return_sequences: bool
    out_features: int

    def __call__(
        self,
        x: Array,
        initial_state: Any = None,
        *,
        mask: Array | None = None,
        return_state: bool = False,
    ) -> Any: ...

    def trace(self, x: Array) -> LayerTrace: ...


def sequence_mask(x: Array, mask: Array | None, lengths: Array | None) -> Array | None:
    """The (batch, time) boolean mask of inputs x (batch, time, ...), from a ``mask`` of that shape (Keras's) or
    from ``lengths`` (batch,), each sequence's number of valid leading steps (PyTorch's packed sequences); None
    when neither is given.

    Raises:
        ValueError: both given, or either of the wrong shape or type.
    """
    if mask is None and lengths is None:
        return None
    if mask is not None and lengths is not None:
        raise ValueError("pass a mask or lengths, not both: lengths (batch,) stand for the mask arange(time) < lengths")
    needed = tuple(jnp.shape(x)[:2])
    if lengths is not None:
        lengths = jnp.asarray(lengths)
        if lengths.shape != needed[:1] or not jnp.issubdtype(lengths.dtype, jnp.integer):
            raise ValueError(f"lengths must be integers (batch,) = {needed[:1]}, got {lengths.dtype} {lengths.shape}")
        try:
            in_range = bool(jnp.all((lengths >= 0) & (lengths <= needed[1])))
        except jax.errors.ConcretizationTypeError:  # traced (under jit): the values are not known here
            in_range = True
        if not in_range:
            raise ValueError(f"lengths must lie in [0, {needed[1]}] (the time steps), got {lengths.tolist()}")
        return jnp.arange(needed[1]) < lengths[:, None]
    mask = jnp.asarray(mask)
    if mask.shape != needed:
        raise ValueError(f"mask must be (batch, time) = {needed}, got {mask.shape}")
    return mask.astype(bool)


class CellLayer(nnx.Module):
    """What every layer of the cell family shares: one cell run over time (:func:`scan_layer`), with Keras's masks,
    initial states, dropouts and dtypes. A cell's layer (:class:`LSTM`, :class:`~jaxlstm.nn.GRU`,
    :class:`~jaxlstm.nn.SimpleRNN`, :class:`~jaxlstm.nn.LSTMVariant`) adds its weights, its zero state and its step.

    Masks: ``mask`` (batch, time) or ``lengths`` (batch,) skip steps as Keras's masking does: a skipped step leaves
    the state unchanged, so ``return_sequences=False`` gives each sequence's state after its last valid step and a
    reversed layer starts each sequence at its own last valid step (as PyTorch's packed sequences do); the output at
    a skipped step repeats the carried ``h`` (Keras's layers; :class:`Bidirectional` zeroes them, as Keras's does).

    Dropout inside the layer, as Keras's ``dropout`` and ``recurrent_dropout``: while training (a ``dropout_key``
    is passed) the inputs and the ``h`` that enters the recurrent kernel are multiplied by masks drawn once per
    sequence and reused at every step (Gal & Ghahramani, 2016), zeros with the given rates and ``1 / (1 - rate)``
    elsewhere. One mask serves every gate (Keras draws one per gate once ``recurrent_dropout`` is set: same rates,
    other draws).

    Attributes:
        in_features, hidden_size: the input width and H, the number of units.
        return_sequences: return every step's ``h`` (batch, time, H) rather than the final ``h`` (batch, H).
        reverse: read the sequence from the end (the backward half of a bidirectional layer).
        unroll: time steps per loop iteration of ``jax.lax.scan``.
        dropout, recurrent_dropout: rates in [0, 1) of the dropout on the inputs and on ``h`` inside the recurrence.
        dtype: the compute dtype (inputs, weights and ``h`` are cast to it); None computes in the wider of the
            inputs' floating type and the weights' (integers are promoted).
        cell_dtype: the dtype of a cell state ``c`` (LSTM and variants), None for the compute dtype.
    """

    name = "recurrent layer"  # how errors name the layer

    def _configure(
        self,
        in_features: int,
        hidden_size: int,
        *,
        return_sequences: bool = True,
        reverse: bool = False,
        unroll: int = 1,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        cell_dtype: jnp.dtype | None = None,
    ) -> None:
        """Checks and sets the options every layer of the family has (the attributes above; ``param_dtype`` is
        only checked: the layer creates its weights in it)."""
        if not all(
            isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1 for n in (in_features, hidden_size)
        ):
            raise ValueError(
                f"{self.name}(in_features={in_features!r}, hidden_size={hidden_size!r}): both must be whole numbers "
                ">= 1"
            )
        for option, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= rate < 1.0:
                raise ValueError(f"{self.name} {option} must be in [0, 1), got {rate!r}")
        self.in_features = in_features
        self.hidden_size = hidden_size
        self.out_features = hidden_size
        self.return_sequences = return_sequences
        self.reverse = reverse
        self.unroll = unroll
        self.dropout = dropout
        self.recurrent_dropout = recurrent_dropout
        self.dtype, self.cell_dtype = floating_dtypes(dtype, param_dtype, cell_dtype)

    @property
    def params(self) -> Any:
        """The weights as the cell's plain NamedTuple of arrays, in ``param_dtype``."""
        raise NotImplementedError

    def zeros(self, batch: int, dtype: jnp.dtype) -> Any:
        """The cell's zero state for ``batch`` sequences computed in ``dtype``."""
        raise NotImplementedError

    def cell_step(self, params: Any, recurrent_scale: Array | None) -> Step:
        """The cell's equations as a loop body ``(x_t, state) -> (state, gates)``, with the weights ``params`` in
        the compute dtype and the recurrent dropout's scale (batch, H) or None."""
        raise NotImplementedError

    def zero_state(self, x: Array) -> Any:
        """The zero state for inputs x (batch, time, in_features): each array (batch, ...), ``h`` in the compute
        dtype and a cell state ``c`` in ``cell_dtype``."""
        return self.zeros(x.shape[0], self._compute_dtype(x))

    def _compute_dtype(self, x: Array) -> jnp.dtype:
        """``dtype``, or the wider of x's floating type and the weights' (with float32 weights, integers and float16
        compute in float32)."""
        return self.dtype or jnp.promote_types(x.dtype, self.W.dtype)

    def _inputs(self, x: Array) -> Array:
        """``x`` checked, (batch, time, in_features) with at least one step, in the compute dtype."""
        x = jnp.asarray(x)
        if x.ndim != 3 or x.shape[-1] != self.in_features:
            hint = "; add a batch axis, x[None]" if x.shape[-1:] == (self.in_features,) and x.ndim == 2 else ""
            raise ValueError(f"{self.name} inputs must be (batch, time, {self.in_features}), got {x.shape}{hint}")
        if x.shape[1] == 0:
            raise ValueError(f"{self.name} inputs {x.shape} hold no time step; pass sequences of at least one step")
        return x.astype(self._compute_dtype(x))

    def _initial_state(self, x: Array, initial_state: Any) -> Any:
        """The zero state, or ``initial_state`` (the cell's state NamedTuple, or its arrays as a tuple or list, as
        Keras passes ``[h, c]`` or ``[h]``; a lone ``h`` array for a cell whose state is ``h`` alone) checked to have
        the zero state's shapes, in its dtypes."""
        zeros = self.zero_state(x)
        if initial_state is None:
            return zeros
        fields = type(zeros)._fields
        if len(fields) == 1 and hasattr(initial_state, "shape"):
            initial_state = (initial_state,)
        if len(initial_state) != len(fields):
            raise ValueError(f"initial_state must be ({', '.join(fields)}), got {len(initial_state)} arrays")
        for name, array, zero in zip(fields, initial_state, zeros, strict=True):
            if jnp.shape(array) != zero.shape:
                width = zero.shape[-1] // self.hidden_size
                needed = f"(batch, {'' if width == 1 else width}H) = {zero.shape}"
                raise ValueError(f"initial_state {name} must be {needed}, got {jnp.shape(array)}")
        return type(zeros)(*(jnp.asarray(array, zero.dtype) for array, zero in zip(initial_state, zeros, strict=True)))

    def _prepared(self, x: Array, initial_state: Any, mask: Array | None, lengths: Array | None) -> tuple:
        """What a loop over ``x`` needs: the inputs checked and cast, the initial state, the (batch, time) mask or
        None, and the weights in the compute dtype."""
        x = self._inputs(x)
        params = jax.tree.map(lambda weight: weight.astype(x.dtype), self.params)
        return x, self._initial_state(x, initial_state), sequence_mask(x, mask, lengths), params

    def _dropout_scales(self, x: Array, dropout_key: Array | None) -> tuple[Array | None, Array | None]:
        """The input and recurrent dropout multipliers, (batch, in_features) and (batch, H), one per sequence; None
        for a dropout that is off (rate 0, or no key: not training)."""
        rates = {"input": self.dropout, "recurrent": self.recurrent_dropout}
        widths = {"input": self.in_features, "recurrent": self.hidden_size}
        active = [name for name, rate in rates.items() if rate > 0.0 and dropout_key is not None]
        if not active:
            return None, None
        keeps = dropout_masks(dropout_key, [(x.shape[0], widths[name]) for name in active], [rates[n] for n in active])
        scales = {name: keep.astype(x.dtype) / (1.0 - rates[name]) for name, keep in zip(active, keeps, strict=True)}
        return scales.get("input"), scales.get("recurrent")

    def loop(
        self, params: Any, x: Array, state: Any, mask: Array | None, recurrent_scale: Array | None
    ) -> tuple[Array, Any]:
        """The outputs (batch, time, H) and the final state of the prepared inputs: the textbook loop of
        :meth:`cell_step` (a layer with a fast path overrides this)."""
        step = self.cell_step(params, recurrent_scale)
        return scan_layer(step, x, state, reverse=self.reverse, unroll=self.unroll, mask=mask)

    def scan(
        self,
        x: Array,
        initial_state: Any = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
        dropout_key: Array | None = None,
    ) -> tuple[Array, Any]:
        """All outputs (batch, time, H) and the final state; the state starts at zero unless given (see
        :meth:`_initial_state`); ``mask`` (batch, time) or ``lengths`` (batch,) skip steps; ``dropout_key`` turns
        the layer's dropouts on.

        Raises:
            ValueError: inputs not (batch, time, in_features) with at least one step, a state, mask or lengths of
                another shape.
        """
        x, state, mask, params = self._prepared(x, initial_state, mask, lengths)
        input_scale, recurrent_scale = self._dropout_scales(x, dropout_key)
        if input_scale is not None:
            x = x * input_scale[:, None, :]
        return self.loop(params, x, state, mask, recurrent_scale)

    def trace(
        self, x: Array, initial_state: Any = None, *, mask: Array | None = None, lengths: Array | None = None
    ) -> LayerTrace:
        """Every gate and state over x (batch, time, in_features): the textbook loop, recording each step."""
        x, state, mask, params = self._prepared(x, initial_state, mask, lengths)
        step = self.cell_step(params, None)
        gates, states = scan_layer(
            step, x, state, reverse=self.reverse, unroll=self.unroll, keep=keep_gates, mask=mask
        )[0]
        return LayerTrace(gates, states)

    def __call__(
        self,
        x: Array,
        initial_state: Any = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
        dropout_key: Array | None = None,
        return_state: bool = False,
    ) -> Any:
        """Outputs (batch, time, H) with ``return_sequences``, else the final ``h`` (batch, H); with
        ``return_state``, also the final state (Keras's ``return_state=True``). See :meth:`scan` for the other
        arguments."""
        scanned = self.scan(x, initial_state, mask=mask, lengths=lengths, dropout_key=dropout_key)
        return layer_output(self, *scanned, return_state)


class LSTM(CellLayer):
    """An LSTM layer: the cell's weights as NNX parameters, run over time by the fast path
    (:func:`jaxlstm.nn.lstm_sequence`, the default) or the textbook loop (:func:`scan_lstm`).

    The default initialisers are Keras's (glorot-uniform ``W``, orthogonal ``U``, unit forget bias), so that a
    model built here trains like the tutorial's Keras model. Masks, states and dropouts are those of every layer
    of the family (:class:`CellLayer`).

    Args:
        in_features: size of each input vector.
        hidden_size: H, the number of units.
        return_sequences: return every step's ``h`` (batch, time, H) rather than the final ``h`` (batch, H).
        reverse: read the sequence from the end (the backward half of a bidirectional layer).
        unroll: time steps per loop iteration of ``jax.lax.scan``.
        implementation: ``fused`` (default) runs :func:`jaxlstm.nn.lstm_sequence`, the fast path with a
            hand-scheduled backward pass; ``textbook`` runs :func:`scan_lstm` and lets JAX differentiate the loop. Both
            compute the same function and gradients (tested to 1e-5). The fast path is a ``jax.custom_vjp``, which has
            no forward mode: under ``jax.jvp``, ``jax.jacfwd`` or ``jax.hessian`` the layer runs the textbook loop by
            itself (:func:`jaxlstm.nn.jax_internals.forward_mode_active`); for ``jax.jvp`` of a function jitted
            beforehand, build the layer with ``textbook``.
        hoist_input: for ``fused``, compute the input projection ``x W + b`` of every step as one matmul before the
            loop rather than one small matmul per step (which is faster depends on the backend and the sizes:
            docs/performance.md).
        dropout: rate of the dropout on the inputs, in [0, 1).
        recurrent_dropout: rate of the dropout on ``h`` inside the recurrence, in [0, 1).
        dtype: the compute dtype (inputs, weights and ``h`` are cast to it); None computes in the wider of the
            inputs' floating type and ``param_dtype`` (integers are promoted).
        param_dtype: the dtype the weights are stored (and trained) in.
        cell_dtype: the dtype of the cell state ``c``, the running sum the forget gate keeps; None for the compute
            dtype. float32 under a bfloat16 or float16 ``dtype`` keeps that sum at full precision.
        rngs: source of the ``params`` key.
    """

    name = "LSTM"

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
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        cell_dtype: jnp.dtype | None = None,
        kernel_init: Initializer = GLOROT_UNIFORM,
        recurrent_init: Initializer = ORTHOGONAL,
        bias_init: Initializer = unit_forget_bias,
        rngs: nnx.Rngs,
    ):
        self._configure(
            in_features,
            hidden_size,
            return_sequences=return_sequences,
            reverse=reverse,
            unroll=unroll,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            dtype=dtype,
            param_dtype=param_dtype,
            cell_dtype=cell_dtype,
        )
        self.implementation = implementation
        self.hoist_input = hoist_input
        self.W = nnx.Param(kernel_init(rngs.params(), (in_features, 4 * hidden_size), param_dtype))
        self.U = nnx.Param(recurrent_init(rngs.params(), (hidden_size, 4 * hidden_size), param_dtype))
        self.b = nnx.Param(bias_init(rngs.params(), (4 * hidden_size,), param_dtype))

    @property
    def params(self) -> LSTMParams:
        """The weights as a plain :class:`~jaxlstm.nn.LSTMParams`, in ``param_dtype``."""
        return LSTMParams(W=self.W[...], U=self.U[...], b=self.b[...])

    def zeros(self, batch: int, dtype: jnp.dtype) -> LSTMState:
        """The zero ``(h, c)``, each (batch, H): ``h`` in ``dtype``, ``c`` in ``cell_dtype`` (or ``dtype``)."""
        zeros = LSTMState.zeros((batch,), self.hidden_size, dtype)
        return zeros._replace(c=zeros.c.astype(self.cell_dtype or dtype))

    def cell_step(self, params: LSTMParams, recurrent_scale: Array | None) -> Step:
        """The textbook step, :func:`lstm_layer_step`."""
        return lstm_layer_step(params, recurrent_scale)

    def loop(
        self, params: LSTMParams, x: Array, state: LSTMState, mask: Array | None, recurrent_scale: Array | None
    ) -> tuple[Array, LSTMState]:
        """The fast path, :func:`~jaxlstm.nn.lstm_sequence`, unless the layer is ``textbook`` or forward-mode
        differentiation is running."""
        if self.implementation == "textbook" or forward_mode_active():
            return super().loop(params, x, state, mask, recurrent_scale)
        outputs, final_state = lstm_sequence(
            params,
            jnp.swapaxes(x, 0, 1),
            state,
            self.reverse,
            self.unroll,
            self.hoist_input,
            None if mask is None else jnp.swapaxes(mask, 0, 1),
            recurrent_scale,
        )
        return jnp.swapaxes(outputs, 0, 1), final_state


def floating_dtypes(
    dtype: jnp.dtype | None, param_dtype: jnp.dtype, cell_dtype: jnp.dtype | None
) -> tuple[jnp.dtype | None, jnp.dtype | None]:
    """A layer's compute and cell-state dtypes, checked: each None or floating, and float64 only with
    ``jax_enable_x64`` (without it JAX would quietly compute in float32)."""
    for name, value in (("dtype", dtype), ("param_dtype", param_dtype), ("cell_dtype", cell_dtype)):
        if value is None:
            continue
        try:
            floating = jnp.issubdtype(value, jnp.floating)
        except TypeError:
            floating = False
        if not floating:
            raise ValueError(f"{name} must be a floating dtype (float32, bfloat16, float16, float64), got {value}")
        if jnp.dtype(value) == jnp.float64 and not jax.config.jax_enable_x64:
            raise ValueError(
                f"{name}=float64 needs 64-bit JAX: set JAX_ENABLE_X64=1 or jax.config.update('jax_enable_x64', True)"
            )
    return (None if dtype is None else jnp.dtype(dtype)), (None if cell_dtype is None else jnp.dtype(cell_dtype))


def layer_output(layer: Any, outputs: Array, final_state: LSTMState, return_state: bool) -> Any:
    """A recurrent layer's result from its :meth:`~LSTM.scan`: every output or the last ``h`` (as
    ``layer.return_sequences`` says), and with ``return_state`` the final state too, ``(output, state)``."""
    output = outputs if layer.return_sequences else final_state.h
    return (output, final_state) if return_state else output


def merge(forward: Array, backward: Array, mode: MergeMode | None) -> Array | tuple[Array, Array]:
    """Combines the two directions' outputs as Keras's ``Bidirectional(merge_mode=...)`` does; ``None`` keeps them
    apart, ``(forward, backward)``."""
    if mode is None:
        return forward, backward
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
    :class:`~jaxlstm.nn.LSTMState` or ``(h, c)``, None for zeros) or Keras's flat ``[h_fwd, c_fwd, h_bwd, c_bwd]``,
    and ``return_state=True`` returns ``(output, (forward_state, backward_state))``.

    Args:
        forward_layer: a layer with ``reverse=False``.
        backward_layer: the same kind of layer with ``reverse=True`` and the same ``return_sequences``.
        merge_mode: ``concat`` (default, as in Keras), ``sum``, ``mul``, ``ave``, or None: the two outputs apart,
            ``(forward, backward)``, as Keras's ``merge_mode=None`` returns them (such a layer can only end a stack).
    """

    def __init__(
        self, forward_layer: RecurrentLayer, backward_layer: RecurrentLayer, merge_mode: MergeMode | None = "concat"
    ):
        if forward_layer.reverse or not backward_layer.reverse:
            raise ValueError("Bidirectional needs a forward layer (reverse=False) and a backward one (reverse=True)")
        if forward_layer.return_sequences != backward_layer.return_sequences:
            raise ValueError("Bidirectional needs both layers to agree on return_sequences")
        if merge_mode is not None and merge_mode not in MERGE_MODES:
            raise ValueError(f"unknown merge mode {merge_mode!r}; use one of {', '.join(MERGE_MODES)} or None")
        self.forward_layer = forward_layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode
        self.reverse = False
        self.return_sequences = forward_layer.return_sequences
        width = forward_layer.out_features
        self.out_features = 2 * width if merge_mode == "concat" else width

    def __call__(
        self,
        x: Array,
        initial_state: Any = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
        dropout_key: Array | None = None,
        return_state: bool = False,
    ) -> Any:
        """Merged outputs: (batch, time, out_features) or (batch, out_features) (``merge_mode=None``: the pair
        ``(forward, backward)``, each that shape); with ``return_state``, also the final
        ``(forward_state, backward_state)``. With a ``mask`` (batch, time) or ``lengths`` (batch,), each
        direction skips the masked steps (the backward one starts at each sequence's last valid step) and, as in
        Keras, the sequence outputs are zero there; ``dropout_key`` turns the layers' own dropouts on."""
        mask = sequence_mask(x, mask, lengths)
        forward_state, backward_state = _direction_states(initial_state)
        forward_key, backward_key = (None, None) if dropout_key is None else split_keys(dropout_key, 2, x.shape[0])
        forward, forward_final = call_layer(self.forward_layer, x, forward_state, mask, forward_key)
        backward, backward_final = call_layer(self.backward_layer, x, backward_state, mask, backward_key)
        if mask is not None and self.return_sequences:
            keep = mask.reshape(mask.shape + (1,) * (forward.ndim - 2))
            forward, backward = jnp.where(keep, forward, 0), jnp.where(keep, backward, 0)
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


def row_keys(key: Array, rows: int) -> Array:
    """One PRNG key per row of a batch, (rows,): ``key`` itself when it already holds one key per row, else row
    ``r``'s key is ``fold_in(key, r)``.

    Every dropout mask is drawn row by row from these keys, so a row's masks do not depend on the rows drawn beside
    it: a batch split over devices draws, in each device's share, exactly the masks it draws whole (the training
    epoch passes each share its rows' keys), and the same seed trains the same model on 1, 2 or N devices.

    >>> keys = row_keys(jax.random.key(0), 4)
    >>> third = jax.random.fold_in(jax.random.key(0), 2)
    >>> keys.shape, bool(jnp.all(jax.random.key_data(keys[2]) == jax.random.key_data(third)))
    ((4,), True)
    """
    if not jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.wrap_key_data(key)  # a raw uint32 key of jax.random.PRNGKey
    if key.ndim == 0:
        return jax.vmap(jax.random.fold_in, in_axes=(None, 0))(key, jnp.arange(rows))
    if key.shape != (rows,):
        raise ValueError(f"dropout keys must be one key or one per row of the batch ({rows},), got {key.shape}")
    return key


def split_keys(key: Array, count: int, rows: int) -> list[Array]:
    """``count`` independent keys per row, as ``count`` arrays (rows,) of keys: each row's key (:func:`row_keys`)
    split ``count`` ways."""
    per_row = jax.vmap(lambda row_key: jax.random.split(row_key, count))(row_keys(key, rows))  # (rows, count)
    return [per_row[:, index] for index in range(count)]


def dropout_masks(key: Array, shapes: Sequence[tuple[int, ...]], rate: float | Sequence[float]) -> list[Array]:
    """Keep-masks for several dropouts, drawn in one call: element ``True`` with probability ``1 - rate``.

    One draw for all of them, because each call of the PRNG compiles to a threefry kernel of its own, which costs
    compile and run time on XLA:CPU (docs/performance.md, "Dropout masks from one draw"). The draw is made row by
    row, each row of the batch (the first axis of every shape) from its own key (:func:`row_keys`), so that a
    row's masks are the same however the batch is split.

    Args:
        key: a PRNG key, or one key per row (rows,).
        shapes: the shape of each mask, all starting with the same number of rows (the batch).
        rate: probability that an element is dropped, in [0, 1): one for all masks, or one per mask.

    Returns:
        Boolean masks, one per shape.

    >>> [mask.shape for mask in dropout_masks(jax.random.key(0), [(2, 3), (2, 4, 5)], 0.2)]
    [(2, 3), (2, 4, 5)]
    """
    rows = {shape[0] for shape in shapes}
    if len(rows) != 1:
        raise ValueError(f"dropout masks are drawn per row: every shape must start with the batch, got {shapes}")
    sizes = [math.prod(shape[1:]) for shape in shapes]
    rates = [float(rate)] * len(shapes) if np.ndim(rate) == 0 else [float(each) for each in rate]
    uniform = jax.vmap(lambda row_key: jax.random.uniform(row_key, (sum(sizes),)))(row_keys(key, rows.pop()))
    keep = {each_rate: uniform < 1.0 - each_rate for each_rate in set(rates)}
    ends = list(itertools.accumulate(sizes))
    return [
        keep[each_rate][:, end - size : end].reshape(shape)
        for shape, size, end, each_rate in zip(shapes, sizes, ends, rates, strict=True)
    ]


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
            if isinstance(layer, Bidirectional) and layer.merge_mode is None:
                raise ValueError(
                    f"layer {index} of a stack keeps its two directions apart (merge_mode=None): only "
                    "the last layer can; merge them for the next layer to read"
                )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        if dropout > 0.0 and isinstance(layers[-1], Bidirectional) and layers[-1].merge_mode is None:
            raise ValueError("a stack's dropout needs merged outputs; its last layer keeps two (merge_mode=None)")
        self.layers = nnx.List(layers)
        self.dropout_rate = dropout
        self.out_features = layers[-1].out_features

    def __call__(
        self,
        x: Array,
        initial_state: Sequence[Any] | None = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
        dropout_key: Array | None = None,
        return_state: bool = False,
    ) -> Any:
        """Runs the stack on x (batch, time, features); dropout (between the layers, and the layers' own) is
        applied only when a ``dropout_key`` is given (training); a ``mask`` (batch, time) or ``lengths`` (batch,)
        reach every layer, as Keras propagates a mask. Returns the last layer's output, (batch, time, out_features)
        or (batch, out_features), and with ``return_state`` the list of every layer's final state."""
        if initial_state is None:
            initial_state = [None] * len(self.layers)
        if len(initial_state) != len(self.layers):
            raise ValueError(
                f"a Stacked initial_state holds one state per layer (None for zeros): {len(self.layers)}, "
                f"got {len(initial_state)}"
            )
        mask = sequence_mask(x, mask, lengths)
        masks, layer_keys = [None] * len(self.layers), [None] * len(self.layers)
        if dropout_key is not None:
            mask_keys, *layer_keys = split_keys(dropout_key, len(self.layers) + 1, x.shape[0])
        if dropout_key is not None and self.dropout_rate > 0.0:
            shapes, output = [], jax.ShapeDtypeStruct(x.shape, x.dtype)
            for layer in self.layers:
                output = jax.eval_shape(layer, output)
                shapes.append(output.shape)
            masks = dropout_masks(mask_keys, shapes, self.dropout_rate)
        states = []
        for layer, state, keep, key in zip(self.layers, initial_state, masks, layer_keys, strict=True):
            x, final_state = call_layer(layer, x, state, mask, key)
            if keep is not None:
                x = jnp.where(keep, x / (1.0 - self.dropout_rate), 0.0)
            states.append(final_state)
        return (x, states) if return_state else x

    def trace(self, x: Array) -> list[LayerTrace]:
        """Every gate and state of every layer and direction over x (batch, time, features), in order (layer 0
        forward, layer 0 backward, layer 1, ...); each layer reads the previous layer's outputs without dropout, as
        at inference."""
        traces = []
        for layer in self.layers:
            layer_trace, x = layer_traces(layer, x)
            traces += layer_trace
        return traces


def layer_traces(layer: RecurrentLayer, x: Array) -> tuple[list[LayerTrace], Array]:
    """The traces of one layer (both directions of a :class:`Bidirectional`, forward first) over x (batch, time,
    ...), and the output the next layer of a stack reads: the (merged) sequence, or the final ``h``."""
    if isinstance(layer, Bidirectional):
        forward, forward_out = layer_traces(layer.forward_layer, x)
        backward, backward_out = layer_traces(layer.backward_layer, x)
        return forward + backward, merge(forward_out, backward_out, layer.merge_mode)
    if not hasattr(layer, "trace"):
        raise TypeError(f"cannot trace the gates of a {type(layer).__name__}; pass a Forecaster, Stacked, LSTM, ...")
    trace = layer.trace(x)
    outputs = trace.states.h
    if layer.return_sequences:
        return [trace], outputs
    return [trace], outputs[:, 0] if layer.reverse else outputs[:, -1]


def call_layer(
    layer: RecurrentLayer, x: Array, initial_state: Any, mask: Array | None, dropout_key: Array | None
) -> tuple[Array, Any]:
    """``layer(x, initial_state, return_state=True)``, with the ``mask`` if there is one and the ``dropout_key`` if
    the layer has dropout of its own (so a layer written without either still stacks)."""
    options = {} if mask is None else {"mask": mask}
    if has_own_dropout(layer):
        options["dropout_key"] = dropout_key
    return layer(x, initial_state, return_state=True, **options)


def has_own_dropout(layer: RecurrentLayer) -> bool:
    """Whether a layer (or either direction of a :class:`Bidirectional`) has dropout inside it, and so needs a key
    while training."""
    if isinstance(layer, Bidirectional):
        return has_own_dropout(layer.forward_layer) or has_own_dropout(layer.backward_layer)
    return getattr(layer, "dropout", 0.0) > 0.0 or getattr(layer, "recurrent_dropout", 0.0) > 0.0
