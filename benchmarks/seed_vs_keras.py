"""The tutorial's full pipeline in jaxlstm, Keras (TensorFlow and JAX backends) and PyTorch, in one invocation.

Every implementation trains the same model (stacked: 4 x LSTM(50) + Dropout(0.2) + Dense(1); bidirectional: the
same with each LSTM in Bidirectional) on the same windows of the tutorial's GOOG data (2020-04-01..2021-03-01, 172
training rows, 112 windows of 60 days), with Adam (lr 1e-3, epsilon 1e-7), MSE, 100 epochs, batch 32, shuffled,
last partial batch kept, and is scored on the same 58 test days. Each run is a fresh Python process (a Keras
backend is fixed per process); the implementations take turns within each repeat, and the report gives medians.

The JAX implementations run twice: cold (no persistent compilation cache: everything is compiled, as on a first
run) and ``-warm`` (JAX's persistent compilation cache, filled by one untimed run before the repeats, as on every
later run; the ``jaxlstm`` CLI turns it on by default). Keras-TF and PyTorch have no such cache to warm.

    .venv/bin/python benchmarks/seed_vs_keras.py                # 3 repeats, both presets, all peers
    .venv/bin/python benchmarks/seed_vs_keras.py --repeats 1 --epochs 5 --archs stacked   # a quick look

Writes benchmarks/results/<machine>/seed_vs_keras.json and .png.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    SHARED_GOOG,
    TUTORIAL_END,
    TUTORIAL_START,
    environment,
    print_environment,
    run_worker,
    write_results,
)

CACHE_ENV = (
    "JAXLSTM_CACHE_DIR"  # jaxlstm.training.runtime.CACHE_ENV, spelled out: the peers' workers must not import JAX
)
IMPLEMENTATIONS = {  # name: (worker, environment, uses a warm compilation cache)
    "jaxlstm": ("jaxlstm", {CACHE_ENV: ""}, False),
    "jaxlstm-warm": ("jaxlstm", {}, True),
    "jaxlstm-cli": ("jaxlstm-cli", {CACHE_ENV: ""}, False),
    "jaxlstm-cli-warm": ("jaxlstm-cli", {}, True),
    "keras-tensorflow": ("keras", {"KERAS_BACKEND": "tensorflow"}, False),
    "keras-jax": ("keras", {"KERAS_BACKEND": "jax"}, False),
    "keras-jax-warm": ("keras", {"KERAS_BACKEND": "jax"}, True),
    "torch": ("torch", {}, False),
}
PEERS = ("keras-tensorflow", "keras-jax", "keras-jax-warm", "torch")
PROCESS_ROW = {"jaxlstm": "jaxlstm-cli", "jaxlstm-warm": "jaxlstm-cli-warm"}  # the library's fit, run by the CLI


def load_dataset(args: argparse.Namespace):
    from jaxlstm.data import load_prices, prepare, select_dates

    return prepare(select_dates(load_prices(args.csv), args.start, args.end), split=172)


def rmse(dataset, predictions: np.ndarray) -> tuple[float, float]:
    """RMSE of the scaled predictions (n,) in price units, and the naive baseline's."""
    prices = dataset.target_scaler.inverse_transform(np.asarray(predictions, np.float64).reshape(-1, 1))[:, 0]
    model = float(np.sqrt(np.mean((prices - dataset.test_prices) ** 2)))
    naive = float(np.sqrt(np.mean((dataset.previous_prices - dataset.test_prices) ** 2)))
    return model, naive


def peer_result(
    dataset, predictions: np.ndarray, fit_seconds: float, epoch_seconds: list[float], final_loss: float
) -> dict[str, Any]:
    """A peer's timings and scores; its first epoch includes its tracing and compilation."""
    test_rmse, naive_rmse = rmse(dataset, predictions)
    return {
        "fit_seconds": fit_seconds,
        "compile_or_first_epoch_seconds": epoch_seconds[0],
        "steady_epoch_seconds": statistics.median(epoch_seconds[1:] or epoch_seconds),
        "test_rmse": test_rmse,
        "naive_rmse": naive_rmse,
        "final_loss": final_loss,
    }


