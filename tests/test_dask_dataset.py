"""FE datasets on a Dask cluster: the same bits as the local path, resume, worker failures, CLI."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest
from click.testing import CliRunner

from graded.cli.main import cli
from graded.inverse.dataset import FIELDS, generate_dataset, load_dataset
from graded.validation import ValidationError

distributed = pytest.importorskip("distributed")

N, CHUNK, SEED = 20, 3, 7  # 7 chunks: 6 of 3 samples and one of 2


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "data"
    generate_dataset(path, N, SEED, chunk_size=CHUNK, workers=1)
    return load_dataset(path)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl:
        with distributed.Client(cl) as c:
            yield c


def _same(a, b) -> bool:
    return all(np.array_equal(getattr(a, k), getattr(b, k)) for k in FIELDS)


def test_dask_gives_the_local_bits_and_reports_progress(reference, client, tmp_path):
    calls, infos = [], []
    summary = generate_dataset(tmp_path / "d", N, SEED, chunk_size=CHUNK, scheduler=client,
                               progress=lambda d, t, m: calls.append((d, t, m)), on_cluster=infos.append)
    assert (summary.n_chunks, summary.computed, summary.skipped, summary.workers) == (7, 7, 0, 2)
    assert summary.scheduler == client.scheduler.address and summary.dashboard == client.dashboard_link
    assert infos == [{"scheduler": summary.scheduler, "dashboard": summary.dashboard, "workers": 2}]
    assert _same(load_dataset(tmp_path / "d"), reference)
    # one call before the work, then one per chunk, ending at n
    assert calls[0][:2] == (0, N) and len(calls) == 8 and calls[-1][:2] == (N, N)
    assert sorted(int(m.split()[1]) for _, _, m in calls[1:]) == list(range(7))
    assert not [p for p in (tmp_path / "d").iterdir() if p.name.startswith(".tmp-")]


def test_dask_resumes_exactly_like_the_local_path(reference, client, tmp_path):
    out = tmp_path / "d"
    generate_dataset(out, N, SEED, chunk_size=CHUNK, workers=1)
    (out / "chunk_00002.npz").unlink()
    (out / "chunk_00005.npz").write_bytes((out / "chunk_00005.npz").read_bytes()[:100])  # half-written
    (out / ".tmp-chunk_00004.npz.partial").write_bytes(b"junk")  # a killed writer's file
    before = (out / "chunk_00000.npz").stat().st_mtime_ns
    summary = generate_dataset(out, N, SEED, chunk_size=CHUNK, scheduler=client)
    assert (summary.computed, summary.skipped) == (2, 5)
    assert (out / "chunk_00000.npz").stat().st_mtime_ns == before  # finished chunks untouched
    assert _same(load_dataset(out), reference)
    again = generate_dataset(out, N, SEED, chunk_size=CHUNK, scheduler=client)
    assert (again.computed, again.skipped, again.computed_samples) == (0, 7, 0)


def test_a_killed_workers_chunk_is_recomputed(reference, tmp_path):
    # its own cluster: one worker gets SIGKILLed while it holds a chunk, its nanny restarts it
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cl, \
            distributed.Client(cl) as c:
        killed = {}

        def kill_one(done, total, message):
            if killed or done == 0:
                return
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                busy = {w: keys for w, keys in c.processing().items() if keys}
                if busy:
                    worker, keys = next(iter(busy.items()))
                    pid = c.run(os.getpid, workers=[worker])[worker]
                    os.kill(pid, signal.SIGKILL)
                    killed.update(worker=worker, pid=pid, keys=list(keys))
                    return
                time.sleep(0.01)

        summary = generate_dataset(tmp_path / "d", N, SEED, chunk_size=CHUNK, scheduler=c, progress=kill_one)
        assert killed, "no worker was busy after the first chunk"
        assert killed["keys"] and all(str(k).startswith("graded-chunk-") for k in killed["keys"])
        assert summary.computed == 7
        assert _same(load_dataset(tmp_path / "d"), reference)
        pids = c.run(os.getpid)
        assert killed["pid"] not in pids.values()


def test_bad_scheduler_arguments(tmp_path):
    with pytest.raises(ValidationError, match="workers"):
        generate_dataset(tmp_path / "a", 3, 0, scheduler="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(ValidationError, match="scheduler"):
        generate_dataset(tmp_path / "b", 3, 0, scheduler=42)
    with pytest.raises(ValidationError, match="scheduler: cannot connect"):
        generate_dataset(tmp_path / "c", 3, 0, scheduler="tcp://127.0.0.1:1")


def test_cli_scheduler_local_prints_the_dashboard_and_matches(reference, tmp_path):
    out = tmp_path / "cli"
    r = CliRunner().invoke(cli, ["dataset", str(out), "--n", str(N), "--seed", str(SEED), "--chunk-size",
                                 str(CHUNK), "--scheduler", "local", "--workers", "2", "--json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["computed_chunks"] == 7 and res["workers"] == 2
    assert res["dashboard"].startswith("http") and res["scheduler"].startswith("tcp://")
    assert f"dashboard {res['dashboard']}" in r.stderr
    assert _same(load_dataset(out), reference)


def test_cli_unreachable_scheduler_exits_2(tmp_path):
    r = CliRunner().invoke(cli, ["dataset", str(tmp_path / "x"), "--n", "3", "--scheduler", "tcp://127.0.0.1:1"])
    assert r.exit_code == 2 and "scheduler: cannot connect" in r.output
    r = CliRunner().invoke(cli, ["dataset", str(tmp_path / "y"), "--n", "3", "--scheduler", "tcp://127.0.0.1:1",
                                 "--workers", "2"])
    assert r.exit_code == 2 and "workers: applies to" in r.output
