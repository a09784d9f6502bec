"""What the layer options cost and what mixed precision does to the tutorial's accuracy, in one run.

1. **Accuracy by precision.** The tutorial's pipeline (stacked preset: 4 x LSTM(50) + Dropout(0.2) + Dense(1),
   100 epochs, batch 32, GOOG 2020-04-01..2021-03-01, 172 training rows, 58 test days) trained with
   ``ModelConfig.precision`` float32, bfloat16 and float16 (float32 weights, optimizer and cell state) for the same
   seeds; test RMSE in dollars, the naive (yesterday's price) RMSE beside it, and the largest difference between a
   low-precision model's test forecasts and the float32 model's of the same seed.
2. **Cost of the layer options.** Forward + backward of the tutorial's stack (batch 32, 60 steps, 4 x 50 units),
   median over repeats, compile time apart: the default program, then a mask (every step valid, so the work is the
   same), lengths (random), recurrent dropout, input dropout, bfloat16 and float16 compute, and the textbook path.
3. **Before and after** (``--before REV``): the training step of each preset (gradient of the MSE through the
   Forecaster, dropout on), timed in fresh processes that alternate between jaxlstm at commit REV (a temporary git
   worktree) and the working tree, and the hash of each compiled program (HLO text without its metadata): equal
   hashes mean the options' code left the default program exactly as it was.

    .venv/bin/python benchmarks/layer_options.py --before 4c6c044   # 5 seeds, 20 repeats, against that commit
    .venv/bin/python benchmarks/layer_options.py --seeds 1 --epochs 5 --repeats 3   # a quick look

Writes benchmarks/results/<machine>/layer_options.json and .png.
"""

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    ROOT,
    SHARED_GOOG,
    TUTORIAL_END,
    TUTORIAL_START,
    environment,
    median_seconds,
    print_environment,
    run_worker,
    write_results,
)

from jaxlstm.config import TrainConfig, preset
from jaxlstm.data import load_prices, prepare, select_dates
from jaxlstm.forecasting.predict import evaluate
from jaxlstm.nn.layers import LSTM, Stacked
from jaxlstm.nn.models import Forecaster
from jaxlstm.training.runtime import use_cpu_cores
from jaxlstm.training.single import fit

BATCH, TIME, UNITS, LAYERS = 32, 60, 50, 4


PRESETS = ("vanilla", "stacked", "bidirectional", "conv")


def accuracy(csv: Path, seeds: int, epochs: int) -> list[dict[str, Any]]:
    """One row per (precision, seed): test and naive RMSE, epoch and compile seconds, distance to float32."""
    from jaxlstm.config import PRECISIONS  # imported here: the --worker processes also run older jaxlstm versions

    dataset = prepare(select_dates(load_prices(csv), TUTORIAL_START, TUTORIAL_END), split=172)
    rows, reference = [], {}
    for seed in range(seeds):
        for precision in PRECISIONS:
            model = Forecaster(preset("stacked", precision=precision), rngs=nnx.Rngs(seed))
            settings = TrainConfig(epochs=epochs, seed=seed)
            history = fit(model, dataset.x_train, dataset.y_train, settings, progress=False)
            evaluation = evaluate(model, dataset)
            forecasts = evaluation.predictions
            if precision == "float32":
                reference[seed] = forecasts
            row = {
                "precision": precision,
                "seed": seed,
                "test_rmse": evaluation.model.rmse,
                "naive_rmse": evaluation.naive.rmse,
                "final_loss": history.loss[-1],
                "compile_seconds": history.compile_seconds,
                "epoch_seconds": history.train_seconds / len(history.loss),
                "max_forecast_difference_to_float32": float(np.max(np.abs(forecasts - reference[seed]))),
            }
            rows.append(row)
            print(
                f"seed {seed} {precision:9} test RMSE {row['test_rmse']:7.2f} (naive {row['naive_rmse']:.2f}), "
                f"max |forecast - float32| {row['max_forecast_difference_to_float32']:.2f} $, "
                f"epoch {1000 * row['epoch_seconds']:.1f} ms",
                flush=True,
            )
    return rows


def stack(**options: Any) -> Any:

    rngs = nnx.Rngs(0)
    widths = [(1, UNITS)] + [(UNITS, UNITS)] * (LAYERS - 1)
    return Stacked([LSTM(n_in, hidden, **options, rngs=rngs) for n_in, hidden in widths], dropout=0.2)


VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {  # name: (layer options, call options)
    "default (fused)": ({}, {}),
    "mask, all steps valid": ({}, {"mask": np.ones((BATCH, TIME), bool)}),
    "lengths 30..60": ({}, {"lengths": np.random.default_rng(0).integers(30, TIME + 1, BATCH)}),
    "recurrent_dropout 0.2": ({"recurrent_dropout": 0.2}, {}),
    "dropout 0.2 (inputs)": ({"dropout": 0.2}, {}),
    "bfloat16 compute": ({"dtype": jnp.bfloat16, "cell_dtype": jnp.float32}, {}),
    "float16 compute": ({"dtype": jnp.float16, "cell_dtype": jnp.float32}, {}),
    "textbook": ({"implementation": "textbook"}, {}),
}


def time_variant(layer_options: dict[str, Any], call_options: dict[str, Any], repeats: int) -> tuple[float, float]:
    """Compile seconds and median seconds of ``grad`` of a loss through the stack built with ``layer_options``."""
    x = jax.random.normal(jax.random.key(1), (BATCH, TIME, 1))
    key = jax.random.key(2)
    graphdef, params = nnx.split(stack(**layer_options), nnx.Param)

    def loss(params: Any, x: jax.Array, key: jax.Array) -> jax.Array:
        output = nnx.merge(graphdef, params)(x, dropout_key=key, **call_options)
        return jnp.sum(output.astype(jnp.float32) ** 2)

    start = time.perf_counter()
    compiled = jax.jit(jax.grad(loss)).lower(params, x, key).compile()
    compile_seconds = time.perf_counter() - start
    return compile_seconds, median_seconds(lambda: compiled(params, x, key), repeats, jax.block_until_ready)


def option_costs(repeats: int) -> list[dict[str, Any]]:
    """Compile and median seconds of a training step's forward + backward for each variant."""
    rows = []
    for name, (layer_options, call_options) in VARIANTS.items():
        compile_seconds, seconds = time_variant(layer_options, call_options, repeats)
        rows.append({"variant": name, "compile_seconds": compile_seconds, "seconds": seconds})
        print(f"{name:24} {1000 * seconds:8.2f} ms per step, compile {compile_seconds:.1f} s", flush=True)
    default = rows[0]["seconds"]
    for row in rows:
        row["ratio_to_default"] = row["seconds"] / default
    return rows


def program_hash(compiled: Any) -> str:
    """A compiled program's HLO text without what names its source (metadata, instruction numbering)."""
    text = re.sub(r", metadata=\{[^}]*\}", "", compiled.as_text())
    text = re.sub(r"\.\d+\b", "", text)
    text = "\n".join(
        line
        for line in text.splitlines()
        if not re.match(r"^(HloModule|\d+ |FileNames|FunctionNames|FileLocations|StackFrames)", line)
    )
    return hashlib.sha256(re.sub(r"stack_frame_id=\d+", "", text).encode()).hexdigest()[:16]


def worker_presets(repeats: int) -> dict[str, Any]:
    """Per preset: median seconds of a training step's gradient, and the compiled forward and gradient's hashes."""
    x, y, key = jnp.ones((BATCH, TIME, 1)), jnp.ones((BATCH,)), jax.random.key(0)
    results = {}
    for arch in PRESETS:
        graphdef, state = nnx.split(Forecaster(preset(arch), rngs=nnx.Rngs(0)))

        def loss(state: Any, x: jax.Array, y: jax.Array, key: jax.Array, graphdef: Any = graphdef) -> jax.Array:
            return jnp.mean((nnx.merge(graphdef, state)(x, dropout_key=key) - y) ** 2)

        def forward(state: Any, x: jax.Array, y: jax.Array, key: jax.Array, graphdef: Any = graphdef) -> jax.Array:
            return nnx.merge(graphdef, state)(x)

        gradient = jax.jit(jax.grad(loss)).lower(state, x, y, key).compile()
        forward_program = jax.jit(forward).lower(state, x, y, key).compile()
        step = partial(gradient, state, x, y, key)
        results[arch] = {
            "seconds": median_seconds(step, repeats, jax.block_until_ready),
            "gradient_hlo": program_hash(gradient),
            "forward_hlo": program_hash(forward_program),
        }
    return results


