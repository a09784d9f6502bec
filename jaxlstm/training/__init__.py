"""Training: the compiled epoch (:mod:`~jaxlstm.training.epoch`), the one training loop
(:mod:`~jaxlstm.training.driver`) that :func:`fit` (one model, its batches split over the devices) and
:func:`fit_ensemble` (many models in one program) both run, checkpoints, optimizers, the memory estimate, and the
process runtime (CPU cores as devices, several processes, the compilation cache).
"""

from jaxlstm.training.checkpoint import (
    Checkpoint,
    CheckpointWriter,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from jaxlstm.training.driver import History, TrainState, train_epochs
from jaxlstm.training.ensemble import MODEL_AXIS, Ensemble, ModelLayout, fit_ensemble, model_layout
from jaxlstm.training.epoch import (
    BATCH_AXIS,
    batch_mesh,
    checked,
    compile_ahead,
    make_epoch,
    make_evaluate,
    shuffled,
    split_devices,
    training_devices,
)
from jaxlstm.training.memory import MemoryEstimate, check_memory, estimate_memory
from jaxlstm.training.optimizers import KerasAdamState, keras_adam, make_optimizer
from jaxlstm.training.single import fit

__all__ = [
    "BATCH_AXIS",
    "MODEL_AXIS",
    "Checkpoint",
    "CheckpointWriter",
    "Ensemble",
    "History",
    "KerasAdamState",
    "MemoryEstimate",
    "ModelLayout",
    "TrainState",
    "batch_mesh",
    "check_memory",
    "checked",
    "compile_ahead",
    "estimate_memory",
    "fit",
    "fit_ensemble",
    "keras_adam",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "make_epoch",
    "make_evaluate",
    "make_optimizer",
    "model_layout",
    "save_checkpoint",
    "shuffled",
    "split_devices",
    "train_epochs",
    "training_devices",
]
