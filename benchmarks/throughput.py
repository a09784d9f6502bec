"""Forward+backward throughput of one LSTM layer and of a 4-layer stack, against PyTorch and Flax's own LSTM.

Sweeps hidden size, sequence length and batch. For every configuration and implementation it compiles (or warms
up) once, then reports the median time of a forward + backward pass (gradients with respect to every weight and to
the input) and the achieved FLOP/s, with the fraction of the device's peak GEMM rate measured in the same run with a
large matmul.

FLOP convention: matmuls only, 2 FLOPs per multiply-add. One layer of H units reading ``in`` features costs
2 * batch * time * (in + H) * 4H forward; the backward pass costs twice that (input and weight gradients), so a
forward + backward pass counts 3x the forward matmul FLOPs. Elementwise work is not counted.

Implementations: jaxlstm's fused path and its textbook scan, Flax NNX's ``OptimizedLSTMCell`` under ``nnx.RNN``
(run as a pure function under ``jax.jit``, as jaxlstm is), PyTorch's ``nn.LSTM`` (oneDNN on CPU, cuDNN on GPU)
and, on GPU, ``jax.experimental.rnn.lstm`` (cuDNN).

    .venv/bin/python benchmarks/throughput.py            # default sweep, large configurations skipped on CPU
    .venv/bin/python benchmarks/throughput.py --max-gflop 0   # the whole grid, no skipping
    .venv/bin/python benchmarks/throughput.py --precision bfloat16
    .venv/bin/python benchmarks/throughput.py --precision float32,tf32,bfloat16   # all three in one file (GPU suite)

``--precision``: ``float32`` (matmuls at full fp32 precision: JAX's ``highest``, PyTorch without TF32),
``tf32`` (TensorFloat-32 matmuls where the GPU has them; the same as float32 on a CPU), ``bfloat16`` or
``float16`` (jaxlstm's mixed precision, ``LSTM(dtype=..., cell_dtype=float32)`` with float32 weights; Flax's cell
with ``dtype``; the cuDNN path of ``jax.experimental.rnn`` runs float32 only). PyTorch runs ``bfloat16`` under
``torch.autocast``, and ``float16`` with float16 weights and inputs (``nn.LSTM(...).half()``), the configuration in
which PyTorch may pick cuDNN's persistent kernel. On a GPU each PyTorch row records which cuDNN algorithm PyTorch's
own rule picks for it (``pytorch_cudnn_algorithm``), from the dtype cuDNN actually saw (the output's: autocast hands
cuDNN float16 whatever its dtype, aten/src/ATen/cudnn/AutocastRNN.cpp), and the ``jax.experimental.rnn`` rows record
the one algorithm jaxlib asks for.

``--implementations`` picks some of them by name (default: all); the GPU suite's float16 rows run jaxlstm's fused
path against PyTorch only.

Writes benchmarks/results/<machine>/throughput.json and .png for float32 alone, ``throughput-<precisions>`` for the
others; an implementation run in another precision than float32 is labelled ``name [precision]``.
"""

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median_seconds, print_environment, write_results

from jaxlstm.nn.layers import LSTM, Stacked

Timing = tuple[float, float]  # (compile or warm-up seconds, median seconds per forward + backward)
Measurement = tuple[float, float, dict[str, Any]]  # a Timing and what else a row records (PyTorch's cuDNN algorithm)


def forward_flops(batch: int, time_steps: int, widths: list[tuple[int, int]]) -> float:
    """Forward matmul FLOPs of layers given as (in_features, H)."""
    return sum(2 * batch * time_steps * (n_in + hidden) * 4 * hidden for n_in, hidden in widths)


def layer_widths(model: str, hidden: int) -> list[tuple[int, int]]:
    """(in, H) per layer: one layer reading H features, or the tutorial's stack of 4 reading 1 feature."""
    return [(hidden, hidden)] if model == "layer" else [(1, hidden)] + [(hidden, hidden)] * 3


def time_jax(loss: Callable[..., jax.Array], params: Any, x: jax.Array, repeats: int) -> Timing:
    """Compile time and median time of ``grad(loss)(params, x)`` with respect to both."""
    step = jax.jit(jax.grad(loss, argnums=(0, 1)))
    start = time.perf_counter()
    compiled = step.lower(params, x).compile()
    compile_seconds = time.perf_counter() - start
    jax.block_until_ready(compiled(params, x))
    return compile_seconds, median_seconds(lambda: compiled(params, x), repeats, jax.block_until_ready)


PRECISIONS = ("float32", "tf32", "bfloat16", "float16")
Runner = Callable[[list[tuple[int, int]], jax.Array, int], Measurement]


