"""What one model-fit of a walk-forward backtest costs: jaxlstm's one program, jaxlstm's fit per model, darts' refits.

A walk-forward backtest trains K folds x S seeds of the tutorial's stacked model (4 x LSTM(50), dropout 0.2), each
fold on its own rolling window of 172 rows before its cutoff (``BacktestConfig`` defaults, 20 test days a fold), of
every row of the bundled GOOG prices (2004-2013; the tutorial's 230 rows cannot hold 20 folds) or of ``--csv``. In one
process, on the same folds and seeds, the script times:

(a) ``jaxlstm.forecasting.run_backtest``: the K x S models trained in one compiled program; seconds per model-fit is its
    training seconds / (K x S), compilation reported apart.
(b) ``jaxlstm.training.fit`` once per model, for the first ``--fits`` (fold, seed) pairs only: the per-fit median of
    the training seconds and, apart, of the compile seconds.
(c) darts' ``historical_forecasts(retrain=True)`` with the tutorial's model as a ``BlockRNNModel``, seed 0, on the
    same rolling windows, one refit per fold for the first ``--darts-refits`` folds: the whole call / refits.
(d) ``jaxlstm.training.fit_ensemble`` of N models on the tutorial's windows (as benchmarks/ensemble.py), for each N of
    ``--sweep``, ``--sweep-epochs`` epochs each, in the default layout and, for N <= 16, with all models side by side
    under vmap (``models_at_once=N``), computing in each of ``--sweep-precision`` (float32 by default; bfloat16 is
    the route to many models on a GPU): seconds per model-fit scaled to ``--epochs`` epochs.

    .venv/bin/python benchmarks/backtest.py                  # 20 folds x 5 seeds, 100 epochs each
    .venv/bin/python benchmarks/backtest.py --skip c,d       # jaxlstm's backtest only
    .venv/bin/python benchmarks/backtest.py --folds 2 --seeds 2 --epochs 2 --fits 1 --sweep 1,2 --sweep-epochs 1

Writes benchmarks/results/<machine>/backtest.json and .png.
"""

import argparse
import dataclasses
import itertools
import logging
import math
import statistics
import sys
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, ClassVar

from jaxlstm.training.runtime import use_cpu_cores

use_cpu_cores()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from flax import nnx  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, environment, print_environment, write_results  # noqa: E402

from jaxlstm.config import BUNDLED_CSV, BacktestConfig, DataConfig, ModelConfig, TrainConfig, preset  # noqa: E402
from jaxlstm.data import load_frame, load_prices, prepare  # noqa: E402
from jaxlstm.forecasting.backtest import Fold, make_folds, run_backtest  # noqa: E402
from jaxlstm.nn.models import Forecaster  # noqa: E402
from jaxlstm.training.ensemble import fit_ensemble, model_layout  # noqa: E402
from jaxlstm.training.single import fit  # noqa: E402

PARTS = ("a", "b", "c", "d")
LARGEST_VMAP = 16
"""The largest N also swept with every model side by side under vmap."""


def one_program(folds: list[Fold], model: ModelConfig, backtest: BacktestConfig, epochs: int) -> dict:
    """(a) Every fold's every seed trained in one program."""
    result = run_backtest(folds, model, TrainConfig(epochs=epochs), backtest.seeds)
    fits = backtest.folds * backtest.seeds
    row = {
        "model_fits": fits,
        "compile_seconds": result.compile_seconds,
        "train_seconds": result.train_seconds,
        "seconds_per_fit": result.train_seconds / fits,
    }
    print(
        f"(a) one program: {fits} model-fits in {result.train_seconds:.2f} s training + {result.compile_seconds:.2f} s "
        f"compile: {row['seconds_per_fit']:.3f} s per model-fit",
        flush=True,
    )
    return row


def fit_per_model(folds: list[Fold], model: ModelConfig, seeds: int, epochs: int, count: int) -> dict:
    """(b) ``fit`` of each model alone, for the first ``count`` (fold, seed) pairs."""
    runs = []
    for fold, seed in [(fold, seed) for fold in folds for seed in range(seeds)][:count]:
        forecaster = Forecaster(model, rngs=nnx.Rngs(seed))
        config = TrainConfig(epochs=epochs, seed=seed)
        history = fit(forecaster, fold.dataset.x_train, fold.dataset.y_train, config, progress=False)
        runs.append(
            {
                "fold": fold.index + 1,
                "seed": seed,
                "devices": history.devices,
                "compile_seconds": history.compile_seconds,
                "train_seconds": history.train_seconds,
            }
        )
    row = {
        "timed_fits": len(runs),
        "of_model_fits": len(folds) * seeds,
        "train_seconds_median": statistics.median(run["train_seconds"] for run in runs),
        "compile_seconds_median": statistics.median(run["compile_seconds"] for run in runs),
        "runs": runs,
    }
    print(
        f"(b) fit per model ({len(runs)} of {row['of_model_fits']} timed): {row['train_seconds_median']:.3f} s "
        f"training + {row['compile_seconds_median']:.2f} s compile per model-fit (median)",
        flush=True,
    )
    return row


