"""The compiled training programs of the four presets, and what a fixed seed trains to, against another commit.

For each preset (vanilla, stacked, bidirectional, conv) and each way of training it, a fresh process trains
two epochs on the tutorial's shape of data (the bundled GOOG prices, last 230 rows, 112 training windows) with
XLA's HLO dump on:

- ``fit``: one model, its batches split over every core (as ``jaxlstm train`` does);
- ``ensemble``: ``fit_ensemble`` of 2 seeds sharing the data;
- ``masked``: ``fit_ensemble`` of 2 seeds with data of their own, 112 and 90 windows (the backtest's padded,
  masked models).

Each compiled program's optimised HLO is hashed without what says where it came from (:func:`canonical_hlo`), and so
are the trained weights and the per-epoch losses. Running the same workers on the working tree and on a
git worktree of ``--before REV`` says whether a change left the training programs and the results of a fixed seed
exactly as they were. The workers use only names that ``jaxlstm`` exports at its top level, so that any two commits
compare.

    .venv/bin/python benchmarks/programs.py --before c443882

Writes benchmarks/results/<machine>/programs.json and .png.
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, environment, print_environment, run_worker, write_results

PRESETS = ("vanilla", "stacked", "bidirectional", "conv")
PATHS = ("fit", "ensemble", "masked")
_DUMPED = re.compile(r"module_\d+\.(?P<name>.+?)\.[a-z_]*after_optimizations\.txt")
_DEBUG_TABLES = ("FileNames", "FunctionNames", "FileLocations", "StackFrames")
_NAME = re.compile(r"%[A-Za-z_][\w.\-]*|\b[A-Za-z_][\w\-]*(?:\.\d+)+\b")


def canonical_hlo(text: str) -> str:
    """The program an HLO module's text describes, without what says where it came from: the source tables
    (file names, functions, locations, stack frames), every ``metadata={...}`` and ``stack_frame_id``, the module's
    name; and every instruction and computation renamed in order of appearance (XLA numbers them by how many ops it
    made before, which moves with unrelated code)."""
    lines, skipping = [], False
    for line in text.splitlines():
        if line.strip() in _DEBUG_TABLES:
            skipping = True
        elif skipping and not line.strip():
            skipping = False
        elif not skipping:
            lines.append(line)
    text = re.sub(r",?\s*metadata=\{[^}]*\}", "", "\n".join(lines))
    text = re.sub(r",?\s*stack_frame_id=\d+", "", text)
    text = re.sub(r"^HloModule \S+", "HloModule", text, flags=re.MULTILINE)
    names: dict[str, str] = {}
    return _NAME.sub(lambda match: names.setdefault(match.group(0).lstrip("%"), f"%v{len(names)}"), text)


def program_hashes(folder: Path) -> dict[str, str]:
    """name -> SHA-256 of the :func:`canonical_hlo` of each optimised HLO module dumped in ``folder`` (a name
    compiled more than once gets ``#2``, ``#3`` ...)."""
    hashes: dict[str, str] = {}
    for path in sorted(folder.iterdir()):
        match = _DUMPED.fullmatch(path.name)
        if match is None:
            continue
        name, count = match["name"], 1
        while (f"{name}#{count}" if count > 1 else name) in hashes:
            count += 1
        hashes[f"{name}#{count}" if count > 1 else name] = hashlib.sha256(
            canonical_hlo(path.read_text()).encode()
        ).hexdigest()
    return hashes


def _tree_hash(tree: Any) -> str:
    import jax
    import numpy as np

    hashed = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        hashed.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return hashed.hexdigest()


def worker(arch: str, path: str) -> dict[str, Any]:
    """Trains ``arch`` the ``path`` way for 2 epochs; returns the weights' and losses' hashes."""
    import jax

    jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
    import numpy as np
    from flax import nnx

    import jaxlstm

    dataset = jaxlstm.prepare(jaxlstm.load_prices(ROOT / "data" / "GOOG.csv").iloc[-230:], split=172)
    config, train = jaxlstm.preset(arch), jaxlstm.TrainConfig(epochs=2)
    if path == "fit":
        model = jaxlstm.Forecaster(config, rngs=nnx.Rngs(0))
        history = jaxlstm.fit(model, dataset.x_train, dataset.y_train, train, progress=False)
        models, losses = [model], history.loss
    elif path == "ensemble":
        ensemble = jaxlstm.fit_ensemble(config, dataset.x_train, dataset.y_train, train, seeds=[0, 1])
        models, losses = ensemble.models, ensemble.losses
    else:
        from jaxlstm.data import window_series, window_view

        series = np.stack([window_series(dataset.x_train)] * 2)
        y = np.stack([dataset.y_train] * 2)
        ensemble = jaxlstm.fit_ensemble(
            config, window_view(series, dataset.window), y, train, seeds=[0, 1], n_valid=[112, 90]
        )
        models, losses = ensemble.models, ensemble.losses
    weights = [nnx.to_pure_dict(nnx.state(model, nnx.Param)) for model in models]
    return {"weights": _tree_hash(weights), "losses": _tree_hash(np.asarray(losses, np.float64))}


def measure(tree: Path, arch: str, path: str) -> dict[str, Any]:
    """One worker at ``tree`` (a checkout of jaxlstm), with the HLO dump on; its hashes and its programs'."""
    with tempfile.TemporaryDirectory() as dump:
        flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump} --xla_dump_hlo_as_text".strip()
        env = {"PYTHONPATH": str(tree), "XLA_FLAGS": flags, "JAXLSTM_CACHE_DIR": "", "JAX_COMPILATION_CACHE_DIR": ""}
        result = run_worker(Path(__file__), ["--worker", arch, path], env)
        result["programs"] = program_hashes(Path(dump))
    return result


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What differs between two measurements: the training programs (names with ``epoch``), the other programs,
    the weights and the losses."""
    names = sorted(set(before["programs"]) | set(after["programs"]))
    differing = [name for name in names if before["programs"].get(name) != after["programs"].get(name)]
    return {
        "training_programs": sorted(name for name in names if "epoch" in name),
        "same_training_programs": not [name for name in differing if "epoch" in name],
        "other_programs_differing": [name for name in differing if "epoch" not in name],
        "training_programs_differing": [name for name in differing if "epoch" in name],
        "same_weights": before["weights"] == after["weights"],
        "same_losses": before["losses"] == after["losses"],
    }


def plot(rows: list[dict[str, Any]], revision: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    checks = ("same_training_programs", "same_weights", "same_losses")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(rows) + 1.5))
    for y, row in enumerate(rows):
        for x, check in enumerate(checks):
            same = row[check]
            box = {"facecolor": "tab:green" if same else "tab:red", "edgecolor": "none", "boxstyle": "round,pad=0.4"}
            ax.text(x, y, "same" if same else "differs", ha="center", va="center", color="white", bbox=box)
    ax.set_xticks(range(len(checks)), ["training programs", "trained weights", "losses"])
    ax.set_yticks(range(len(rows)), [f"{row['preset']} / {row['path']}" for row in rows])
    ax.set_xlim(-0.6, len(checks) - 0.4)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # the first row at the top
    ax.set_title(f"Working tree against {revision}: optimised HLO and a fixed seed's results")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", metavar="REV", help="the commit to compare the working tree with")
    parser.add_argument("--worker", nargs=2, metavar=("ARCH", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets (default: all four)")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker)))
        return
    if not args.before:
        parser.error("pass --before REV")
    import jax

    jax.config.update("jax_num_cpu_devices", len(os.sched_getaffinity(0)))
    env = environment()
    print_environment(env)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        before_tree = Path(folder) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(before_tree), args.before], check=True
        )
        try:
            for arch in args.presets.split(","):
                for path in PATHS:
                    result = compare(measure(before_tree, arch, path), measure(ROOT, arch, path))
                    rows.append({"preset": arch, "path": path, **result})
                    print(json.dumps(rows[-1]), flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)], check=True)
    folder = write_results("programs", {"environment": env, "revision": args.before, "rows": rows})
    plot(rows, args.before, folder / "programs.png")
    print(f"wrote {folder}/programs.json and programs.png")


if __name__ == "__main__":
    main()