def compute_dtype(precision: str) -> Any:
    """The dtype the layers compute in: float32 for ``float32`` and ``tf32`` (which changes the matmuls only)."""
    return jnp.float32 if precision in ("float32", "tf32") else jnp.dtype(precision)


def jaxlstm_timing(implementation: str, precision: str) -> Runner:
    dtype = compute_dtype(precision)
    mixed = {} if dtype == jnp.float32 else {"dtype": dtype, "cell_dtype": jnp.float32}

    def run(widths: list[tuple[int, int]], x: jax.Array, repeats: int) -> Measurement:
        rngs = nnx.Rngs(0)
        layers = [LSTM(n_in, hidden, implementation=implementation, **mixed, rngs=rngs) for n_in, hidden in widths]
        graphdef, params = nnx.split(Stacked(layers), nnx.Param)

        def loss(params: Any, x: jax.Array) -> jax.Array:
            return jnp.sum(nnx.merge(graphdef, params)(x).astype(jnp.float32) ** 2)

        return *time_jax(loss, params, x, repeats), {}

    return run


def flax_timing(precision: str) -> Runner:
    dtype = compute_dtype(precision)

    def run(widths: list[tuple[int, int]], x: jax.Array, repeats: int) -> Measurement:
        rngs = nnx.Rngs(0)
        cells = [nnx.OptimizedLSTMCell(n_in, hidden, dtype=dtype, rngs=rngs) for n_in, hidden in widths]
        layers = nnx.List([nnx.RNN(cell, rngs=False) for cell in cells])
        graphdef, params = nnx.split(layers, nnx.Param)

        def loss(params: Any, x: jax.Array) -> jax.Array:
            x = x.astype(dtype)
            for layer, (_, hidden) in zip(nnx.merge(graphdef, params), widths, strict=True):
                zeros = jnp.zeros((x.shape[0], hidden), dtype)
                x = layer(x, initial_carry=(zeros, zeros))  # Flax's carry is (c, h)
            return jnp.sum(x.astype(jnp.float32) ** 2)

        return *time_jax(loss, params, x, repeats), {}

    return run


def cudnn_timing(widths: list[tuple[int, int]], x: jax.Array, repeats: int) -> Measurement:
    from jax.experimental import rnn

    batch, hidden, layers = x.shape[0], widths[-1][1], len(widths)
    n_in = widths[0][0]
    weights = rnn.init_lstm_weight(jax.random.key(0), n_in, hidden, layers, False)
    zeros = jnp.zeros((layers, batch, hidden), x.dtype)
    lengths = jnp.full((batch,), x.shape[1], jnp.int32)

    def loss(weights: jax.Array, x: jax.Array) -> jax.Array:
        outputs, _, _ = rnn.lstm(x, zeros, zeros, weights, lengths, n_in, hidden, layers, 0.0, False)
        return jnp.sum(outputs**2)

    # jaxlib's cuDNN LSTM asks for the standard algorithm in float32, whatever the shape (jaxlib/gpu/rnn_kernels.cc)
    return *time_jax(loss, weights, x, repeats), {"cudnn": {"dtype": "float32", "algorithm": "STANDARD"}}


