"""Pool workers end with their parent (graded.workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from graded.workers import PARENT_POLL_S, process_pool

pytestmark = pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")

#: A killed parent's busy worker must be gone well before its 60 s task ends: a few polls
#: of the watchdog plus interpreter teardown on a loaded 2-core machine.
ORPHAN_DEADLINE_S = 10.0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has ended, only nobody reaped it


def _square(x: int) -> int:
    return x * x


def _env(name: str) -> str | None:
    return os.environ.get(name)


def test_pool_computes_and_sets_worker_environment():
    with process_pool(2, env={"GRADED_TEST_POOL": "7"}) as pool:
        assert list(pool.map(_square, range(5))) == [0, 1, 4, 9, 16]
        assert pool.submit(_env, "GRADED_TEST_POOL").result() == "7"
    assert "GRADED_TEST_POOL" not in os.environ  # restored after the pool


def test_busy_worker_ends_when_parent_is_killed(tmp_path):
    pid_file = tmp_path / "worker.pid"
    script = textwrap.dedent(f"""
        import os, time
        from graded.workers import process_pool

        def task(path):
            with open(path + ".tmp", "w") as f:
                f.write(str(os.getpid()))
            os.replace(path + ".tmp", path)
            time.sleep(60)

        if __name__ == "__main__":
            with process_pool(1) as pool:
                pool.submit(task, {str(pid_file)!r}).result()
    """)
    (tmp_path / "parent.py").write_text(script)
    parent = subprocess.Popen([sys.executable, str(tmp_path / "parent.py")], cwd=tmp_path)
    try:
        t0 = time.monotonic()
        while not pid_file.exists():
            assert time.monotonic() - t0 < 60, "the worker never started"
            assert parent.poll() is None, "the parent ended before its worker started"
            time.sleep(0.05)
        worker = int(pid_file.read_text())
        assert _alive(worker)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        t_kill = time.monotonic()
        while _alive(worker) and time.monotonic() - t_kill < ORPHAN_DEADLINE_S:
            time.sleep(PARENT_POLL_S / 5)
        assert not _alive(worker), f"worker {worker} still runs {ORPHAN_DEADLINE_S} s after its parent was killed"
    finally:
        if parent.poll() is None:
            parent.kill()
        if pid_file.exists() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def _worker_environment() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("MALLOC_TRIM_THRESHOLD_", "OPENBLAS_NUM_THREADS")}


def test_local_cluster_workers_single_threaded_without_malloc_trim():
    """Dask's default MALLOC_TRIM_THRESHOLD_ made FE chunks 28 % slower; our workers run without it."""
    pytest.importorskip("distributed")
    import distributed

    from graded.workers import SINGLE_THREADED_BLAS, local_cluster

    # a plain LocalCluster first: its in-process nannies leave Dask's setting in os.environ
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0"):
        pass
    before = {k: os.environ.get(k) for k in SINGLE_THREADED_BLAS}
    with local_cluster(2, SINGLE_THREADED_BLAS) as client:
        envs = client.run(_worker_environment)
        assert os.environ["OPENBLAS_NUM_THREADS"] == "1"  # set here too while the cluster lives
    assert len(envs) == 2
    for env in envs.values():
        assert env == {"MALLOC_TRIM_THRESHOLD_": None, "OPENBLAS_NUM_THREADS": "1"}
    assert {k: os.environ.get(k) for k in SINGLE_THREADED_BLAS} == before  # restored
