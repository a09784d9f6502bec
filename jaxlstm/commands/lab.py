"""``jaxlstm lab TASK``: cells of the family trained on a long-lag task, every seed of a (cell, lag) in one program;
a table of seeds solved, learning curves against the baseline, and the gates of a solved cell at the marked steps."""

import argparse
import math
from pathlib import Path
from typing import Any

from jaxlstm.commands._options import start_jax
from jaxlstm.config import CELLS, check_count
from jaxlstm.errors import ConfigError, plural

__all__ = ["LAB_TASK_NAMES", "add_parser", "run"]

LAB_TASK_NAMES = ("adding", "temporal-order", "copy")
"""The tasks ``jaxlstm lab`` trains (``jaxlstm.introspect.lab.LAB_TASKS``, named here so that the parser imports no
JAX)."""


def add_parser(commands: Any) -> None:
    """Registers ``jaxlstm lab``."""
    parser = commands.add_parser(
        "lab",
        help="train cells (LSTM, GRU, tanh RNN, LSTM variants) on a long-lag task: which of them solve which lags",
        description="Train each cell at each lag with every seed, all seeds of a (cell, lag) in one compiled "
        "program, and score each seed on fresh test sequences against the task's memoryless baseline. Writes "
        "report.md (the table), curves.png (learning curves), gates.png and gates.html (a solved cell's gates over "
        "one sequence, the marked steps drawn), saturation.png, connectivity.png, gradflow.png, models.msgpack and "
        "lab.json. The tasks: adding (Arjovsky et al. 2016): two channels, values U[0, 1] and a marker with one 1 "
        "in each half; the target is the sum of the two marked values; predicting 1 scores MSE 1/6; solved: test "
        "MSE below 0.01. temporal-order (Hochreiter & Schmidhuber 1997, experiment 6a): 100..110 symbols of a, b, "
        "c, d with X or Y at two steps in [10, 20] and [50, 60]; 4 classes (XX, XY, YX, YY); chance errs 75%; "
        "solved: under 1% wrong. copy (Arjovsky et al. 2016): 10 symbols of 8, T - 1 blanks, a delimiter, 10 "
        "blanks; recall the 10 symbols at the end; guessing errs 7/8 of the time; solved: under 1% wrong.",
    )
    parser.add_argument("task", choices=LAB_TASK_NAMES, help="the task")
    parser.add_argument(
        "--lags",
        help="lags T, comma-separated: the adding problem's lengths, the copy task's blanks + 1 (default: 50); the "
        "temporal order problem fixes its own lengths (100..110)",
    )
    parser.add_argument(
        "--cells", default="lstm,gru,rnn", help=f"cells, comma-separated, of {', '.join(CELLS)} (default: lstm,gru,rnn)"
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per cell and lag, 0..N-1 (default: 3)")
    parser.add_argument("--units", type=int, default=32, help="units of the one recurrent layer (default: 32)")
    parser.add_argument("--samples", type=int, default=5000, help="training sequences (default: 5000)")
    parser.add_argument("--test-samples", type=int, default=1000, help="fresh test sequences (default: 1000)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs (default: 10)")
    parser.add_argument("--batch-size", type=int, default=20, help="batch size (default: 20)")
    parser.add_argument("--learning-rate", type=float, default=0.01, help="Adam's learning rate (default: 0.01)")
    parser.add_argument(
        "--forget-bias",
        type=float,
        default=1.0,
        help="initial forget-gate bias of the lstm cell (default: 1.0, Keras's unit forget bias); other cells keep "
        "their own initialisation",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--out", type=Path, help="lab run directory to write (default: runs/lab-TASK)")
    output.add_argument("--overwrite", action="store_true", help="replace an existing lab run")
    output.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run)


def _lags(text: str) -> tuple[int, ...]:
    try:
        lags = tuple(int(part) for part in text.split(","))
    except ValueError:
        example = "pass lengths separated by commas, e.g. --lags 50,100"
        raise ConfigError(f"--lags {text!r}: not whole numbers; {example}") from None
    if any(lag < 2 for lag in lags) or len(set(lags)) != len(lags):
        raise ConfigError(f"--lags {text}: each length must be >= 2 and given once, e.g. --lags 50,100")
    return lags


def _cells(text: str) -> tuple[str, ...]:
    cells = tuple(part.strip() for part in text.split(","))
    unknown = [cell for cell in cells if cell not in CELLS]
    if unknown:
        raise ConfigError(f"--cells: unknown cell {unknown[0]!r}; choose from {', '.join(CELLS)}")
    if len(set(cells)) != len(cells):
        raise ConfigError(f"--cells {text}: a cell is given twice; name each once")
    return cells


def settings_from(args: argparse.Namespace) -> Any:
    """The :class:`~jaxlstm.runs.lab.LabSettings` of the arguments; ConfigError naming a bad one."""
    examples = {"seeds": 3, "units": 32, "samples": 5000, "test_samples": 1000, "epochs": 10, "batch_size": 20}
    for name, example in examples.items():
        check_count(f"--{name.replace('_', '-')}", getattr(args, name), example)
    if not math.isfinite(args.forget_bias):
        raise ConfigError(f"--forget-bias {args.forget_bias}: must be a finite number, e.g. --forget-bias 3")
    if not args.learning_rate > 0:
        raise ConfigError(f"--learning-rate {args.learning_rate}: must be > 0, e.g. --learning-rate 0.01")
    from jaxlstm.runs.lab import LabSettings

    if args.task == "temporal-order" and args.lags is not None:
        raise ConfigError("--lags: the temporal order problem has its own lengths (100..110); drop --lags")
    from jaxlstm.data.tasks import TEMPORAL_ORDER_STEPS  # NumPy only: no JAX before the arguments are checked

    lags = (TEMPORAL_ORDER_STEPS,) if args.task == "temporal-order" else _lags(args.lags or "50")
    return LabSettings(
        task=args.task,
        lags=lags,
        cells=_cells(args.cells),
        seeds=args.seeds,
        units=args.units,
        samples=args.samples,
        test_samples=args.test_samples,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        forget_bias=args.forget_bias,
    )


def _row(result: Any) -> str:
    scores = " ".join(f"{score:.4f}" for score in result.test_score)
    solve = " ".join("-" if value is None else str(value) for value in result.updates_to_solve)
    seconds = f"{result.train_seconds:.0f} s (+{result.compile_seconds:.0f} s compile)"
    return (
        f"{result.lag:>5} {result.cell:<8} {scores:<24} {result.solved.sum()}/{len(result.seeds):<5} "
        f"{solve:<18} {seconds}"
    )


def run(args: argparse.Namespace) -> None:
    """``jaxlstm lab``."""
    settings = settings_from(args)
    out = args.out or Path("runs") / f"lab-{args.task}"
    start_jax()
    from jaxlstm.introspect.lab import LAB_TASKS
    from jaxlstm.runs.lab import lab_run

    task = LAB_TASKS[args.task]
    print(f"{'T':>5} {'cell':<8} {task.score_name + ' per seed':<24} solved updates to solve   time", flush=True)
    results = lab_run(
        settings,
        out,
        overwrite=args.overwrite,
        progress=not args.quiet,
        report=lambda result: print(_row(result), flush=True),
    )
    for lag in settings.lags:
        row = [result for result in results if result.lag == lag]
        solved = [f"{r.cell} {r.solved.sum()}/{len(r.seeds)}" for r in row if r.solved.any()]
        unsolved = [f"{r.cell} {r.solved.sum()}/{len(r.seeds)}" for r in row if not r.solved.any()]
        verdict = f"T = {lag}: solved by {', '.join(solved) or 'no cell'}"
        verdict += f"; not by {', '.join(unsolved)}" if unsolved else ""
        print(f"{verdict} ({task.score_name} < {task.solved_below:g}; baseline {task.baseline:.4g})")
    print(f"wrote the lab run ({plural(len(results), 'sweep')}) to {out}/: see {out / 'report.md'}")