def darts_refits(
    frame: pd.DataFrame, data: DataConfig, folds: list[Fold], backtest: BacktestConfig, epochs: int
) -> dict:
    """(c) darts' ``historical_forecasts(retrain=True)``: one refit per fold of ``folds``, seed 0."""
    try:
        import pytorch_lightning as pl
        import torch
        from darts import TimeSeries
        from darts.dataprocessing.transformers import Scaler
        from darts.models import BlockRNNModel
    except ImportError as error:
        message = f"darts part skipped: {error}; install it with .venv/bin/pip install darts pytorch-lightning"
        print(f"(c) {message}", flush=True)
        return {"skipped": message}
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)  # not its banner at every refit

    class FitTimer(pl.Callback):
        """Times every Lightning fit. darts refits a deep copy of the model, callbacks included, so the times
        are kept on the class."""

        seconds: ClassVar[list[float]] = []

        def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            self.start = time.perf_counter()

        def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            FitTimer.seconds.append(time.perf_counter() - self.start)

    cutoffs = frame.index.get_indexer([fold.cutoff for fold in folds])
    # ends with the last fold's first test day: with stride = test_days, one forecast point (one refit) a fold
    series = TimeSeries.from_values(frame[data.target].to_numpy(np.float32)[: cutoffs[-1] + 1])
    model = BlockRNNModel(
        model="LSTM",
        hidden_dim=50,
        n_rnn_layers=4,
        dropout=0.2,
        input_chunk_length=data.window,
        output_chunk_length=1,
        n_epochs=epochs,
        batch_size=32,
        random_state=0,
        pl_trainer_kwargs={
            "accelerator": "cpu",
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
            "enable_checkpointing": False,
            "callbacks": [FitTimer()],
        },
    )
    # darts has no compile step, but a process's first Lightning fit pays one-time costs (lazy imports, first torch
    # kernels: 0.3 s to 15 s measured here); an untimed one-epoch fit on the first fold's training rows pays them, as
    # (a) and (b) leave their compilation out
    start = time.perf_counter()
    first = series[int(cutoffs[0]) - backtest.train_days : int(cutoffs[0])]
    model.untrained_model().fit(Scaler().fit_transform(first), epochs=1)
    warmup_seconds = time.perf_counter() - start
    FitTimer.seconds.clear()
    start = time.perf_counter()
    forecasts = model.historical_forecasts(
        series,
        start=int(cutoffs[0]),
        start_format="position",
        forecast_horizon=1,
        stride=backtest.test_days,
        retrain=True,
        train_length=backtest.train_days,
        last_points_only=True,
        verbose=False,
        data_transformers={"series": Scaler()},  # refit on each refit's training rows, forecasts scaled back
    )
    seconds = time.perf_counter() - start
    refits = len(FitTimer.seconds)
    if refits != len(folds) or len(forecasts) != len(folds):
        raise RuntimeError(f"darts made {refits} fits and {len(forecasts)} forecasts, expected {len(folds)} of each")
    row = {
        "refits": refits,
        "seconds": seconds,
        "seconds_per_refit": seconds / refits,
        "warmup_seconds": warmup_seconds,
        "lightning_fit_seconds": FitTimer.seconds,
        "torch_threads": torch.get_num_threads(),
        "forecasts": forecasts.values().ravel().tolist(),
        "actual": frame[data.target].to_numpy()[cutoffs].tolist(),
        "how": "historical_forecasts(retrain=True, stride=test_days, forecast_horizon=1, train_length=train_days) of "
        "the target alone (float32 TimeSeries over row positions): each fold refits a new BlockRNNModel on the "
        "train_days rows before its cutoff and forecasts its first test day only (jaxlstm forecasts all test_days). "
        "Scaling: data_transformers={'series': Scaler()} (MinMax 0..1), which darts refits on each refit's training "
        "rows and inverts on the forecast, as jaxlstm fits each fold's scalers on its training rows. seconds is the "
        "whole call (Lightning set-up, training, one forecast a fold), after an untimed one-epoch warm-up fit "
        "(warmup_seconds, the first fit's one-time costs); lightning_fit_seconds times each trainer.fit.",
    }
    print(
        f"(c) darts: {refits} refits in {seconds:.2f} s: {row['seconds_per_refit']:.3f} s per refit "
        f"(trainer.fit alone: {statistics.median(FitTimer.seconds):.3f} s median; warm-up {warmup_seconds:.2f} s)",
        flush=True,
    )
    return row


