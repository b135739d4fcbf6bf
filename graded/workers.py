"""Process pools whose workers end with their parent.

A ``ProcessPoolExecutor`` worker that is busy when its parent is killed (``SIGKILL``, an
out-of-memory kill, a closed terminal) finishes its task, which can take minutes, and only
then notices the broken pipe. :func:`process_pool` gives every worker a watchdog thread that
checks every :data:`PARENT_POLL_S` seconds whether the process that started it is still its
parent, and ends the worker at once when it is not. Workers are started with ``spawn``
(fresh interpreters, so environment variables such as single-threaded BLAS settings take
effect when numpy loads in them).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

__all__ = ["PARENT_POLL_S", "SINGLE_THREADED_BLAS", "environment", "process_pool"]

#: How often (s) a worker checks that its parent lives: short against the minutes a task can
#: take, long against the cost of one ``getppid`` call.
PARENT_POLL_S = 0.5

#: Environment for workers that each run one single-threaded FE job: BLAS threads only add
#: contention when every core already runs a worker (on a loaded 2-core machine they made the
#: unit-cell FE about 10x slower).
SINGLE_THREADED_BLAS = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _watch_parent(parent_pid: int) -> None:
    """Worker initializer: end this process as soon as ``parent_pid`` is no longer its parent."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(1)  # the parent is gone: nobody will read this worker's result
            threading.Event().wait(PARENT_POLL_S)

    threading.Thread(target=watch, name="graded-parent-watch", daemon=True).start()


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (inherited by children)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
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
