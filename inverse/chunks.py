"""Chunked, resumable, parallel FE datasets on disk: the engine every family's dataset uses.

A dataset is a directory with ``meta.json`` and ``chunk_00000.npz``, ``chunk_00001.npz``, ...
(plain ``numpy.savez``, no pickled objects). A :class:`ChunkFormat` says what a family stores:
its format name and version, the per-sample arrays (:attr:`ChunkFormat.fields`), the FE
settings and sampling written into ``meta.json``, and the function that computes one chunk from
``(seed, chunk index, size, bounds)``. Everything else is shared:

* chunk ``k`` is computed from ``numpy.random.SeedSequence(seed, spawn_key=(k,))`` by the
  family, so the data depend on ``seed``, ``chunk_size`` and ``bounds`` only (not on the number
  of workers or the order chunks finish in);
* every chunk is written to a temporary file and moved into place (``os.replace``), so a killed
  run loses at most the chunks in flight, and the same command resumes it, verifying the chunks
  present (headers checked before any array is unpacked) and computing the rest;
* chunks run in this process, in a pool of single-threaded worker processes that end with
  their parent, or as Dask tasks (``scheduler="local"`` or an address; see ``docs/cluster.md``).

Every chunk also holds ``header`` (5,) int64 ``[format_version, seed, chunk_index, m, chunk_size]``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from graded.io.atomic import atomic_path
from graded.validation import ValidationError, check_count, fail
from graded.workers import SINGLE_THREADED_BLAS, local_cluster, process_pool

__all__ = [
    "ChunkFormat",
    "GenerationSummary",
    "DASK_RETRIES",
    "NPY_HEADER_MAX",
    "generate_chunks",
    "load_chunks",
    "chunk_rng",
]

#: Largest .npy header (bytes) a chunk array may carry: numpy pads headers to 64 or 128 bytes
#: for arrays of a few dimensions; anything beyond a few kilobytes is not a chunk we wrote.
NPY_HEADER_MAX = 4096

#: Times a failed chunk task is retried on the cluster before the run fails. Worker deaths are
#: rescheduled by the scheduler on its own (``distributed.scheduler.allowed-failures``).
DASK_RETRIES = 3

META = "meta.json"
CHUNK = "chunk_{:05d}.npz"
#: Suffix of temporary files (graded.io.atomic names them ".tmp-*").
_TMP_SUFFIX = ".partial"
#: meta.json keys that must match for a run to resume a directory.
_SAME = ("format", "format_version", "seed", "n_samples", "chunk_size", "bounds", "fe")

Progress = Callable[[int, int, str], None]

_log = logging.getLogger("graded.inverse.chunks")


@dataclass(frozen=True)
class ChunkFormat:
    """What one family's dataset stores, and how one chunk is computed.

    Attributes
    ----------
    family : str
        The family's name (``"lattice"``, ``"spinodoid"``), used in messages.
    format : str
        ``meta.json["format"]``.
    version : int
        ``meta.json["format_version"]`` and the first entry of every chunk header.
    fields : dict
        name -> (shape after the sample axis, dtype) of every per-sample array of a chunk.
    fe : dict
        FE settings every label is computed with (stored in meta.json).
    sampling : str
        A sentence on how designs are drawn (stored in meta.json).
    compute : callable
        ``compute(seed, index, size, bounds, **options) -> {name: array}``, a module-level
        function (it is sent to worker processes by reference); ``options`` change how, never
        what, is computed (e.g. the device of a solver).
    check_bounds : callable
        ``check_bounds(bounds_dict)`` raises ``ValidationError`` for a damaged design space.
    """

    family: str
    format: str
    version: int
    fields: dict[str, tuple[tuple[int, ...], type]]
    fe: dict[str, Any]
    sampling: str
    compute: Callable[[int, int, int, dict], dict[str, np.ndarray]]
    check_bounds: Callable[[Any], None]


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate_chunks` did.

    ``computed`` / ``skipped`` count chunks; ``seconds`` is wall time of this call and
    ``samples_per_second`` the rate over the computed chunks only. ``scheduler`` is the Dask
    scheduler's address (None for the local path), ``dashboard`` its dashboard link, and
    ``workers`` the number of worker processes (on a cluster: those connected at the start).
    """

    path: str
    n_samples: int
    n_chunks: int
    computed: int
    skipped: int
    computed_samples: int
    seconds: float
    workers: int
    scheduler: str | None = None
    dashboard: str | None = None

    @property
    def samples_per_second(self) -> float:
        return self.computed_samples / self.seconds if self.seconds > 0 else float("nan")


