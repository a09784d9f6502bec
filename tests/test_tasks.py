"""The synthetic tasks against their published specifications, recomputed by plain loops and by their statistics."""

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxlstm.data.tasks import (
    ADDING_BASELINE,
    COPY_CLASSES,
    TEMPORAL_ORDER_BASELINE,
    TEMPORAL_ORDER_CHANCE_ERROR,
    TEMPORAL_ORDER_CLASSES,
    TEMPORAL_ORDER_STEPS,
    TEMPORAL_ORDER_SYMBOLS,
    TaskData,
    adding_problem,
    copy_baseline,
    copy_task,
    temporal_order,
)


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


def test_task_data_keeps_its_five_field_form_with_no_mask_and_no_classes() -> None:
    task = TaskData("adding", np.zeros((1, 2, 2)), np.zeros(1), np.zeros((1, 2), bool), ADDING_BASELINE)
    assert task.mask is None and task.classes == 0
    assert adding_problem(3, 4, seed=0).mask is None and adding_problem(3, 4, seed=0).classes == 0


def test_the_copy_task_has_its_shapes_dtypes_and_ten_classes() -> None:
    task = copy_task(7, 30, seed=0)
    assert task.name == "copy" and task.classes == COPY_CLASSES == 10 and task.mask is None
    assert task.inputs.shape == (7, 50, 10) and task.inputs.dtype == np.float32
    assert task.targets.shape == (7, 50) and task.targets.dtype == np.int32
    assert task.markers.shape == (7, 50) and task.markers.dtype == bool
    assert (task.inputs.sum(axis=-1) == 1.0).all() and set(np.unique(task.inputs)) == {0.0, 1.0}


def test_the_copy_task_lays_out_symbols_blanks_delimiter_blanks_and_copies_the_symbols() -> None:
    """T = 100, 0-based: symbols at 0..9, blanks at 10..108 (T - 1 of them), the delimiter 9 at 109 = T + 9, blanks at
    110..119; the targets are blank at 0..109 and the symbols at 110..119 = T + 10 .. T + 19."""
    lag = 100
    task = copy_task(20, lag, seed=4)
    categories = task.inputs.argmax(axis=-1)
    for row in range(20):
        symbols = categories[row, :10].tolist()
        assert all(1 <= symbol <= 8 for symbol in symbols)
        assert categories[row, 10 : lag + 9].tolist() == [0] * (lag - 1)
        assert categories[row, lag + 9] == 9
        assert categories[row, lag + 10 :].tolist() == [0] * 10
        assert task.targets[row, : lag + 10].tolist() == [0] * (lag + 10)
        assert task.targets[row, lag + 10 :].tolist() == symbols
        assert np.flatnonzero(task.markers[row]).tolist() == list(range(10))


