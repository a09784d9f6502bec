"""Every use of JAX's private API in jaxlstm, in this one module.

jaxlstm needs one thing that JAX does not export: whether the code being traced is being differentiated in forward
mode. :func:`jaxlstm.nn.lstm_sequence` is a ``jax.custom_vjp``, which JAX cannot push tangents through, so
under ``jax.jvp``, ``jax.jacfwd`` or ``jax.hessian`` the layers run the textbook loop instead, which computes the same
function. :func:`forward_mode_active` finds JAX's forward-mode trace among the traces active while a layer is
traced, through two private names, :data:`PRIVATE_NAMES`.

Should a JAX release move them, :func:`forward_mode_active` answers False (the layers keep the fast path, and a
``jax.jvp`` through them fails in JAX's own words), and ``tests/test_jax_internals.py`` fails naming what moved and
the fix. jaxlstm pins no upper bound on JAX for it: the GPU machine runs a newer JAX than the dev machine.

>>> import jax
>>> forward_mode_active()
False
>>> seen = []
>>> _ = jax.jvp(lambda x: seen.append(forward_mode_active()) or x, (1.0,), (1.0,))
>>> seen
[True]
"""

from importlib import import_module
from typing import Any

__all__ = ["PRIVATE_NAMES", "forward_mode_active", "missing_private_names"]

PRIVATE_NAMES = ("jax._src.core.trace_ctx", "jax._src.interpreters.ad.JVPTrace")
"""The private JAX objects used here: the current trace context, and the class of forward-mode traces."""


def _private(path: str) -> Any:
    """The object a dotted ``module.name`` path names; ImportError or AttributeError when JAX moved it."""
    module, name = path.rsplit(".", 1)
    return getattr(import_module(module), name)


def missing_private_names() -> list[str]:
    """The entries of :data:`PRIVATE_NAMES` that the installed JAX no longer has (empty when all are there)."""
    missing = []
    for path in PRIVATE_NAMES:
        try:
            _private(path)
        except (ImportError, AttributeError):
            missing.append(path)
    return missing


def forward_mode_active() -> bool:
    """Whether the caller is being differentiated in forward mode (``jax.jvp``, ``jax.jacfwd``, ``jax.hessian``).

    It sees transformations applied around the layer's call, but not a ``jax.jvp`` of a jitted function that was
    already traced (compiled) without it, nor ``jax.linearize`` (whose tangents are evaluated after the trace): for
    those, build the model with ``implementation="textbook"``. And a jitted function first traced under ``jax.jvp``
    keeps the textbook loop for its later calls (``jax.jit`` caches the trace), which is slower, not wrong.
    """
    try:
        trace = _private("jax._src.core.trace_ctx").trace
        forward_trace = _private("jax._src.interpreters.ad.JVPTrace")
    except (ImportError, AttributeError):  # JAX moved them: the layers keep the fast path (tests say what moved)
        return False
    while trace is not None:
        if isinstance(trace, forward_trace):
            return True
        trace = getattr(trace, "parent_trace", None)
    return False
