"""A walk-forward backtest across devices and processes: models trained per second for 1, 2, 4 and 8 CPU devices,
in one process or split over two (JAX's multi-process runtime on 127.0.0.1, gloo collectives).

Every configuration runs the same ``jaxlstm backtest`` (8 folds x 4 seeds = 32 models of the vanilla preset with 16
units, 20 epochs, on the bundled GOOG prices) in fresh processes, ``JAXLSTM_CPU_DEVICES`` devices each, without the
compilation cache; process 0's metrics.json gives the training and compile seconds. On a machine with fewer cores
than devices, the devices share the cores: the figures then show what the extra devices and processes cost, not
what they gain (the dev machine has 2 cores).

    .venv/bin/python benchmarks/scale_out.py
    .venv/bin/python benchmarks/scale_out.py --devices 1,2 --processes 1,2 --epochs 2   # a quick look

Writes benchmarks/results/<machine>/scale_out.json and .png.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_environment, write_results

BACKTEST = [
    *("backtest", "--last-rows", "700", "--folds", "8", "--test-days", "10", "--train-days", "250", "--seeds", "4"),
    *("--arch", "vanilla", "--units", "16", "--quiet"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(devices: int, processes: int, epochs: int, folder: Path) -> dict[str, Any]:
    """One backtest over ``devices`` devices in all, split evenly over ``processes`` processes."""
    out = folder / f"d{devices}-p{processes}"
    env = {**os.environ, "JAXLSTM_CPU_DEVICES": str(devices // processes), "JAXLSTM_CACHE_DIR": ""}
    argv = [sys.executable, "-m", "jaxlstm", *BACKTEST, "--epochs", str(epochs), "--out", str(out)]
    if processes > 1:
        argv += ["--coordinator", f"127.0.0.1:{free_port()}", "--processes", str(processes)]
    start = time.perf_counter()
    children = [
        subprocess.Popen(
            argv + (["--process-id", str(rank)] if processes > 1 else []),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in range(processes)
    ]
    for child in children:
        _, err = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"{argv} failed:\n{err[-3000:]}")
    wall = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    models = metrics["models"]
    return {
        "devices": devices,
        "processes": processes,
        "devices_per_process": devices // processes,
        "models": models,
        "epochs": epochs,
        "compile_seconds": metrics["compile_seconds"],
        "train_seconds": metrics["train_seconds"],
        "models_per_second": models / metrics["train_seconds"],
        "wall_seconds": wall,
    }


def plot(rows: list[dict[str, Any]], env: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for processes in sorted({row["processes"] for row in rows}):
        mine = [row for row in rows if row["processes"] == processes]
        ax.plot(
            [row["devices"] for row in mine],
            [row["models_per_second"] for row in mine],
            marker="o",
            label=f"{processes} process{'es' if processes > 1 else ''}",
        )
    ax.set_xscale("log", base=2)
    ax.set_xlabel("CPU devices in all")
    ax.set_ylabel(f"models trained per second ({rows[0]['epochs']} epochs each)")
    ax.set_title(f"Backtest of {rows[0]['models']} models across devices and processes, {env['machine']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", default="1,2,4,8")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for processes in map(int, args.processes.split(",")):
            for devices in map(int, args.devices.split(",")):
                if devices % processes:
                    continue
                row = run(devices, processes, args.epochs, Path(folder))
                rows.append(row)
                print(
                    f"{devices} devices, {processes} process(es): {row['models_per_second']:.2f} models/s "
                    f"(train {row['train_seconds']:.1f} s, compile {row['compile_seconds']:.1f} s, "
                    f"wall {row['wall_seconds']:.1f} s)",
                    flush=True,
                )
    folder = write_results("scale_out", {"environment": env, "settings": vars(args), "results": rows})
    plot(rows, env, folder / "scale_out.png")
    print(f"wrote {folder}/scale_out.json and .png")


if __name__ == "__main__":
    main()
