"""The lab's sweeps: S seeds of one cell trained in one program (``fit_ensemble``, as ``jaxlstm lab`` trains them)
against the same S seeds trained one after another with ``fit``, per cell, on the adding problem.

Both train the lab's model (``jaxlstm.introspect.lab.lab_config``: one layer and a Dense head) on the same sequences
with the same settings; ``fit`` runs with the default devices (on a multi-core CPU it splits each batch over the
cores), the ensemble spreads its models over them. Seconds are steady-state training (compilation timed apart),
``block_until_ready`` inside both loops; each measurement is the median of ``--repeats``.

    .venv/bin/python benchmarks/lab_speed.py                              # T = 50, S = 5, lstm gru rnn cifg
    .venv/bin/python benchmarks/lab_speed.py --cells lstm --seeds 3 --epochs 1 --repeats 1   # a quick look

Writes benchmarks/results/<machine>/lab_speed.json and .png.
"""

import argparse
import statistics
import sys
from pathlib import Path

from jaxlstm.training.runtime import use_cpu_cores

use_cpu_cores()

from flax import nnx  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_environment, write_results  # noqa: E402

from jaxlstm.config import TrainConfig  # noqa: E402
from jaxlstm.data.tasks import adding_problem  # noqa: E402
from jaxlstm.introspect.lab import lab_config  # noqa: E402
from jaxlstm.nn import Forecaster  # noqa: E402
from jaxlstm.training import fit, fit_ensemble  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", default="lstm,gru,rnn,cifg")
    parser.add_argument("--seeds", type=int, default=5, help="S (default: 5)")
    parser.add_argument("--lag", type=int, default=50)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    data = adding_problem(args.samples, args.lag, seed=0)
    seeds = list(range(args.seeds))
    rows = []
    for cell in args.cells.split(","):
        config = lab_config("adding", cell, args.units)
        train = TrainConfig(epochs=args.epochs, batch_size=20, learning_rate=0.01)
        together, together_compile = [], []
        for _ in range(args.repeats):
            ensemble = fit_ensemble(config, data.inputs, data.targets, train, seeds)
            together.append(ensemble.train_seconds)
            together_compile.append(ensemble.compile_seconds)
        apart, apart_compile = [], []
        for _ in range(args.repeats):
            histories = [
                fit(
                    Forecaster(config, rngs=nnx.Rngs(seed)),
                    data.inputs,
                    data.targets,
                    TrainConfig(epochs=args.epochs, batch_size=20, learning_rate=0.01, seed=seed),
                    progress=False,
                )
                for seed in seeds
            ]
            apart.append(sum(history.train_seconds for history in histories))
            apart_compile.append(sum(history.compile_seconds for history in histories))
        row = {
            "cell": cell,
            "one_program_seconds": statistics.median(together),
            "one_program_compile_seconds": statistics.median(together_compile),
            "separate_fits_seconds": statistics.median(apart),
            "separate_fits_compile_seconds": statistics.median(apart_compile),
        }
        row["speedup"] = row["separate_fits_seconds"] / row["one_program_seconds"]
        rows.append(row)
        print(
            f"{cell:<6} {args.seeds} seeds in one program {row['one_program_seconds']:6.1f} s (compile "
            f"{row['one_program_compile_seconds']:4.1f} s); {args.seeds} fits {row['separate_fits_seconds']:6.1f} s "
            f"(compile {row['separate_fits_compile_seconds']:4.1f} s in all); x{row['speedup']:.2f}",
            flush=True,
        )
    settings = {**vars(args), "updates_per_seed": args.epochs * -(-args.samples // 20)}
    folder = write_results("lab_speed", {"environment": env, "settings": settings, "rows": rows})
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    positions = range(len(rows))
    ax.bar([p - 0.2 for p in positions], [r["one_program_seconds"] for r in rows], 0.4, label="one program")
    ax.bar([p + 0.2 for p in positions], [r["separate_fits_seconds"] for r in rows], 0.4, label=f"{args.seeds} fits")
    ax.set_xticks(list(positions), [r["cell"] for r in rows])
    title = f"{args.seeds} seeds, adding T = {args.lag}, {env['machine']}"
    ax.set(ylabel="training seconds (steady state)", title=title)
    ax.legend()
    fig.savefig(folder / "lab_speed.png", dpi=110)
    print(f"wrote {folder / 'lab_speed.json'} and .png")


if __name__ == "__main__":
    main()