def before_and_after(revision: str, repeats: int, rounds: int = 3) -> dict[str, Any]:
    """Each preset's training step at ``revision`` and in the working tree, alternating processes ``rounds`` times."""
    with tempfile.TemporaryDirectory() as folder:
        before = Path(folder) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before), revision], check=True)
        try:
            runs: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
            for _ in range(rounds):
                for name, tree in (("before", before), ("after", ROOT)):
                    arguments = ["--worker", "--repeats", str(repeats)]
                    runs[name].append(run_worker(Path(__file__), arguments, {"PYTHONPATH": str(tree)}))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before)], check=True)
    table = {}
    for arch in PRESETS:
        seconds = {name: statistics.median(run[arch]["seconds"] for run in rows) for name, rows in runs.items()}
        hashes = {name: {rows[0][arch]["gradient_hlo"], rows[0][arch]["forward_hlo"]} for name, rows in runs.items()}
        table[arch] = {
            "before_seconds": seconds["before"],
            "after_seconds": seconds["after"],
            "ratio": seconds["after"] / seconds["before"],
            "same_compiled_programs": hashes["before"] == hashes["after"],
        }
        print(
            f"{arch:13} before {1000 * seconds['before']:.2f} ms, after {1000 * seconds['after']:.2f} ms, "
            f"same programs: {table[arch]['same_compiled_programs']}",
            flush=True,
        )
    return {"revision": revision, "rounds": rounds, "presets": table}


def plot(accuracy_rows: list[dict[str, Any]], cost_rows: list[dict[str, Any]], env: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from jaxlstm.config import PRECISIONS

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, precision in enumerate(PRECISIONS):
        values = [row["test_rmse"] for row in accuracy_rows if row["precision"] == precision]
        left.scatter([index] * len(values), values, alpha=0.7)
        left.hlines(statistics.median(values), index - 0.2, index + 0.2, color="black")
    left.axhline(accuracy_rows[0]["naive_rmse"], color="gray", linestyle="--", label="naive (yesterday's Open)")
    left.set_xticks(range(len(PRECISIONS)), PRECISIONS)
    left.set_ylabel("test RMSE ($)")
    left.set_title("tutorial, stacked preset, one dot per seed")
    left.legend()
    names = [row["variant"] for row in cost_rows]
    right.barh(names, [1000 * row["seconds"] for row in cost_rows])
    right.invert_yaxis()
    right.set_xlabel("ms per forward + backward (median)")
    right.set_title(f"4 x LSTM(50), batch {BATCH}, {TIME} steps")
    fig.suptitle(f"Layer options and mixed precision, {env['machine']} ({env['cpu']})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=SHARED_GOOG)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--before", metavar="REV", help="also time each preset at this git revision")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker_presets(args.repeats)))
        return

    from jaxlstm.config import PRECISIONS

    if not args.csv.exists():
        sys.exit(f"{args.csv} not found: pass --csv with a Yahoo daily CSV (the tutorial used GOOG)")
    use_cpu_cores()
    env = environment()
    print_environment(env)
    accuracy_rows = accuracy(args.csv, args.seeds, args.epochs)
    cost_rows = option_costs(args.repeats)
    comparison = before_and_after(args.before, args.repeats) if args.before else None
    summary = {
        precision: {
            "median_test_rmse": statistics.median(r["test_rmse"] for r in accuracy_rows if r["precision"] == precision),
            "test_rmse_range": [
                min(r["test_rmse"] for r in accuracy_rows if r["precision"] == precision),
                max(r["test_rmse"] for r in accuracy_rows if r["precision"] == precision),
            ],
            "median_max_forecast_difference_to_float32": statistics.median(
                r["max_forecast_difference_to_float32"] for r in accuracy_rows if r["precision"] == precision
            ),
            "median_epoch_seconds": statistics.median(
                r["epoch_seconds"] for r in accuracy_rows if r["precision"] == precision
            ),
        }
        for precision in PRECISIONS
    }
    for precision, row in summary.items():
        print(f"{precision:9} {row}")
    content = {
        "environment": env,
        "settings": {k: str(v) for k, v in vars(args).items()},
        "accuracy_summary": summary,
        "accuracy": accuracy_rows,
        "option_costs": cost_rows,
        "before_and_after": comparison,
    }
    folder = write_results("layer_options", content)
    plot(accuracy_rows, cost_rows, env, folder / "layer_options.png")
    print(f"wrote {folder}/layer_options.json and .png")


if __name__ == "__main__":
    main()
