"""The adding problem (Arjovsky et al. 2016, sec. 4.2) for cells of the family: every seed of a (cell, lag) trained
in one program by :func:`jaxlstm.introspect.lab.lab_sweep`, scored on fresh sequences against the 1/6 baseline.
The same sweeps as ``jaxlstm lab adding``, with the machine and versions recorded beside the results, for the
reproductions of docs/lab.md.

    .venv/bin/python benchmarks/lab_adding.py                          # T = 50; lstm, gru, rnn; 3 seeds
    .venv/bin/python benchmarks/lab_adding.py --lags 50,100 --cells lstm,rnn,cifg,nfg --seeds 5

Writes benchmarks/results/<machine>/lab_adding.json (or ``--name``.json) and prints a table.
"""

import argparse
import sys
from pathlib import Path

from jaxlstm.training.runtime import use_cpu_cores

use_cpu_cores()

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, print_environment, write_results  # noqa: E402

from jaxlstm.config import TrainConfig  # noqa: E402
from jaxlstm.introspect.lab import LAB_TASKS, lab_sweep  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lags", default="50", help="sequence lengths T, comma-separated (default: 50)")
    parser.add_argument("--cells", default="lstm,gru,rnn", help="cells, comma-separated (default: lstm,gru,rnn)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per (cell, lag) (default: 3)")
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--samples", type=int, default=5000, help="training sequences (default: 5000)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--clip-norm", type=float, help="clip gradients to this global norm (default: off)")
    parser.add_argument("--name", default="lab_adding", help="results file name (default: lab_adding)")
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    train = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        clip_norm=args.clip_norm,
        seed=0,
    )
    rows = []
    for lag in (int(text) for text in args.lags.split(",")):
        for cell in args.cells.split(","):
            result = lab_sweep(
                "adding", cell, lag, range(args.seeds), units=args.units, samples=args.samples, train=train
            )
            row = {
                "cell": cell,
                "lag": lag,
                "test_mse": result.test_score.tolist(),
                "solved": int(result.solved.sum()),
                "seeds": args.seeds,
                "updates_to_solve": result.updates_to_solve,
                "curves": result.curves.tolist(),
                "train_seconds": result.train_seconds,
                "compile_seconds": result.compile_seconds,
            }
            rows.append(row)
            mse = ", ".join(f"{value:.4f}" for value in result.test_score)
            print(
                f"T={lag:<4} {cell:<8} test MSE {mse}  solved {row['solved']}/{args.seeds}  updates to solve "
                f"{result.updates_to_solve}  ({result.train_seconds:.0f} s for all seeds, compile "
                f"{result.compile_seconds:.0f} s)",
                flush=True,
            )
    settings = {
        **vars(args),
        "solved_below": LAB_TASKS["adding"].solved_below,
        "baseline": 1 / 6,
        "updates": args.epochs * -(-args.samples // args.batch_size),
    }
    folder = write_results(args.name, {"environment": env, "settings": settings, "rows": rows})
    print(f"wrote {folder / args.name}.json")


if __name__ == "__main__":
    main()
