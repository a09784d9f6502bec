"""The gate lab's experiments: cells of the family trained on a long-lag task, every seed of a (cell, lag) in one
compiled program (:func:`~jaxlstm.training.fit_ensemble`), scored on fresh sequences against the task's baseline.

Each task (:data:`LAB_TASKS`) states its loss, its test score and what counts as solved: on the adding problem
(MSE loss) a seed *solves* the task when its test MSE falls below 0.01 (6% of the 1/6 baseline); on the temporal
order problem (cross-entropy over its 4 classes) when fewer than 1% of its test sequences are misclassified (chance:
75%; Hochreiter & Schmidhuber 1997 report 1 wrong of 2,560). A seed's *updates to solve* count the optimizer steps up
to the end of the first epoch whose mean training loss is below the task's ``trained_below`` (so they are known to
within one epoch). The copy task (Arjovsky et al. 2016, sec. 4.1) is answered at every step by a
:class:`~jaxlstm.nn.PerStepModel`, trained on the cross-entropy of every step and scored by the share of its 10
recalled symbols it gets wrong (guessing errs 7/8 of the time).

>>> from jaxlstm.config import TrainConfig
>>> result = lab_sweep("adding", "lstm", 8, [0, 1], units=4, samples=40, train=TrainConfig(epochs=2, batch_size=20))
>>> result.test_score.shape, result.curves.shape, result.task.baseline
((2,), (2, 2), 0.16666666666666666)
"""

import dataclasses
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
from flax import nnx

from jaxlstm.config import ModelConfig, TrainConfig
from jaxlstm.data.tasks import (
    ADDING_BASELINE,
    COPY_CLASSES,
    COPY_REMEMBER,
    COPY_SYMBOLS,
    TEMPORAL_ORDER_BASELINE,
    TEMPORAL_ORDER_CHANCE_ERROR,
    TEMPORAL_ORDER_CLASSES,
    TEMPORAL_ORDER_SYMBOLS,
    TaskData,
    adding_problem,
    copy_baseline,
    copy_task,
    temporal_order,
)
from jaxlstm.introspect.gradients import gradient_flow, set_forget_bias
from jaxlstm.nn import Forecaster, PerStepModel
from jaxlstm.training import fit_ensemble
from jaxlstm.training.epoch import Loss, cross_entropy, squared_error

COPY_NAMES = ("blank", *(f"a{k}" for k in range(1, COPY_SYMBOLS + 1)), "delimiter")  # its inputs' and classes' names

__all__ = ["LAB_TASKS", "LabResult", "LabTask", "lab_config", "lab_gradient_flow", "lab_model", "lab_sweep"]


class LabTask(NamedTuple):
    """A task of the lab, as a sweep trains and scores it.

    Attributes:
        name: as ``jaxlstm lab`` names it.
        make: ``make(n, lag, seed) -> TaskData``: ``n`` sequences of the task.
        loss: each sequence's training loss (:func:`~jaxlstm.training.epoch.squared_error`, ...).
        features: the inputs' features.
        outputs: the head's outputs (1 for a regression, the classes for a classification).
        score: ``score(predictions, data) -> (n,)``: each test sequence's score, lower is better; its mean is the
            test score.
        score_name: what the test score is (``test MSE``, ``test error rate``).
        baseline: the memoryless baseline's test score.
        loss_baseline: ``loss_baseline(lag)``, the memoryless baseline's training loss.
        solved_below: a seed solves the task when its test score is below this.
        trained_below: the training loss below which an epoch counts for "updates to solve".
        input_names: a name per input feature.
        class_names: a name per class of a classification; empty for a regression.
        per_step: the model answers at every step (:class:`~jaxlstm.nn.PerStepModel`), not once at the end.
    """

    name: str
    make: Callable[[int, int, int], TaskData]
    loss: Loss
    features: int
    outputs: int
    score: Callable[[np.ndarray, TaskData], np.ndarray]
    score_name: str
    baseline: float
    loss_baseline: Callable[[int], float]
    solved_below: float
    trained_below: float
    input_names: tuple[str, ...]
    class_names: tuple[str, ...] = ()
    per_step: bool = False


def _squared_errors(predictions: np.ndarray, data: TaskData) -> np.ndarray:
    return (predictions - data.targets) ** 2


def _errors(logits: np.ndarray, data: TaskData) -> np.ndarray:
    return (np.argmax(logits, axis=-1) != data.targets).astype(np.float64)


def _recall_errors(logits: np.ndarray, data: TaskData) -> np.ndarray:
    """Each copy sequence's share of wrongly recalled symbols (its last ``COPY_REMEMBER`` steps)."""
    recalled = slice(-COPY_REMEMBER, None)
    return np.mean(np.argmax(logits[:, recalled], axis=-1) != data.targets[:, recalled], axis=1)


LAB_TASKS = {
    "adding": LabTask(
        name="adding",
        make=lambda n, lag, seed: adding_problem(n, lag, seed=seed),
        loss=squared_error,
        features=2,
        outputs=1,
        score=_squared_errors,
        score_name="test MSE",
        baseline=ADDING_BASELINE,
        loss_baseline=lambda lag: ADDING_BASELINE,
        solved_below=0.01,
        trained_below=0.01,
        input_names=("value", "marker"),
    ),
    "temporal-order": LabTask(
        name="temporal-order",
        make=lambda n, lag, seed: temporal_order(n, seed=seed),
        loss=cross_entropy,
        features=len(TEMPORAL_ORDER_SYMBOLS),
        outputs=TEMPORAL_ORDER_CLASSES,
        score=_errors,
        score_name="test error rate",
        baseline=TEMPORAL_ORDER_CHANCE_ERROR,
        loss_baseline=lambda lag: TEMPORAL_ORDER_BASELINE,
        solved_below=0.01,
        trained_below=0.01,
        input_names=TEMPORAL_ORDER_SYMBOLS,
        class_names=("XX", "XY", "YX", "YY"),
    ),
    "copy": LabTask(
        name="copy",
        make=lambda n, lag, seed: copy_task(n, lag, seed=seed),
        loss=cross_entropy,
        features=COPY_CLASSES,
        outputs=COPY_CLASSES,
        score=_recall_errors,
        score_name="test recall error rate",
        baseline=1 - 1 / COPY_SYMBOLS,
        loss_baseline=copy_baseline,
        solved_below=0.01,
        trained_below=0.01,
        input_names=COPY_NAMES,
        class_names=COPY_NAMES,
        per_step=True,
    ),
}
"""The lab's tasks by name."""


