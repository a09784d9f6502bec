r"""A plain tanh RNN (Elman, 1990), written in the style of :mod:`jaxlstm.nn.cell`: the baseline the LSTM is measured
by.

.. math::

    h_t = \tanh(x_t W + h_{t-1} U + b)

No gates and no cell state: the only path from :math:`h_{t-k}` to :math:`h_t` goes through :math:`k` products
with :math:`U^\top` and :math:`k` factors :math:`1 - h^2 \le 1`, so a gradient sent back through time shrinks
or grows geometrically with the lag, at a rate set by the weights (see :func:`jaxlstm.introspect.gradient_flow`).

:class:`SimpleRNN` is the layer (Keras's ``SimpleRNN``): it stacks, runs backwards, masks and drops out as every
layer of the family does (:class:`~jaxlstm.nn.layers.CellLayer`). Two initialisations, the two defaults people meet:

- ``keras`` (Keras's ``SimpleRNN``): glorot-uniform ``W``, orthogonal ``U``, zero bias. An orthogonal ``U``
  keeps norms, so at initialisation, while the units stay in tanh's linear range, gradients barely fade.
- ``torch`` (PyTorch's ``nn.RNN``): every weight uniform in :math:`\pm 1/\sqrt{H}`, and two such biases
  (``bias_ih + bias_hh``). ``U``'s spectral radius is then about :math:`1/\sqrt{3} \approx 0.58`, and gradients
  fade by about that factor per step.

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> SimpleRNN(1, 50, rngs=nnx.Rngs(0))(jnp.ones((32, 60, 1))).shape
(32, 60, 50)
>>> model = RNNForecaster(1, 50, rngs=nnx.Rngs(0))
>>> model(jnp.ones((32, 60, 1))).shape
(32,)
"""

from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.nn.layers import GLOROT_UNIFORM, ORTHOGONAL, CellLayer, Initializer, Stacked
from jaxlstm.nn.scan import Step, recurrent_input

__all__ = ["HiddenState", "NoGates", "RNNForecaster", "RNNParams", "SimpleRNN", "rnn_update"]

Array = jax.Array
RNNInit = Literal["keras", "torch"]


class HiddenState(NamedTuple):
    """The state of a cell whose state is its output alone (the tanh RNN, the GRU): ``h`` (..., H)."""

    h: Array

    @classmethod
    def zeros(cls, batch: int, hidden_size: int, dtype: jnp.dtype = jnp.float32) -> "HiddenState":
        """A zero state, ``h`` (batch, hidden_size)."""
        return cls(jnp.zeros((batch, hidden_size), dtype))


class NoGates(NamedTuple):
    """The tanh RNN has no gates: its trace records the states alone."""


class RNNParams(NamedTuple):
    """Weights of one tanh RNN cell: ``W`` (in, H), ``U`` (H, H), ``b`` (H,)."""

    W: Array
    U: Array
    b: Array


def rnn_update(
    params: RNNParams, state: HiddenState, x: Array, recurrent_scale: Array | None = None
) -> tuple[HiddenState, NoGates]:
    """One step of the plain RNN, ``h = tanh(x W + h U + b)``: x (..., in), ``h`` (..., H); ``recurrent_scale``
    (..., H) multiplies the ``h`` that enters ``U`` (the recurrent dropout), None for none."""
    h = jnp.tanh(x @ params.W + recurrent_input(state.h, recurrent_scale) @ params.U + params.b)
    return HiddenState(h), NoGates()