def worker_jaxlstm(args: argparse.Namespace) -> dict[str, Any]:
    from jaxlstm.training.runtime import use_compilation_cache, use_cpu_cores

    use_cpu_cores()
    use_compilation_cache()  # as the CLI does; the environment turns it off for the cold runs
    from flax import nnx

    from jaxlstm.config import TrainConfig, preset
    from jaxlstm.forecasting.predict import evaluate
    from jaxlstm.nn.models import Forecaster
    from jaxlstm.training.single import fit

    dataset = load_dataset(args)
    model = Forecaster(preset(args.arch, precision=args.precision), rngs=nnx.Rngs(args.seed))
    start = time.perf_counter()
    history = fit(
        model, dataset.x_train, dataset.y_train, TrainConfig(epochs=args.epochs, seed=args.seed), progress=False
    )
    fit_seconds = time.perf_counter() - start
    evaluation = evaluate(model, dataset)
    return {
        "fit_seconds": fit_seconds,
        "compile_or_first_epoch_seconds": history.compile_seconds,
        "steady_epoch_seconds": history.train_seconds / len(history.loss),
        "test_rmse": evaluation.model.rmse,
        "naive_rmse": evaluation.naive.rmse,
        "final_loss": history.loss[-1],
        "devices": history.devices,
    }


def worker_jaxlstm_cli(args: argparse.Namespace) -> dict[str, Any]:
    from jaxlstm.commands import main

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        status = main(
            [
                *("train", "--csv", str(args.csv), "--start", args.start, "--end", args.end, "--arch", args.arch),
                *("--epochs", str(args.epochs), "--seed", str(args.seed), "--out", str(out), "--quiet"),
                *("--precision", args.precision),
            ]
        )
        metrics = json.loads((out / "metrics.json").read_text())
    if status != 0:
        raise RuntimeError(f"jaxlstm train exited {status}")
    return {"test_rmse": metrics["model"]["rmse"], "naive_rmse": metrics["naive"]["rmse"]}


def worker_keras(args: argparse.Namespace) -> dict[str, Any]:
    """The tutorial's Keras code, with a callback that times each epoch."""
    import keras

    dataset = load_dataset(args)
    keras.utils.set_random_seed(args.seed)
    model = keras.Sequential([keras.Input((dataset.window, 1))])
    for index in range(4):
        lstm = keras.layers.LSTM(units=50, return_sequences=index < 3)
        model.add(keras.layers.Bidirectional(lstm) if args.arch == "bidirectional" else lstm)
        model.add(keras.layers.Dropout(0.2))
    model.add(keras.layers.Dense(units=1))
    model.compile(optimizer="adam", loss="mean_squared_error")

    epoch_seconds: list[float] = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            epoch_seconds.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    history = model.fit(
        dataset.x_train, dataset.y_train, epochs=args.epochs, batch_size=32, verbose=0, callbacks=[EpochTimer()]
    )
    fit_seconds = time.perf_counter() - start
    predictions = model.predict(dataset.x_test, verbose=0)[:, 0]
    return peer_result(dataset, predictions, fit_seconds, epoch_seconds, float(history.history["loss"][-1]))


