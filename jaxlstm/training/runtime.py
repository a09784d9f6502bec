"""Process-wide settings that a command makes before its first computation: one JAX device per CPU core, a cap on
the C heap's arenas, JAX's persistent compilation cache, and JAX's multi-process runtime (several processes, on one
machine or many, sharing one set of devices); and the two moves across processes that the ensemble needs, putting
arrays onto the global devices and gathering them back.

>>> use_cpu_cores() >= 1
True
"""

import ctypes
import os
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
from jax.experimental import multihost_utils

from jaxlstm.errors import ConfigError

__all__ = [
    "CACHE_ENV",
    "CPU_DEVICES_ENV",
    "gather",
    "limit_heap_arenas",
    "place",
    "start_processes",
    "use_compilation_cache",
    "use_cpu_cores",
]

CACHE_ENV = "JAXLSTM_CACHE_DIR"
CPU_DEVICES_ENV = "JAXLSTM_CPU_DEVICES"


def use_cpu_cores() -> int:
    """Exposes each core this process may run on as one JAX CPU device, so that :func:`jaxlstm.training.fit` can
    split batches over them. XLA runs each small step of a recurrence on one core; two devices keep two cores busy.

    ``$JAXLSTM_CPU_DEVICES`` (a whole number) sets another count: 1 keeps everything on one device, and more devices
    than cores lets one machine stand in for a bigger one (tests, and the scaling benchmarks).

    Call it before the first JAX computation (the CLI and the benchmarks do); later, it changes nothing.
    Returns the number of CPU devices JAX will use.
    """
    cores = _environment_count(CPU_DEVICES_ENV) or len(os.sched_getaffinity(0))
    try:
        jax.config.update("jax_num_cpu_devices", cores)
    except RuntimeError:  # the CPU backend already started
        return len(jax.devices("cpu"))
    return cores


def limit_heap_arenas(arenas: int | None = None) -> bool:
    """Caps glibc's malloc arenas at ``arenas`` (default: one per core this process may run on), as the environment
    variable ``MALLOC_ARENA_MAX`` would; call it before the first JAX computation.

    XLA runs each CPU device's steps on threads of their own, and glibc gives busy threads heaps of their own (up to
    8 per core): over a long epoch split over two devices, their freed blocks fragment and the process grows with
    the number of batches; the cap keeps a long epoch's peak memory down in the same time (docs/performance.md,
    "Longer series: windows without copies", measured with ``benchmarks/scaling.py``).
    A ``MALLOC_ARENA_MAX`` already in the environment is left as glibc read it.

    Returns whether a cap is in place: False without glibc (``libc.so.6``), which has no such arenas.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return True
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    arena_max = -8  # M_ARENA_MAX in glibc's malloc.h
    return bool(libc.mallopt(arena_max, arenas or len(os.sched_getaffinity(0))))


def use_compilation_cache() -> Path | None:
    """Keeps compiled XLA programs on disk between processes (JAX's persistent compilation cache), so that a run
    after the first loads its training program instead of compiling it (docs/performance.md has the figures).

    The directory is ``$JAXLSTM_CACHE_DIR`` (set it empty to turn the cache off), else
    ``$XDG_CACHE_HOME/jaxlstm/xla`` (``~/.cache/jaxlstm/xla`` by default), and every program is cached there,
    however short its compilation (the model's initialisers are many small ones). A cache already configured through
    JAX's own ``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir`` is left as JAX's settings make it.
    Call it before the first compilation.

    Returns the directory in use, or None when the cache is off.
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    directory = os.environ.get(CACHE_ENV)
    if directory is None:
        directory = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "jaxlstm" / "xla"
    if not str(directory):
        return None
    try:
        Path(directory).mkdir(parents=True, exist_ok=True)
    except OSError as error:
        warnings.warn(
            f"compiling without a cache: cannot create {directory} ({error.strerror}); set {CACHE_ENV} to a "
            f"writable folder, or to an empty value to turn the cache off",
            stacklevel=2,
        )
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return Path(directory)


def start_processes(coordinator: str | None = None, processes: int | None = None, process_id: int | None = None) -> int:
    """Joins JAX's multi-process runtime (``jax.distributed.initialize``) when this process is one of several; returns
    the number of processes (1 when it runs alone).

    The three settings come from the arguments, else from the environment variables ``JAX_COORDINATOR_ADDRESS``
    (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; under SLURM with more than one task
    and none of them set, JAX reads them from SLURM's own variables. On CPUs the processes exchange arrays with gloo
    over TCP. Call it before the first JAX computation, after :func:`use_cpu_cores`.

    Raises:
        ConfigError: some of the three given but not all, or a process id outside [0, processes).
    """
    coordinator = coordinator or os.environ.get("JAX_COORDINATOR_ADDRESS")
    processes = processes if processes is not None else _environment_count("JAX_NUM_PROCESSES")
    process_id = process_id if process_id is not None else _environment_count("JAX_PROCESS_ID")
    settings = {"--coordinator": coordinator, "--processes": processes, "--process-id": process_id}
    given = [name for name, value in settings.items() if value is not None]
    slurm_tasks = int(os.environ.get("SLURM_NTASKS", "1") or 1)
    if not given and slurm_tasks <= 1:
        return 1
    if given and len(given) < len(settings):
        missing = ", ".join(name for name in settings if name not in given)
        raise ConfigError(f"several processes need {', '.join(settings)} together; add {missing}")
    if given and not 0 <= process_id < processes:
        raise ConfigError(f"--process-id {process_id} must be in [0, {processes}) for --processes {processes}")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if given:
        jax.distributed.initialize(coordinator, processes, process_id)
    else:
        jax.distributed.initialize()
    return jax.process_count()


def _environment_count(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} must be a whole number") from None


def place(tree: Any, sharding: jax.sharding.Sharding) -> Any:
    """Every array of ``tree`` put onto ``sharding``'s devices. With several processes each process passes the same
    whole arrays and transfers only the parts its own devices hold (``jax.device_put`` takes host arrays there;
    PRNG keys travel as their key data)."""
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def one(leaf: Any) -> jax.Array:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = jax.device_put(np.asarray(jax.random.key_data(leaf)), sharding)
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(leaf))
        return jax.device_put(np.asarray(leaf), sharding)

    return jax.tree.map(one, tree)


def gather(tree: Any) -> Any:
    """Every array of ``tree`` whole on this host, from the devices of every process (a collective: with several
    processes, all of them must call it together); PRNG keys stay keys."""
    if jax.process_count() == 1:
        return tree

    def one(leaf: Any) -> Any:
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            data = multihost_utils.process_allgather(jax.random.key_data(leaf), tiled=True)
            return jax.random.wrap_key_data(np.asarray(data), impl=jax.random.key_impl(leaf))
        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(one, tree)
