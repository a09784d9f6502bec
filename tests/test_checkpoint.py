"""Checkpoints: atomic writes, damaged files, bit-identical resume (in-process and after a real SIGKILL), NaN guard."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jaxlstm.training.single
from jaxlstm.commands import main
from jaxlstm.config import TrainConfig, preset
from jaxlstm.data import load_prices, prepare
from jaxlstm.errors import ConfigError, RunError, TrainingError
from jaxlstm.fileio import write_atomic
from jaxlstm.nn.models import Forecaster
from jaxlstm.training import TrainState
from jaxlstm.training.checkpoint import (
    CheckpointWriter,
    checkpoint_name,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from jaxlstm.training.single import fit
from tests.conftest import BUNDLED, ROOT

CONFIG = TrainConfig(epochs=6, batch_size=16, seed=5, validation_split=0.2, patience=50)
"""Dropout, shuffling, two devices where there are two, and early-stopping bookkeeping: everything a resume must
restore (``patience`` never fires, but the best weights are restored at the end)."""


@pytest.fixture(scope="module")
def data():
    return prepare(load_prices(BUNDLED / "GOOG.csv").iloc[-100:], window=20, split=70)


def model(units: int = 6) -> Forecaster:
    return Forecaster(preset("vanilla", units=units), rngs=nnx.Rngs(1))


def weights(module: Forecaster) -> list[np.ndarray]:
    return [np.asarray(leaf) for leaf in jax.tree.leaves(nnx.state(module, nnx.Param))]


class SimulatedCrashError(Exception):
    pass


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    """The reference: 6 epochs in one go, checkpoints every 2 epochs."""
    directory = tmp_path_factory.mktemp("full") / "checkpoints"
    reference = model()
    history = fit(
        reference,
        data.x_train,
        data.y_train,
        CONFIG,
        progress=False,
        checkpoint_every=2,
        on_checkpoint=CheckpointWriter(directory, {"run": "full"}),
    )
    return reference, history, directory


def test_resume_after_a_crash_is_bit_identical(data, uninterrupted, tmp_path: Path) -> None:
    """Train, "crash" right after the epoch-4 checkpoint, resume from the file: the same bits as one run."""
    reference, full_history, _ = uninterrupted
    writer = CheckpointWriter(tmp_path, {"run": "crashed"})

    def crash_after_epoch_4(state: TrainState) -> None:
        writer(state)
        if state.epoch == 4:
            raise SimulatedCrashError

    with pytest.raises(SimulatedCrashError):
        fit(
            model(),
            data.x_train,
            data.y_train,
            CONFIG,
            progress=False,
            checkpoint_every=2,
            on_checkpoint=crash_after_epoch_4,
        )
    checkpoint = latest_checkpoint(tmp_path)
    assert checkpoint.epoch == 4 and not checkpoint.finished and checkpoint.meta == {"run": "crashed"}

    resumed = model(units=6)
    state = checkpoint.train_state(resumed, CONFIG)
    history = fit(resumed, data.x_train, data.y_train, CONFIG, progress=False, resume=state, on_checkpoint=writer)
    for ours, theirs in zip(weights(resumed), weights(reference), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    assert history.loss == full_history.loss and history.val_loss == full_history.val_loss
    assert history.best_epoch == full_history.best_epoch
    assert [epoch for epoch, _ in list_checkpoints(tmp_path)] == [6, 4, 2]
    assert load_checkpoint(tmp_path / checkpoint_name(6)).finished


def test_resuming_a_finished_state_trains_no_further(data, uninterrupted) -> None:
    reference, full_history, directory = uninterrupted
    checkpoint = latest_checkpoint(directory)
    assert checkpoint.epoch == 6 and checkpoint.finished
    again = model()
    history = fit(
        again, data.x_train, data.y_train, CONFIG, progress=False, resume=checkpoint.train_state(again, CONFIG)
    )
    assert history.loss == full_history.loss
    for ours, theirs in zip(weights(again), weights(reference), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_checkpoint_of_another_model_is_refused(uninterrupted) -> None:
    checkpoint = latest_checkpoint(uninterrupted[2])
    with pytest.raises(RunError, match=r"parameters \[.* is float32\[.*\] but the model needs float32\[.*8"):
        checkpoint.train_state(model(units=8), CONFIG)
    with pytest.raises(RunError, match="optimizer moments do not match"):
        checkpoint.train_state(model(), TrainConfig(clip_norm=1.0))


def test_resume_needs_the_same_device_count(data, uninterrupted) -> None:
    checkpoint = latest_checkpoint(uninterrupted[2])
    state = checkpoint.train_state(model(), CONFIG)
    state.history.devices = len(jax.local_devices()) + 1
    with pytest.raises(ConfigError, match="an identical continuation needs the same count"):
        fit(model(), data.x_train, data.y_train, CONFIG, progress=False, resume=state)


# --- damaged files -------------------------------------------------------------------------------------------


@pytest.fixture
def two_checkpoints(uninterrupted, tmp_path: Path) -> Path:
    """Copies of the reference's checkpoints of epochs 4 and 6."""
    for epoch in (4, 6):
        name = checkpoint_name(epoch)
        (tmp_path / name).write_bytes((uninterrupted[2] / name).read_bytes())
    return tmp_path


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda raw: raw[: len(raw) // 2], "truncated or not a jaxlstm checkpoint"),
        (lambda raw: b"", r"truncated or not a jaxlstm checkpoint \(0 bytes\)"),
        (lambda raw: b"Date,Open\n2020-01-01,1\n", "truncated or not a jaxlstm checkpoint"),
        (lambda raw: raw[:-200] + bytes([raw[-200] ^ 1]) + raw[-199:], r"corrupt checkpoint \(checksum mismatch\)"),
    ],
    ids=["truncated", "empty", "text", "flipped-bit"],
)
def test_damaged_checkpoint_is_a_clear_error(two_checkpoints: Path, damage, message: str) -> None:
    path = two_checkpoints / checkpoint_name(6)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RunError, match=message):
        load_checkpoint(path)
    warnings = []
    checkpoint = latest_checkpoint(two_checkpoints, warn=warnings.append)
    assert checkpoint.epoch == 4  # the older, intact one
    assert len(warnings) == 1 and "skipped a damaged checkpoint" in warnings[0] and "epoch-000006.ckpt" in warnings[0]


