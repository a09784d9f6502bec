"""The one training loop, for one model (:func:`~jaxlstm.training.fit`) and for many at once
(:func:`~jaxlstm.training.fit_ensemble`): epochs, the NaN guard, validation and early stopping, checkpoints,
timing and progress.

A caller compiles its epoch and hands :func:`train_epochs` a function that runs one epoch on a :class:`TrainState`
in place and returns every model's loss and whether its weights are still finite; the loop does the rest, the same
way for both.

>>> import numpy as np
>>> state = TrainState(0, params=None, opt_state=None, key=None, history=History())
>>> def one_epoch(state):  # a stand-in for a compiled epoch: every model's loss, and whether it is finite
...     return np.array([1.0 / (state.epoch + 1)]), np.array([True])
>>> train_epochs(state, one_epoch, epochs=3)
>>> state.epoch, state.history.loss, state.finished
(3, [1.0, 0.5, 0.3333333333333333], True)
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from jaxlstm.config import TrainConfig, check_count
from jaxlstm.errors import ConfigError, TrainingError

__all__ = ["History", "TrainState", "resumed_devices", "train_epochs"]

Array = jax.Array
PyTree = Any
Epoch = Callable[["TrainState"], tuple[np.ndarray, np.ndarray]]
"""Runs one epoch on the state in place (weights, optimizer state, key); returns each model's loss (models,) and
whether each model's weights and optimizer moments are all still finite (models,)."""


@dataclass
class History:
    """What training measured: losses per epoch (scaled units; one list of losses per epoch for many models), and
    where the time went. ``first_epoch_seconds``, the first epoch this call trained (part of ``train_seconds``; on a
    GPU it carries the program's first execution), is not kept in checkpoints."""

    loss: list = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    compile_seconds: float = 0.0
    train_seconds: float = 0.0
    devices: int = 1
    first_epoch_seconds: float = math.nan


@dataclass
class TrainState:
    """Everything the loop carries from one epoch to the next: what a checkpoint holds.

    Resuming from a state continues the run exactly: the parameters, the optimizer state and the PRNG key are those
    after ``epoch`` epochs (each epoch draws ``key, epoch_key = split(key)``), so on the same device count the
    remaining epochs give the same bits as an uninterrupted run.

    Attributes:
        epoch: epochs completed.
        params: the model's ``nnx.Param`` state (with a leading models axis for many models).
        opt_state: the optimizer's state.
        key: the loop's PRNG key after ``epoch`` epochs (one per model for many).
        history: the losses so far; ``history.devices`` is the device count the batches (or the models) were split
            over.
        best_params: with a validation split, the parameters of the best validation epoch so far.
        best_val_loss: that epoch's validation loss (inf before any).
        finished: True once training ended (all epochs, or early stopping).
    """

    epoch: int
    params: PyTree
    opt_state: PyTree
    key: Array
    history: History
    best_params: PyTree | None = None
    best_val_loss: float = math.inf
    finished: bool = False


def resumed_devices(resume: TrainState | None, config: TrainConfig, requested: int | None, what: str) -> int | None:
    """The device count to train on: ``requested`` for a new run; for a resumed one, the count it was trained on
    (``what`` says how it used them, for the messages).

    Raises:
        ConfigError: the state is past ``config.epochs``, ``requested`` differs from the saved count, or JAX sees
            fewer devices than the state was trained on.
    """
    if resume is None:
        return requested
    if resume.epoch > config.epochs:
        raise ConfigError(f"the state to resume is at epoch {resume.epoch}, past epochs={config.epochs}")
    saved = resume.history.devices
    if requested is not None and requested != saved:
        raise ConfigError(f"devices={requested}, but the state to resume was trained on {saved}; pass devices={saved}")
    seen = len(jax.devices())
    if saved > seen:
        raise ConfigError(
            f"the run was trained with {what} {saved} device(s), but JAX sees {seen} here; resume it where {saved} "
            f"are available (an identical continuation needs the same count)"
        )
    return saved


