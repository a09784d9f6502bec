r"""Synthetic long-time-lag tasks, generated from a seed (NumPy only, nothing downloaded): tasks where the gates have
work to do.

The adding problem, in the form of Arjovsky, Shah & Bengio (2016, "Unitary Evolution Recurrent Neural Networks",
sec. 4.2): each sequence has ``length`` steps and two channels,

- channel 0: values :math:`v_t \sim U[0, 1]`;
- channel 1: a marker, 0 everywhere but for one 1 at a step drawn uniformly from the first half
  :math:`[0, T/2)` and one 1 at a step drawn uniformly from the second half :math:`[T/2, T)`;

and its target is the sum of the two marked values. Predicting the constant 1 scores the MSE
:math:`\mathrm{Var}(v_a + v_b) = 2/12 = 1/6 \approx 0.1667`, the baseline (some repositories print 0.1767, which is
wrong); a plateau at :math:`1/12 \approx 0.0833` means one of the two values was stored. Where papers differ (Le et al.
2015 put the first marker in the first 10% of the sequence, Hochreiter & Schmidhuber 1997 used values in [-1, 1]), this
module follows Arjovsky et al.'s halves.

>>> task = adding_problem(4, 10, seed=0)
>>> task.inputs.shape, task.targets.shape, task.markers.sum(axis=1).tolist()
((4, 10, 2), (4,), [2, 2, 2, 2])
>>> bool(np.allclose(task.targets, (task.inputs[..., 0] * task.inputs[..., 1]).sum(axis=1)))
True
"""

from typing import NamedTuple

import numpy as np

__all__ = ["ADDING_BASELINE", "TaskData", "adding_problem"]

ADDING_BASELINE = 1.0 / 6.0
"""The adding problem's MSE when predicting the constant 1 (the mean of the target), whatever the length."""


class TaskData(NamedTuple):
    """Sequences of a synthetic task.

    Attributes:
        name: the task's name.
        inputs: (n, time, features) float32.
        targets: (n,) float32 for a regression.
        markers: (n, time) bool, the steps that matter (the adding problem's two marked steps).
        baseline: the loss of the memoryless baseline (for the adding problem, :data:`ADDING_BASELINE`).
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray
    markers: np.ndarray
    baseline: float


def adding_problem(n: int, length: int, *, seed: int) -> TaskData:
    """``n`` sequences of the adding problem of ``length`` steps (see the module docstring), from ``seed``.

    Raises:
        ValueError: ``n`` below 1, or ``length`` below 2 (each half needs a step).
    """
    if n < 1:
        raise ValueError(f"the adding problem needs at least one sequence, got n={n}")
    if length < 2:
        raise ValueError(f"the adding problem needs length >= 2 (one marked step per half), got {length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    markers = np.zeros((n, length), bool)
    rows = np.arange(n)
    markers[rows, first] = True
    markers[rows, second] = True
    inputs = np.stack([values, markers], axis=-1).astype(np.float32)
    targets = (values[rows, first] + values[rows, second]).astype(np.float32)
    return TaskData("adding", inputs, targets, markers, ADDING_BASELINE)
