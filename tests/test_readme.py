"""The README's code blocks run as written, from a fresh directory outside the clone, and print the figures it
quotes: the demo's report, the library example's RMSE (the same model as the demo's), the tutorial's table (from
../shared/data's GOOG.csv in place of the download, when that folder exists)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FAST_COMPILE, ROOT, SHARED

README = ROOT / "README.md"
BIN = Path(sys.executable).parent
SETUP = "make demo"
"""The first block: the set-up commands, run in the clone by make (CI runs them)."""


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(), flags=re.DOTALL)


def run(command: list[str], cwd: Path) -> str:
    """``command``'s output, run in ``cwd`` with the clone's environment on the PATH and XLA's default build (the
    README's figures were made with it, not with the tests' fast-compile flags)."""
    flags = " ".join(flag for flag in os.environ.get("XLA_FLAGS", "").split() if flag not in FAST_COMPILE)
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "XLA_FLAGS": flags}
    result = subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_the_readme_is_short_and_starts_with_the_two_set_up_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) < 150
    first = blocks("bash")[0]
    assert first.startswith("make demo") and "\nmake test" in first


@pytest.mark.subprocess
def test_every_bash_block_runs_from_a_fresh_directory(tmp_path: Path) -> None:
    """Each block after the set-up one, line by line in a directory outside the clone; the tutorial's download is
    replaced by ../shared/data's copy of the same Yahoo file (the test skips that block without it)."""
    printed = []
    for block in blocks("bash")[1:]:
        lines = [line.split("  #")[0].strip() for line in block.splitlines()]
        lines = [line for line in lines if line]
        if any(line.startswith("jaxlstm fetch") for line in lines):
            if not (SHARED / "GOOG.csv").exists():
                continue
            shutil.copy(SHARED / "GOOG.csv", tmp_path / "GOOG.csv")
            lines = [line for line in lines if not line.startswith(("pip install", "jaxlstm fetch"))]
        for line in lines:
            printed.append(run(["bash", "-c", line], tmp_path))
    demo_report = blocks("text")[0]
    for name in ("model (LSTM)", "naive baseline"):
        quoted = numbers(next(line for line in demo_report.splitlines() if line.startswith(name)))
        measured = numbers(next(line for line in printed[0].splitlines() if line.startswith(name)))
        assert measured == pytest.approx(quoted, rel=2e-3), (name, printed[0])
    if (SHARED / "GOOG.csv").exists():  # the tutorial's table: the RMSE column, from the two train runs
        rows = README.read_text().splitlines()
        table = [row.split("|") for row in rows if row.startswith(("| stacked:", "| bidirectional:"))]
        quoted = [float(row[5]) for row in table]
        measured = [numbers(line)[2] for out in printed for line in out.splitlines() if line.startswith("model (")]
        assert measured[1:3] == pytest.approx(quoted, rel=2e-3)


def numbers(line: str) -> list[float]:
    return [float(value) for value in re.findall(r"-?\d+\.\d+", line)]


@pytest.mark.subprocess
def test_the_python_block_prints_the_demo_figure(tmp_path: Path) -> None:
    (python,) = blocks("python")
    (tmp_path / "example.py").write_text(python)
    printed = run([sys.executable, "example.py"], tmp_path)
    quoted = re.search(r"# (RMSE [\d.]+), as make demo prints", python).group(1)
    assert printed.strip() == quoted
