"""The gate lab's experiments: cells of the family trained on a long-lag task, every seed of a (cell, lag) in one
compiled program (:func:`~jaxlstm.training.fit_ensemble`), scored on fresh sequences against the task's baseline.

A seed *solves* the task when its test MSE falls below :data:`SOLVED_MSE` (0.01, 6% of the adding problem's 1/6
baseline); its *updates to solve* count the optimizer steps up to the end of the first epoch whose mean training
loss is below that threshold (so they are known to within one epoch).

>>> from jaxlstm.config import TrainConfig
>>> result = adding_sweep("lstm", 8, [0, 1], units=4, samples=40, train=TrainConfig(epochs=2, batch_size=20))
>>> result.test_mse.shape, result.curves.shape, result.baseline
((2,), (2, 2), 0.16666666666666666)
"""

import dataclasses
from collections.abc import Sequence

import numpy as np
from flax import nnx

from jaxlstm.config import ModelConfig, TrainConfig
from jaxlstm.data.tasks import adding_problem
from jaxlstm.training import fit_ensemble

__all__ = ["SOLVED_MSE", "LabResult", "adding_sweep"]

SOLVED_MSE = 0.01
"""The test MSE below which a seed counts as having solved the adding problem."""


@dataclasses.dataclass
class LabResult:
    """One (cell, lag) of a sweep.

    Attributes:
        cell, lag, seeds: what was trained.
        test_mse: (seeds,) each seed's MSE on fresh test sequences.
        curves: (epochs, seeds) mean training loss per epoch.
        updates_per_epoch: optimizer steps per epoch.
        baseline: the task's memoryless baseline loss.
        train_seconds, compile_seconds: of the one program that trained every seed.
        models: the trained models, one per seed.
    """

    cell: str
    lag: int
    seeds: list[int]
    test_mse: np.ndarray
    curves: np.ndarray
    updates_per_epoch: int
    baseline: float
    train_seconds: float
    compile_seconds: float
    models: list[nnx.Module]

    @property
    def solved(self) -> np.ndarray:
        """(seeds,) whether each seed's test MSE is below :data:`SOLVED_MSE`."""
        return self.test_mse < SOLVED_MSE

    @property
    def updates_to_solve(self) -> list[int | None]:
        """Per seed, the updates to the end of the first epoch with training loss below :data:`SOLVED_MSE`."""
        below = self.curves < SOLVED_MSE
        return [int((np.argmax(column) + 1) * self.updates_per_epoch) if column.any() else None for column in below.T]


def adding_sweep(
    cell: str,
    lag: int,
    seeds: Sequence[int],
    *,
    units: int = 32,
    samples: int = 5000,
    test_samples: int = 1000,
    train: TrainConfig,
    data_seed: int = 0,
) -> LabResult:
    """Trains one model of ``cell`` per seed on ``samples`` adding-problem sequences of ``lag`` steps, all seeds in one
    program, and scores each on ``test_samples`` fresh ones.

    The model is one recurrent layer of ``units`` and a Dense(1) head on its last ``h``, no dropout
    (:class:`~jaxlstm.nn.Forecaster` with ``arch="vanilla"``); training and test sequences come from ``data_seed``
    and ``data_seed + 1``.
    """
    data = adding_problem(samples, lag, seed=data_seed)
    test = adding_problem(test_samples, lag, seed=data_seed + 1)
    model_config = ModelConfig(arch="vanilla", layers=1, cell=cell, units=units, dropout=0.0, n_features=2)
    ensemble = fit_ensemble(model_config, data.inputs, data.targets, train, list(seeds))
    test_mse = np.array([np.mean((np.asarray(model(test.inputs)) - test.targets) ** 2) for model in ensemble.models])
    return LabResult(
        cell=cell,
        lag=lag,
        seeds=list(seeds),
        test_mse=test_mse,
        curves=np.asarray(ensemble.losses),
        updates_per_epoch=-(-samples // train.batch_size),
        baseline=data.baseline,
        train_seconds=ensemble.train_seconds,
        compile_seconds=ensemble.compile_seconds,
        models=list(ensemble.models),
    )
