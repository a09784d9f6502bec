"""How long the ``jaxlstm`` command takes as a whole process: ``--help``, and ``train`` of the tutorial's stacked model
on the bundled data, cold (an empty compilation cache) and warm (a filled one).

With ``--baseline TREE`` it times a second source tree of jaxlstm (for example a ``git worktree`` of an older
commit) in the same invocation, each repeat alternating the two, so that both are measured on the same machine in the
same conditions; each process imports the tree's own ``jaxlstm`` (``PYTHONPATH=TREE``) with this interpreter.

    git worktree add /tmp/before 3d25ddb
    .venv/bin/python benchmarks/startup.py --baseline /tmp/before --label-baseline "before issue 10"

Writes benchmarks/results/<machine>/startup.json and .png.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, environment, print_environment, write_results

TRAIN = ["train", "--arch", "stacked", "--quiet", "--overwrite"]
REPORT = re.compile(r"compile ([\d.]+) s, (\d+) epochs in ([\d.]+) s")


def command(tree: Path) -> list[str]:
    """How to run the ``jaxlstm`` command of ``tree``: ``python -m jaxlstm`` (or ``jaxlstm.cli`` in older trees)."""
    module = "jaxlstm" if (tree / "jaxlstm" / "__main__.py").exists() else "jaxlstm.cli"
    return [sys.executable, "-m", module]


def timed(tree: Path, arguments: list[str], cache: str, folder: Path) -> dict[str, Any]:
    """One process, run in ``folder`` (not in a source tree, whose ``jaxlstm/`` would shadow ``tree``'s): its wall
    time, and for ``train`` the compile and training seconds it reports."""
    env = {**os.environ, "PYTHONPATH": str(tree), "JAXLSTM_CACHE_DIR": cache}
    start = time.perf_counter()
    result = subprocess.run(
        [*command(tree), *arguments], capture_output=True, text=True, env=env, cwd=folder, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"{tree}: {arguments} exited {result.returncode}:\n{result.stderr[-2000:]}")
    row: dict[str, Any] = {"process_seconds": seconds}
    found = REPORT.search(result.stdout)
    if found:
        row.update(compile_seconds=float(found[1]), epochs=int(found[2]), train_seconds=float(found[3]))
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [key for key in rows[0] if key != "epochs"]
    return {f"median_{key}": statistics.median(row[key] for row in rows) for key in keys} | {"runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, help="another jaxlstm source tree to time beside this one")
    parser.add_argument("--label", default="this checkout")
    parser.add_argument("--label-baseline", default="baseline")
    parser.add_argument("--help-repeats", type=int, default=5)
    parser.add_argument("--train-repeats", type=int, default=3)
    args = parser.parse_args()
    env = environment()
    print_environment(env)
    trees = {args.label: ROOT}
    if args.baseline is not None:
        trees = {args.label_baseline: args.baseline.resolve(), **trees}
    results: dict[str, dict[str, list]] = {label: {"help": [], "train_cold": [], "train_warm": []} for label in trees}
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        warm = {label: str(scratch / f"warm-{index}") for index, label in enumerate(trees)}
        for label, tree in trees.items():  # fill each tree's warm cache once, untimed
            timed(tree, [*TRAIN, "--out", str(scratch / "run")], warm[label], scratch)
        for repeat in range(max(args.help_repeats, args.train_repeats)):
            for index, (label, tree) in enumerate(trees.items()):
                cases = []
                if repeat < args.help_repeats:
                    cases.append(("help", ["--help"], ""))
                if repeat < args.train_repeats:
                    cold = str(scratch / f"cold-{repeat}-{index}")
                    cases += [("train_cold", TRAIN, cold), ("train_warm", TRAIN, warm[label])]
                for case, arguments, cache in cases:
                    extra = ["--out", str(scratch / "run")] if case != "help" else []
                    row = timed(tree, [*arguments, *extra], cache, scratch)
                    results[label][case].append(row)
                    print(f"{label:>18} {case:10} {row}", flush=True)
    content = {
        "environment": env,
        "settings": {**vars(args), "baseline": str(args.baseline), "train": TRAIN},
        "results": {label: {case: summary(rows) for case, rows in cases.items()} for label, cases in results.items()},
    }
    folder = write_results("startup", content)
    plot(content, folder / "startup.png")
    for label, cases in content["results"].items():
        line = ", ".join(f"{case} {values['median_process_seconds']:.2f} s" for case, values in cases.items())
        print(f"{label}: {line}")
    print(f"wrote {folder}/startup.json and .png")


def plot(content: dict[str, Any], path: Path) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    results = content["results"]
    cases = ["help", "train_cold", "train_warm"]
    fig = Figure(figsize=(9, 4.5), layout="constrained")
    ax = fig.subplots()
    width = 0.8 / len(results)
    for index, (label, values) in enumerate(results.items()):
        seconds = [values[case]["median_process_seconds"] for case in cases]
        bars = ax.bar(np.arange(len(cases)) + index * width, seconds, width, label=label)
        ax.bar_label(bars, fmt="%.2f s", fontsize=8)
    ax.set_xticks(np.arange(len(cases)) + width * (len(results) - 1) / 2, ["--help", "train (cold)", "train (warm)"])
    ax.set(
        ylabel="whole process, seconds (median)", title=f"jaxlstm command start-up, {content['environment']['machine']}"
    )
    ax.legend()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