def chunk_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of chunk ``index`` of a dataset with this ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


# ---------------------------------------------------------------------------
# chunks
# ---------------------------------------------------------------------------


def _is_temporary(path: Path) -> bool:
    """A temporary file of an atomic write (left behind only if the process was killed)."""
    return path.name.startswith(".tmp-")


def _write_chunk(directory: Path, index: int, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(directory / CHUNK.format(index), suffix=_TMP_SUFFIX) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())


def _run_chunk(fmt: ChunkFormat, directory: str, seed: int, index: int, size: int, chunk_size: int,
               bounds: dict, options: dict) -> int:
    """Worker task: compute chunk ``index`` and write it atomically; returns its size."""
    arrays = dict(fmt.compute(seed, index, size, bounds, **options))
    arrays["header"] = np.array([fmt.version, seed, index, size, chunk_size], dtype=np.int64)
    _write_chunk(Path(directory), index, arrays)
    return size


def _chunk_sizes(n: int, chunk_size: int) -> list[int]:
    return [min(chunk_size, n - k * chunk_size) for k in range(math.ceil(n / chunk_size))]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_meta(fmt: ChunkFormat, meta: Any, where: str) -> dict[str, Any]:
    if not isinstance(meta, dict) or meta.get("format") != fmt.format:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        fail(where, f"is not a graded {fmt.family} dataset (format {got!r}, expected {fmt.format!r})",
             f"point to a directory written by `graded dataset --family {fmt.family}`")
    if meta.get("format_version") != fmt.version:
        fail(where, f"has format_version {meta.get('format_version')!r}; this graded reads version {fmt.version}",
             "regenerate the dataset with this version of graded")
    for key in ("seed", "n_samples", "chunk_size"):
        value = meta.get(key)
        if not _is_int(value) or value < (0 if key == "seed" else 1):
            fail(where, f"meta.json field {key!r} = {value!r} is not a valid integer",
                 "the file is damaged; regenerate it")
    try:
        fmt.check_bounds(meta.get("bounds"))
    except ValidationError as exc:
        raise ValidationError(where, f"meta.json has invalid bounds ({exc})",
                              "the file is damaged; regenerate it") from None
    if not isinstance(meta.get("fe"), dict):
        fail(where, "meta.json has no 'fe' settings", "the file is damaged; regenerate it")
    return meta


def _read_meta(fmt: ChunkFormat, directory: Path) -> dict[str, Any]:
    path = directory / META
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail("path", f"{directory} has no {META}", "point to a directory written by `graded dataset`")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        fail("path", f"{path} is not valid JSON ({exc.msg})", "the file is damaged; regenerate the dataset")
    return _check_meta(fmt, meta, "path")


def _new_meta(fmt: ChunkFormat, n: int, seed: int, chunk_size: int, bounds: dict) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        created_by = f"graded {version('graded')}"
    except PackageNotFoundError:  # running from a source tree without install
        created_by = "graded"
    return {
        "format": fmt.format,
        "format_version": fmt.version,
        "seed": seed,
        "n_samples": n,
        "chunk_size": chunk_size,
        "n_chunks": len(_chunk_sizes(n, chunk_size)),
        "bounds": bounds,
        "fe": dict(fmt.fe),
        "sampling": fmt.sampling,
        "created_by": created_by,
    }


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype, int]]:
    """Shape, dtype and stored (uncompressed) size of every array of an ``.npz``, data unread."""
    out = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            with zf.open(info) as f:
                version = np.lib.format.read_magic(f)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read(f, max_header_size=NPY_HEADER_MAX)
            out[info.filename[:-4]] = (shape, dtype, info.file_size)
    return out


