"""`jaxlstm backtest` and `jaxlstm train` across two processes on 127.0.0.1, with JAX's own multi-process runtime
(gloo collectives on CPU), each process with 2 CPU devices: the forecasts equal a single process's, and a backtest
or a training run whose processes are killed mid-run resumes, in two processes again, to the same forecasts."""

import os
import platform
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from jaxlstm.commands import main
from jaxlstm.runs import BACKTEST_CHECKPOINTS_DIR, CHECKPOINTS_DIR
from tests.test_checkpoint import SLOW_CHILD

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [
    *("--last-rows", "260", "--folds", "2", "--test-days", "5", "--train-days", "120", "--seeds", "2"),
    *("--arch", "vanilla", "--units", "4", "--epochs", "4", "--quiet"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(arguments: list[str], *, code: str | None = None) -> list[subprocess.Popen]:
    """Both processes of one run, each told the coordinator's address, the process count and its id."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "JAXLSTM_CPU_DEVICES": "2",
    }
    start = [sys.executable, "-c", code] if code else [sys.executable, "-m", "jaxlstm"]
    return [
        subprocess.Popen(
            [*start, *arguments, "--coordinator", f"127.0.0.1:{port}", "--processes", "2", "--process-id", str(rank)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in range(2)
    ]


def finish(processes: list[subprocess.Popen], timeout: float = 240) -> None:
    for process in processes:
        _, err = process.communicate(timeout=timeout)
        assert process.returncode == 0, err[-3000:]


def kill_after_checkpoint(processes: list[subprocess.Popen], checkpoints: Path, epoch: int) -> None:
    """SIGKILL both processes once process 0 has written the checkpoint of ``epoch`` (the other, waiting for its
    peer, is killed too, as a launcher would)."""
    try:
        deadline = time.monotonic() + 240
        while not any(checkpoints.glob(f"epoch-{epoch:06d}*")):
            assert all(p.poll() is None for p in processes), processes[0].stderr.read()[-3000:]
            assert time.monotonic() < deadline, f"no checkpoint of epoch {epoch} within 240 s"
            time.sleep(0.05)
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGKILL)
            process.communicate()


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["backtest", *SETTINGS, "--out", str(out)]) == 0
    return out


def forecasts(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "predictions.csv")


def assert_same_forecasts(run: Path, reference: Path) -> None:
    ours, theirs = forecasts(run), forecasts(reference)
    assert list(ours.columns) == list(theirs.columns) and len(ours) == len(theirs)
    numeric = ours.select_dtypes("number").columns
    np.testing.assert_allclose(ours[numeric].to_numpy(), theirs[numeric].to_numpy(), rtol=1e-5)


def test_two_processes_give_the_forecasts_of_one(single: Path, tmp_path: Path) -> None:
    out = tmp_path / "two"
    finish(launch(["backtest", *SETTINGS, "--out", str(out)]))
    assert_same_forecasts(out, single)
    assert not (out / BACKTEST_CHECKPOINTS_DIR).exists()


def test_a_training_run_over_two_processes_equals_one_process_and_resumes_after_a_kill(tmp_path: Path) -> None:
    """Each batch of 32 split over the 4 devices of two processes (a psum across them per step), both processes
    killed after the checkpoint of epoch 2 and `--resume`d in two new processes, against one process with 4 devices
    never interrupted: the same predictions."""
    settings = ["train", "--arch", "stacked", "--layers", "2", "--units", "8", "--epochs", "4", "--quiet"]
    one = tmp_path / "one"
    subprocess.run(
        [sys.executable, "-m", "jaxlstm", *settings, "--devices", "4", "--out", str(one)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "JAXLSTM_CPU_DEVICES": "4"},
        check=True,
        capture_output=True,
    )
    two = tmp_path / "two"
    processes = launch([*settings, "--checkpoint-every", "1", "--out", str(two)], code=SLOW_CHILD)
    kill_after_checkpoint(processes, two / CHECKPOINTS_DIR, 2)
    assert not (two / "predictions.csv").exists()
    finish(launch(["train", "--resume", str(two)]))
    assert_same_forecasts(two, one)
    assert not any(path.name.startswith("process") for path in two.iterdir())


def test_processes_killed_mid_run_resume_together(single: Path, tmp_path: Path) -> None:
    """Both processes of a backtest killed after the checkpoint of epoch 2, then `--resume` in two new processes."""
    out = tmp_path / "killed"
    processes = launch(["backtest", *SETTINGS, "--checkpoint-every", "1", "--out", str(out)], code=SLOW_CHILD)
    kill_after_checkpoint(processes, out / BACKTEST_CHECKPOINTS_DIR, 2)
    assert not (out / "predictions.csv").exists()
    finish(launch(["backtest", "--resume", str(out)]))
    assert_same_forecasts(out, single)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--coordinator", "127.0.0.1:1234"],
            "several processes need --coordinator, --processes, --process-id together; add --processes, --process-id",
        ),
        (
            ["--coordinator", "127.0.0.1:1234", "--processes", "2", "--process-id", "2"],
            "--process-id 2 must be in [0, 2) for --processes 2",
        ),
    ],
    ids=["processes-incomplete", "process-id-out-of-range"],
)
def test_an_incomplete_process_setting_is_refused(tmp_path: Path, capsys, extra: list[str], message: str) -> None:
    """In a subprocess: the check runs before JAX starts, which a test process has long done."""
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "jaxlstm", "backtest", *SETTINGS, "--out", str(out), *extra],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == f"jaxlstm: error: {message}\n"
    assert not out.exists()


def test_cpu_devices_can_be_set_for_a_process() -> None:
    code = "from jaxlstm.training.runtime import use_cpu_cores; import jax; use_cpu_cores(); print(len(jax.devices()))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "JAXLSTM_CPU_DEVICES": "3"},
        check=True,
    )
    assert result.stdout.strip() == "3"


ARENAS = """
import ctypes, sys, threading
from jaxlstm.training.runtime import limit_heap_arenas
if sys.argv[1] == "cap":
    assert limit_heap_arenas(2)
together = threading.Barrier(8)
def allocate():
    blocks = [bytearray(200) for _ in range(1000)]
    together.wait()  # all eight threads alive at once, each wanting a heap
threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena N:" block per heap, on stderr
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")
def test_heap_arenas_are_capped() -> None:
    """Eight threads alive at once get heaps of their own from glibc (nine arenas with the main thread's), two
    once limit_heap_arenas(2) ran, as MALLOC_ARENA_MAX=2 would give; glibc's own malloc_stats counts them."""
    counts = {}
    for mode in ("cap", "none"):
        result = subprocess.run(
            [sys.executable, "-c", ARENAS, mode],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=True,
        )
        counts[mode] = sum(line.startswith("Arena ") for line in result.stderr.splitlines())
    assert counts["cap"] == 2 < counts["none"]  # glibc's own limit is 8 per core: 9 here on two or more cores