@dataclasses.dataclass
class LabResult:
    """One (cell, lag) of a sweep.

    Attributes:
        task: the task trained.
        cell, lag, seeds: what was trained.
        test_score: (seeds,) each seed's mean test score on fresh sequences (the task's ``score_name``).
        curves: (epochs, seeds) mean training loss per epoch.
        updates_per_epoch: optimizer steps per epoch.
        train_seconds, compile_seconds: of the one program that trained every seed.
        models: the trained models, one per seed.
        test: the test sequences.
    """

    task: LabTask
    cell: str
    lag: int
    seeds: list[int]
    test_score: np.ndarray
    curves: np.ndarray
    updates_per_epoch: int
    train_seconds: float
    compile_seconds: float
    models: list[nnx.Module]
    test: TaskData

    @property
    def solved(self) -> np.ndarray:
        """(seeds,) whether each seed's test score is below the task's ``solved_below``."""
        return self.test_score < self.task.solved_below

    @property
    def updates_to_solve(self) -> list[int | None]:
        """Per seed, the updates to the end of the first epoch with training loss below ``trained_below``."""
        below = self.curves < self.task.trained_below
        return [int((np.argmax(column) + 1) * self.updates_per_epoch) if column.any() else None for column in below.T]


def lab_config(task: str, cell: str, units: int) -> ModelConfig:
    """The lab's model of ``cell`` for ``task``: one recurrent layer of ``units`` and a Dense head (the task's
    ``outputs``) on its last ``h``, no dropout (:class:`~jaxlstm.nn.Forecaster` with ``arch="vanilla"``)."""
    spec = LAB_TASKS[task]
    return ModelConfig(
        arch="vanilla", layers=1, cell=cell, units=units, dropout=0.0, n_features=spec.features, outputs=spec.outputs
    )


def lab_model(task: str, cell: str, units: int, seed: int | nnx.Rngs = 0, *, forget_bias: float = 1.0) -> Forecaster:
    """A fresh :func:`lab_config` model, initialised from ``seed``: a :class:`~jaxlstm.nn.Forecaster`, or a
    :class:`~jaxlstm.nn.PerStepModel` for a task answered at every step. An ``lstm`` cell starts with its forget
    gate's bias at ``forget_bias`` (1 is Keras's unit forget bias, jaxlstm's default); other cells ignore it."""
    rngs = seed if isinstance(seed, nnx.Rngs) else nnx.Rngs(seed)
    kind = PerStepModel if LAB_TASKS[task].per_step else Forecaster
    model = kind(lab_config(task, cell, units), rngs=rngs)
    if cell == "lstm" and forget_bias != 1.0:
        set_forget_bias(model, forget_bias)
    return model


def lab_gradient_flow(task: LabTask, model: nnx.Module, x: np.ndarray) -> np.ndarray:
    """:func:`~jaxlstm.introspect.gradient_flow` of a lab model over sequences ``x``: of its prediction, or for a
    task answered at every step of its last step's outputs (summed over the classes)."""
    if not task.per_step:
        return gradient_flow(model, x)
    graphdef, state = nnx.split(model)
    return gradient_flow(lambda inputs: nnx.merge(graphdef, state)(inputs)[:, -1].sum(axis=-1), x)


def lab_sweep(
    task: str,
    cell: str,
    lag: int,
    seeds: Sequence[int],
    *,
    units: int = 32,
    samples: int = 5000,
    test_samples: int = 1000,
    train: TrainConfig,
    data_seed: int = 0,
    progress: bool = False,
    forget_bias: float = 1.0,
) -> LabResult:
    """Trains one model of ``cell`` per seed on ``samples`` sequences of ``task`` with lag ``lag``, all seeds in one
    program, and scores each on ``test_samples`` fresh ones.

    The model is :func:`lab_model`'s (an ``lstm``'s forget bias at ``forget_bias``); training and test sequences
    come from ``data_seed`` and ``data_seed + 1``.
    """
    spec = LAB_TASKS[task]
    data = spec.make(samples, lag, data_seed)
    test = spec.make(test_samples, lag, data_seed + 1)
    ensemble = fit_ensemble(
        lambda rngs: lab_model(task, cell, units, rngs, forget_bias=forget_bias),
        data.inputs,
        data.targets,
        train,
        list(seeds),
        loss=spec.loss,
        progress=progress,
    )
    scores = np.array([np.mean(spec.score(np.asarray(model(test.inputs)), test)) for model in ensemble.models])
    return LabResult(
        task=spec,
        cell=cell,
        lag=lag,
        seeds=list(seeds),
        test_score=scores,
        curves=np.asarray(ensemble.losses),
        updates_per_epoch=-(-samples // train.batch_size),
        train_seconds=ensemble.train_seconds,
        compile_seconds=ensemble.compile_seconds,
        models=list(ensemble.models),
        test=test,
    )