def _check_chunk_headers(fmt: ChunkFormat, path: Path, name: str, size: int) -> None:
    """Refuse a chunk whose arrays are not the expected ones before any array is unpacked.

    A small compressed file can unpack to gigabytes; the headers (and the archive's stated
    uncompressed sizes) are checked against the format's fields first, so a wrong or hostile
    chunk costs nothing to refuse.
    """
    expected = {k: ((size, *shape), np.dtype(dtype)) for k, (shape, dtype) in fmt.fields.items()}
    expected["header"] = ((5,), np.dtype(np.int64))
    for key, (shape, dtype, stored) in _npz_headers(path).items():
        want = expected.get(key)
        if want is None:
            fail("path", f"{name} holds an unexpected array {key!r}", "delete it and re-run `graded dataset`")
        if shape != want[0] or dtype != want[1]:
            fail("path", f"{name} array {key!r} has shape {shape} {dtype}, expected {want[0]} {want[1]}",
                 "delete it and re-run `graded dataset`")
        limit = math.prod(shape) * dtype.itemsize + NPY_HEADER_MAX
        if stored > limit:
            fail("path", f"{name} array {key!r} unpacks to {stored} bytes, more than its header's {limit}",
                 "delete it and re-run `graded dataset`")


def _load_chunk(fmt: ChunkFormat, path: Path, meta: dict[str, Any], index: int, size: int) -> dict[str, np.ndarray]:
    """Read and verify one chunk; raises ``ValidationError`` naming what is wrong."""
    name = f"chunk {index} ({path.name})"
    if not path.is_file():
        fail("path", f"{name} is missing", "re-run `graded dataset` with the same arguments to complete it")
    try:
        _check_chunk_headers(fmt, path, name, size)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValidationError(
            "path", f"{name} cannot be read ({type(exc).__name__}: {exc})",
            "delete it and re-run `graded dataset` to recompute it",
        ) from None
    want_header = [fmt.version, meta["seed"], index, size, meta["chunk_size"]]
    header = arrays.get("header")
    if header is None or header.shape != (5,) or header.tolist() != want_header:
        got = None if header is None else header.tolist()
        fail("path", f"{name} has header {got}, expected {want_header} (it belongs to another dataset)",
             "delete it and re-run `graded dataset` to recompute it")
    for key, (shape, dtype) in fmt.fields.items():
        arr = arrays.get(key)
        if arr is None:
            fail("path", f"{name} has no array {key!r}", "delete it and re-run `graded dataset`")
        if arr.shape != (size, *shape) or arr.dtype != dtype:
            fail("path", f"{name} array {key!r} has shape {arr.shape} {arr.dtype}, "
                 f"expected {(size, *shape)} {np.dtype(dtype)}", "delete it and re-run `graded dataset`")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            fail("path", f"{name} array {key!r} contains NaN or infinity", "delete it and re-run `graded dataset`")
    return arrays


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path, suffix=_TMP_SUFFIX) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def generate_chunks(
    fmt: ChunkFormat,
    path: str | os.PathLike,
    n: int,
    seed: int,
    chunk_size: int,
    bounds: dict,
    workers: int | None = None,
    progress: Progress | None = None,
    *,
    scheduler: Any = None,
    on_cluster: Callable[[dict[str, Any]], None] | None = None,
    options: dict[str, Any] | None = None,
) -> GenerationSummary:
    """Generate (or resume) a dataset of ``n`` samples of format ``fmt`` in directory ``path``.

    Parameters
    ----------
    fmt : ChunkFormat
        The family's format.
    path : path-like
        Output directory; created if missing. If it holds a dataset already, its meta.json must
        match these arguments, and verified chunks are kept.
    n, seed, chunk_size : int
        Samples (>= 1), seed of the whole dataset (0 <= seed < 2**63), samples per chunk file.
    bounds : dict
        The design space, JSON-serialisable (stored in meta.json and passed to ``fmt.compute``).
    workers : int, optional
        Worker processes (default: all cores), each with single-threaded BLAS. ``1`` computes in
        this process (without ``scheduler``). With ``scheduler="local"`` the number of Dask
        workers; not allowed with a scheduler address.
    progress : callable, optional
        ``progress(done_samples, n, message)`` after every chunk.
    scheduler : str or distributed.Client, optional
        ``"local"`` starts a ``LocalCluster``, an address (``"tcp://host:8786"``) connects to a
        running scheduler, a ``Client`` is used as is. ``path`` must be visible to every worker.
    on_cluster : callable, optional
        Called once with ``{"scheduler": address, "dashboard": link, "workers": count}`` when the
        cluster is connected, before any chunk runs.
    options : dict, optional
        Keyword arguments of ``fmt.compute`` that do not change the data (not stored in meta.json).

    Returns
    -------
    GenerationSummary

    Raises
    ------
    ValidationError
        Bad arguments, or ``path`` holds something else (a foreign directory, or a dataset made
        with other arguments).
    """
    for name, value, lo in (("n", n, 1), ("chunk_size", chunk_size, 1), ("seed", seed, 0)):
        check_count(name, value, lo)
    if seed >= 2**63:
        fail("seed", f"{seed} is too large", "use a seed below 2**63")
    if scheduler is not None and not isinstance(scheduler, str) and not _is_client(scheduler):
        fail("scheduler", f"expected 'local', an address or a distributed.Client, got {type(scheduler).__name__}",
             "pass --scheduler local or --scheduler tcp://HOST:8786")
    if isinstance(scheduler, str):
        scheduler = scheduler.strip()
        if not scheduler:
            fail("scheduler", "is empty", "pass --scheduler local or --scheduler tcp://HOST:8786")
    remote = scheduler is not None and scheduler != "local"
    if remote and workers is not None:
        fail("workers", "applies to the local path and --scheduler local only",
             "drop --workers: the cluster's own workers are used")
    if workers is None:
        workers = os.cpu_count() or 1
    check_count("workers", workers, 1, hint="give the number of processes, e.g. 2")
    n, seed, chunk_size, workers = int(n), int(seed), int(chunk_size), int(workers)

    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        fail("path", f"{directory} exists and is not a directory", "choose a new directory for the dataset")
    directory.mkdir(parents=True, exist_ok=True)
    meta = _new_meta(fmt, n, seed, chunk_size, bounds)
    if (directory / META).exists():
        old = _read_meta(fmt, directory)
        for key in _SAME:
            if old.get(key) != meta[key]:
                fail("path", f"{directory} holds a dataset with {key} = {old.get(key)!r}, not {meta[key]!r}",
                     "use the same arguments to resume it, or choose another directory")
    else:
        if any(not _is_temporary(p) for p in directory.iterdir()):
            fail("path", f"{directory} is not empty and has no {META}",
                 "choose a new or empty directory for the dataset")
        _write_json(directory / META, meta)
    for stale in directory.iterdir():  # left by a killed run
        if _is_temporary(stale):
            stale.unlink(missing_ok=True)

    sizes = _chunk_sizes(n, chunk_size)
    todo: list[int] = []
    done = 0
    for k, size in enumerate(sizes):
        try:
            _load_chunk(fmt, directory / CHUNK.format(k), meta, k, size)
        except ValidationError:
            todo.append(k)
        else:
            done += size
    skipped = len(sizes) - len(todo)
    if progress is not None:
        progress(done, n, f"{skipped} of {len(sizes)} chunks present")

    t0 = time.perf_counter()
    computed_samples = 0
    address = dashboard = None
    args = {k: (fmt, str(directory), seed, k, sizes[k], chunk_size, meta["bounds"], dict(options or {}))
            for k in todo}
    if scheduler is not None:
        with _dask_client(scheduler, workers) as client:
            info = _cluster_info(client)
            address, dashboard, workers = info["scheduler"], info["dashboard"], info["workers"]
            _log.info("dask scheduler %s, %d workers, dashboard %s", address, workers, dashboard)
            if on_cluster is not None:
                on_cluster(info)
            if todo:
                _check_shared(client, directory)
            for k in _run_on_dask(client, [args[k] for k in todo]):
                done += sizes[k]
                computed_samples += sizes[k]
                if progress is not None:
                    progress(done, n, f"chunk {k}")
        for stale in directory.iterdir():  # left by workers that died while writing
            if _is_temporary(stale):
                stale.unlink(missing_ok=True)
    elif workers == 1 or len(todo) <= 1:
        for k in todo:
            _run_chunk(*args[k])
            done += sizes[k]
            computed_samples += sizes[k]
            if progress is not None:
                progress(done, n, f"chunk {k}")
    else:
        # spawned workers read the BLAS settings when numpy loads, and end with this process
        with process_pool(min(workers, len(todo)), env=SINGLE_THREADED_BLAS) as pool:
            pending = {pool.submit(_run_chunk, *args[k]): k for k in todo}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in finished:
                        k = pending.pop(fut)
                        fut.result()
                        done += sizes[k]
                        computed_samples += sizes[k]
                        if progress is not None:
                            progress(done, n, f"chunk {k}")
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
    return GenerationSummary(
        path=str(directory),
        n_samples=n,
        n_chunks=len(sizes),
        computed=len(todo),
        skipped=skipped,
        computed_samples=computed_samples,
        seconds=time.perf_counter() - t0,
        workers=workers,
        scheduler=address,
        dashboard=dashboard,
    )


