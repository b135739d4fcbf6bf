"""Process pools whose workers end with their parent.

A ``ProcessPoolExecutor`` worker that is busy when its parent is killed (``SIGKILL``, an
out-of-memory kill, a closed terminal) finishes its task, which can take minutes, and only
then notices the broken pipe. :func:`process_pool` gives every worker a watchdog thread that
checks every :data:`PARENT_POLL_S` seconds whether the process that started it is still its
parent, and ends the worker at once when it is not. Workers are started with ``spawn``
(fresh interpreters, so environment variables such as single-threaded BLAS settings take
effect when numpy loads in them). :func:`local_cluster` starts the Dask equivalent, a
``distributed.LocalCluster`` of single-threaded worker processes set up the same way.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

__all__ = [
    "DASK_WORKER_CONFIG", "PARENT_POLL_S", "SINGLE_THREADED_BLAS", "environment", "local_cluster", "process_pool",
]

#: How often (s) a worker checks that its parent lives: short against the minutes a task can
#: take, long against the cost of one ``getppid`` call.
PARENT_POLL_S = 0.5

#: Environment for workers that each run one single-threaded FE job: BLAS threads only add
#: contention when every core already runs a worker (on a loaded 2-core machine they made the
#: unit-cell FE about 10x slower).
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

#: Dask settings for the worker processes :func:`local_cluster` starts. Dask's nanny starts
#: workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc hand freed memory back to
#: the system after every FE sample's small allocations; measured on 2 workers over 10,000
#: truss samples it made the chunks 28 % slower than the same workers in a process pool
#: (23.3 s against 18.2 s), and 18.2 s without it. glibc's default is kept instead.
DASK_WORKER_CONFIG = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


def _watch_parent(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as ``parent_pid`` is no longer its parent."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)  # the parent is gone: nobody will read this worker's result
            threading.Event().wait(PARENT_POLL_S)

    threading.Thread(target=watch, name="graded-parent-watch", daemon=True).start()


@contextlib.contextmanager
def environment(values: dict[str, str | None]) -> Iterator[None]:
    """Set environment variables for the duration of the block (inherited by children).

    A value of ``None`` removes the variable for the block.
    """
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def process_pool(workers: int, env: dict[str, str] | None = None) -> Iterator[ProcessPoolExecutor]:
    """A ``spawn`` process pool of ``workers`` processes that end when this process ends.

    Parameters
    ----------
    workers : int
        Number of worker processes (>= 1).
    env : dict of str -> str, optional
        Environment variables the workers start with (for example
        :data:`SINGLE_THREADED_BLAS`); this process's environment is restored afterwards.

    Yields
    ------
    concurrent.futures.ProcessPoolExecutor
    """
    ctx = multiprocessing.get_context("spawn")
    with environment(env or {}):
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_watch_parent, initargs=(os.getpid(),))
        # spawn starts the workers lazily: they read the environment when the first task arrives,
        # so the environment stays set for as long as the pool lives.
        with pool:
            yield pool


@contextlib.contextmanager
def local_cluster(workers: int, env: dict[str, str] | None = None, **options) -> Iterator[object]:
    """A ``distributed.Client`` on a new ``LocalCluster`` of single-threaded worker processes.

    Parameters
    ----------
    workers : int
        Number of worker processes (>= 1), one thread each.
    env : dict of str -> str, optional
        Environment variables of the worker processes (for example :data:`SINGLE_THREADED_BLAS`);
        also set in this process while the cluster lives, as :func:`process_pool` does.
    **options
        Further ``LocalCluster`` keyword arguments (``memory_limit`` ...).

    Yields
    ------
    distributed.Client
        Closed, with its cluster, when the block ends. Its dashboard listens on a free port.
    """
    import dask
    from distributed import Client, LocalCluster

    env = dict(env or {})
    # A LocalCluster's nannies live in this process and leave their pre-spawn environment in
    # os.environ, so a cluster started here before (without this config) would pass it on.
    unset = {name.rsplit(".", 1)[1]: None for name in DASK_WORKER_CONFIG}
    with environment({**unset, **env}), dask.config.set(DASK_WORKER_CONFIG), LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, env=env, dashboard_address=":0", **options
    ) as cluster, Client(cluster) as client:
        yield client