def test_no_intact_checkpoint_is_a_clear_error(two_checkpoints: Path) -> None:
    for _, path in list_checkpoints(two_checkpoints):
        path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(RunError, match=r"all 2 checkpoint\(s\) are damaged \(newest: .*epoch-000006.ckpt: truncated"):
        latest_checkpoint(two_checkpoints)
    with pytest.raises(RunError, match="no checkpoints to resume from"):
        latest_checkpoint(two_checkpoints / "nothing")


def test_a_crash_mid_write_leaves_the_previous_checkpoint(two_checkpoints: Path, monkeypatch) -> None:
    """A failure between writing the bytes and renaming them (here: fsync raises) leaves the old file whole."""
    path = two_checkpoints / checkpoint_name(6)
    before = path.read_bytes()

    def power_cut(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", power_cut)
    with pytest.raises(OSError):
        write_atomic(path, b"half")
    monkeypatch.undo()
    assert path.read_bytes() == before and load_checkpoint(path).epoch == 6
    assert sorted(p.name for p in two_checkpoints.iterdir()) == [checkpoint_name(4), checkpoint_name(6)]


def test_leftovers_of_a_killed_write_are_ignored_then_removed(two_checkpoints: Path, uninterrupted) -> None:
    leftover = two_checkpoints / f".{checkpoint_name(8)}.tmp-12345"
    leftover.write_bytes(b"partial")
    assert [epoch for epoch, _ in list_checkpoints(two_checkpoints)] == [6, 4]
    state = load_checkpoint(two_checkpoints / checkpoint_name(6)).train_state(model(), CONFIG)
    state.epoch = 8
    writer = CheckpointWriter(two_checkpoints, {}, keep=2)
    writer(state)
    assert sorted(p.name for p in two_checkpoints.iterdir()) == [checkpoint_name(6), checkpoint_name(8)]


def test_save_checkpoint_failure_is_a_run_error(tmp_path: Path, uninterrupted) -> None:
    state = latest_checkpoint(uninterrupted[2]).train_state(model(), CONFIG)
    with pytest.raises(RunError, match="cannot write the checkpoint"):
        save_checkpoint(tmp_path / "missing" / "x.ckpt", state, {})


# --- NaN guard -----------------------------------------------------------------------------------------------


def poison_from_epoch(monkeypatch, epoch: int, n_batches: int) -> None:
    """Makes the weights NaN (the loss stays finite) from ``epoch`` on, as a NaN gradient would."""
    make_epoch = jaxlstm.training.make_epoch

    def poisoned(*args, **kwargs):
        run_epoch = make_epoch(*args, **kwargs)

        def wrapped(params, opt_state, key, x, y):
            params, opt_state, loss = run_epoch(params, opt_state, key, x, y)
            steps = next(leaf for leaf in jax.tree.leaves(opt_state) if leaf.dtype == jnp.int32)
            bad = steps >= epoch * n_batches
            return jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), params), opt_state, loss

        return wrapped

    monkeypatch.setattr(jaxlstm.training.single, "make_epoch", poisoned)