def _check_finite(state: TrainState, losses: np.ndarray, finite: np.ndarray, names: Sequence[str] | None) -> None:
    """TrainingError naming the epoch (and the models, for many) when a loss, weight or moment is no longer finite."""
    bad = ~(np.isfinite(losses) & finite)
    if not bad.any():
        return
    whose = "" if names is None else " of model(s) " + ", ".join(names[k] for k in np.flatnonzero(bad))
    diverged = losses[bad & ~np.isfinite(losses)]
    if len(diverged):
        raise TrainingError(
            f"the training loss{whose} became {diverged[0]} at epoch {state.epoch}; lower --lr or set --clip-norm"
        )
    raise TrainingError(
        f"a gradient made the weights or Adam's moments{whose} NaN or infinite at epoch {state.epoch} (the loss "
        f"was still {losses[bad][0]:.3g}); lower --lr or set --clip-norm"
    )


def _improved(state: TrainState, validation_loss: float) -> bool:
    """Records the validation loss; keeps a copy of the parameters when it is the best so far."""
    state.history.val_loss.append(validation_loss)
    if validation_loss >= state.best_val_loss:
        return False
    state.best_val_loss, state.history.best_epoch = validation_loss, state.epoch
    state.best_params = jax.tree.map(jnp.copy, state.params)
    return True


def train_epochs(
    state: TrainState,
    run_epoch: Epoch,
    *,
    epochs: int,
    names: Sequence[str] | None = None,
    validate: Callable[[TrainState], float] | None = None,
    patience: int | None = None,
    saved: Callable[[TrainState], TrainState] | None = None,
    checkpoint_every: int | None = None,
    on_checkpoint: Callable[[TrainState], Any] | None = None,
    progress: bool = False,
) -> None:
    """Trains ``state`` in place from its epoch to ``epochs``.

    Args:
        state: where training stands; its losses, timings and ``finished`` are updated too.
        run_epoch: one epoch (see :data:`Epoch`).
        epochs: the epoch to train up to.
        names: one name per model (``"3 (seed 5)"``), for messages; None for one model, whose losses are recorded
            as numbers rather than lists.
        validate: the validation loss of the current weights, after every epoch; with it the loop keeps the best
            weights (``state.best_params``) and, with ``patience``, stops that many epochs after the best one.
        saved: the state as a checkpoint holds it (e.g. many models' device layout gathered into one models axis);
            by default ``state`` itself.
        checkpoint_every: call ``on_checkpoint`` after every this many epochs (None: only at the end).
        on_checkpoint: called with ``saved(state)`` every ``checkpoint_every`` epochs and once when training ends;
            it must copy what it keeps before returning (the next epoch donates the buffers). Time spent in it does
            not count as training time.
        progress: show a progress bar.

    Raises:
        TrainingError: a loss, weight or optimizer moment stopped being finite (the epoch and models named).
    """
    if checkpoint_every is not None:
        check_count("--checkpoint-every", checkpoint_every, 10)
    many = names is not None
    description = f"train {len(names)} models" if many else "train"
    shown = {"desc": description, "unit": "epoch", "total": epochs, "initial": state.epoch, "leave": False}

    def checkpoint() -> None:
        state.history.train_seconds += time.perf_counter() - clock
        on_checkpoint(state if saved is None else saved(state))

    state.history.first_epoch_seconds = math.nan  # this call's first epoch, whatever the state carried
    clock = started = time.perf_counter()
    with tqdm(range(state.epoch, epochs), disable=not progress, **shown) as bar:
        for _ in bar:
            losses, finite = run_epoch(state)
            state.epoch += 1
            state.history.loss.append(losses.tolist() if many else float(losses[0]))
            if math.isnan(state.history.first_epoch_seconds):
                state.history.first_epoch_seconds = time.perf_counter() - started
            _check_finite(state, losses, finite, names)
            postfix = {"loss": f"{np.mean(losses):.3g}"}
            stop = False
            if validate is not None:
                improved = _improved(state, float(validate(state)))
                stop = not improved and patience is not None and state.epoch - state.history.best_epoch >= patience
                postfix["val_loss"] = f"{state.history.val_loss[-1]:.3g}"
            bar.set_postfix(postfix)
            if stop:
                break
            due = checkpoint_every is not None and state.epoch % checkpoint_every == 0 and state.epoch < epochs
            if on_checkpoint is not None and due:
                checkpoint()
                clock = time.perf_counter()
    state.finished = True
    if on_checkpoint is not None:
        checkpoint()
    else:
        state.history.train_seconds += time.perf_counter() - clock