@settings(max_examples=40, deadline=None)
@given(lag=st.integers(1, 12), symbols=st.integers(1, 6), remember=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_every_copy_task_matches_its_sequence_written_out_by_hand(
    lag: int, symbols: int, remember: int, seed: int
) -> None:
    task = copy_task(3, lag, seed=seed, symbols=symbols, remember=remember)
    delimiter = symbols + 1
    assert task.inputs.shape == (3, lag + 2 * remember, symbols + 2) and task.classes == symbols + 2
    for row in range(3):
        stored = [int(np.argmax(task.inputs[row, t])) for t in range(remember)]
        assert all(1 <= symbol <= symbols for symbol in stored)
        expected_input = stored + [0] * (lag - 1) + [delimiter] + [0] * remember
        expected_target = [0] * (lag + remember) + stored
        assert [int(np.argmax(step)) for step in task.inputs[row]] == expected_input
        assert task.targets[row].tolist() == expected_target
    assert task.baseline == pytest.approx(remember * math.log(symbols) / (lag + 2 * remember))


def test_the_copy_symbols_are_uniform_over_the_eight() -> None:
    symbols = copy_task(4000, 1, seed=5).targets[:, -10:]
    frequencies = np.bincount(symbols.ravel(), minlength=10) / symbols.size
    assert frequencies[0] == 0.0 and frequencies[9] == 0.0
    np.testing.assert_allclose(frequencies[1:9], 1 / 8, atol=0.005)


def test_the_copy_baseline_is_ten_ln_eight_over_the_length_and_its_predictor_scores_it() -> None:
    """Predicting the blank with certainty, then 1/8 on each symbol for the last 10 steps."""
    assert copy_baseline(100) == pytest.approx(10 * math.log(8) / 120)
    assert copy_baseline(1000) == pytest.approx(10 * math.log(8) / 1020)
    assert copy_baseline(5, symbols=4, remember=3) == pytest.approx(3 * math.log(4) / 11)
    lag = 100
    task = copy_task(500, lag, seed=6)
    assert task.baseline == copy_baseline(lag)
    predicted = np.zeros((lag + 20, 10))
    predicted[: lag + 10, 0] = 1.0
    predicted[lag + 10 :, 1:9] = 1 / 8
    probabilities = np.take_along_axis(np.broadcast_to(predicted, (500, lag + 20, 10)), task.targets[..., None], -1)
    assert -np.mean(np.log(probabilities)) == pytest.approx(copy_baseline(lag), rel=1e-12)


def test_the_temporal_order_task_has_its_shapes_and_dtypes() -> None:
    task = temporal_order(9, seed=0)
    assert task.name == "temporal_order" and task.classes == TEMPORAL_ORDER_CLASSES == 4
    assert TEMPORAL_ORDER_STEPS == 110 and TEMPORAL_ORDER_SYMBOLS == ("a", "b", "c", "d", "B", "E", "X", "Y")
    assert task.inputs.shape == (9, 110, 8) and task.inputs.dtype == np.float32
    assert task.targets.shape == (9,) and task.targets.dtype == np.int32
    assert task.markers.shape == (9, 110) and task.markers.dtype == bool
    assert task.mask is not None and task.mask.shape == (9, 110) and task.mask.dtype == bool


def test_each_temporal_order_sequence_follows_experiment_6a_read_back_symbol_by_symbol() -> None:
    """Decoded step by step: zeros, then E, a..d with X/Y at 1-based positions 10..20 and 50..60, and B last."""
    classes = {"XX": 0, "XY": 1, "YX": 2, "YY": 3}
    task = temporal_order(300, seed=7)
    for row in range(300):
        steps = task.inputs[row]
        padding = [t for t in range(110) if steps[t].sum() == 0.0]
        assert padding == list(range(len(padding)))
        assert task.mask[row].tolist() == [t not in padding for t in range(110)]
        real = [TEMPORAL_ORDER_SYMBOLS[int(np.argmax(steps[t]))] for t in range(len(padding), 110)]
        assert all(steps[t].sum() == 1.0 for t in range(len(padding), 110))
        assert 100 <= len(real) <= 110
        assert real[0] == "E" and real[-1] == "B"
        relevant = [position for position, symbol in enumerate(real, start=1) if symbol in "XY"]
        assert len(relevant) == 2 and 10 <= relevant[0] <= 20 and 50 <= relevant[1] <= 60
        others = [symbol for position, symbol in enumerate(real, start=1) if position not in (1, len(real), *relevant)]
        assert all(symbol in "abcd" for symbol in others)
        assert task.targets[row] == classes[real[relevant[0] - 1] + real[relevant[1] - 1]]
        assert np.flatnonzero(task.markers[row]).tolist() == [len(padding) + p - 1 for p in relevant]


def test_the_temporal_order_draws_cover_their_ranges_uniformly() -> None:
    task = temporal_order(6000, seed=8)
    lengths = task.mask.sum(axis=1)
    starts = 110 - lengths
    rows = np.arange(6000)
    relevant = [np.flatnonzero(markers) for markers in task.markers]
    first = np.array([positions[0] for positions in relevant]) - starts + 1
    second = np.array([positions[1] for positions in relevant]) - starts + 1
    assert set(lengths.tolist()) == set(range(100, 111))
    assert set(first.tolist()) == set(range(10, 21)) and set(second.tolist()) == set(range(50, 61))
    np.testing.assert_allclose(np.bincount(lengths - 100) / 6000, 1 / 11, atol=0.015)
    np.testing.assert_allclose(np.bincount(task.targets, minlength=4) / 6000, 1 / 4, atol=0.02)
    symbols = task.inputs.argmax(axis=-1)
    assert (symbols[rows, starts] == TEMPORAL_ORDER_SYMBOLS.index("E")).all()
    between = task.mask & ~task.markers
    between[rows, starts] = False
    between[:, -1] = False
    np.testing.assert_allclose(
        np.bincount(symbols[between], minlength=8) / between.sum(), [0.25] * 4 + [0] * 4, atol=0.005
    )


def test_the_temporal_order_answer_sits_at_the_last_step_after_all_zero_padding() -> None:
    """Pre-padding: the B is at index 109 for every length, and the padded steps are all-zero inputs."""
    task = temporal_order(200, seed=9)
    assert (task.inputs[:, -1].argmax(axis=-1) == TEMPORAL_ORDER_SYMBOLS.index("B")).all()
    assert task.mask[:, -1].all() and (task.inputs[~task.mask] == 0.0).all()
    assert task.mask[:, 10:].all() and not task.mask[:, :10].all()  # 100 real steps at least, some padded


def test_the_temporal_order_baselines_are_chance_and_storing_one_symbol_halves_the_error() -> None:
    """At chance: error 3/4 and cross-entropy ln 4; knowing only the second symbol: error 1/2."""
    assert pytest.approx(math.log(4)) == TEMPORAL_ORDER_BASELINE and TEMPORAL_ORDER_CHANCE_ERROR == 0.75
    task = temporal_order(20_000, seed=10)
    assert task.baseline == TEMPORAL_ORDER_BASELINE
    prior = np.bincount(task.targets, minlength=4) / task.targets.size
    assert -np.mean(np.log(prior[task.targets])) == pytest.approx(math.log(4), rel=0.001)
    assert np.mean(task.targets != np.argmax(prior)) == pytest.approx(0.75, abs=0.01)
    second_known_first_guessed_x = task.targets % 2  # XX or XY: right when the first is X, half the time
    assert np.mean(task.targets != second_known_first_guessed_x) == pytest.approx(0.5, abs=0.01)


def test_a_seed_gives_its_copy_and_temporal_order_sequences() -> None:
    for make in (lambda seed: copy_task(6, 15, seed=seed), lambda seed: temporal_order(6, seed=seed)):
        same, again, other = make(1), make(1), make(2)
        for field in ("inputs", "targets", "markers"):
            np.testing.assert_array_equal(getattr(same, field), getattr(again, field))
        assert not np.array_equal(same.inputs, other.inputs)
    np.testing.assert_array_equal(temporal_order(6, seed=1).mask, temporal_order(6, seed=1).mask)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: copy_task(0, 10, seed=0), "copy task needs at least one sequence"),
        (lambda: copy_task(4, 0, seed=0), "lag >= 1"),
        (lambda: copy_task(4, 10, seed=0, symbols=0), "symbols >= 1"),
        (lambda: copy_task(4, 10, seed=0, remember=0), "remember >= 1"),
        (lambda: copy_baseline(-3), "lag >= 1"),
        (lambda: temporal_order(0, seed=0), "temporal order task needs at least one sequence"),
    ],
)
def test_bad_sizes_are_refused_in_one_line_saying_what_is_needed(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message) as refusal:
        make()
    assert "\n" not in str(refusal.value) and "got" in str(refusal.value)
