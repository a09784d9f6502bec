r"""Convolutional LSTM (Shi et al., 2015): the LSTM of :mod:`jaxlstm.nn.cell` with convolutions for matmuls.

A ConvLSTM reads a sequence of images (2-D), or of 1-D signals, and keeps an image-shaped state. Its
pre-activations replace the two matmuls of :func:`jaxlstm.nn.lstm_step` by two convolutions:

.. math::

    z_t = K * x_t + R * h_{t-1} + b

with :math:`K` the input kernel (any padding and strides) and :math:`R` the recurrent kernel (stride 1, ``same``
padding, so that :math:`h` keeps its shape). Everything after :math:`z_t` is the ordinary LSTM:
:func:`jaxlstm.nn.lstm_update` computes the gates i, f, g, o and the new state ``(h, c)`` at every position at
once, because arrays are channels-last and the 4F gate slab is the last axis, exactly as the 4H slab of a dense LSTM.

Layouts are Keras's (``data_format="channels_last"``), so Keras weights load as they are:

- inputs (batch, time, *spatial, channels): ConvLSTM1D reads (batch, time, rows, channels), ConvLSTM2D
  (batch, time, rows, cols, channels);
- ``kernel`` (*kernel_size, in_channels, 4F), ``recurrent_kernel`` (*kernel_size, F, 4F), ``bias`` (4F,),
  gate order i, f, g, o along the last axis (Keras's i, f, c, o);
- state ``(h, c)``, each (batch, *out_spatial, F).

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> layer = ConvLSTM1D(1, 8, 3, rngs=nnx.Rngs(0))          # Keras: ConvLSTM1D(filters=8, kernel_size=3)
>>> layer(jnp.ones((2, 4, 15, 1))).shape                    # 4 steps of 15 rows -> 13 rows ("valid")
(2, 4, 13, 8)
>>> ConvLSTM2D(3, 4, (3, 3), padding="same", return_sequences=False, rngs=nnx.Rngs(0))(
...     jnp.ones((2, 5, 8, 8, 3))).shape
(2, 8, 8, 4)
"""

import itertools
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.config import Convolution
from jaxlstm.errors import ConfigError, plural
from jaxlstm.nn.cell import LSTMState, lstm_update
from jaxlstm.nn.layers import (
    GLOROT_UNIFORM,
    ORTHOGONAL,
    Initializer,
    LayerTrace,
    batch_major,
    floating_dtypes,
    layer_output,
    sequence_mask,
    unit_forget_bias,
)
from jaxlstm.nn.scan import Record, scan_cell

__all__ = [
    "ConvLSTM",
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    "ConvLSTMParams",
    "conv_output_length",
    "convlstm_step",
    "convolve",
    "project_input",
    "project_state",
    "scan_convlstm",
    "to_subsequences",
]

Array = jax.Array
Padding = Literal["valid", "same"]


class ConvLSTMParams(NamedTuple):
    """Weights of one ConvLSTM cell, Keras's layout, gate order i, f, g, o along the last axis.

    Attributes:
        kernel: input kernel, (*kernel_size, in_channels, 4F).
        recurrent_kernel: recurrent kernel, (*kernel_size, F, 4F).
        bias: (4F,).
    """

    kernel: Array
    recurrent_kernel: Array
    bias: Array


def _dimension_numbers(rank: int) -> tuple[str, str, str]:
    spatial = "DHW"[-rank:] if rank <= 3 else None
    if spatial is None:
        raise ValueError(f"ConvLSTM supports 1, 2 or 3 spatial dimensions, got {rank}")
    return f"N{spatial}C", f"{spatial}IO", f"N{spatial}C"


