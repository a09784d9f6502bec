r"""Synthetic long-time-lag tasks, generated from a seed (NumPy only, nothing downloaded): tasks where the gates have
work to do. Three are here: the adding problem (a regression), the copy task (a class at every step) and the temporal
order task (one class per sequence).

The adding problem
------------------
In the form of Arjovsky, Shah & Bengio (2016, "Unitary Evolution Recurrent Neural Networks", sec. 4.2): each sequence
has ``length`` steps and two channels,

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

The copy task
-------------
The copy (memory) task of Arjovsky, Shah & Bengio (2016, sec. 4.1), :func:`copy_task`: 10 categories, the blank
:math:`a_0`, the symbols :math:`a_1, \dots, a_8` and the delimiter :math:`a_9`. A sequence of :math:`T + 20` steps
holds 10 symbols drawn uniformly (with replacement) from the 8, then :math:`T - 1` blanks, then the delimiter, then 10
blanks; its target is the blank at every step but the last 10, which are the 10 symbols in their order. With
0-based indices (``T = lag``):

====================  ==============  ========================
steps                 input           target
====================  ==============  ========================
``0 .. 9``            the 10 symbols  blank
``10 .. T+8``         blank           blank
``T+9``               the delimiter   blank
``T+10 .. T+19``      blank           the 10 symbols, in order
====================  ==============  ========================

The memoryless baseline predicts the blank, then the uniform distribution over the 8 symbols for the last 10 steps:
a cross-entropy of :math:`10 \ln 8 / (T + 20)` per step (:func:`copy_baseline`). Published versions differ: Bai, Kolter
& Koltun (2018, the TCN paper's code) repeat the delimiter over the last 11 input steps instead of one delimiter and
10 blanks; this module follows Arjovsky et al.'s text (one delimiter, then blanks).

>>> task = copy_task(2, 5, seed=0)
>>> task.inputs.shape, task.targets.shape, task.classes
((2, 25, 10), (2, 25), 10)
>>> bool((task.targets[:, -10:] == task.inputs[:, :10].argmax(axis=-1)).all())
True
>>> task.inputs[0].argmax(axis=-1)[10:].tolist()
[0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]

The temporal order task
-----------------------
Hochreiter & Schmidhuber (1997, "Long Short-Term Memory", Neural Computation 9(8), sec. 5.6, Experiment 6a, "two
relevant, widely separated symbols"), :func:`temporal_order`: 8 one-hot inputs over the symbols
:data:`TEMPORAL_ORDER_SYMBOLS` ``(a, b, c, d, B, E, X, Y)``. A sequence's length is drawn uniformly from 100..110; it
starts with an E, ends with a B (the "trigger symbol"), and its other steps are drawn uniformly from {a, b, c, d} except
at two positions :math:`t_1`, drawn uniformly from 10..20, and :math:`t_2`, drawn uniformly from 50..60, which hold X or
Y each (uniformly, independently). The class is the order of the two: XX, XY, YX, YY (the paper's Q, R, S, U), class
ids 0, 1, 2, 3, i.e. ``2 * (first is Y) + (second is Y)``; it is the target at the sequence's end.

The paper's positions are 1-based, position 1 being the E: :math:`t_1 \in [10, 20]` is 0-based index 9..19 of the
sequence, :math:`t_2 \in [50, 60]` index 49..59, and the B is at index ``length - 1``. Sequences are pre-padded to
:data:`TEMPORAL_ORDER_STEPS` = 110 steps: ``pad = 110 - length`` all-zero input steps come first, so the E is at index
``pad``, :math:`t_1` at ``pad + t1 - 1``, :math:`t_2` at ``pad + t2 - 1`` and the B at index 109 for every sequence: a
many-to-one model reads the answer from its final state with no mask. The mask (True on the ``length`` real steps)
is returned all the same.

Published versions differ in the start and end symbols: the paper starts with E and ends with B (the trigger that asks
for the answer); many reproductions swap them (B for "begin", E for "end"). This module follows the paper's text; to a
network the two are the same task, two fixed one-hot channels. Chance is an error of 3/4 and a cross-entropy of
:math:`\ln 4` (:data:`TEMPORAL_ORDER_BASELINE`); storing one of the two symbols halves the error to 1/2. The paper
counts a sequence as classified correctly when "the final absolute error of all output units is below 0.3", and
reports 1 wrong of 2560 test sequences for Task 6a (Table 9, a mean of 20 trials; the text: never more than 3).

>>> task = temporal_order(3, seed=0)
>>> task.inputs.shape, task.targets.shape, task.mask.shape, task.classes
((3, 110, 8), (3,), (3, 110), 4)
>>> [TEMPORAL_ORDER_SYMBOLS[symbol] for symbol in task.inputs[:, -1].argmax(axis=-1)]
['B', 'B', 'B']
>>> task.markers.sum(axis=1).tolist(), bool((task.inputs.sum(axis=-1) == task.mask).all())
([2, 2, 2], True)
"""

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "ADDING_BASELINE",
    "COPY_CLASSES",
    "COPY_REMEMBER",
    "COPY_SYMBOLS",
    "TEMPORAL_ORDER_BASELINE",
    "TEMPORAL_ORDER_CHANCE_ERROR",
    "TEMPORAL_ORDER_CLASSES",
    "TEMPORAL_ORDER_STEPS",
    "TEMPORAL_ORDER_SYMBOLS",
    "TaskData",
    "adding_problem",
    "copy_baseline",
    "copy_task",
    "temporal_order",
]

