"""N independent tutorial models trained in one program, against N sequential runs. In that program
(``jaxlstm.training.ensemble``) each CPU core trains its models one after another; a GPU trains them side by side
(vmap).

Every model trains on the tutorial's windows (bundled GOOG, last 230 rows: 112 windows of 60 days) with its own
seed. For each N the script times ``jaxlstm.training.fit_ensemble`` and reports models trained per second in steady
state (compilation, timed apart, excluded). The sequential baseline is ``jaxlstm.training.fit`` run one
model after another with the default devices (on a multi-core CPU it splits each batch over the cores); it is
measured for the first ``--sequential`` models and its per-model median extrapolated to N, labelled as such.

    .venv/bin/python benchmarks/ensemble.py                       # N = 1, 8, 64, 512; 10 epochs each
    .venv/bin/python benchmarks/ensemble.py --sizes 1,8 --epochs 3  # a quick look

Writes benchmarks/results/<machine>/ensemble.json and .png.
"""

import argparse
import statistics
import sys
from pathlib import Path

from jaxlstm.training.runtime import use_cpu_cores

use_cpu_cores()

from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, environment, print_environment, write_results  # noqa: E402

from jaxlstm.config import TrainConfig, preset  # noqa: E402
from jaxlstm.data import load_prices, prepare  # noqa: E402
from jaxlstm.nn.models import Forecaster  # noqa: E402
from jaxlstm.training.ensemble import fit_ensemble  # noqa: E402
from jaxlstm.training.single import fit  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,8,64,512")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--arch", default="stacked")
    parser.add_argument("--sequential", type=int, default=3, help="sequential runs actually timed")
    args = parser.parse_args()
    env = environment()
    print_environment(env)

    dataset = prepare(load_prices(ROOT / "data" / "GOOG.csv").iloc[-230:], split=172)
    model_config = preset(args.arch)
    config = TrainConfig(epochs=args.epochs)

    sequential = []
    for seed in range(args.sequential):
        model = Forecaster(model_config, rngs=nnx.Rngs(seed))
        history = fit(
            model, dataset.x_train, dataset.y_train, TrainConfig(epochs=args.epochs, seed=seed), progress=False
        )
        sequential.append({"compile_seconds": history.compile_seconds, "train_seconds": history.train_seconds})
    per_model = statistics.median(run["train_seconds"] for run in sequential)
    compile_per_model = statistics.median(run["compile_seconds"] for run in sequential)
    print(f"sequential fit: {per_model:.2f} s training + {compile_per_model:.2f} s compile per model (median)")

    rows = []

    def save() -> Path:  # after every size, so that a run stopped at a time limit keeps what it measured
        content = {"environment": env, "settings": vars(args), "sequential_runs": sequential, "results": rows}
        return write_results("ensemble", content)

    for size in map(int, args.sizes.split(",")):
        ensemble = fit_ensemble(model_config, dataset.x_train, dataset.y_train, config, seeds=list(range(size)))
        row = {
            "models": size,
            "ensemble_compile_seconds": ensemble.compile_seconds,
            "ensemble_train_seconds": ensemble.train_seconds,
            "ensemble_models_per_second": size / ensemble.train_seconds,
            "sequential_train_seconds_extrapolated": per_model * size,
            "sequential_models_per_second": 1 / per_model,
            "speedup": per_model * size / ensemble.train_seconds,
        }
        rows.append(row)
        print(
            f"N={size:4}: ensemble {ensemble.train_seconds:8.2f} s training + {ensemble.compile_seconds:5.2f} s "
            f"compile ({row['ensemble_models_per_second']:.2f} models/s); sequential "
            f"{row['sequential_train_seconds_extrapolated']:8.2f} s (extrapolated); speedup {row['speedup']:.2f}x",
            flush=True,
        )
        save()
    folder = save()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), layout="constrained")
    sizes = [r["models"] for r in rows]
    ax.plot(sizes, [r["ensemble_models_per_second"] for r in rows], marker="o", label="one program (fit_ensemble)")
    ax.plot(sizes, [r["sequential_models_per_second"] for r in rows], linestyle="--", label="sequential fit")
    ax.set(xscale="log", xlabel="models (N)", ylabel="models trained per second (steady state)", yscale="log")
    ax.set_title(f"{args.arch}, {args.epochs} epochs each, {env['machine']}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(folder / "ensemble.png", dpi=110)
    plt.close(fig)
    print(f"wrote {folder}/ensemble.json and .png")


if __name__ == "__main__":
    main()
