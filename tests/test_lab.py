"""The gate lab (jaxlstm.introspect.lab, jaxlstm.runs.lab, ``jaxlstm lab``): a sweep's scores recomputed here from its
own models on freshly generated test sequences, the cross-entropy of the many-models program against NumPy's, and the
command's run directory: its files, its reload, ``gradflow`` on it, and its one-line errors with nothing written."""

import json
from pathlib import Path

import numpy as np
import pytest

from jaxlstm.commands import main
from jaxlstm.config import TrainConfig
from jaxlstm.data.tasks import adding_problem, copy_task, temporal_order
from jaxlstm.introspect import trace_gates
from jaxlstm.introspect.lab import LAB_TASKS, lab_model, lab_sweep
from jaxlstm.nn import PerStepModel
from jaxlstm.runs import run_state
from jaxlstm.runs.lab import read_lab_models
from jaxlstm.training import fit_ensemble
from jaxlstm.training.epoch import cross_entropy

PNG = b"\x89PNG\r\n\x1a\n"
SMALL = ["--units", "16", "--samples", "1000", "--test-samples", "200", "--epochs", "6", "--seeds", "1", "--quiet"]


def test_an_adding_sweep_scores_each_seed_on_fresh_sequences() -> None:
    """The sweep's test MSE is each trained model's own MSE on the test sequences (recomputed here), and its updates
    to solve read the training curve."""
    train = TrainConfig(epochs=3, batch_size=20)
    result = lab_sweep("adding", "gru", 6, [0, 1], units=4, samples=60, test_samples=30, train=train)
    test = adding_problem(30, 6, seed=1)
    for model, mse in zip(result.models, result.test_score, strict=True):
        assert mse == pytest.approx(float(np.mean((np.asarray(model(test.inputs), np.float64) - test.targets) ** 2)))
    assert result.curves.shape == (3, 2) and result.updates_per_epoch == 3
    result.curves[:] = [[0.5, 0.5], [0.005, 0.5], [0.001, 0.5]]
    assert result.updates_to_solve == [6, None] and result.task.solved_below == 0.01


def test_a_temporal_order_sweep_scores_the_share_misclassified() -> None:
    train = TrainConfig(epochs=1, batch_size=20)
    result = lab_sweep("temporal-order", "lstm", 110, [3], units=4, samples=40, test_samples=50, train=train)
    test = temporal_order(50, seed=1)
    logits = np.asarray(result.models[0](test.inputs))
    assert logits.shape == (50, 4)
    assert result.test_score[0] == pytest.approx(np.mean(np.argmax(logits, axis=1) != test.targets))


def test_a_copy_sweep_scores_the_recalled_symbols_of_a_per_step_model() -> None:
    train = TrainConfig(epochs=1, batch_size=20)
    result = lab_sweep("copy", "gru", 4, [0], units=4, samples=40, test_samples=30, train=train)
    test = copy_task(30, 4, seed=1)
    logits = np.asarray(result.models[0](test.inputs))
    assert isinstance(result.models[0], PerStepModel) and logits.shape == (30, 24, 10)
    wrong = np.argmax(logits[:, -10:], axis=-1) != test.targets[:, -10:]
    assert result.test_score[0] == pytest.approx(wrong.mean())


def test_a_per_step_model_applies_its_head_to_every_hidden_state() -> None:
    model = lab_model("copy", "lstm", 5, seed=2)
    x = copy_task(3, 6, seed=0).inputs
    [trace] = trace_gates(model, x)  # the last layer's h at every step (tested against NumPy in test_introspect)
    kernel, bias = np.asarray(model.head.kernel[...]), np.asarray(model.head.bias[...])
    np.testing.assert_allclose(model(x), np.asarray(trace.h) @ kernel + bias, atol=1e-5)


def test_the_lstms_forget_bias_starts_where_it_is_set_and_other_cells_ignore_it() -> None:
    units = 4
    for bias in (1.0, 3.0):
        [layer] = lab_model("temporal-order", "lstm", units, forget_bias=bias).recurrent.layers
        np.testing.assert_array_equal(np.asarray(layer.b[...])[units : 2 * units], bias)
        np.testing.assert_array_equal(np.asarray(layer.b[...])[:units], 0.0)  # the input gate's keeps 0
    gru = lab_model("adding", "gru", units, forget_bias=3.0).recurrent.layers[0]
    np.testing.assert_array_equal(np.asarray(gru.b[...]), 0.0)