def sweep(
    model: ModelConfig, sizes: list[int], sweep_epochs: int, epochs: int, precisions: list[str]
) -> Iterator[dict]:
    """(d) ``fit_ensemble`` of N models on the tutorial's windows, in the default layout and all side by side, with
    the model computing in each of ``precisions``: one row per program, as each is timed."""
    dataset = prepare(load_prices(ROOT / "data" / "GOOG.csv").iloc[-230:], split=172)
    config = TrainConfig(epochs=sweep_epochs)
    for precision, size in itertools.product(precisions, sizes):
        computing = dataclasses.replace(model, precision=precision)
        for layout_name, at_once in [("default", None), *([("vmap", size)] if size <= LARGEST_VMAP else [])]:
            layout = model_layout(size, at_once)
            try:
                ensemble = fit_ensemble(
                    computing, dataset.x_train, dataset.y_train, config, seeds=list(range(size)), models_at_once=at_once
                )
            except Exception as error:  # out of device memory: record it and go on to the other sizes
                if "RESOURCE_EXHAUSTED" not in str(error):
                    raise
                print(f"(d) N={size:4} {layout_name:7} {precision}: out of device memory", flush=True)
                yield {
                    "models": size,
                    "layout": layout_name,
                    "precision": precision,
                    "error": str(error).splitlines()[0],
                }
                continue
            row = {
                "models": size,
                "layout": layout_name,
                "precision": precision,
                "devices": layout.grid[0],
                "models_at_once": layout.at_once,
                "compile_seconds": ensemble.compile_seconds,
                "train_seconds": ensemble.train_seconds,
                "first_epoch_seconds": ensemble.first_epoch_seconds,
                "seconds_per_fit_scaled": ensemble.train_seconds / size / sweep_epochs * epochs,
            }
            if sweep_epochs > 1:  # the epochs after the first: what the program costs once it has run once
                steady = (ensemble.train_seconds - ensemble.first_epoch_seconds) / (sweep_epochs - 1)
                row["steady_epoch_seconds"] = steady
            print(
                f"(d) N={size:4} {layout_name:7} {precision} "
                f"({layout.at_once} at once on each of {layout.grid[0]} devices): "
                f"{ensemble.train_seconds:.2f} s training + {ensemble.compile_seconds:.2f} s compile: "
                f"{row['seconds_per_fit_scaled']:.3f} s per model-fit scaled to {epochs} epochs; "
                f"first epoch {1000 * ensemble.first_epoch_seconds:.1f} ms, "
                f"then {1000 * row.get('steady_epoch_seconds', math.nan):.1f} ms per epoch",
                flush=True,
            )
            yield row


def ratios(results: dict[str, Any]) -> dict[str, float]:
    """Seconds per model-fit of one way over another's, where both ran."""
    per_fit = {
        "program": results.get("a_one_program", {}).get("seconds_per_fit"),
        "fit": results.get("b_fit_per_model", {}).get("train_seconds_median"),
        "darts": results.get("c_darts", {}).get("seconds_per_refit"),
    }
    pairs = {
        "darts_refit_over_program_fit": ("darts", "program"),
        "darts_refit_over_fit": ("darts", "fit"),
        "fit_over_program_fit": ("fit", "program"),
    }
    return {
        name: per_fit[top] / per_fit[bottom]
        for name, (top, bottom) in pairs.items()
        if per_fit[top] is not None and per_fit[bottom] is not None
    }