def _torch_uniform(key: Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> Array:
    """PyTorch's ``nn.RNN`` initialisation: uniform in ``±1/sqrt(H)``, H the last axis (every weight is (., H))."""
    bound = shape[-1] ** -0.5
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _torch_bias(key: Array, shape: tuple[int, ...], dtype: jnp.dtype = jnp.float32) -> Array:
    """PyTorch's two biases, ``bias_ih + bias_hh``, each uniform in ``±1/sqrt(H)``, summed into one."""
    first, second = jax.random.split(key)
    return _torch_uniform(first, shape, dtype) + _torch_uniform(second, shape, dtype)


class SimpleRNN(CellLayer):
    """A tanh RNN layer, Keras's ``SimpleRNN``: :func:`rnn_update` run over time.

    Its state is :class:`HiddenState` ``(h,)``; ``initial_state`` takes it, ``[h]`` as Keras passes it, or ``h``.

    Args:
        in_features: size of each input vector.
        hidden_size: H, the number of units.
        init: ``keras`` (glorot-uniform ``W``, orthogonal ``U``, zero bias) or ``torch`` (``nn.RNN``'s uniform
            weights and two biases); the module docstring says what each does to gradients.
        param_dtype: the dtype the weights are stored (and trained) in.
        rngs: source of the ``params`` key.
        options: ``return_sequences``, ``reverse``, ``unroll``, ``dropout``, ``recurrent_dropout``, ``dtype``: the
            options of every layer of the family (:class:`~jaxlstm.nn.layers.CellLayer`).
    """

    name = "SimpleRNN"

    def __init__(
        self,
        in_features: int,
        hidden_size: int,
        *,
        init: RNNInit = "keras",
        param_dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
        **options: Any,
    ):
        if init not in ("keras", "torch"):
            raise ValueError(f"unknown RNN initialisation {init!r}; use 'keras' or 'torch'")
        self._configure(in_features, hidden_size, param_dtype=param_dtype, **options)
        inits: tuple[Initializer, Initializer, Initializer] = (
            (GLOROT_UNIFORM, ORTHOGONAL, nnx.initializers.zeros)
            if init == "keras"
            else (_torch_uniform, _torch_uniform, _torch_bias)
        )
        kernel_init, recurrent_init, bias_init = inits
        self.W = nnx.Param(kernel_init(rngs.params(), (in_features, hidden_size), param_dtype))
        self.U = nnx.Param(recurrent_init(rngs.params(), (hidden_size, hidden_size), param_dtype))
        self.b = nnx.Param(bias_init(rngs.params(), (hidden_size,), param_dtype))

    @property
    def params(self) -> RNNParams:
        """The weights as a plain :class:`RNNParams`."""
        return RNNParams(self.W[...], self.U[...], self.b[...])

    def zeros(self, batch: int, dtype: jnp.dtype) -> HiddenState:
        """The zero ``h``, (batch, H)."""
        return HiddenState.zeros(batch, self.hidden_size, dtype)

    def cell_step(self, params: RNNParams, recurrent_scale: Array | None) -> Step:
        """:func:`rnn_update` as a loop body."""
        return lambda x_t, state: rnn_update(params, state, x_t, recurrent_scale)


class RNNForecaster(nnx.Module):
    """``layers`` tanh RNN layers and a Dense(1) head on the last ``h``: the LSTM forecaster with the gates removed.

    Args:
        n_features: size of each input vector.
        units: H per layer.
        layers: RNN layers, each reading the previous one's outputs.
        init: ``keras`` (SimpleRNN's defaults) or ``torch`` (nn.RNN's); see the module docstring.
        outputs: units of the Dense head, the days forecast at once (as ``ModelConfig.outputs``).
        rngs: source of the ``params`` key.
    """

    def __init__(
        self,
        n_features: int,
        units: int,
        *,
        layers: int = 1,
        init: RNNInit = "keras",
        outputs: int = 1,
        rngs: nnx.Rngs,
    ):
        widths = [n_features] + [units] * (layers - 1)
        self.recurrent = Stacked(
            [
                SimpleRNN(width, units, init=init, return_sequences=index < layers - 1, rngs=rngs)
                for index, width in enumerate(widths)
            ]
        )
        self.head = nnx.Linear(units, outputs, kernel_init=GLOROT_UNIFORM, rngs=rngs)
        self.outputs = outputs

    def __call__(self, x: Array, *, dropout_key: Array | None = None) -> Array:
        """Predictions (batch,), or (batch, outputs) for several, for windows x (batch, time, n_features); no
        dropout (``dropout_key`` is accepted so that :func:`jaxlstm.training.fit` trains it like a
        :class:`~jaxlstm.nn.Forecaster`)."""
        del dropout_key
        forecasts = self.head(self.recurrent(x))
        return forecasts[..., 0] if self.outputs == 1 else forecasts