def test_the_many_models_cross_entropy_is_numpys_of_the_initial_logits() -> None:
    """One batch holding every sequence: the first epoch's loss is the loss before the one update, which is the
    mean of -log softmax(logits)[label] of the initial models (NumPy, float64)."""
    data = temporal_order(30, seed=5)
    config = lab_model("temporal-order", "gru", 3).config
    ensemble = fit_ensemble(
        config, data.inputs, data.targets, TrainConfig(epochs=1, batch_size=30), [0, 7], loss=cross_entropy
    )
    for seed, loss in zip([0, 7], ensemble.losses[0], strict=True):
        logits = np.asarray(lab_model("temporal-order", "gru", 3, seed=seed)(data.inputs), np.float64)
        log_softmax = logits - logits.max(axis=1, keepdims=True)
        log_softmax -= np.log(np.exp(log_softmax).sum(axis=1, keepdims=True))
        assert loss == pytest.approx(-np.mean(log_softmax[np.arange(30), data.targets]), rel=1e-5)


@pytest.fixture(scope="module")
def lab_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lab") / "adding"
    assert main(["lab", "adding", "--lags", "6", "--cells", "lstm,rnn", *SMALL, "--out", str(out)]) == 0
    return out


def test_lab_writes_its_table_figures_and_models(lab_dir: Path, capsys) -> None:
    assert run_state(lab_dir) == "complete"
    content = json.loads((lab_dir / "lab.json").read_text())
    assert content["settings"]["lags"] == [6] and [row["cell"] for row in content["rows"]] == ["lstm", "rnn"]
    lstm = content["rows"][0]
    assert lstm["solved"] == 1 and lstm["test_score"][0] < 0.01 and len(lstm["curves"]) == 6
    report = (lab_dir / "report.md").read_text()
    assert "| 6 | lstm |" in report and "| 6 | rnn |" in report and "test MSE is below 0.01" in report
    for name in ("curves.png", "gates.png", "gradflow.png", "saturation.png", "connectivity.png"):
        assert (lab_dir / name).read_bytes()[:8] == PNG, name
    page = (lab_dir / "gates.html").read_text()
    assert '"markers": [' in page or '"markers":[' in page


def test_a_lab_runs_models_reload_with_the_scores_it_reported(lab_dir: Path) -> None:
    settings, models = read_lab_models(lab_dir)
    rows = json.loads((lab_dir / "lab.json").read_text())["rows"]
    test = adding_problem(settings.test_samples, 6, seed=1)
    for row in rows:
        [model] = models[(row["cell"], 6)]
        mse = np.mean((np.asarray(model(test.inputs), np.float64) - test.targets) ** 2)
        assert mse == pytest.approx(row["test_score"][0], rel=1e-5)


def test_gradflow_on_a_lab_run_draws_each_cell(lab_dir: Path, tmp_path: Path) -> None:
    assert main(["gradflow", "--run", str(lab_dir), "--windows", "8", "--out", str(tmp_path)]) == 0
    curves = json.loads((tmp_path / "gradflow.json").read_text())["curves"]
    assert sorted(curves) == ["lstm, trained (seed 0)", "rnn, trained (seed 0)"]
    assert all(len(curve["norms"]) == 6 for curve in curves.values())


def test_the_commands_that_need_a_model_refuse_a_lab_run(lab_dir: Path, capsys) -> None:
    assert main(["predict", "--run", str(lab_dir)]) == 2
    assert "is a lab run (`jaxlstm lab`)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["adding", "--cells", "lstm,lsmt"], "unknown cell 'lsmt'; choose from lstm, gru"),
        (["adding", "--lags", "50,x"], "--lags '50,x': not whole numbers"),
        (["adding", "--lags", "1"], "each length must be >= 2"),
        (["adding", "--seeds", "0"], "--seeds 0: must be a whole number >= 1"),
        (["temporal-order", "--lags", "50"], "has its own lengths (100..110); drop --lags"),
        (["adding", "--forget-bias", "nan"], "--forget-bias nan: must be a finite number"),
    ],
)
def test_lab_user_errors_write_nothing(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    assert main(["lab", *args, "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_lab_refuses_an_existing_run_before_training(lab_dir: Path, capsys) -> None:
    before = (lab_dir / "lab.json").read_bytes()
    assert main(["lab", "adding", "--out", str(lab_dir)]) == 2
    assert "already holds files of a finished run" in capsys.readouterr().err
    assert (lab_dir / "lab.json").read_bytes() == before


def test_every_lab_task_is_a_command_choice() -> None:
    from jaxlstm.commands.lab import LAB_TASK_NAMES

    assert tuple(LAB_TASKS) == LAB_TASK_NAMES
