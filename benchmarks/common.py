"""Shared by the benchmark scripts: the machine label, environment report, timing and result files."""

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("JAXLSTM_BENCH_RESULTS") or ROOT / "benchmarks" / "results")
"""Where results go: benchmarks/results, or $JAXLSTM_BENCH_RESULTS (a trial run that must not replace them)."""
SHARED_GOOG = ROOT.parent / "shared" / "data" / "GOOG.csv"
TUTORIAL_START, TUTORIAL_END = "2020-04-01", "2021-03-01"


def machine_label() -> str:
    """A short label for the results folder: ``cpu-2core`` here, ``gpu-<name>`` on an accelerator."""
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return f"cpu-{len(os.sched_getaffinity(0))}core"
    return f"{device.platform}-{device.device_kind.replace(' ', '-').lower()}"


def versions() -> dict[str, str]:
    """Installed versions of the libraries a benchmark may compare."""
    found = {}
    for name in ("jax", "jaxlib", "flax", "optax", "keras", "tensorflow", "tensorflow-cpu", "torch", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def environment() -> dict[str, Any]:
    """Device, versions and thread counts, printed and stored with every result."""
    import jax

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "machine": machine_label(),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "jax_devices": [str(d) for d in jax.devices()],
        "jax_backend": jax.default_backend(),
        "python": sys.version.split()[0],
        "versions": versions(),
        "threads": {
            name: os.environ.get(name, "unset")
            for name in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "XLA_FLAGS")
        },
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def print_environment(env: dict[str, Any]) -> None:
    """The environment, one line each."""
    for key, value in env.items():
        print(f"# {key}: {value}")


def median_seconds(function: Callable[[], Any], repeats: int, block: Callable[[Any], Any]) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls, each result passed to ``block`` to wait for it."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        block(function())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_worker(script: Path, arguments: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Runs ``script --worker ...`` in a fresh Python process and returns the JSON its last line prints,
    with the process's wall time (imports included) as ``process_seconds``."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, str(script), *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"worker {arguments} failed:\n{result.stderr[-3000:]}")
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    payload["process_seconds"] = elapsed
    return payload


def write_results(name: str, content: dict[str, Any]) -> Path:
    """Writes ``benchmarks/results/<machine>/<name>.json`` and returns the folder."""
    folder = RESULTS / content["environment"]["machine"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps(content, indent=2) + "\n")
    return folder
