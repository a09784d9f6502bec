r"""A plain tanh RNN (Elman, 1990), written in the style of :mod:`jaxlstm.nn.cell`: the baseline the LSTM is measured
by.

.. math::

    h_t = \tanh(x_t W + h_{t-1} U + b)

No gates and no cell state: the only path from :math:`h_{t-k}` to :math:`h_t` goes through :math:`k` products
with :math:`U^\top` and :math:`k` factors :math:`1 - h^2 \le 1`, so a gradient sent back through time shrinks
or grows geometrically with the lag, at a rate set by the weights (see :func:`jaxlstm.introspect.gradient_flow`).

Two initialisations, the two defaults people meet:

- ``keras`` (Keras's ``SimpleRNN``): glorot-uniform ``W``, orthogonal ``U``, zero bias. An orthogonal ``U``
  keeps norms, so at initialisation, while the units stay in tanh's linear range, gradients barely fade.
- ``torch`` (PyTorch's ``nn.RNN``): every weight uniform in :math:`\pm 1/\sqrt{H}`, and two such biases
  (``bias_ih + bias_hh``). ``U``'s spectral radius is then about :math:`1/\sqrt{3} \approx 0.58`, and gradients
  fade by about that factor per step.

>>> import jax.numpy as jnp
>>> from flax import nnx
>>> model = RNNForecaster(1, 50, rngs=nnx.Rngs(0))
>>> model(jnp.ones((32, 60, 1))).shape
(32,)
"""

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx

from jaxlstm.nn.layers import GLOROT_UNIFORM, ORTHOGONAL

__all__ = ["RNNCell", "RNNForecaster", "RNNParams", "rnn_step", "scan_rnn"]

Array = jax.Array
RNNInit = Literal["keras", "torch"]


class RNNParams(NamedTuple):
    """Weights of one tanh RNN cell: ``W`` (in, H), ``U`` (H, H), ``b`` (H,)."""

    W: Array
    U: Array
    b: Array


def rnn_step(params: RNNParams, h: Array, x: Array) -> Array:
    """One step of the plain RNN: ``h = tanh(x W + h U + b)``; x (..., in), h (..., H)."""
    return jnp.tanh(x @ params.W + h @ params.U + params.b)


def scan_rnn(params: RNNParams, x: Array, h0: Array | None = None) -> tuple[Array, Array]:
    """Runs :func:`rnn_step` over x (batch, time, in); returns outputs (batch, time, H) and the final h."""
    if h0 is None:
        h0 = jnp.zeros((x.shape[0], params.U.shape[0]), x.dtype)

    def step(h: Array, x_t: Array) -> tuple[Array, Array]:
        h = rnn_step(params, h, x_t)
        return h, h

    final, outputs = jax.lax.scan(step, h0, jnp.swapaxes(x, 0, 1))
    return jnp.swapaxes(outputs, 0, 1), final


def _uniform(key: Array, shape: tuple[int, ...], bound: float) -> Array:
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


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
        if init not in ("keras", "torch"):
            raise ValueError(f"unknown RNN initialisation {init!r}; use 'keras' or 'torch'")
        cells = []
        in_features = n_features
        for _ in range(layers):
            if init == "keras":
                W = GLOROT_UNIFORM(rngs.params(), (in_features, units), jnp.float32)
                U = ORTHOGONAL(rngs.params(), (units, units), jnp.float32)
                b = jnp.zeros(units)
            else:
                bound = units**-0.5
                W = _uniform(rngs.params(), (in_features, units), bound)
                U = _uniform(rngs.params(), (units, units), bound)
                b = _uniform(rngs.params(), (units,), bound) + _uniform(rngs.params(), (units,), bound)
            cells.append(RNNCell(W, U, b))
            in_features = units
        self.cells = nnx.List(cells)
        self.head = nnx.Linear(units, outputs, kernel_init=GLOROT_UNIFORM, rngs=rngs)
        self.outputs = outputs

    def __call__(self, x: Array, *, dropout_key: Array | None = None) -> Array:
        """Predictions (batch,), or (batch, outputs) for several, for windows x (batch, time, n_features); no
        dropout (``dropout_key`` is accepted so that :func:`jaxlstm.training.fit` trains it like a
        :class:`~jaxlstm.nn.Forecaster`)."""
        del dropout_key
        for cell in self.cells:
            x, final = scan_rnn(cell.params, x)
        forecasts = self.head(final)
        return forecasts[..., 0] if self.outputs == 1 else forecasts


class RNNCell(nnx.Module):
    """The weights of one RNN layer as NNX parameters."""

    def __init__(self, W: Array, U: Array, b: Array):
        self.W, self.U, self.b = nnx.Param(W), nnx.Param(U), nnx.Param(b)

    @property
    def params(self) -> RNNParams:
        """The weights as a plain :class:`RNNParams`."""
        return RNNParams(self.W[...], self.U[...], self.b[...])
