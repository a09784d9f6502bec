"""The prepared GPU run, `benchmarks/gpu.sh`, at tiny sizes on this machine (`--smoke`): every step runs the code the
GPU run will, and it writes the at most 10 files it promises, into the folder it is given."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.subprocess
def test_the_gpu_suite_smoke_run_passes_and_writes_ten_files(tmp_path: Path) -> None:
    result = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--smoke", str(tmp_path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},  # the session's compilation cache too
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(path.name for path in tmp_path.rglob("*") if path.is_file())
    assert files == sorted(
        f"{name}.{suffix}"
        for name in ("backtest", "ensemble", "seed_vs_keras", "throughput-float32-bfloat16", "throughput-float16")
        for suffix in ("json", "png")
    )
    throughput = json.loads(next(tmp_path.rglob("throughput-float32-bfloat16.json")).read_text())
    assert {row["precision"] for row in throughput["results"]} == {"float32", "bfloat16"}
    half = {
        row["implementation"]: row
        for row in json.loads(next(tmp_path.rglob("throughput-float16.json")).read_text())["results"]
    }
    torch = importlib.util.find_spec("torch") is not None
    assert set(half) == {"jaxlstm-fused [float16]"} | ({"torch-nn.LSTM [float16]"} if torch else set())
    if torch:  # float16 weights and inputs; no cuDNN on a CPU, so no cuDNN algorithm to record
        assert half["torch-nn.LSTM [float16]"]["torch_weights_dtype"] == "float16"
        assert half["torch-nn.LSTM [float16]"]["cudnn"] is None
    backtest = json.loads(next(tmp_path.rglob("backtest.json")).read_text())
    assert {(row["precision"], row["layout"]) for row in backtest["results"]["d_sweep"]} == {
        (precision, layout) for precision in ("float32", "bfloat16") for layout in ("default", "vmap")
    }
