"""What one LSTM time step costs, and the choices in jaxlstm.nn.fused that this measured.

For a (batch, H) step inside ``lax.scan`` it times, per step, forward and forward+backward:

- ``textbook``: :func:`jaxlstm.nn.lstm_update`, three ``sigmoid`` and one ``tanh`` on H-wide slices of the
  pre-activation slab, as the equations are written;
- ``slab``: :func:`jaxlstm.nn.fused.slab_update`, the fast path's form of the same equations, one ``tanh`` over the
  whole (batch, 4H) slab, with sigmoid(z) = (1 + tanh(z / 2)) / 2;
- the fused layer (:func:`jaxlstm.nn.lstm_sequence`) with the input projection hoisted out of the loop or
  computed inside it, and with ``unroll`` 1 and 2;

and then what each formulation costs where it matters, per epoch of the tutorial's training (``fit`` of the
stacked and bidirectional presets, batches split over the cores), with the fused layer's cell swapped.

    .venv/bin/python benchmarks/cell_activation.py

Writes benchmarks/results/<machine>/cell_activation.json and .png.
"""

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median_seconds, print_environment, write_results

from jaxlstm.config import TrainConfig, preset
from jaxlstm.nn import fused
from jaxlstm.nn.cell import LSTMParams, LSTMState, lstm_update, preactivation
from jaxlstm.nn.fused import lstm_sequence, slab_update
from jaxlstm.nn.models import Forecaster
from jaxlstm.nn.scan import scan_cell
from jaxlstm.training.runtime import use_cpu_cores
from jaxlstm.training.single import fit

UPDATES = {"textbook (jaxlstm.nn.lstm_update)": lstm_update, "slab (jaxlstm.nn.fused.slab_update)": slab_update}


def scan_with(update: Callable, params: LSTMParams, xs: jax.Array, state: LSTMState) -> jax.Array:
    return scan_cell(partial(preactivation, params), xs, state, update=update)[1]


def per_step_microseconds(function: Callable, args: tuple, time_steps: int, repeats: int) -> float:
    compiled = jax.jit(function).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    return 1e6 * median_seconds(lambda: compiled(*args), repeats, jax.block_until_ready) / time_steps


def epoch_milliseconds(arch: str, update: Callable, epochs: int) -> float:
    """Steady-state milliseconds per epoch of the tutorial's training with ``update`` as the fused layer's cell."""
    from flax import nnx

    fused.slab_update = update
    try:
        x = np.random.default_rng(0).random((112, 60, 1), dtype=np.float32)
        model = Forecaster(preset(arch), rngs=nnx.Rngs(0))
        history = fit(model, x, x[:, -1, 0], TrainConfig(epochs=epochs), progress=False)
    finally:
        fused.slab_update = slab_update
    return 1000 * history.train_seconds / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time", type=int, default=60)
    parser.add_argument("--hidden", default="50,128")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=40, help="epochs per training comparison")
    args = parser.parse_args()
    use_cpu_cores()
    env = environment()
    print_environment(env)

    rows = []
    for hidden in map(int, args.hidden.split(",")):
        rng = np.random.default_rng(0)
        params = LSTMParams(
            *(
                jnp.asarray(rng.normal(0, 0.1, shape), jnp.float32)
                for shape in [(hidden, 4 * hidden), (hidden, 4 * hidden), (4 * hidden,)]
            )
        )
        xs = jnp.asarray(rng.normal(size=(args.time, args.batch, hidden)), jnp.float32)
        state = LSTMState(jnp.zeros((args.batch, hidden)), jnp.zeros((args.batch, hidden)))

        variants: dict[str, Callable[[LSTMParams, jax.Array], jax.Array]] = {
            name: lambda p, x, s=state, u=update: scan_with(u, p, x, s) for name, update in UPDATES.items()
        }
        for hoist in (False, True):
            for unroll in (1, 2):
                name = f"fused, {'hoisted' if hoist else 'in-loop'} input, unroll {unroll}"
                variants[name] = lambda p, x, h=hoist, u=unroll, s=state: lstm_sequence(p, x, s, False, u, h)[0]
        for name, forward in variants.items():

            def loss(p: LSTMParams, x: jax.Array, forward: Callable = forward) -> jax.Array:
                return jnp.sum(forward(p, x) ** 2)

            row = {
                "hidden": hidden,
                "batch": args.batch,
                "variant": name,
                "forward_us_per_step": per_step_microseconds(forward, (params, xs), args.time, args.repeats),
                "forward_backward_us_per_step": per_step_microseconds(
                    jax.grad(loss, argnums=(0, 1)), (params, xs), args.time, args.repeats
                ),
            }
            rows.append(row)
            print(
                f"H={hidden:<4} B={args.batch:<3} {name:38} forward {row['forward_us_per_step']:7.1f} us/step, "
                f"forward+backward {row['forward_backward_us_per_step']:7.1f} us/step",
                flush=True,
            )
    training = []
    for arch in ("stacked", "bidirectional"):
        for name, update in UPDATES.items():
            row = {"arch": arch, "variant": name, "epoch_ms": epoch_milliseconds(arch, update, args.epochs)}
            training.append(row)
            print(f"{arch:13} training epoch with {name:34} {row['epoch_ms']:7.1f} ms", flush=True)
    content = {"environment": env, "settings": vars(args), "results": rows, "training": training}
    folder = write_results("cell_activation", content)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hiddens = sorted({r["hidden"] for r in rows})
    fig, axes = plt.subplots(1, len(hiddens), figsize=(7 * len(hiddens), 4.5), layout="constrained", squeeze=False)
    for ax, hidden in zip(axes[0], hiddens, strict=True):
        mine = [r for r in rows if r["hidden"] == hidden]
        positions = np.arange(len(mine))
        ax.barh(positions + 0.2, [r["forward_us_per_step"] for r in mine], 0.4, label="forward")
        ax.barh(positions - 0.2, [r["forward_backward_us_per_step"] for r in mine], 0.4, label="forward+backward")
        ax.set_yticks(positions, [r["variant"] for r in mine], fontsize=8)
        ax.set(xlabel="microseconds per time step (median)", title=f"H={hidden}, batch {args.batch}")
        ax.legend()
    fig.suptitle(f"One LSTM step under lax.scan, {env['machine']}")
    fig.savefig(folder / "cell_activation.png", dpi=110)
    plt.close(fig)
    print(f"wrote {folder}/cell_activation.json and .png")


if __name__ == "__main__":
    main()