def worker_torch(args: argparse.Namespace) -> dict[str, Any]:
    """The same model with PyTorch's ``nn.LSTM`` (oneDNN on CPU) and a plain training loop."""
    import torch
    from torch import nn

    dataset = load_dataset(args)
    torch.manual_seed(args.seed)
    directions = 2 if args.arch == "bidirectional" else 1

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            bidirectional = directions == 2
            self.lstm = nn.LSTM(1, 50, num_layers=4, batch_first=True, dropout=0.2, bidirectional=bidirectional)
            self.dropout = nn.Dropout(0.2)
            self.head = nn.Linear(50 * directions, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            _, (h_n, _) = self.lstm(x)  # h_n: (layers * directions, batch, 50); the last layer's final states
            last = h_n[-directions:].transpose(0, 1).reshape(x.shape[0], -1)
            return self.head(self.dropout(last))[:, 0]

    model = Model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x_train, y_train = torch.from_numpy(dataset.x_train), torch.from_numpy(dataset.y_train)
    epoch_seconds, losses = [], []
    start = time.perf_counter()
    for _ in range(args.epochs):
        epoch_start = time.perf_counter()
        model.train()
        total = 0.0
        for indices in torch.randperm(len(x_train)).split(32):
            optimizer.zero_grad()
            loss = nn.functional.mse_loss(model(x_train[indices]), y_train[indices])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(indices)
        losses.append(total / len(x_train))
        epoch_seconds.append(time.perf_counter() - epoch_start)
    fit_seconds = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        predictions = model(torch.from_numpy(dataset.x_test)).numpy()
    return {
        **peer_result(dataset, predictions, fit_seconds, epoch_seconds, losses[-1]),
        "torch_threads": torch.get_num_threads(),
    }


WORKERS = {"jaxlstm": worker_jaxlstm, "jaxlstm-cli": worker_jaxlstm_cli, "keras": worker_keras, "torch": worker_torch}


def cache_environment(folder: Path) -> dict[str, str]:
    """Environment variables that give a worker JAX's persistent compilation cache in ``folder`` (for jaxlstm too:
    ``use_compilation_cache`` keeps a cache that JAX's own settings configured)."""
    return {"JAX_COMPILATION_CACHE_DIR": str(folder), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def roofline_seconds(arch: str, epochs: int, n_samples: int = 112, time_steps: int = 60, units: int = 50) -> float:
    """The issue's roofline for this workload on the dev machine: the recurrent matmuls (forward h U, backward
    dz U^T and dU) at the in-loop small-GEMM rate (50 GFLOP/s) plus the input projections (forward x W, backward
    dx and dW) at the large-GEMM rate (100 GFLOP/s). FLOPs: 2 per multiply-add; the first layer's 1-wide input
    projection is negligible."""
    directions = 2 if arch == "bidirectional" else 1
    pass_flops = 2 * n_samples * time_steps * units * 4 * units * directions  # one (H, 4H) matmul pass, 1 layer
    recurrent = 3 * 4 * pass_flops
    inputs = 3 * 3 * pass_flops * directions  # layers 2-4 read 50 (or 100) features
    return epochs * (recurrent / 50e9 + inputs / 100e9)


def summarize(runs: list[dict[str, Any]], archs: list[str], epochs: int) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for arch in archs:
        table: dict[str, Any] = {}
        for name in IMPLEMENTATIONS:
            mine = [run for run in runs if run["implementation"] == name and run["arch"] == arch]
            if not mine:
                continue
            table[name] = {
                key: statistics.median(run[key] for run in mine)
                for key in mine[0]
                if isinstance(mine[0][key], float) and key != "seed"
            }
            table[name]["test_rmse_range"] = [min(r["test_rmse"] for r in mine), max(r["test_rmse"] for r in mine)]
            table[name]["repeats"] = len(mine)
        for ours in ("jaxlstm", "jaxlstm-warm"):
            for name in PEERS:
                if ours in table and name in table:
                    table[name][f"fit_ratio_to_{ours}"] = table[name]["fit_seconds"] / table[ours]["fit_seconds"]
                if PROCESS_ROW[ours] in table and name in table:
                    ratio = table[name]["process_seconds"] / table[PROCESS_ROW[ours]]["process_seconds"]
                    table[name][f"process_ratio_to_{PROCESS_ROW[ours]}"] = ratio
        table["roofline_seconds"] = roofline_seconds(arch, epochs)
        summary[arch] = table
    return summary


def print_summary(summary: dict[str, Any]) -> None:
    for arch, table in summary.items():
        print(f"\n{arch} (roofline {table['roofline_seconds']:.1f} s)")
        print(
            f"{'implementation':18} {'first/compile':>13} {'epoch ms':>9} {'fit s':>7} {'process s':>9} {'RMSE':>7} "
            f"{'naive':>7} {'fit ratio':>9}"
        )
        for name, row in table.items():
            if name == "roofline_seconds":
                continue
            nan = float("nan")
            print(
                f"{name:18} {row.get('compile_or_first_epoch_seconds', nan):13.2f} "
                f"{1000 * row.get('steady_epoch_seconds', nan):9.1f} {row.get('fit_seconds', nan):7.1f} "
                f"{row['process_seconds']:9.1f} {row['test_rmse']:7.2f} {row['naive_rmse']:7.2f} "
                f"{row.get('fit_ratio_to_jaxlstm', 1.0):9.2f}"
            )


def plot(summary: dict[str, Any], env: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    archs = list(summary)
    processes_only = set(PROCESS_ROW.values())
    names = [name for name in IMPLEMENTATIONS if name not in processes_only and any(name in summary[a] for a in archs)]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    width = 0.8 / len(names)
    for index, name in enumerate(names):
        offsets = np.arange(len(archs)) + index * width
        fits = [summary[a].get(name, {}).get("fit_seconds", np.nan) for a in archs]
        bars = axes[0].bar(offsets, fits, width, label=name)
        axes[0].bar_label(bars, fmt="%.1f", fontsize=8)
        processes = [summary[a].get(PROCESS_ROW.get(name, name), {}).get("process_seconds", np.nan) for a in archs]
        label = f"jaxlstm train (CLI){name.removeprefix('jaxlstm')}" if name in PROCESS_ROW else name
        bars = axes[1].bar(offsets, processes, width, label=label)
        axes[1].bar_label(bars, fmt="%.0f", fontsize=8)
    for ax in axes:
        ax.set_xticks(np.arange(len(archs)) + width * (len(names) - 1) / 2, archs)
    axes[0].plot([], [])
    for position, arch in enumerate(archs):
        roof = summary[arch]["roofline_seconds"]
        axes[0].hlines(
            roof,
            position - width / 2,
            position + width * (len(names) - 0.5),
            colors="black",
            linestyles=":",
            label="roofline" if position == 0 else None,
        )
    axes[0].set(ylabel="seconds (median)", title="model.fit, 100 epochs (compile included)")
    axes[1].set(ylabel="seconds (median)", title="whole process, imports included")
    axes[0].legend(fontsize=8)
    axes[1].legend(fontsize=8)
    fig.suptitle(f"Tutorial pipeline on GOOG 2020-04..2021-03, {env['machine']} ({env['cpu']})")
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=SHARED_GOOG)
    parser.add_argument("--start", default=TUTORIAL_START)
    parser.add_argument("--end", default=TUTORIAL_END)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--archs", default="stacked,bidirectional")
    parser.add_argument("--implementations", default=",".join(IMPLEMENTATIONS))
    parser.add_argument(
        "--precision",
        choices=("float32", "bfloat16", "float16"),
        default="float32",
        help="jaxlstm's compute precision (ModelConfig.precision); the peers train in float32",
    )
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--arch", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return
    if not args.csv.exists():
        sys.exit(f"{args.csv} not found: pass --csv with a Yahoo daily CSV (the tutorial used GOOG)")
    os.environ.pop("JAX_COMPILATION_CACHE_DIR", None)  # a cache of the caller's would make the cold runs warm
    env = environment()
    print_environment(env)
    archs = args.archs.split(",")
    names = args.implementations.split(",")
    runs = []
    settings = {k: str(v) for k, v in vars(args).items() if k not in ("worker", "arch", "seed")}
    stem = "seed_vs_keras" if args.precision == "float32" else f"seed_vs_keras-{args.precision}"

    def save() -> Path:  # after every run, so that a run stopped at a time limit keeps what it measured
        summary = summarize(runs, archs, args.epochs)
        return write_results(stem, {"environment": env, "settings": settings, "summary": summary, "runs": runs})

    with tempfile.TemporaryDirectory() as caches:

        def run(name: str, arch: str, seed: int) -> dict[str, Any]:
            worker, worker_env, warm = IMPLEMENTATIONS[name]
            if warm:
                worker_env = {**worker_env, **cache_environment(Path(caches) / f"{name}-{arch}")}
            worker_args = ["--worker", worker, "--arch", arch, "--seed", str(seed), "--epochs", str(args.epochs)]
            worker_args += ["--csv", str(args.csv), "--start", args.start, "--end", args.end]
            worker_args += ["--precision", args.precision]
            return run_worker(Path(__file__), worker_args, worker_env)

        for arch in archs:
            for name in names:
                if IMPLEMENTATIONS[name][2]:
                    run(name, arch, seed=0)  # untimed: fills this implementation's compilation cache
        for seed in range(args.repeats):
            for arch in archs:
                for name in names:
                    result = run(name, arch, seed)
                    runs.append({"implementation": name, "arch": arch, "seed": seed, **result})
                    print(
                        f"repeat {seed} {arch:13} {name:17} "
                        + ", ".join(f"{k} {v:.3g}" for k, v in result.items() if isinstance(v, float)),
                        flush=True,
                    )
                    save()
    folder = save()
    summary = summarize(runs, archs, args.epochs)
    print_summary(summary)
    plot(summary, env, folder / f"{stem}.png")
    print(f"\nwrote {folder}/{stem}.json and .png")


if __name__ == "__main__":
    main()