def _padding(length: int, kernel_size: int, stride: int, padding: Padding, dilation: int) -> tuple[int, int, int]:
    """(pad before, pad after, output length) along one axis, as TensorFlow and Keras pad."""
    span = (kernel_size - 1) * dilation + 1
    if padding == "valid":
        return 0, 0, (length - span) // stride + 1
    out = -(-length // stride)
    total = max((out - 1) * stride + span - length, 0)
    return total // 2, total - total // 2, out


def convolve(
    x: Array,
    kernel: Array,
    *,
    strides: Sequence[int] | int = 1,
    padding: Padding = "valid",
    dilation: Sequence[int] | int = 1,
    convolution: Convolution = "gemm",
) -> Array:
    """A channels-last convolution with a Keras-layout kernel: x (batch, *spatial, in), kernel (*k, in, out).

    ``padding`` is Keras's (and TensorFlow's): ``valid`` pads nothing, ``same`` pads so that the output has
    ``ceil(size / stride)`` positions, the odd pixel going to the end.

    ``convolution``: ``gemm`` (default) gathers the kernel's taps into one (batch, *out, prod(k) * in) array
    ("im2col") and does one matmul with the kernel reshaped to (prod(k) * in, out); ``xla`` calls
    ``jax.lax.conv_general_dilated``. Both compute the same sums (tested equal); on XLA:CPU the matmul form trains
    much faster (docs/performance.md, "ConvLSTM: a matmul instead of a convolution").
    """
    rank = kernel.ndim - 2
    strides = (strides,) * rank if isinstance(strides, int) else tuple(strides)
    dilation = (dilation,) * rank if isinstance(dilation, int) else tuple(dilation)
    if convolution == "gemm":
        geometry = [
            _padding(n, k, s, padding, d)
            for n, k, s, d in zip(x.shape[1:-1], kernel.shape[:rank], strides, dilation, strict=True)
        ]
        padded = jnp.pad(x, [(0, 0), *((before, after) for before, after, _ in geometry), (0, 0)])
        taps = [
            padded[
                (
                    slice(None),
                    *(
                        slice(t * d, t * d + (out - 1) * s + 1, s)
                        for t, d, s, (_, _, out) in zip(tap, dilation, strides, geometry, strict=True)
                    ),
                    slice(None),
                )
            ]
            for tap in itertools.product(*(range(k) for k in kernel.shape[:rank]))
        ]
        return jnp.concatenate(taps, axis=-1) @ kernel.reshape(-1, kernel.shape[-1])
    return jax.lax.conv_general_dilated(
        x,
        kernel,
        window_strides=strides,
        padding=padding.upper(),
        rhs_dilation=dilation,
        dimension_numbers=_dimension_numbers(rank),
    )


def conv_output_length(length: int, kernel_size: int, stride: int, padding: Padding, dilation: int = 1) -> int:
    """Positions along one axis after a convolution (Keras's ``conv_output_length``)."""
    return _padding(length, kernel_size, stride, padding, dilation)[2]


def project_input(
    params: ConvLSTMParams,
    x: Array,
    *,
    strides: Sequence[int] | int = 1,
    padding: Padding = "valid",
    dilation: Sequence[int] | int = 1,
    convolution: Convolution = "gemm",
) -> Array:
    """The input half of the pre-activations, ``K * x + b``: x (batch, *spatial, in) -> (batch, *out_spatial, 4F)."""
    options = {"strides": strides, "padding": padding, "dilation": dilation, "convolution": convolution}
    return convolve(x, params.kernel, **options) + params.bias


def project_state(params: ConvLSTMParams, h: Array, *, convolution: Convolution = "gemm") -> Array:
    """The recurrent half, ``R * h`` (stride 1, ``same`` padding): h (batch, *out_spatial, F) -> (..., 4F)."""
    return convolve(h, params.recurrent_kernel, padding="same", convolution=convolution)


def convlstm_step(
    params: ConvLSTMParams,
    state: LSTMState,
    x: Array,
    *,
    strides: Sequence[int] | int = 1,
    padding: Padding = "valid",
    dilation: Sequence[int] | int = 1,
    convolution: Convolution = "gemm",
) -> LSTMState:
    """One ConvLSTM step: ``z = K * x + R * h + b``, then the LSTM's gate equations.

    Args:
        params: the cell's weights.
        state: ``(h, c)``, each (batch, *out_spatial, F).
        x: input, (batch, *spatial, in_channels).
        strides, padding, dilation: of the input convolution; the recurrent one has stride 1, ``same`` padding.
        convolution: how the convolutions are computed, see :func:`convolve`.

    Returns:
        The new state ``(h, c)``.
    """
    options = {"strides": strides, "padding": padding, "dilation": dilation, "convolution": convolution}
    preactivation = project_input(params, x, **options) + project_state(params, state.h, convolution=convolution)
    return lstm_update(preactivation, state.c)[0]


def scan_convlstm(
    params: ConvLSTMParams,
    x: Array,
    initial_state: LSTMState | None = None,
    *,
    strides: Sequence[int] | int = 1,
    padding: Padding = "valid",
    dilation: Sequence[int] | int = 1,
    reverse: bool = False,
    unroll: int = 1,
    convolution: Convolution = "gemm",
    record: Record = "outputs",
    mask: Array | None = None,
) -> tuple[LSTMState, Any]:
    """Runs the ConvLSTM over the time axis with :func:`jaxlstm.nn.scan_cell`, the loop of every LSTM.

    The input convolution of every time step is one batched convolution before the loop (it does not depend on
    the state); the loop does the recurrent convolution and :func:`~jaxlstm.nn.lstm_update`.

    Args:
        params: the cell's weights.
        x: inputs, (batch, time, *spatial, in_channels).
        initial_state: ``(h, c)``, each (batch, *out_spatial, F); zeros when None.
        strides, padding, dilation: of the input convolution.
        reverse: walk from the last step to the first; outputs stay aligned with the inputs' time axis.
        unroll: time steps per loop iteration.
        convolution: how the convolutions are computed, see :func:`convolve`.
        record: what to keep of each step (see :func:`~jaxlstm.nn.scan_cell`), time-major.
        mask: (batch, time) booleans, False at steps to skip (state carried through); None runs every step.

    Returns:
        The final state and the recorded steps: with ``record="outputs"``, ``h`` (time, batch, *out_spatial, F).
    """
    steps = jnp.swapaxes(x, 0, 1)
    time, batch = steps.shape[:2]
    options = {"strides": strides, "padding": padding, "dilation": dilation, "convolution": convolution}
    flat = project_input(params, steps.reshape(time * batch, *steps.shape[2:]), **options)
    projected = flat.reshape(time, batch, *flat.shape[1:])
    if initial_state is None:
        zeros = jnp.zeros((*projected.shape[1:-1], params.recurrent_kernel.shape[-2]), projected.dtype)
        initial_state = LSTMState(h=zeros, c=zeros)

    def step_preactivation(projected_t: Array, h: Array) -> Array:
        return projected_t + project_state(params, h, convolution=convolution)

    time_major_mask = None if mask is None else jnp.swapaxes(mask, 0, 1)
    return scan_cell(
        step_preactivation,
        projected,
        initial_state,
        reverse=reverse,
        unroll=unroll,
        record=record,
        mask=time_major_mask,
    )


class ConvLSTM(nnx.Module):
    """A convolutional LSTM layer (Keras's ``ConvLSTM1D``/``ConvLSTM2D``/``ConvLSTM3D``, channels-last).

    Fits the :class:`~jaxlstm.nn.RecurrentLayer` protocol, so :class:`~jaxlstm.nn.Bidirectional` (merging
    along the channel axis) and :class:`~jaxlstm.nn.Stacked` wrap it as they wrap
    :class:`~jaxlstm.nn.LSTM`.

    The default initialisers are Keras's: glorot-uniform ``kernel``, orthogonal ``recurrent_kernel`` (Keras and JAX
    both flatten it to a (prod(kernel_size) * F, 4F) matrix and make that orthogonal), and a zero ``bias`` with the
    forget slice set to 1 (Keras's ``unit_forget_bias=True``).

    Args:
        in_channels: channels of each input position.
        filters: F, the channels of the state (the "units").
        kernel_size: one int per spatial axis (an int is repeated for :class:`ConvLSTM1D`/``2D``/``3D``).
        strides, padding, dilation_rate: of the input convolution (Keras's arguments); the recurrent convolution
            always has stride 1 and ``same`` padding.
        return_sequences: return every step's ``h`` (batch, time, *out_spatial, F), else the final one.
        reverse: read the sequence from the end (Keras's ``go_backwards``, outputs re-aligned as in Bidirectional).
        unroll: time steps per loop iteration of ``jax.lax.scan``.
        convolution: ``gemm`` (default) or ``xla``, how the convolutions are computed (see :func:`convolve`).
        dtype, param_dtype, cell_dtype: the compute dtype (None: the wider of the inputs' floating type and the
            weights'), the weights' dtype, and the cell state's (None: the compute dtype), as for
            :class:`~jaxlstm.nn.LSTM`.
        rngs: source of the ``params`` key.

    A ``mask`` (batch, time) or ``lengths`` (batch,) skips steps as :class:`~jaxlstm.nn.LSTM`'s does.
    """

    rank: ClassVar[int | None] = None

    def __init__(
        self,
        in_channels: int,
        filters: int,
        kernel_size: Sequence[int] | int,
        *,
        strides: Sequence[int] | int = 1,
        padding: Padding = "valid",
        dilation_rate: Sequence[int] | int = 1,
        return_sequences: bool = True,
        reverse: bool = False,
        unroll: int = 1,
        convolution: Convolution = "gemm",
        dtype: jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        cell_dtype: jnp.dtype | None = None,
        kernel_init: Initializer = GLOROT_UNIFORM,
        recurrent_init: Initializer = ORTHOGONAL,
        bias_init: Initializer = unit_forget_bias,
        rngs: nnx.Rngs,
    ):
        rank = self.rank if isinstance(kernel_size, int) else len(kernel_size)
        if rank is None:
            raise ValueError("ConvLSTM needs a kernel_size per spatial axis; or use ConvLSTM1D/ConvLSTM2D")
        if self.rank is not None and rank != self.rank:
            raise ValueError(f"{type(self).__name__} needs {self.rank} kernel sizes, got {kernel_size!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")

        def spread(value: Sequence[int] | int) -> tuple[int, ...]:
            values = (value,) * rank if isinstance(value, int) else tuple(value)
            if len(values) != rank:
                raise ValueError(f"expected {plural(rank, 'value')}, got {value!r}")
            return values

        self.in_channels = in_channels
        self.filters = filters
        self.out_features = filters
        self.kernel_size = spread(kernel_size)
        self.strides = spread(strides)
        self.padding = padding
        self.dilation_rate = spread(dilation_rate)
        self.return_sequences = return_sequences
        self.reverse = reverse
        self.unroll = unroll
        self.convolution = convolution
        self.dtype, self.cell_dtype = floating_dtypes(dtype, param_dtype, cell_dtype)
        self.kernel = nnx.Param(kernel_init(rngs.params(), (*self.kernel_size, in_channels, 4 * filters), param_dtype))
        self.recurrent_kernel = nnx.Param(
            recurrent_init(rngs.params(), (*self.kernel_size, filters, 4 * filters), param_dtype)
        )
        self.bias = nnx.Param(bias_init(rngs.params(), (4 * filters,), param_dtype))

    @property
    def params(self) -> ConvLSTMParams:
        """The weights as a plain :class:`ConvLSTMParams`."""
        return ConvLSTMParams(self.kernel[...], self.recurrent_kernel[...], self.bias[...])

    def output_shape(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The state's shape (*out_spatial, F) for inputs with spatial shape ``spatial``."""
        lengths = (
            conv_output_length(n, k, s, self.padding, d)
            for n, k, s, d in zip(spatial, self.kernel_size, self.strides, self.dilation_rate, strict=True)
        )
        return (*lengths, self.filters)

    def _loop(
        self, x: Array, initial_state: LSTMState | None, record: Record, mask: Array | None, lengths: Array | None
    ) -> tuple[LSTMState, Any]:
        x = jnp.asarray(x)
        compute = self.dtype or jnp.promote_types(x.dtype, self.kernel.dtype)
        x = x.astype(compute)
        needed = (x.shape[0], *self.output_shape(x.shape[2:-1]))
        if initial_state is None:
            zeros = jnp.zeros(needed, compute)
            initial_state = LSTMState(h=zeros, c=zeros)
        if len(initial_state) != 2:
            raise ValueError(f"initial_state must be (h, c), got {len(initial_state)} arrays")
        for name, array in zip(("h", "c"), initial_state, strict=True):
            if jnp.shape(array) != needed:
                raise ValueError(
                    f"initial_state {name} must be (batch, *out_spatial, filters) = {needed}, got {jnp.shape(array)}"
                )
        initial_state = LSTMState(
            h=jnp.asarray(initial_state[0], compute), c=jnp.asarray(initial_state[1], self.cell_dtype or compute)
        )
        return scan_convlstm(
            jax.tree.map(lambda weight: weight.astype(compute), self.params),
            x,
            initial_state,
            strides=self.strides,
            padding=self.padding,
            dilation=self.dilation_rate,
            reverse=self.reverse,
            unroll=self.unroll,
            convolution=self.convolution,
            record=record,
            mask=sequence_mask(x, mask, lengths),
        )

    def scan(
        self,
        x: Array,
        initial_state: LSTMState | None = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
    ) -> tuple[Array, LSTMState]:
        """All outputs (batch, time, *out_spatial, F) and the final state; the state starts at zero unless given."""
        final_state, outputs = self._loop(x, initial_state, "outputs", mask, lengths)
        return jnp.swapaxes(outputs, 0, 1), final_state

    def trace(
        self,
        x: Array,
        initial_state: LSTMState | None = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
    ) -> LayerTrace:
        """Every gate and state over x (batch, time, *spatial, channels), each (batch, time, *out_spatial, F)."""
        return LayerTrace(*batch_major(self._loop(x, initial_state, "gates", mask, lengths)[1]))

    def __call__(
        self,
        x: Array,
        initial_state: LSTMState | None = None,
        *,
        mask: Array | None = None,
        lengths: Array | None = None,
        return_state: bool = False,
    ) -> Array | tuple[Array, LSTMState]:
        """Outputs (batch, time, *out_spatial, F) with ``return_sequences``, else the final ``h``; with
        ``return_state``, also the final state."""
        return layer_output(self, *self.scan(x, initial_state, mask=mask, lengths=lengths), return_state)


class ConvLSTM1D(ConvLSTM):
    """:class:`ConvLSTM` over 1-D inputs (batch, time, rows, channels), as Keras's ``ConvLSTM1D``."""

    rank: ClassVar[int | None] = 1


class ConvLSTM2D(ConvLSTM):
    """:class:`ConvLSTM` over 2-D inputs (batch, time, rows, cols, channels), as Keras's ``ConvLSTM2D``."""

    rank: ClassVar[int | None] = 2


class ConvLSTM3D(ConvLSTM):
    """:class:`ConvLSTM` over 3-D inputs (batch, time, depth, rows, cols, channels), as Keras's ``ConvLSTM3D``."""

    rank: ClassVar[int | None] = 3


def to_subsequences(x: Array, length: int) -> Array:
    """Cuts windows (batch, time, features) into (batch, time // length, length, features) for a ConvLSTM1D.

    The tutorial-style ConvLSTM forecaster reads a 60-day window as 4 steps of 15 days: each step is a 1-D
    "image" of 15 rows with the features as channels.
    """
    if x.shape[-2] % length:
        raise ConfigError(
            f"a window of {plural(x.shape[-2], 'day')} cannot be cut into ConvLSTM steps of {plural(length, 'day')}; "
            f"use a window that is a multiple of {length} (e.g. --window 60)"
        )
    return x.reshape(*x.shape[:-2], x.shape[-2] // length, length, x.shape[-1])