def plot(results: dict[str, Any], epochs: int, path: Path, title: str) -> None:
    """Left: seconds per model-fit of (a), (b), (c); right: the sweep against N, both layouts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = [
        ("(a) one program", results.get("a_one_program", {}).get("seconds_per_fit")),
        ("(b) fit per model", results.get("b_fit_per_model", {}).get("train_seconds_median")),
        ("(c) darts refit", results.get("c_darts", {}).get("seconds_per_refit")),
    ]
    bars = [(label, value) for label, value in bars if value is not None]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), layout="constrained")
    if bars:
        left.bar([label for label, _ in bars], [value for _, value in bars], color=["C0", "C1", "C2"][: len(bars)])
        for index, (_, value) in enumerate(bars):
            left.annotate(f"{value:.3g} s", (index, value), ha="center", va="bottom")
    left.set(ylabel=f"seconds per model-fit ({epochs} epochs)")
    left.set_title("one walk-forward model-fit (compile, warm-up excluded)")
    left.grid(alpha=0.3, axis="y")
    rows = [row for row in results.get("d_sweep", []) if "error" not in row]
    lines = itertools.product(
        dict.fromkeys(row.get("precision", "float32") for row in rows),
        (("default", "default layout"), ("vmap", "all side by side (vmap)")),
    )
    for precision, (layout_name, label) in lines:
        points = [row for row in rows if (row["layout"], row.get("precision", "float32")) == (layout_name, precision)]
        if precision != "float32":
            label = f"{label}, {precision}"
        if points:
            right.plot(
                [row["models"] for row in points],
                [row["seconds_per_fit_scaled"] for row in points],
                marker="o",
                label=label,
            )
    right.set(xscale="log", xlabel="models per program (N)", ylabel=f"seconds per model-fit, scaled to {epochs} epochs")
    sizes = sorted({row["models"] for row in rows})
    right.set_xticks(sizes, [str(size) for size in sizes])
    right.set_xticks([], minor=True)
    right.set_title("fit_ensemble on the tutorial's windows")
    right.grid(alpha=0.3)
    if rows:
        right.legend()
    fig.suptitle(title)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=20, help="K, walk-forward folds")
    parser.add_argument("--seeds", type=int, default=5, help="S, models per fold")
    parser.add_argument("--epochs", type=int, default=100, help="epochs of every model-fit")
    parser.add_argument("--fits", type=int, default=3, help="(b): fit runs actually timed")
    parser.add_argument("--darts-refits", type=int, default=2, help="(c): folds darts refits (one each)")
    parser.add_argument("--sweep", default="1,4,16,64,256", help="(d): models per program, comma-separated")
    parser.add_argument("--sweep-epochs", type=int, default=10, help="(d): epochs actually trained")
    parser.add_argument(
        "--sweep-precision", default="float32", help="(d): the models' compute precisions, e.g. float32,bfloat16"
    )
    parser.add_argument("--skip", default="", help="parts to skip, e.g. c,d")
    parser.add_argument("--csv", type=Path, help="Yahoo daily CSV (default: every row of the bundled GOOG prices)")
    args = parser.parse_args()
    skip = {part for part in args.skip.split(",") if part}
    if not skip <= set(PARTS):
        parser.error(f"--skip {args.skip}: name parts among {','.join(PARTS)}")
    if not 1 <= args.darts_refits <= args.folds:
        parser.error(f"--darts-refits {args.darts_refits}: must lie from 1 to --folds {args.folds}")
    sizes = [int(size) for size in args.sweep.split(",")]

    env = environment()
    for name in ("darts", "pytorch-lightning"):
        try:
            env["versions"][name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    print_environment(env)

    data = DataConfig(csv=args.csv or BUNDLED_CSV)
    frame = load_frame(data)
    backtest = BacktestConfig(folds=args.folds, seeds=args.seeds)
    folds = make_folds(frame, data, backtest)
    model = preset("stacked")
    print(
        f"# data: {data.path}, {len(frame)} rows; {args.folds} folds x {args.seeds} seeds, {backtest.train_days} "
        f"training rows ({len(folds[0].dataset.x_train)} windows) and {backtest.test_days} test days a fold",
        flush=True,
    )

    results: dict[str, Any] = {}
    settings = {
        **vars(args),
        "csv": str(data.path),
        "rows": len(frame),
        "backtest": backtest.to_dict(),
        "model": model.to_dict(),
        "cutoffs": [str(fold.cutoff.date()) for fold in folds],
    }

    def save() -> Path:  # after every part and sweep row, so that a run stopped at a time limit keeps them
        content = {"environment": env, "settings": settings, "results": results, "ratios": ratios(results)}
        return write_results("backtest", content)

    if "a" not in skip:
        results["a_one_program"] = one_program(folds, model, backtest, args.epochs)
        save()
    if "b" not in skip:
        results["b_fit_per_model"] = fit_per_model(folds, model, args.seeds, args.epochs, args.fits)
        save()
    if "c" not in skip:
        results["c_darts"] = darts_refits(frame, data, folds[: args.darts_refits], backtest, args.epochs)
        save()
    if "d" not in skip:
        results["d_sweep"] = []
        for row in sweep(model, sizes, args.sweep_epochs, args.epochs, args.sweep_precision.split(",")):
            results["d_sweep"].append(row)
            save()
    for name, value in ratios(results).items():
        print(f"{name}: {value:.2f}")
    folder = save()
    title = f"stacked, {args.folds} folds x {args.seeds} seeds, {args.epochs} epochs, {env['machine']}"
    plot(results, args.epochs, folder / "backtest.png", title)
    print(f"wrote {folder}/backtest.json and .png")


if __name__ == "__main__":
    main()