def test_non_finite_weights_stop_training_and_keep_the_last_good_checkpoint(data, tmp_path: Path, monkeypatch) -> None:
    config = TrainConfig(epochs=6, batch_size=64, seed=5)
    poison_from_epoch(monkeypatch, 3, n_batches=1)  # 50 windows, batch 64: one batch per epoch
    writer = CheckpointWriter(tmp_path, {})
    module = model()
    before = weights(module)
    with pytest.raises(TrainingError, match=r"NaN or infinite at epoch 3 \(the loss was still .*\); lower --lr"):
        fit(module, data.x_train, data.y_train, config, progress=False, checkpoint_every=1, on_checkpoint=writer)
    assert [epoch for epoch, _ in list_checkpoints(tmp_path)] == [2, 1]
    state = latest_checkpoint(tmp_path).train_state(model(), config)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree.leaves(state.params))
    for ours, theirs in zip(weights(module), before, strict=True):  # the model itself is left as it was
        np.testing.assert_array_equal(ours, theirs)


# --- a real process, killed ----------------------------------------------------------------------------------

KILL_ARGS = ["--arch", "vanilla", "--units", "8", "--epochs", "30", "--checkpoint-every", "5", "--quiet"]
SLOW_CHILD = """
import sys, time
import jaxlstm.training.checkpoint
from jaxlstm.commands import main
save = jaxlstm.training.CheckpointWriter.__call__
def save_then_pause(self, state):  # widens the window in which the parent's SIGKILL lands; the numbers are untouched
    path = save(self, state)
    time.sleep(0.3)
    return path
jaxlstm.training.CheckpointWriter.__call__ = save_then_pause
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.processes
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    """`jaxlstm train` in a real process, SIGKILLed once its first checkpoint exists, finished with `--resume` in
    another process: its weights and metrics equal, bit for bit, those of an uninterrupted run of the same seed."""
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, "train", *KILL_ARGS, "--out", str(killed)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        deadline = time.monotonic() + 120
        while not (killed / "checkpoints" / checkpoint_name(5)).exists():
            assert child.poll() is None, child.stderr.read().decode()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    # No final file: the run is not complete. The killed process's lock file stays, but no process holds its lock
    # any more (the kernel released it), so the resume below takes it.
    assert sorted(p.name for p in killed.iterdir()) == [".jaxlstm.lock", "checkpoints"]
    assert 5 <= latest_checkpoint(killed / "checkpoints").epoch < 30

    resumed = subprocess.run(
        [sys.executable, "-m", "jaxlstm", "train", "--resume", str(killed), "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert main(["train", *KILL_ARGS, "--out", str(tmp_path / "whole")]) == 0
    for name in ("params.msgpack", "predictions.csv"):
        assert (killed / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    metrics = [
        {k: v for k, v in json.loads((run / "metrics.json").read_text()).items() if "seconds" not in k}
        for run in (killed, tmp_path / "whole")
    ]
    assert metrics[0] == metrics[1]