def pytorch_cudnn_algorithm(
    *,
    dtype: str,
    hidden: int,
    input_size: int,
    batch: int,
    time_steps: int,
    num_layers: int,
    bidirectional: bool,
    capability: tuple[int, int],
    multiprocessors: int,
    forward: bool,
    proj_size: int = 0,
    packed: bool = False,
) -> str:
    """The cuDNN algorithm PyTorch asks for when ``nn.LSTM`` runs on cuDNN: ``STANDARD``, ``PERSIST_STATIC`` or
    ``PERSIST_STATIC_SMALL_H`` (each ``CUDNN_RNN_ALGO_...``), for the forward or the backward pass.

    A transcription of PyTorch's rule for LSTMs, ``get_algo`` with ``use_rnn_persist_small_h``,
    ``use_persist_common_heuristics`` and ``use_persist_device_heuristics`` in aten/src/ATen/native/cudnn/RNN.cpp
    (pytorch/pytorch; read at commit 00fc08aa). ``dtype`` is the dtype of the tensors cuDNN is handed (float16 under
    ``torch.autocast``, whatever autocast's dtype), ``batch`` and ``time_steps`` as PyTorch counts them whether or not
    the input is ``batch_first``, ``capability`` and ``multiprocessors`` the GPU's (from
    ``torch.cuda.get_device_properties``). Only the shape, the dtype and the GPU decide; which kernels cuDNN then runs
    inside the algorithm asked for is cuDNN's business.

    >>> h200 = dict(capability=(9, 0), multiprocessors=132, num_layers=1, bidirectional=False, time_steps=60)
    >>> pytorch_cudnn_algorithm(dtype="float16", hidden=1024, input_size=1024, batch=128, forward=True, **h200)
    'PERSIST_STATIC'
    >>> pytorch_cudnn_algorithm(dtype="bfloat16", hidden=1024, input_size=1024, batch=32, forward=True, **h200)
    'STANDARD'
    >>> pytorch_cudnn_algorithm(dtype="float32", hidden=50, input_size=50, batch=1024, forward=False, **h200)
    'PERSIST_STATIC_SMALL_H'
    """
    if proj_size != 0:  # projections run on the standard algorithm only
        return "STANDARD"
    if packed:  # persistent algorithms do not take packed (variable-length) batches
        return "STANDARD"
    major, minor = capability
    # The small-hidden persistent kernel: any dtype but double, compute capability 6 or more, an LSTM's H <= 192
    # forward and H <= 128 backward; no condition on the batch, the input size, the layers or the directions.
    if dtype != "float64" and major >= 6 and hidden <= (192 if forward else 128):
        return "PERSIST_STATIC_SMALL_H"
    if dtype != "float16":  # the persistent kernel is asked for in half precision only
        return "STANDARD"
    common = num_layers == 1 and hidden <= 1024 and not bidirectional and hidden % 128 == 0 and input_size % 128 == 0
    if major == 7 and minor != 5:  # Volta (Turing, 7.5, is excluded)
        device = ((batch % 16 == 0 and batch not in (80, 112)) or batch == 8) and (
            (time_steps >= 40 and batch <= 128)
            or (time_steps >= 20 and batch <= 96)
            or (time_steps >= 10 and batch <= 32)
        )
    elif major >= 8 and multiprocessors >= 98 and minor != 6:  # A100, H100, H200...; not sm_86, A30 or A40
        device = batch % 8 == 0 and batch <= 128  # the LSTM branch
    else:
        device = False
    return "PERSIST_STATIC" if common and device else "STANDARD"


class UnsupportedError(Exception):
    """A peer that cannot run a configuration on this machine: recorded and skipped, not timed."""


def torch_timing(precision: str) -> Runner:
    def run(widths: list[tuple[int, int]], x: jax.Array, repeats: int) -> Measurement:
        return time_torch(widths, x, repeats, precision)

    return run


def time_torch(widths: list[tuple[int, int]], x: jax.Array, repeats: int, precision: str) -> Measurement:
    import contextlib

    import torch

    device = "cuda" if jax.default_backend() == "gpu" and torch.cuda.is_available() else "cpu"
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"
    # float16: float16 weights and inputs, so that cuDNN is handed half tensors without autocast's per-call cast
    weights_dtype = torch.float16 if precision == "float16" else torch.float32
    lstm = torch.nn.LSTM(widths[0][0], widths[-1][1], num_layers=len(widths), batch_first=True)
    lstm = lstm.to(device, dtype=weights_dtype)
    inputs = torch.from_numpy(np.array(x)).to(device, dtype=weights_dtype).requires_grad_()
    seen: dict[str, Any] = {}

    def step() -> None:
        lstm.zero_grad()
        inputs.grad = None
        autocast = (
            torch.autocast(device_type=device, dtype=torch.bfloat16)
            if precision == "bfloat16"
            else contextlib.nullcontext()
        )
        with autocast:
            outputs, _ = lstm(inputs)
        seen["dtype"] = outputs.dtype  # the dtype nn.LSTM's kernel computed in (on cuDNN: the one it was handed)
        (outputs.float() ** 2).sum().backward()

    def wait(_: Any) -> None:
        if device == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    try:
        step()
    except RuntimeError as error:  # e.g. oneDNN has no bfloat16 LSTM on a CPU without AVX-512 BF16
        raise UnsupportedError(f"torch nn.LSTM [{precision}] on {device}: {str(error).splitlines()[0]}") from None
    wait(None)
    first = time.perf_counter() - start
    median = median_seconds(step, repeats, wait)
    kernel_dtype = str(seen["dtype"]).removeprefix("torch.")
    facts: dict[str, Any] = {"torch_weights_dtype": str(weights_dtype).removeprefix("torch.")}
    if device == "cuda" and torch.backends.cudnn.enabled and torch.backends.cudnn.is_available():
        properties = torch.cuda.get_device_properties(inputs.device)
        rule = dict(
            dtype=kernel_dtype,
            hidden=widths[-1][1],
            input_size=widths[0][0],
            batch=x.shape[0],
            time_steps=x.shape[1],
            num_layers=len(widths),
            bidirectional=False,
            capability=(properties.major, properties.minor),
            multiprocessors=properties.multi_processor_count,
        )
        facts["cudnn"] = {
            "dtype": kernel_dtype,
            "forward": pytorch_cudnn_algorithm(**rule, forward=True),
            "backward": pytorch_cudnn_algorithm(**rule, forward=False),
            "rule": "pytorch_cudnn_algorithm: get_algo in pytorch/pytorch aten/src/ATen/native/cudnn/RNN.cpp",
            "cudnn_version": torch.backends.cudnn.version(),
            "compute_capability": f"{properties.major}.{properties.minor}",
            "multiprocessors": properties.multi_processor_count,
        }
    else:
        facts["cudnn"] = None  # on a CPU PyTorch runs oneDNN or its own kernels
        facts["torch_kernel_dtype"] = kernel_dtype
    return first, median, facts


