"""The synthetic tasks against their published specifications, recomputed by plain loops and by their statistics."""

import numpy as np
import pytest

from jaxlstm.data.tasks import ADDING_BASELINE, adding_problem


def test_the_adding_problem_marks_one_value_per_half_and_sums_them() -> None:
    task = adding_problem(50, 11, seed=3)
    assert task.inputs.shape == (50, 11, 2) and task.inputs.dtype == np.float32
    for row in range(50):
        marked = [t for t in range(11) if task.inputs[row, t, 1] == 1.0]
        assert len(marked) == 2 and marked[0] < 11 // 2 <= marked[1]
        assert task.targets[row] == pytest.approx(sum(task.inputs[row, t, 0] for t in marked), abs=1e-6)
        assert set(np.flatnonzero(task.markers[row])) == set(marked)
    assert task.inputs[..., 0].min() >= 0.0 and task.inputs[..., 0].max() <= 1.0


def test_the_adding_baselines_are_one_sixth_and_one_twelfth() -> None:
    """Predicting 1 scores Var(v_a + v_b) = 1/6; storing one value (predicting v_a + 1/2) scores 1/12."""
    task = adding_problem(200_000, 20, seed=0)
    assert pytest.approx(1 / 6) == ADDING_BASELINE
    assert np.mean((task.targets - 1.0) ** 2) == pytest.approx(1 / 6, rel=0.01)
    first_value = (task.inputs[:, :10, 0] * task.inputs[:, :10, 1]).sum(axis=1)
    assert np.mean((task.targets - first_value - 0.5) ** 2) == pytest.approx(1 / 12, rel=0.01)


def test_a_seed_gives_its_sequences_and_bad_sizes_are_refused() -> None:
    np.testing.assert_array_equal(adding_problem(5, 8, seed=1).inputs, adding_problem(5, 8, seed=1).inputs)
    assert not np.array_equal(adding_problem(5, 8, seed=1).inputs, adding_problem(5, 8, seed=2).inputs)
    with pytest.raises(ValueError, match="length >= 2"):
        adding_problem(5, 1, seed=0)
    with pytest.raises(ValueError, match="at least one sequence"):
        adding_problem(0, 8, seed=0)


def test_an_adding_sweep_scores_each_seed_on_fresh_sequences() -> None:
    """The sweep's test MSE is each trained model's own MSE on the test sequences (recomputed here), and its updates
    to solve read the training curve."""
    from jaxlstm.config import TrainConfig
    from jaxlstm.introspect.lab import SOLVED_MSE, adding_sweep

    result = adding_sweep(
        "gru", 6, [0, 1], units=4, samples=60, test_samples=30, train=TrainConfig(epochs=3, batch_size=20)
    )
    test = adding_problem(30, 6, seed=1)
    for model, mse in zip(result.models, result.test_mse, strict=True):
        assert mse == pytest.approx(float(np.mean((np.asarray(model(test.inputs), np.float64) - test.targets) ** 2)))
    assert result.curves.shape == (3, 2) and result.updates_per_epoch == 3
    result.curves[:] = [[0.5, 0.5], [0.005, 0.5], [0.001, 0.5]]
    assert result.updates_to_solve == [6, None] and SOLVED_MSE == 0.01