ADDING_BASELINE = 1.0 / 6.0
"""The adding problem's MSE when predicting the constant 1 (the mean of the target), whatever the length."""

COPY_SYMBOLS = 8
"""The copy task's alphabet by default: the symbols a_1 .. a_8."""
COPY_REMEMBER = 10
"""The copy task's symbols to remember and recall, by default."""
COPY_CLASSES = COPY_SYMBOLS + 2
"""The copy task's categories with its 8 symbols: the blank (0), the symbols (1..8) and the delimiter (9)."""

TEMPORAL_ORDER_SYMBOLS = ("a", "b", "c", "d", "B", "E", "X", "Y")
"""The temporal order task's input channels: ``inputs[..., i]`` is one-hot for ``TEMPORAL_ORDER_SYMBOLS[i]``."""

TEMPORAL_ORDER_STEPS = 110
"""The temporal order task's padded length, its longest sequence."""

TEMPORAL_ORDER_CLASSES = 4
"""The temporal order task's classes: XX, XY, YX, YY (the paper's Q, R, S, U) as 0, 1, 2, 3."""

TEMPORAL_ORDER_BASELINE = math.log(4)
"""The temporal order task's cross-entropy at chance (the uniform distribution over its 4 classes)."""

TEMPORAL_ORDER_CHANCE_ERROR = 0.75
"""The temporal order task's classification error at chance."""

_DISTRACTORS = 4  # a, b, c, d: channels 0..3
_TRIGGER = TEMPORAL_ORDER_SYMBOLS.index("B")  # the last step: the paper's "trigger symbol"
_START = TEMPORAL_ORDER_SYMBOLS.index("E")  # the first real step
_X = TEMPORAL_ORDER_SYMBOLS.index("X")  # Y is the next channel
_LENGTHS = (100, 110)
_FIRST_POSITIONS = (10, 20)  # 1-based, as in the paper
_SECOND_POSITIONS = (50, 60)