def peak_gemm_flops(size: int = 4096, repeats: int = 5) -> float:
    """FLOP/s of a large fp32 matmul under JAX on the default device: the peak that results are compared with."""
    a = jax.random.normal(jax.random.key(0), (size, size), jnp.float32)
    matmul = jax.jit(lambda a: a @ a)
    jax.block_until_ready(matmul(a))
    return 2 * size**3 / median_seconds(lambda: matmul(a), repeats, jax.block_until_ready)


def implementations(precision: str, chosen: set[str] | None = None) -> dict[str, Runner]:
    """The implementations to time in ``precision`` (those named in ``chosen``, if given)."""
    found = {
        "jaxlstm-fused": jaxlstm_timing("fused", precision),
        "jaxlstm-textbook": jaxlstm_timing("textbook", precision),
        "flax-OptimizedLSTMCell": flax_timing(precision),
    }
    try:
        import torch  # noqa: F401

        found["torch-nn.LSTM"] = torch_timing(precision)
    except ImportError:
        print("# torch not installed: skipped (pip install torch==2.13.0)")
    if jax.default_backend() == "gpu" and compute_dtype(precision) == jnp.float32:
        found["jax.experimental.rnn-cudnn"] = cudnn_timing
    return found if chosen is None else {name: runner for name, runner in found.items() if name in chosen}


IMPLEMENTATIONS = (
    "jaxlstm-fused",
    "jaxlstm-textbook",
    "flax-OptimizedLSTMCell",
    "torch-nn.LSTM",
    "jax.experimental.rnn-cudnn",
)


def plot(results: list[dict[str, Any]], env: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["model"], r["time"], r["batch"]) for r in results})
    columns = min(4, len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3.4 * rows), layout="constrained", squeeze=False)
    for ax, (model, time_steps, batch) in zip(axes.flat, panels, strict=False):
        for name in dict.fromkeys(r["implementation"] for r in results):
            points = sorted(
                (r["hidden"], r["gflops"])
                for r in results
                if (r["model"], r["time"], r["batch"], r["implementation"]) == (model, time_steps, batch, name)
            )
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=name)
        ax.set(
            xscale="log",
            yscale="log",
            xlabel="hidden size",
            ylabel="GFLOP/s",
            title=f"{model} T={time_steps} B={batch}",
        )
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(
        f"LSTM forward+backward throughput, {env['machine']} (peak GEMM {env['peak_gemm_gflops']:.0f} GFLOP/s)"
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)


