"""When does splitting each batch over the CPU cores pay? One training epoch per preset and width, on one device and
on two, in the same process run.

``jaxlstm.training.fit`` can split every batch over several devices (data parallel: each device runs its share of the
batch and one ``psum`` per step adds the gradients). On a CPU each device is one core. The split saves time when a
share's work outweighs the cost of the ``psum`` and of the second program; this script measures where that is, for
the presets (vanilla, stacked, bidirectional, conv) at several widths, on synthetic random-walk windows (60 days,
batch 32), so that the default rule of :func:`jaxlstm.training.split_devices` can be derived from it.

    .venv/bin/python benchmarks/batch_split.py
    .venv/bin/python benchmarks/batch_split.py --windows 500 --epochs 2 --units 50   # a quick look

Writes benchmarks/results/<machine>/batch_split.json and .png.
"""

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

from jaxlstm.training.runtime import use_cpu_cores

use_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_environment, write_results  # noqa: E402

from jaxlstm.config import TrainConfig, preset  # noqa: E402
from jaxlstm.nn.models import Forecaster  # noqa: E402
from jaxlstm.training.single import fit  # noqa: E402

WINDOW = 60


def forward_gflop_per_batch(arch: str, units: int) -> float:
    """XLA's count of the floating-point operations of one forward pass over a batch of 32 windows."""
    model = Forecaster(preset(arch, units=units), rngs=nnx.Rngs(0))
    batch = jnp.zeros((32, WINDOW, 1))
    cost = jax.jit(lambda x: model(x)).lower(batch).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, list) else cost
    return float(cost["flops"]) / 1e9


def epoch_seconds(arch: str, units: int, devices: int, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Median seconds of the epochs after the first (compilation excluded) of ``fit`` on ``devices`` devices."""
    model = Forecaster(preset(arch, units=units), rngs=nnx.Rngs(0))
    history = fit(model, x, y, TrainConfig(epochs=epochs, devices=devices), progress=False)
    return history.train_seconds / len(history.loss)


def plot(rows: list[dict[str, Any]], env: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for arch in dict.fromkeys(row["arch"] for row in rows):
        mine = sorted((row["gflop_per_batch"], row["speedup"]) for row in rows if row["arch"] == arch)
        ax.plot(*zip(*mine, strict=True), marker="o", label=arch)
    ax.axhline(1.0, color="gray", linestyle="--")
    ax.set_xscale("log")
    ax.set_xlabel("forward GFLOP per batch of 32 (XLA's cost analysis)")
    ax.set_ylabel("epoch time on 1 device / on 2 devices")
    ax.set_title(f"Splitting each batch over two CPU devices, {env['machine']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", default="vanilla,stacked,bidirectional,conv")
    parser.add_argument("--units", default="16,50,128")
    parser.add_argument("--windows", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    walk = np.cumsum(np.random.default_rng(0).normal(size=args.windows + WINDOW)).astype(np.float32)
    walk = (walk - walk.min()) / (walk.max() - walk.min())
    x = np.stack([walk[i : i + WINDOW] for i in range(args.windows)])[..., None]
    y = walk[WINDOW:]
    rows = []
    for arch in args.archs.split(","):
        for units in map(int, args.units.split(",")):
            seconds = {devices: epoch_seconds(arch, units, devices, x, y, args.epochs) for devices in (1, 2)}
            row = {
                "arch": arch,
                "units": units,
                "gflop_per_batch": forward_gflop_per_batch(arch, units),
                "one_device_seconds": seconds[1],
                "two_device_seconds": seconds[2],
                "speedup": seconds[1] / seconds[2],
            }
            rows.append(row)
            print(
                f"{arch:13} H={units:<4} {row['gflop_per_batch']:8.4f} GFLOP/batch: 1 device {seconds[1]:.3f} s, "
                f"2 devices {seconds[2]:.3f} s per epoch ({row['speedup']:.2f}x)",
                flush=True,
            )
    summary = {
        "wins": sorted(row["gflop_per_batch"] for row in rows if row["speedup"] > 1.05),
        "losses": sorted(row["gflop_per_batch"] for row in rows if row["speedup"] < 0.95),
        "median_speedup": statistics.median(row["speedup"] for row in rows),
    }
    folder = write_results("batch_split", {"environment": env, "settings": vars(args), "results": rows, **summary})
    plot(rows, env, folder / "batch_split.png")
    print(f"wrote {folder}/batch_split.json and .png")


if __name__ == "__main__":
    main()
