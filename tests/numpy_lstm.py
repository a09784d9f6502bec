"""An independent textbook LSTM in NumPy, the oracle of the tests: one weight matrix per gate, no fused slab."""

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def split_gates(W: np.ndarray, U: np.ndarray, b: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per-gate (W_k, U_k, b_k) from fused weights in the documented i, f, g, o order."""
    H = U.shape[0]
    names = ("i", "f", "g", "o")
    return {
        name: (W[:, k * H : (k + 1) * H], U[:, k * H : (k + 1) * H], b[k * H : (k + 1) * H])
        for k, name in enumerate(names)
    }


def step(gates: dict, x: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, dict]:
    """One step, each gate computed on its own line from its own weights."""
    Wi, Ui, bi = gates["i"]
    Wf, Uf, bf = gates["f"]
    Wg, Ug, bg = gates["g"]
    Wo, Uo, bo = gates["o"]
    i = sigmoid(x @ Wi + h @ Ui + bi)
    f = sigmoid(x @ Wf + h @ Uf + bf)
    g = np.tanh(x @ Wg + h @ Ug + bg)
    o = sigmoid(x @ Wo + h @ Uo + bo)
    c = f * c + i * g
    h = o * np.tanh(c)
    return h, c, {"input": i, "forget": f, "candidate": g, "output": o}


def run(W, U, b, x, h0=None, c0=None, reverse=False, mask=None, input_scale=None, recurrent_scale=None):
    """Runs the textbook step over x (batch, time, in); returns outputs (batch, time, H) and the final (h, c).

    ``mask`` (batch, time): a False step keeps the state as it was (Keras's masking); ``input_scale`` (batch, in)
    and ``recurrent_scale`` (batch, H) multiply every step's input and the ``h`` that enters ``U`` (dropout)."""
    x = np.asarray(x, np.float64)
    batch, time = x.shape[:2]
    H = U.shape[0]
    gates = split_gates(*(np.asarray(a, np.float64) for a in (W, U, b)))
    h = np.zeros((batch, H)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros((batch, H)) if c0 is None else np.asarray(c0, np.float64)
    input_scale = np.ones(x.shape[-1]) if input_scale is None else np.asarray(input_scale, np.float64)
    recurrent_scale = np.ones(H) if recurrent_scale is None else np.asarray(recurrent_scale, np.float64)
    outputs = np.zeros((batch, time, H))
    steps = range(time - 1, -1, -1) if reverse else range(time)
    for t in steps:
        h_new, c_new, _ = step(gates, x[:, t] * input_scale, h * recurrent_scale, c)
        keep = np.ones((batch, 1), bool) if mask is None else np.asarray(mask, bool)[:, t, None]
        h, c = np.where(keep, h_new, h), np.where(keep, c_new, c)
        outputs[:, t] = h
    return outputs, h, c
