"""How training scales with the length of the series: seconds per epoch and peak memory, jaxlstm (one and two CPU
devices) against PyTorch ``nn.LSTM``, from 1,000 to 1,000,000 rows.

Each measurement is a fresh process (its peak resident memory is the process's, imports included). The series is a
synthetic random walk made at run time (minute timestamps: a million days would not fit pandas' dates), cut into
the tutorial's 60-step windows by ``jaxlstm.data.prepare`` (90% training rows, MinMax-scaled), features ``Open`` or
``Open, High, Low, Close, Volume``. jaxlstm trains one epoch with ``fit`` (batch 32, compile time apart); PyTorch
trains the same model (``nn.LSTM`` layers with dropout 0.2 between them and after the last, ``nn.Linear``, Adam)
over the same windows, timed over at most ``--torch-batches`` batches and scaled to the whole epoch (said in the
results as ``torch_batches_timed``). jaxlstm's epoch is its first after compilation, so it includes the program's
warm-up (buffer allocation, the thread pool starting); above ``--largest-others`` rows only the vanilla preset with
one feature runs. The windows are views of the scaled series (``jaxlstm.data.window_view``): ``fit`` places the
series and gathers each batch's windows inside the compiled epoch; PyTorch indexes the same views batch by batch.
For the vanilla preset with one feature, ``matmul-floor-2-devices`` is a lower bound for an epoch on two devices:
each device's 16 windows of a batch through the recurrent matmuls alone (``worker_floor``). Issue 14's targets: at
1M rows, one epoch of the vanilla preset at least 8x faster than PyTorch, and the whole process under 1 GB.

    .venv/bin/python benchmarks/scaling.py                            # the default grid (about 20 minutes here)
    .venv/bin/python benchmarks/scaling.py --rows 1000,10000 --archs vanilla --features 1   # a quick look

Writes benchmarks/results/<machine>/scaling.json and .png.
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_environment, run_worker, write_results

FEATURES = {1: ("Open",), 5: ("Open", "High", "Low", "Close", "Volume")}


def dataset(rows: int, features: int) -> Any:
    """The windows of a synthetic random walk of ``rows`` minutes."""
    import numpy as np
    import pandas as pd

    from jaxlstm.data import prepare

    rng = np.random.default_rng(0)
    open_ = 100.0 + np.cumsum(rng.normal(size=rows))
    spread = np.abs(rng.normal(size=(rows, 3)))
    frame = pd.DataFrame(
        {
            "Open": open_,
            "High": open_ + spread[:, 0],
            "Low": open_ - spread[:, 1],
            "Close": open_ + spread[:, 2] - spread[:, 1],
            "Volume": rng.integers(1_000, 10_000, rows).astype(float),
        },
        index=pd.date_range("2000-01-01", periods=rows, freq="min", name="Date"),
    )
    return prepare(frame, features=FEATURES[features], split=0.9)


def peak_megabytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_jaxlstm(args: argparse.Namespace) -> dict[str, Any]:
    os.environ["JAXLSTM_CPU_DEVICES"] = str(args.devices)
    from jaxlstm.training.runtime import limit_heap_arenas, use_cpu_cores

    use_cpu_cores()
    limit_heap_arenas()  # as the CLI does
    from flax import nnx

    from jaxlstm.config import TrainConfig, preset
    from jaxlstm.nn.models import Forecaster
    from jaxlstm.training.single import fit

    data = dataset(args.rows, args.features)
    model = Forecaster(preset(args.arch, n_features=args.features), rngs=nnx.Rngs(0))
    history = fit(model, data.x_train, data.y_train, TrainConfig(epochs=1, devices=args.devices), progress=False)
    return {
        "windows": len(data.x_train),
        "epoch_seconds": history.train_seconds,
        "compile_seconds": history.compile_seconds,
        "peak_mb": peak_megabytes(),
    }


def worker_torch(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import torch

    from jaxlstm.config import preset

    torch.manual_seed(0)
    data = dataset(args.rows, args.features)
    config = preset(args.arch, n_features=args.features)

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(
                args.features, config.units, num_layers=config.layers, batch_first=True, dropout=config.dropout
            )
            self.dropout = torch.nn.Dropout(config.dropout)
            self.head = torch.nn.Linear(config.units, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.dropout(self.lstm(x)[0][:, -1]))[:, 0]

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.from_numpy(np.asarray(data.x_train)), torch.from_numpy(np.asarray(data.y_train).reshape(-1))
    order = torch.randperm(len(x))
    n_batches = -(-len(x) // 32)
    timed = min(n_batches, args.torch_batches)
    start = time.perf_counter()
    for index in range(timed):
        batch = order[index * 32 : (index + 1) * 32]
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x[batch]), y[batch])
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    return {
        "windows": len(x),
        "epoch_seconds": seconds * n_batches / timed,
        "torch_batches_timed": timed,
        "torch_batches": n_batches,
        "peak_mb": peak_megabytes(),
    }


def worker_floor(args: argparse.Namespace) -> dict[str, Any]:
    """A lower bound for jaxlstm's epoch on two devices: each device's share of a batch (16 windows) through the
    recurrent matmuls alone, three (16, 50) x (50, 200)-sized products per step (h U forward; dz U^T and h^T dz
    backward) over 60 steps, in one jitted loop; no input projection, gate arithmetic, optimizer or psum."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxlstm.config import preset

    units, share, steps = preset("vanilla").units, 16, 60
    rng = np.random.default_rng(0)
    weights = jnp.asarray(rng.normal(size=(units, 4 * units)) * 0.1, jnp.float32)
    state = jnp.asarray(rng.normal(size=(share, units)), jnp.float32)

    @jax.jit
    def batch(weights: jax.Array, state: jax.Array) -> jax.Array:
        def forward(h: jax.Array, _: None) -> tuple[jax.Array, jax.Array]:
            gates = h @ weights
            return jnp.tanh(gates[:, :units]), gates

        _, gates = jax.lax.scan(forward, state, None, length=steps)

        def backward(carry: tuple[jax.Array, jax.Array], dz: jax.Array) -> tuple[tuple[jax.Array, jax.Array], None]:
            dh, d_weights = carry
            return (dh + dz @ weights.T, d_weights + dh.T @ dz), None

        (dh, d_weights), _ = jax.lax.scan(backward, (state, jnp.zeros_like(weights)), gates, reverse=True)
        return dh.sum() + d_weights.sum()

    batch(weights, state).block_until_ready()
    timings = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(200):
            result = batch(weights, state)
        result.block_until_ready()
        timings.append((time.perf_counter() - start) / 200)
    per_batch = sorted(timings)[len(timings) // 2]
    windows = int(args.rows * 0.9) - 60
    return {
        "windows": windows,
        "epoch_seconds": per_batch * -(-windows // 32),
        "floor_seconds_per_batch": per_batch,
        "peak_mb": peak_megabytes(),
    }


def plot(rows: list[dict[str, Any]], env: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for key in dict.fromkeys((r["arch"], r["features"], r["implementation"]) for r in rows):
        mine = sorted(
            (r["rows"], r["epoch_seconds"], r["peak_mb"])
            for r in rows
            if (r["arch"], r["features"], r["implementation"]) == key
        )
        label = f"{key[2]}, {key[0]}, {key[1]} feature(s)"
        left.plot([m[0] for m in mine], [m[1] for m in mine], marker="o", label=label)
        right.plot([m[0] for m in mine], [m[2] for m in mine], marker="o", label=label)
    for ax, label in ((left, "seconds per epoch"), (right, "peak resident memory (MB)")):
        ax.set(xscale="log", yscale="log", xlabel="rows of the series", ylabel=label)
        ax.grid(alpha=0.3)
    right.axhline(1024, color="gray", linestyle="--")
    left.legend(fontsize=6)
    fig.suptitle(f"Training on longer series, {env['machine']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


WORKERS = {"jaxlstm": worker_jaxlstm, "torch": worker_torch, "floor": worker_floor}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000,10000,100000,1000000")
    parser.add_argument("--features", default="1,5")
    parser.add_argument("--archs", default="vanilla,stacked")
    parser.add_argument(
        "--largest-others",
        type=int,
        default=100_000,
        help="rows above which only the vanilla preset with one feature runs (the others take too long here)",
    )
    parser.add_argument("--torch-batches", type=int, default=300, help="PyTorch batches timed per epoch")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--arch", help=argparse.SUPPRESS)
    parser.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--rows-one", type=int, dest="rows_one", help=argparse.SUPPRESS)
    parser.add_argument("--features-one", type=int, dest="features_one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.rows, args.features = args.rows_one, args.features_one
        print(json.dumps(WORKERS[args.worker](args)))
        return
    env = environment()
    print_environment(env)
    rows = []
    runs = [("jaxlstm-1-device", "jaxlstm", 1), ("jaxlstm-2-devices", "jaxlstm", 2), ("torch-nn.LSTM", "torch", 1)]
    for arch in args.archs.split(","):
        for features in map(int, args.features.split(",")):
            for n_rows in map(int, args.rows.split(",")):
                if (arch, features) != ("vanilla", 1) and n_rows > args.largest_others:
                    continue
                floor = [("matmul-floor-2-devices", "floor", 1)] if (arch, features) == ("vanilla", 1) else []
                for name, worker, devices in runs + floor:
                    arguments = ["--worker", worker, "--arch", arch, "--devices", str(devices)]
                    arguments += ["--rows-one", str(n_rows), "--features-one", str(features)]
                    arguments += ["--torch-batches", str(args.torch_batches)]
                    result = run_worker(Path(__file__), arguments)
                    row = {"arch": arch, "features": features, "rows": n_rows, "implementation": name, **result}
                    rows.append(row)
                    print(
                        f"{arch:8} {features} feature(s) {n_rows:>8} rows {name:18} {row['epoch_seconds']:9.2f} s "
                        f"per epoch, peak {row['peak_mb']:7.0f} MB",
                        flush=True,
                    )
    folder = write_results("scaling", {"environment": env, "settings": vars(args), "results": rows})
    plot(rows, env, folder / "scaling.png")
    print(f"wrote {folder}/scaling.json and .png")


if __name__ == "__main__":
    main()
