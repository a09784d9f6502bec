"""Independent textbook NumPy cells, the oracle of the cell family's tests: the GRU (both reset placements), the tanh
RNN and Greff et al.'s LSTM variants, each gate on its own line with its own weights, in float64, one step at a time.

Only the documented weight layouts are shared with the code under test: GRU blocks z, r, h (Keras's), variant blocks
in the order i, f, g, o without the removed ones, peephole rows in the order i, f, o.
"""

import numpy as np

from tests.numpy_lstm import sigmoid


def blocks(matrix: np.ndarray, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The last axis of ``matrix`` cut into equal blocks, one per name."""
    width = matrix.shape[-1] // len(names)
    return {name: matrix[..., k * width : (k + 1) * width] for k, name in enumerate(names)}


def gru_step(W, U, b, x, h):
    """One GRU step; ``b`` (2, 3H) places the reset gate after U's matmul (Keras's reset_after=True), (3H,) before."""
    Wz, Wr, Wh = blocks(W, ("z", "r", "h")).values()
    Uz, Ur, Uh = blocks(U, ("z", "r", "h")).values()
    if b.ndim == 2:
        bz, br, bh = blocks(b[0], ("z", "r", "h")).values()
        rz, rr, rh = blocks(b[1], ("z", "r", "h")).values()
        z = sigmoid(x @ Wz + bz + h @ Uz + rz)
        r = sigmoid(x @ Wr + br + h @ Ur + rr)
        n = np.tanh(x @ Wh + bh + r * (h @ Uh + rh))
    else:
        bz, br, bh = blocks(b, ("z", "r", "h")).values()
        z = sigmoid(x @ Wz + h @ Uz + bz)
        r = sigmoid(x @ Wr + h @ Ur + br)
        n = np.tanh(x @ Wh + (r * h) @ Uh + bh)
    return z * h + (1 - z) * n, {"update": z, "reset": r, "candidate": n}


def rnn_step(W, U, b, x, h):
    """One tanh RNN step."""
    return np.tanh(x @ W + h @ U + b), {}


def variant_step(variant: str, W, U, b, peepholes, R, x, h, c, previous_gates):
    """One step of a Greff et al. (2017) LSTM variant, written out per gate."""
    present = [
        name
        for name in ("i", "f", "g", "o")
        if (variant, name) not in {("nig", "i"), ("nfg", "f"), ("nog", "o"), ("cifg", "f")}
    ]
    Wk, Uk, bk = blocks(W, tuple(present)), blocks(U, tuple(present)), blocks(b, tuple(present))
    sigmoid_gates = [name for name in ("i", "f", "o") if name in present]
    p = {} if variant == "np" else dict(zip(sigmoid_gates, peepholes, strict=True))
    pre = {name: x @ Wk[name] + h @ Uk[name] + bk[name] for name in present}
    if variant == "fgr":
        Ri, Rf, Ro = blocks(R, ("i", "f", "o")).values()
        pre["i"] = pre["i"] + previous_gates @ Ri
        pre["f"] = pre["f"] + previous_gates @ Rf
        pre["o"] = pre["o"] + previous_gates @ Ro
    i = np.ones_like(c) if variant == "nig" else sigmoid(pre["i"] + p.get("i", 0) * c)
    if variant == "nfg":
        f = np.ones_like(c)
    elif variant == "cifg":
        f = 1 - i
    else:
        f = sigmoid(pre["f"] + p.get("f", 0) * c)
    g = pre["g"] if variant == "niaf" else np.tanh(pre["g"])
    c_new = f * c + i * g
    o = np.ones_like(c) if variant == "nog" else sigmoid(pre["o"] + p.get("o", 0) * c_new)
    h_new = o * (c_new if variant == "noaf" else np.tanh(c_new))
    gates = np.concatenate([i, f, o], -1) if variant == "fgr" else previous_gates
    return h_new, c_new, gates, {"input": i, "forget": f, "candidate": g, "output": o}


def run(step, x, state, *, reverse=False, mask=None):
    """Runs ``step(x_t, *state) -> (*new_state, gates)`` over x (batch, time, in) in float64; a False ``mask``
    (batch, time) step keeps the state. Returns each step's ``h`` (batch, time, H) and the final state."""
    x = np.asarray(x, np.float64)
    state = [np.asarray(part, np.float64) for part in state]
    outputs = np.zeros((*x.shape[:2], state[0].shape[-1]))
    for t in range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1]):
        new = step(x[:, t], *state)[:-1]
        keep = np.ones((x.shape[0], 1), bool) if mask is None else np.asarray(mask, bool)[:, t, None]
        state = [np.where(keep, after, before) for after, before in zip(new, state, strict=True)]
        outputs[:, t] = state[0]
    return outputs, state


def float64(*arrays):
    return [np.asarray(array, np.float64) for array in arrays]