def load_chunks(fmt: ChunkFormat, path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load and verify a dataset of format ``fmt``: every per-sample array concatenated, and meta.

    Parameters
    ----------
    fmt : ChunkFormat
    path : path-like
        The dataset directory (or its meta.json).

    Raises
    ------
    ValidationError
        (field ``path``) if it is not a dataset of this format and version, a chunk is missing
        or unreadable, or an array has the wrong shape, dtype or header.
    """
    directory = Path(path)
    if directory.is_file() and directory.name == META:
        directory = directory.parent
    if not directory.exists():
        raise FileNotFoundError(f"path: {directory} does not exist")
    if not directory.is_dir():
        fail("path", f"{directory} is not a dataset directory", "point to a directory written by `graded dataset`")
    meta = _read_meta(fmt, directory)
    sizes = _chunk_sizes(meta["n_samples"], meta["chunk_size"])
    parts = [_load_chunk(fmt, directory / CHUNK.format(k), meta, k, s) for k, s in enumerate(sizes)]
    arrays = {key: np.concatenate([p[key] for p in parts]) for key in fmt.fields}
    return arrays, meta


# ---------------------------------------------------------------------------
# Dask
# ---------------------------------------------------------------------------


def _is_client(obj: Any) -> bool:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        return False
    return isinstance(obj, Client)


@contextlib.contextmanager
def _dask_client(scheduler: Any, workers: int):
    """A connected ``distributed.Client``; clusters and clients made here are closed after."""
    from distributed import Client

    if _is_client(scheduler):
        yield scheduler
        return
    if scheduler == "local":
        # one single-threaded worker process per core, BLAS single-threaded as in the pool
        with local_cluster(workers, SINGLE_THREADED_BLAS) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ValidationError(
            "scheduler", f"cannot connect to the Dask scheduler at {scheduler!r} ({type(exc).__name__}: {exc})",
            "start it with `dask scheduler` and pass its address (tcp://HOST:8786), or use --scheduler local",
        ) from None
    with client:
        yield client


def _cluster_info(client: Any) -> dict[str, Any]:
    try:
        workers = client.scheduler_info(n_workers=-1)["workers"]
    except TypeError:  # distributed before 2025 lists every worker without the argument
        workers = client.scheduler_info()["workers"]
    return {"scheduler": client.scheduler.address, "dashboard": client.dashboard_link, "workers": len(workers)}


def _sees_file(path: str) -> bool:
    return os.path.isfile(path)


def _check_shared(client: Any, directory: Path) -> None:
    """Every worker must see the dataset directory (they write the chunks there)."""
    meta = str((directory / META).resolve())
    seen = client.run(_sees_file, meta)
    blind = sorted(w for w, ok in seen.items() if not ok)
    if not seen:
        fail("scheduler", "the Dask cluster has no workers", "start workers with `dask worker SCHEDULER_ADDRESS`")
    if blind:
        fail("path", f"{directory.resolve()} is not visible to {len(blind)} of {len(seen)} Dask workers "
             f"(e.g. {blind[0]})", "put the dataset on storage every worker mounts at the same path")


def _run_on_dask(client: Any, tasks: list[tuple]) -> Any:
    """Submit one task per chunk; yield chunk indices as they finish (in completion order)."""
    import uuid

    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = {}
    for args in tasks:
        # the key names the chunk (the dashboard shows which chunk runs where); the run id
        # keeps two runs on one cluster apart
        key = f"graded-chunk-{args[3]:05d}-{run}"
        fut = client.submit(_run_chunk, *args, key=key, pure=False, retries=DASK_RETRIES)
        futures[fut] = args[3]
    try:
        for fut in as_completed(list(futures)):
            fut.result()
            yield futures[fut]
    except BaseException:
        client.cancel(list(futures))
        raise