class TaskData(NamedTuple):
    """Sequences of a synthetic task.

    Attributes:
        name: the task's name.
        inputs: (n, time, features) float32.
        targets: (n,) float32 for a regression; class ids, int32, (n,) for one class per sequence or (n, time) for a
            class per step.
        markers: (n, time) bool, the steps that matter (the adding problem's two marked steps, the copy task's symbols
            to store, the temporal order task's X/Y steps).
        baseline: the loss of the memoryless baseline (an MSE for a regression, a cross-entropy per target for classes).
        mask: (n, time) bool, the real steps of padded sequences; None when every step is real.
        classes: the number of classes of a classification; 0 for a regression.
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray
    markers: np.ndarray
    baseline: float
    mask: np.ndarray | None = None
    classes: int = 0


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


def _check_copy_sizes(lag: int, symbols: int, remember: int) -> None:
    if lag < 1:
        raise ValueError(f"the copy task needs lag >= 1 (lag - 1 blanks, then the delimiter), got lag={lag}")
    if symbols < 1:
        raise ValueError(f"the copy task needs symbols >= 1 to draw from, got symbols={symbols}")
    if remember < 1:
        raise ValueError(f"the copy task needs remember >= 1 (symbols to copy), got remember={remember}")


def copy_baseline(lag: int, symbols: int = COPY_SYMBOLS, remember: int = COPY_REMEMBER) -> float:
    """The copy task's memoryless cross-entropy per step, ``remember * ln(symbols) / (lag + 2 * remember)``: blanks,
    then the uniform distribution over the symbols for the last ``remember`` steps.

    >>> round(copy_baseline(100), 6), round(10 * math.log(8) / 120, 6)
    (0.173287, 0.173287)

    Raises:
        ValueError: ``lag``, ``symbols`` or ``remember`` below 1.
    """
    _check_copy_sizes(lag, symbols, remember)
    return remember * math.log(symbols) / (lag + 2 * remember)


def copy_task(n: int, lag: int, *, seed: int, symbols: int = COPY_SYMBOLS, remember: int = COPY_REMEMBER) -> TaskData:
    """``n`` sequences of the copy task with ``lag`` = T (see the module docstring), from ``seed``.

    A sequence has ``lag + 2 * remember`` steps and ``symbols + 2`` categories: the blank 0, the symbols
    ``1..symbols`` and the delimiter ``symbols + 1`` (the paper's 10 categories with the defaults,
    :data:`COPY_CLASSES`). The ``remember`` symbols fill steps ``0 .. remember - 1``, the delimiter is at step
    ``lag + remember - 1``, and the targets' last ``remember`` steps repeat the symbols.

    Returns:
        ``TaskData("copy", ...)`` with inputs (n, steps, symbols + 2) float32 one-hot, targets (n, steps) int32 class
        ids, markers (n, steps) bool True on the first ``remember`` steps (the symbols to store), the baseline
        :func:`copy_baseline`, no mask and ``classes = symbols + 2``.

    >>> task = copy_task(1, 3, seed=1, symbols=2, remember=2)
    >>> task.inputs[0].argmax(axis=-1).tolist(), task.targets[0].tolist()
    ([1, 2, 0, 0, 3, 0, 0], [0, 0, 0, 0, 0, 1, 2])

    Raises:
        ValueError: ``n``, ``lag``, ``symbols`` or ``remember`` below 1.
    """
    if n < 1:
        raise ValueError(f"the copy task needs at least one sequence, got n={n}")
    _check_copy_sizes(lag, symbols, remember)
    steps = lag + 2 * remember
    delimiter = symbols + 1
    rng = np.random.default_rng(seed)
    stored = rng.integers(1, symbols + 1, (n, remember))
    sequence = np.zeros((n, steps), np.int32)
    sequence[:, :remember] = stored
    sequence[:, lag + remember - 1] = delimiter
    targets = np.zeros((n, steps), np.int32)
    targets[:, -remember:] = stored
    markers = np.zeros((n, steps), bool)
    markers[:, :remember] = True
    inputs = np.eye(symbols + 2, dtype=np.float32)[sequence]
    baseline = copy_baseline(lag, symbols, remember)
    return TaskData("copy", inputs, targets, markers, baseline, classes=symbols + 2)


def temporal_order(n: int, *, seed: int) -> TaskData:
    """``n`` sequences of the temporal order task, Experiment 6a (see the module docstring), from ``seed``.

    Returns:
        ``TaskData("temporal_order", ...)`` with inputs (n, 110, 8) float32, one-hot over
        :data:`TEMPORAL_ORDER_SYMBOLS` and all zero on the padding before the E; targets (n,) int32 class ids 0..3
        (XX, XY, YX, YY); markers (n, 110) bool True on the two X/Y steps; the baseline
        :data:`TEMPORAL_ORDER_BASELINE`; mask (n, 110) bool True on the real steps; ``classes = 4``.

    >>> task = temporal_order(1, seed=1)
    >>> "".join(TEMPORAL_ORDER_SYMBOLS[symbol] for symbol in task.inputs[0][task.markers[0]].argmax(axis=-1))
    'YX'
    >>> task.targets.tolist()
    [2]

    Raises:
        ValueError: ``n`` below 1.
    """
    if n < 1:
        raise ValueError(f"the temporal order task needs at least one sequence, got n={n}")
    rng = np.random.default_rng(seed)
    lengths = rng.integers(_LENGTHS[0], _LENGTHS[1] + 1, n)
    first = rng.integers(_FIRST_POSITIONS[0], _FIRST_POSITIONS[1] + 1, n)
    second = rng.integers(_SECOND_POSITIONS[0], _SECOND_POSITIONS[1] + 1, n)
    first_is_y = rng.integers(0, 2, n)
    second_is_y = rng.integers(0, 2, n)
    sequence = rng.integers(0, _DISTRACTORS, (n, TEMPORAL_ORDER_STEPS))
    pad = TEMPORAL_ORDER_STEPS - lengths
    rows = np.arange(n)
    sequence[rows, pad] = _START
    sequence[:, -1] = _TRIGGER
    sequence[rows, pad + first - 1] = _X + first_is_y
    sequence[rows, pad + second - 1] = _X + second_is_y
    mask = np.arange(TEMPORAL_ORDER_STEPS) >= pad[:, None]
    inputs = np.eye(len(TEMPORAL_ORDER_SYMBOLS), dtype=np.float32)[sequence] * mask[..., None]
    markers = np.zeros((n, TEMPORAL_ORDER_STEPS), bool)
    markers[rows, pad + first - 1] = True
    markers[rows, pad + second - 1] = True
    targets = (2 * first_is_y + second_is_y).astype(np.int32)
    return TaskData(
        "temporal_order", inputs, targets, markers, TEMPORAL_ORDER_BASELINE, mask=mask, classes=TEMPORAL_ORDER_CLASSES
    )
