"""A lab run (``jaxlstm lab``): every (cell, lag) of a task trained with all its seeds in one program
(:func:`~jaxlstm.introspect.lab.lab_sweep`), then its table, figures and models written into one directory.

The directory is checked before any training and written at the end, under the run's lock, each file atomically and
``lab.json`` last (:data:`~jaxlstm.runs.directory.LAB_FILE`): a lab run that fails or is interrupted leaves nothing
(and an old run it was to replace as it was). Its files:

- ``report.md``: the settings, the criterion and one row per (lag, cell): test scores, seeds solved, updates to solve;
- ``curves.png``: the learning curves per lag, each cell's seeds against the baseline;
- ``gates.png`` and ``gates.html``: for the LSTM (else the first gated cell) at the longest lag it solved, its best
  seed over one test sequence, the marked steps drawn; ``saturation.png`` and ``connectivity.png``, its gate
  statistics (:mod:`jaxlstm.introspect.statistics`) (these four absent when no gated cell solved a lag);
- ``gradflow.png``: each cell's ``|d prediction / d x_t|`` over the steps at the longest lag (seed 0);
- ``models.msgpack``: every trained model's weights (:func:`read_lab_models` reads them back);
- ``lab.json``: the settings and every row, learning curves included.
"""

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from flax import nnx, serialization

from jaxlstm.config import TrainConfig
from jaxlstm.errors import RunError
from jaxlstm.fileio import write_atomic
from jaxlstm.introspect import LEFT, RIGHT, connectivity, saturation, trace_gates
from jaxlstm.introspect.explorer import explorer_html, trace_layers
from jaxlstm.introspect.lab import LAB_TASKS, LabResult, LabTask, lab_gradient_flow, lab_model, lab_sweep
from jaxlstm.runs.directory import LAB_FILE, read_file, write_json
from jaxlstm.runs.lifecycle import RunDirectory
from jaxlstm.runs.plots import (
    plot_connectivity,
    plot_gradient_flow,
    plot_lab_curves,
    plot_marked_gates,
    plot_saturation,
)

__all__ = ["LabSettings", "lab_run", "read_lab", "read_lab_models"]

GRADIENT_SEQUENCES = 100  # test sequences averaged in gradflow.png
STATISTICS_SEQUENCES = 200  # test sequences of saturation.png


@dataclasses.dataclass(frozen=True)
class LabSettings:
    """What ``jaxlstm lab`` trains: ``task`` (a name of :data:`~jaxlstm.introspect.lab.LAB_TASKS`), each of
    ``cells`` at each of ``lags`` with seeds ``0 .. seeds - 1``, one layer of ``units``, on ``samples`` training and
    ``test_samples`` test sequences, with Adam at ``learning_rate``; an ``lstm`` cell's forget bias starts at
    ``forget_bias``."""

    task: str = "adding"
    lags: tuple[int, ...] = (50,)
    cells: tuple[str, ...] = ("lstm", "gru", "rnn")
    seeds: int = 3
    units: int = 32
    samples: int = 5000
    test_samples: int = 1000
    epochs: int = 10
    batch_size: int = 20
    learning_rate: float = 0.01
    forget_bias: float = 1.0

    @property
    def train(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, learning_rate=self.learning_rate, seed=0)


def lab_run(
    settings: LabSettings,
    out: Path,
    *,
    overwrite: bool = False,
    progress: bool = False,
    report: Callable[[LabResult], Any] = lambda result: None,
) -> list[LabResult]:
    """Trains every (lag, cell) of ``settings`` (``report`` is called with each result as it lands) and writes the
    lab run into ``out`` (see the module docstring). RunError before any training when ``out`` cannot be written."""
    directory = RunDirectory.create(out, "lab", overwrite=overwrite)
    results = []
    for lag in settings.lags:
        for cell in settings.cells:
            result = lab_sweep(
                settings.task,
                cell,
                lag,
                range(settings.seeds),
                units=settings.units,
                samples=settings.samples,
                test_samples=settings.test_samples,
                train=settings.train,
                progress=progress,
                forget_bias=settings.forget_bias,
            )
            report(result)
            results.append(result)
    directory.write(lambda path: _save(path, settings, results))
    return results