def summarize(
    env: dict[str, Any], args: argparse.Namespace, results: list[dict], skipped: list[dict]
) -> dict[str, Any]:
    """The JSON content: every timing, and each implementation's time over jaxlstm-fused's in the same precision."""
    speedups = {}
    for key in {(r["model"], r["time"], r["batch"], r["hidden"], r["precision"]) for r in results}:
        row = {
            r["implementation"]: r["seconds"]
            for r in results
            if (r["model"], r["time"], r["batch"], r["hidden"], r["precision"]) == key
        }
        fused = "jaxlstm-fused" if key[-1] == "float32" else f"jaxlstm-fused [{key[-1]}]"
        if fused in row:
            speedups["/".join(map(str, key))] = {n: s / row[fused] for n, s in row.items()}
    return {
        "environment": env,
        "flop_convention": "matmuls only, 2 per multiply-add; forward+backward = 3x forward",
        "settings": vars(args),
        "results": results,
        "skipped": skipped,
        "time_ratio_to_jaxlstm_fused": speedups,
        "median_ratio_to_jaxlstm_fused": {
            name: statistics.median(ratios[name] for ratios in speedups.values() if name in ratios)
            for name in {n for ratios in speedups.values() for n in ratios}
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden", default="50,128,256,512,1024")
    parser.add_argument("--time", default="60,256")
    parser.add_argument("--batch", default="32,256")
    parser.add_argument("--models", default="layer,stacked")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--precision", default="float32", help=f"comma-separated, of {', '.join(PRECISIONS)}")
    parser.add_argument(
        "--implementations",
        default=None,
        help=f"comma-separated, of {', '.join(IMPLEMENTATIONS)} (default: all; the last on a GPU only)",
    )
    parser.add_argument(
        "--max-gflop",
        type=float,
        default=None,
        help="skip configurations whose forward+backward exceeds this many GFLOP (default: 40 on CPU, none on GPU)",
    )
    args = parser.parse_args()
    max_gflop = args.max_gflop if args.max_gflop is not None else (40.0 if jax.default_backend() == "cpu" else 0.0)
    precisions = args.precision.split(",")
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        parser.error(f"--precision {unknown[0]!r}: use {', '.join(PRECISIONS)}")
    chosen = None if args.implementations is None else set(args.implementations.split(","))
    if chosen is not None and not chosen <= set(IMPLEMENTATIONS):
        parser.error(
            f"--implementations {sorted(chosen - set(IMPLEMENTATIONS))[0]!r}: use {', '.join(IMPLEMENTATIONS)}"
        )
    jax.config.update("jax_default_matmul_precision", "highest")

    env = environment()
    env["peak_gemm_gflops"] = peak_gemm_flops() / 1e9
    print_environment(env)
    results, skipped = [], []
    stem = "throughput" if precisions == ["float32"] else f"throughput-{'-'.join(precisions)}"
    grid = itertools.product(
        args.models.split(","), *(map(int, v.split(",")) for v in (args.time, args.batch, args.hidden))
    )
    for model, time_steps, batch, hidden in grid:
        widths = layer_widths(model, hidden)
        flops = 3 * forward_flops(batch, time_steps, widths)
        config = {"model": model, "time": time_steps, "batch": batch, "hidden": hidden, "gflop": flops / 1e9}
        if max_gflop and flops / 1e9 > max_gflop:
            skipped.append(config)
            continue
        x = jax.random.normal(jax.random.key(1), (batch, time_steps, widths[0][0]), jnp.float32)
        runs = [
            (precision, *runner) for precision in precisions for runner in implementations(precision, chosen).items()
        ]
        for precision, name, timing in runs:
            jax.config.update("jax_default_matmul_precision", "tensorfloat32" if precision == "tf32" else "highest")
            try:
                compile_seconds, seconds, facts = timing(widths, x, args.repeats)
            except UnsupportedError as reason:
                skipped.append({**config, "implementation": name, "precision": precision, "unsupported": str(reason)})
                print(f"# unsupported here, skipped: {reason}", flush=True)
                continue
            row = {
                **config,
                "implementation": name if precision == "float32" else f"{name} [{precision}]",
                "precision": precision,
                "compile_seconds": compile_seconds,
                "seconds": seconds,
                "gflops": flops / seconds / 1e9,
                "fraction_of_peak": flops / seconds / 1e9 / env["peak_gemm_gflops"],
                **facts,
            }
            results.append(row)
            write_results(stem, summarize(env, args, results, skipped))  # a run stopped at a time limit keeps them
            cudnn = row.get("cudnn") or {}
            algorithms = [cudnn[key] for key in ("algorithm", "forward", "backward") if key in cudnn]
            algorithm = f", cuDNN {cudnn['dtype']} {'/'.join(algorithms)}" if cudnn else ""
            print(
                f"{model:7} T={time_steps:<4} B={batch:<4} H={hidden:<5} {row['implementation']:36} "
                f"{1000 * seconds:10.2f} ms "
                f"{row['gflops']:8.1f} GFLOP/s ({100 * row['fraction_of_peak']:.0f}% of peak), "
                f"compile {compile_seconds:.1f} s{algorithm}",
                flush=True,
            )
    for config in skipped:
        if "unsupported" not in config:
            print(f"skipped (over --max-gflop {max_gflop}): {config}")
    content = summarize(env, args, results, skipped)
    folder = write_results(stem, content)
    plot(results, env, folder / f"{stem}.png")
    print(f"median time ratio to jaxlstm-fused (>1: slower than ours): {content['median_ratio_to_jaxlstm_fused']}")
    print(f"wrote {folder}/{stem}.json and .png")


if __name__ == "__main__":
    main()
