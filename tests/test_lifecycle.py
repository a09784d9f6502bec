"""A run directory's life (jaxlstm.runs.RunDirectory), without training: what each state of a directory allows, the
checkpoints a session keeps, what a failure or Ctrl-C says, and a process that does not write leaving nothing."""

from pathlib import Path

import jax
import numpy as np
import pytest

from jaxlstm.config import DataConfig, RunConfig, TrainConfig, preset
from jaxlstm.errors import RunError, TrainingError
from jaxlstm.runs import CHECKPOINTS_DIR, CONFIG_FILE, RunDirectory, run_state
from jaxlstm.training import History, TrainState, list_checkpoints


def state(epoch: int) -> TrainState:
    """A tiny stand-in for a training state after ``epoch`` epochs."""
    history = History(loss=[1.0] * epoch)
    return TrainState(epoch, {"w": np.full(2, epoch, np.float32)}, {"m": np.zeros(2)}, jax.random.key(0), history)


def meta() -> dict:
    return {"config": RunConfig(DataConfig(), preset("vanilla"), TrainConfig()).to_dict(), "scalers": {}}


def test_a_session_keeps_checkpoints_and_its_run_reopens_at_the_newest(tmp_path: Path) -> None:
    out = tmp_path / "run"
    directory = RunDirectory.create(out, "train")
    with directory.session(meta()) as on_checkpoint:
        for epoch in (1, 2, 3, 4):
            on_checkpoint(state(epoch))
        assert run_state(out) == "interrupted"  # checkpoints, no config.json yet
    assert [epoch for epoch, _ in list_checkpoints(out / CHECKPOINTS_DIR)] == [4, 3, 2]  # the newest three
    reopened, config = RunDirectory.reopen(out, "train")
    assert reopened.checkpoint.epoch == 4 and config.model == preset("vanilla")
    with pytest.raises(RunError, match="an interrupted `jaxlstm train` run; finish it with `jaxlstm train --resume`"):
        RunDirectory.reopen(out, "backtest")
    with pytest.raises(RunError, match=r"interrupted run .*checkpoint at epoch 4.*`jaxlstm train --resume"):
        RunDirectory.create(out, "train")


def test_what_each_destination_allows(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match=r"holds files that are not a jaxlstm run \(notes.txt\)"):
        RunDirectory.create(tmp_path / "project", "train", overwrite=True)
    finished = tmp_path / "finished"
    finished.mkdir()
    (finished / CONFIG_FILE).write_text("{}")
    with pytest.raises(RunError, match="already holds files of a finished run"):
        RunDirectory.create(finished, "backtest")
    with pytest.raises(RunError, match=r"`jaxlstm backtest` run is complete, nothing to resume; see its report\.md"):
        RunDirectory.reopen(finished, "backtest")
    with pytest.raises(RunError, match="no such run directory"):
        RunDirectory.reopen(tmp_path / "absent", "train")
    assert RunDirectory.create(finished, "train", overwrite=True).overwrite


def test_an_overwritten_run_stays_until_the_first_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / CONFIG_FILE).write_text("{}")
    directory = RunDirectory.create(out, "train", overwrite=True)
    with (
        pytest.raises(TrainingError, match=r"diverged \(last good checkpoint: none was written\)"),
        directory.session(meta()),
    ):
        raise TrainingError("diverged")
    assert (out / CONFIG_FILE).exists()  # nothing was replaced
    with directory.session(meta()) as on_checkpoint:
        on_checkpoint(state(1))
    assert not (out / CONFIG_FILE).exists() and run_state(out) == "interrupted"


def test_failures_name_the_last_checkpoint_and_ctrl_c_says_how_to_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    directory = RunDirectory.create(out, "backtest")
    failed = pytest.raises(TrainingError, match=r"nan \(last good checkpoint: epoch 2, .*epoch-000002\.ckpt\)")
    with failed, directory.session(meta()) as on_checkpoint:
        on_checkpoint(state(2))
        raise TrainingError("nan")
    directory.drop_checkpoints()
    assert run_state(out) == "empty"
    with pytest.raises(KeyboardInterrupt) as interrupt, directory.session(meta()) as on_checkpoint:
        on_checkpoint(state(3))
        raise KeyboardInterrupt
    assert str(interrupt.value) == f"finish it with `jaxlstm backtest --resume {out}` (from epoch 3)"


def test_a_process_that_does_not_write_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    out = tmp_path / "run"
    directory = RunDirectory.create(out, "train")
    assert not directory.writes
    with directory.session(meta()) as on_checkpoint:
        on_checkpoint(state(1))
    directory.write(lambda path: (path / CONFIG_FILE).write_text("{}"))
    assert not out.exists()