def _rows(results: Sequence[LabResult]) -> list[dict[str, Any]]:
    return [
        {
            "cell": result.cell,
            "lag": result.lag,
            "test_score": result.test_score.tolist(),
            "solved": int(result.solved.sum()),
            "seeds": len(result.seeds),
            "updates_to_solve": result.updates_to_solve,
            "curves": result.curves.tolist(),
            "train_seconds": result.train_seconds,
            "compile_seconds": result.compile_seconds,
        }
        for result in results
    ]


def _report(settings: LabSettings, rows: list[dict[str, Any]], gates_note: str) -> str:
    task = LAB_TASKS[settings.task]
    updates = settings.epochs * -(-settings.samples // settings.batch_size)
    lines = [
        f"# jaxlstm lab {settings.task}",
        "",
        f"One layer of {settings.units} units and a Dense head per cell; {settings.samples} training sequences, "
        f"{settings.test_samples} fresh test sequences; Adam at {settings.learning_rate}, batch {settings.batch_size}, "
        f"{settings.epochs} epochs ({updates} updates); the LSTM's initial forget bias {settings.forget_bias:g}; "
        f"seeds 0..{settings.seeds - 1}, each (cell, lag)'s seeds trained in one program.",
        "",
        f"A seed solves the task when its {task.score_name} is below {task.solved_below:g} (the memoryless baseline: "
        f"{task.baseline:.4g}); updates to solve: to the end of the first epoch whose training loss is below "
        f"{task.trained_below:g} (the memoryless training loss: "
        + ", ".join(f"{task.loss_baseline(lag):.4g} at T = {lag}" for lag in settings.lags)
        + ").",
        "",
        f"| T | cell | {task.score_name} per seed | solved | updates to solve | seconds (compile) |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        scores = ", ".join(f"{score:.4f}" for score in row["test_score"])
        solve = ", ".join("-" if value is None else str(value) for value in row["updates_to_solve"])
        seconds = f"{row['train_seconds']:.0f} ({row['compile_seconds']:.0f})"
        lines.append(
            f"| {row['lag']} | {row['cell']} | {scores} | {row['solved']}/{row['seeds']} | {solve} | {seconds} |"
        )
    lines += [
        "",
        "Figures: `curves.png` (learning curves), `gradflow.png` (gradient over the steps), " + gates_note,
        "",
    ]
    return "\n".join(lines)


def _shown_result(results: Sequence[LabResult]) -> LabResult | None:
    """The run whose gates the figures show: the LSTM (else the first gated cell) at the longest lag it solved."""
    gated = [result for result in results if result.cell != "rnn" and result.solved.any()]
    if not gated:
        return None
    cells = [result.cell for result in gated]
    cell = "lstm" if "lstm" in cells else cells[0]
    return max((result for result in gated if result.cell == cell), key=lambda result: result.lag)


def _save(out: Path, settings: LabSettings, results: Sequence[LabResult]) -> None:
    task = LAB_TASKS[settings.task]
    rows = _rows(results)
    title = f"jaxlstm lab {settings.task}, {settings.units} units, seeds 0..{settings.seeds - 1}"
    try:
        plot_lab_curves(
            {(result.lag, result.cell): result.curves for result in results},
            results[0].updates_per_epoch,
            out / "curves.png",
            baselines={lag: task.loss_baseline(lag) for lag in settings.lags},
            threshold=task.trained_below,
            title=title,
            ylabel="training loss",
        )
        longest = max(settings.lags)
        curves = {
            result.cell: lab_gradient_flow(task, result.models[0], result.test.inputs[:GRADIENT_SEQUENCES])
            for result in results
            if result.lag == longest
        }
        plot_gradient_flow(curves, out / "gradflow.png", title=f"{title}: T = {longest}, seed 0", steps="steps")
        gates_note = _save_gates(out, task, _shown_result(results))
        weights = {
            f"{result.cell}/{result.lag}/{seed}": nnx.to_pure_dict(nnx.state(model, nnx.Param))
            for result in results
            for seed, model in zip(result.seeds, result.models, strict=True)
        }
        write_atomic(out / "models.msgpack", serialization.msgpack_serialize(weights))
        write_atomic(out / "report.md", _report(settings, rows, gates_note).encode())
        write_json(out / LAB_FILE, {"settings": dataclasses.asdict(settings), "rows": rows})
    except OSError as error:
        raise RunError(
            f"{out}: cannot write the lab run ({error.strerror}); free disk space or choose another --out"
        ) from None


def _save_gates(out: Path, task: LabTask, result: LabResult | None) -> str:
    """``gates.png``, ``gates.html`` and ``connectivity.png`` of ``result``'s best seed over test sequence 0, and its
    ``saturation.png`` over many; what the report says of them."""
    if result is None:
        return "no gate figures: no gated cell solved any lag."
    best = int(np.argmin(result.test_score))
    model, inputs, markers = result.models[best], result.test.inputs[0], result.test.markers[0]
    traces = trace_gates(model, inputs[None])
    output = np.asarray(model(inputs[None]))[0]
    target = result.test.targets[0]
    numbers: dict[str, float] = {}
    if task.per_step:
        recalled = np.asarray(target) != 0
        right = int(np.sum(np.argmax(output, axis=-1)[recalled] == np.asarray(target)[recalled]))
        outcome = f"recalled {right} of {int(recalled.sum())} symbols"
    elif task.class_names:
        outcome = f"class {task.class_names[int(target)]}, predicted {task.class_names[int(np.argmax(output))]}"
    else:
        outcome = f"target {float(target):.3f}, prediction {float(output):.3f}"
        numbers = {"target": float(target), "prediction": float(output)}
    trained = f"{result.cell}, T = {result.lag}, seed {result.seeds[best]}"
    what = f"{trained}, test sequence 0"
    names = list(task.input_names)
    plot_marked_gates(inputs, names, markers, traces[0], out / "gates.png", title=f"{task.name}: {what} ({outcome})")
    page = explorer_html(
        inputs,
        trace_layers(traces),
        feature_names=names,
        markers=markers,
        title=f"jaxlstm lab {task.name}: {what}",
        notes=outcome,
        **numbers,
    )
    write_atomic(out / "gates.html", page.encode())
    many = result.test.inputs[:STATISTICS_SEQUENCES]
    plot_saturation(saturation(trace_gates(model, many)), out / "saturation.png", title=f"{task.name}: {trained}")
    plot_connectivity(
        connectivity(model, inputs[None]),
        out / "connectivity.png",
        title=f"{task.name}: {what}: || d h_t / d x_s ||",
        markers=np.flatnonzero(markers).tolist(),
    )
    return (
        f"`gates.png` and `gates.html` ({what}, the marked steps drawn); `saturation.png` (each gate's share of "
        f"steps below {LEFT} and above {RIGHT}, per unit, over {len(many)} test sequences) and `connectivity.png` "
        f"(|| d h_t / d x_s || over that one sequence)."
    )


def read_lab(directory: Path) -> dict[str, Any]:
    """The ``lab.json`` of a lab run; RunError when ``directory`` holds none."""
    if not (directory / LAB_FILE).exists():
        raise RunError(f"{directory} is not a lab run (no {LAB_FILE}); pass the --out of `jaxlstm lab`")
    return read_file(directory, LAB_FILE, json.loads)


def read_lab_models(directory: Path) -> tuple[LabSettings, dict[tuple[str, int], list[nnx.Module]]]:
    """A lab run's settings and its trained models by (cell, lag), seeds in order."""
    content = read_lab(directory)
    settings = LabSettings(**{key: tuple(v) if isinstance(v, list) else v for key, v in content["settings"].items()})
    saved = read_file(directory, "models.msgpack", serialization.msgpack_restore)
    models: dict[tuple[str, int], list[nnx.Module]] = {}
    for row in content["rows"]:
        for seed in range(row["seeds"]):
            model = lab_model(settings.task, row["cell"], settings.units)
            state = nnx.state(model, nnx.Param)
            try:
                nnx.replace_by_pure_dict(state, saved[f"{row['cell']}/{row['lag']}/{seed}"])
            except (KeyError, ValueError, TypeError) as error:
                raise RunError(
                    f"{directory}/models.msgpack does not match its {LAB_FILE} ({error}); run it again"
                ) from None
            nnx.update(model, state)
            models.setdefault((row["cell"], row["lag"]), []).append(model)
    return settings, models
