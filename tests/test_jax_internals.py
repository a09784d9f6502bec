"""jaxlstm's one use of private JAX, against the installed JAX: the names are where the module expects them, and
forward-mode derivatives through the fast path work (JAX's own jax.jvp, against finite differences)."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxlstm.nn import LSTM
from jaxlstm.nn.jax_internals import PRIVATE_NAMES, forward_mode_active, missing_private_names


def test_the_private_names_are_where_jaxlstm_expects_them() -> None:
    missing = missing_private_names()
    assert not missing, (
        f"JAX {jax.__version__} moved {', '.join(missing)} (of {', '.join(PRIVATE_NAMES)}): the fast path can no "
        f"longer tell that it is under jax.jvp, and forward-mode derivatives through it fail; find their new home and "
        f"update jaxlstm/nn/jax_internals.py"
    )


def test_forward_mode_is_seen_inside_jvp_only() -> None:
    seen = []
    jax.jvp(lambda x: seen.append(forward_mode_active()) or x, (1.0,), (1.0,))
    jax.grad(lambda x: seen.append(forward_mode_active()) or x)(1.0)
    assert seen == [True, False]


def test_jvp_through_the_fast_path_equals_finite_differences() -> None:
    layer = LSTM(2, 3, return_sequences=False, rngs=nnx.Rngs(0))
    x = jnp.linspace(-1, 1, 2 * 5 * 2).reshape(2, 5, 2)
    tangent = jnp.ones_like(x)
    _, derivative = jax.jvp(layer, (x,), (tangent,))
    step = 1e-3
    finite = (layer(x + step * tangent) - layer(x - step * tangent)) / (2 * step)
    np.testing.assert_allclose(derivative, finite, rtol=2e-2, atol=1e-4)
