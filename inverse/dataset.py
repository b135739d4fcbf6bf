"""FE datasets of lattice designs and their homogenized stiffness, on disk in chunks.

One command reproduces the full training and test sets (about 200,000 + 5,000 FE pairs)::

    graded dataset datasets/train --n 200000 --seed 0 --chunk-size 2000
    graded dataset datasets/test  --n 5000   --seed 1 --chunk-size 1000

For every design (drawn by :func:`graded.inverse.sampling.sample_designs`) the generator
stores three labels, all normalised by the base material's Young's modulus:

* ``C_ort`` (n, 9): FE of the cell stretched by ``U`` only (orthotropic, constants
  C11, C12, C13, C22, C23, C33, C44, C55, C66);
* ``C_hat`` (n, 21): FE of the cell with basis ``V R_I U`` (upper triangle, row by row);
* ``C`` (n, 21): ``Bond(R_II) C_hat``, the stiffness of the full cell ``R_II V R_I U``
  (a rigid rotation of the lattice rotates its stiffness exactly, so no third FE solve).

On-disk format (``format = "graded-lattice-dataset"``, ``format_version = 1``)
------------------------------------------------------------------------------
A directory holding ``meta.json``::

    {"format": "graded-lattice-dataset", "format_version": 1, "seed": 0,
     "n_samples": 200000, "chunk_size": 2000, "bounds": {...SI Table S1...},
     "fe": {"E": 1.0, "nu": 0.3, "solver": ..., "model": ...},
     "sampling": ..., "created_by": "graded 0.1.0"}

and ``chunk_00000.npz``, ``chunk_00001.npz``, ... (plain ``numpy.savez``, no pickled
objects). Chunk ``k`` holds samples ``[k * chunk_size, min((k + 1) * chunk_size, n))``
with arrays ``topology`` (m, 3, 2) int8 ``[tessellation, id]``, ``rho`` (m,),
``U`` (m, 3), ``V`` (m, 3), ``R1`` (m, 3, 3), ``R2`` (m, 3, 3), ``C_ort`` (m, 9),
``C_hat`` (m, 21), ``C`` (m, 21) (float64) and ``header`` (5,) int64
``[format_version, seed, chunk_index, m, chunk_size]``.

Determinism and resume
----------------------
The designs of chunk ``k`` come from ``numpy.random.SeedSequence(seed, spawn_key=(k,))``
(the ``k``-th child of ``SeedSequence(seed)``), so the data depend on ``seed`` and
``chunk_size`` only: not on the number of workers, the order chunks finish in, or on how
often a run was interrupted. Each chunk is written to a temporary file and moved into
place with ``os.replace``, so a killed run loses at most the chunks in flight; running
the same command again verifies the chunks present, skips the complete ones and computes
the rest.

On a Dask cluster
-----------------
``scheduler="local"`` (a ``distributed.LocalCluster`` of ``workers`` single-threaded worker
processes) or ``scheduler="tcp://host:8786"`` (a running cluster) makes every missing chunk
one Dask task running the same function as the process pool: it computes the chunk from its
own seed and writes it atomically into ``path``, which must therefore be on storage every
worker sees. The data are bit for bit those of the local path. A task that raises is retried
(:data:`DASK_RETRIES`); a task whose worker dies is rescheduled by the scheduler on another
worker. See ``docs/cluster.md``.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from graded.io.atomic import atomic_path
from graded.validation import ValidationError, check_count, fail
from graded.workers import SINGLE_THREADED_BLAS, environment, process_pool

from .sampling import TABLE_S1, Bounds, Designs, sample_designs

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FE_SETTINGS",
    "DASK_RETRIES",
    "LatticeDataset",
    "GenerationSummary",
    "generate_dataset",
    "load_dataset",
    "label_designs",
    "chunk_designs",
    "split_indices",
    "shipped_test_set",
]

FORMAT = "graded-lattice-dataset"
FORMAT_VERSION = 1

#: FE settings every label of a dataset is computed with (stored in meta.json).
FE_SETTINGS: dict[str, Any] = {
    "E": 1.0,
    "nu": 0.3,
    "solver": "graded.unitcell.homogenize_designs",
    "model": "periodic Timoshenko beams, circular section, one diameter per cell from rho",
}

SAMPLING = (
    "parts (t, S) uniform on {1,2}x{1..7}, sorted; rho, U_i, V_i uniform; rotations: "
    "angle U(-pi, pi) about a uniform axis on S^2 (not Haar-uniform)"
)

#: name -> (shape after the sample axis, dtype) of every per-sample array in a chunk
FIELDS: dict[str, tuple[tuple[int, ...], type]] = {
    "topology": ((3, 2), np.int8),
    "rho": ((), np.float64),
    "U": ((3,), np.float64),
    "V": ((3,), np.float64),
    "R1": ((3, 3), np.float64),
    "R2": ((3, 3), np.float64),
    "C_ort": ((9,), np.float64),
    "C_hat": ((21,), np.float64),
    "C": ((21,), np.float64),
}


#: Largest .npy header (bytes) a chunk array may carry: numpy pads headers to 64 or 128 bytes
#: for arrays of a few dimensions; anything beyond a few kilobytes is not a chunk we wrote.
NPY_HEADER_MAX = 4096

_META = "meta.json"
_CHUNK = "chunk_{:05d}.npz"
#: Suffix of temporary files (graded.io.atomic names them ".tmp-*").
_TMP_SUFFIX = ".partial"

#: Times a failed chunk task is retried on the cluster before the run fails. Worker deaths are
#: rescheduled by the scheduler on its own (``distributed.scheduler.allowed-failures``).
DASK_RETRIES = 3

Progress = Callable[[int, int, str], None]

_log = logging.getLogger("graded.inverse.dataset")


# ---------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------


def label_designs(designs: Designs, nu: float = FE_SETTINGS["nu"]) -> dict[str, np.ndarray]:
    """FE labels of a batch of designs.

    Designs are grouped by topology, and the stretched (``U``) and sheared
    (``V R_I U``) cells of a group go to the batched FE together.

    Parameters
    ----------
    designs : Designs
        ``n`` designs.
    nu : float
        Poisson's ratio of the base material (E_s = 1).

    Returns
    -------
    dict
        ``C_ort`` (n, 9), ``C_hat`` (n, 21), ``C`` (n, 21), float64, normalised by E_s.
    """
    from graded.elastic import rotate_voigt, to_9, to_21
    from graded.unitcell import homogenize_designs

    n = len(designs)
    c_ort = np.empty((n, 6, 6))
    c_hat = np.empty((n, 6, 6))
    keys, inverse = np.unique(designs.topology.reshape(n, 6), axis=0, return_inverse=True)
    basis = np.concatenate([designs.basis_stretched, designs.basis_hat])
    rho = np.concatenate([designs.rho, designs.rho])
    for g, key in enumerate(keys):
        idx = np.flatnonzero(inverse.reshape(-1) == g)
        topology = tuple((int(key[2 * p]), int(key[2 * p + 1])) for p in range(3))
        both = np.concatenate([idx, idx + n])
        C = homogenize_designs(topology, rho[both], basis[both], nu=nu)
        c_ort[idx] = C[: len(idx)]
        c_hat[idx] = C[len(idx) :]
    C_full = rotate_voigt(c_hat, designs.R2)
    return {"C_ort": to_9(c_ort), "C_hat": to_21(c_hat), "C": to_21(C_full)}


def chunk_designs(seed: int, index: int, size: int, bounds: Bounds = TABLE_S1) -> Designs:
    """The designs of chunk ``index`` of a dataset with this ``seed`` (``size`` of them)."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    return sample_designs(size, rng, bounds)


def _is_temporary(path: Path) -> bool:
    """A temporary file of an atomic write (left behind only if the process was killed)."""
    return path.name.startswith(".tmp-")


def _compute_chunk(seed: int, index: int, size: int, chunk_size: int, bounds: dict) -> dict[str, np.ndarray]:
    designs = chunk_designs(seed, index, size, Bounds.from_dict(bounds))
    labels = label_designs(designs)
    arrays = {k: getattr(designs, k) for k in ("topology", "rho", "U", "V", "R1", "R2")}
    arrays.update(labels)
    arrays["header"] = np.array([FORMAT_VERSION, seed, index, size, chunk_size], dtype=np.int64)
    return arrays


def _write_chunk(directory: Path, index: int, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(directory / _CHUNK.format(index), suffix=_TMP_SUFFIX) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())


def _run_chunk(directory: str, seed: int, index: int, size: int, chunk_size: int, bounds: dict) -> int:
    """Worker task: compute chunk ``index`` and write it atomically; returns its size."""
    arrays = _compute_chunk(seed, index, size, chunk_size, bounds)
    _write_chunk(Path(directory), index, arrays)
    return size


# ---------------------------------------------------------------------------
# meta and chunk verification
# ---------------------------------------------------------------------------


def _chunk_sizes(n: int, chunk_size: int) -> list[int]:
    return [min(chunk_size, n - k * chunk_size) for k in range(math.ceil(n / chunk_size))]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_meta(meta: Any, where: str) -> dict[str, Any]:
    field_ = f"{where}"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        fail(field_, f"is not a graded lattice dataset (format {got!r}, expected {FORMAT!r})",
             "point to a directory written by `graded dataset`")
    if meta.get("format_version") != FORMAT_VERSION:
        fail(field_, f"has format_version {meta.get('format_version')!r}; this graded reads version {FORMAT_VERSION}",
             "regenerate the dataset with this version of graded")
    for key in ("seed", "n_samples", "chunk_size"):
        value = meta.get(key)
        if not _is_int(value) or value < (0 if key == "seed" else 1):
            fail(field_, f"meta.json field {key!r} = {value!r} is not a valid integer",
                 "the file is damaged; regenerate it")
    try:
        Bounds.from_dict(meta.get("bounds"))
    except ValidationError as exc:
        raise ValidationError(field_, f"meta.json has invalid bounds ({exc})",
                              "the file is damaged; regenerate it") from None
    if not isinstance(meta.get("fe"), dict):
        fail(field_, "meta.json has no 'fe' settings", "the file is damaged; regenerate it")
    return meta


def _read_meta(directory: Path) -> dict[str, Any]:
    path = directory / _META
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        fail("path", f"{directory} has no {_META}", "point to a directory written by `graded dataset`")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        fail("path", f"{path} is not valid JSON ({exc.msg})", "the file is damaged; regenerate the dataset")
    return _check_meta(meta, "path")


def _new_meta(n: int, seed: int, chunk_size: int, bounds: Bounds) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        created_by = f"graded {version('graded')}"
    except PackageNotFoundError:  # running from a source tree without install
        created_by = "graded"
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "seed": seed,
        "n_samples": n,
        "chunk_size": chunk_size,
        "n_chunks": len(_chunk_sizes(n, chunk_size)),
        "bounds": bounds.to_dict(),
        "fe": dict(FE_SETTINGS),
        "sampling": SAMPLING,
        "created_by": created_by,
    }


_SAME = ("format", "format_version", "seed", "n_samples", "chunk_size", "bounds", "fe")


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


def _check_chunk_headers(path: Path, name: str, size: int) -> None:
    """Refuse a chunk whose arrays are not the expected ones before any array is unpacked.

    A small compressed file can unpack to gigabytes; the headers (and the archive's stated
    uncompressed sizes) are checked against :data:`FIELDS` first, so a wrong or hostile chunk
    costs nothing to refuse.
    """
    expected = {k: ((size, *shape), np.dtype(dtype)) for k, (shape, dtype) in FIELDS.items()}
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


def _load_chunk(path: Path, meta: dict[str, Any], index: int, size: int) -> dict[str, np.ndarray]:
    """Read and verify one chunk; raises ``ValidationError`` naming what is wrong."""
    name = f"chunk {index} ({path.name})"
    if not path.is_file():
        fail("path", f"{name} is missing", "re-run `graded dataset` with the same arguments to complete it")
    try:
        _check_chunk_headers(path, name, size)
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise ValidationError(
            "path", f"{name} cannot be read ({type(exc).__name__}: {exc})",
            "delete it and re-run `graded dataset` to recompute it",
        ) from None
    want_header = [FORMAT_VERSION, meta["seed"], index, size, meta["chunk_size"]]
    header = arrays.get("header")
    if header is None or header.shape != (5,) or header.tolist() != want_header:
        got = None if header is None else header.tolist()
        fail("path", f"{name} has header {got}, expected {want_header} (it belongs to another dataset)",
             "delete it and re-run `graded dataset` to recompute it")
    for key, (shape, dtype) in FIELDS.items():
        arr = arrays.get(key)
        if arr is None:
            fail("path", f"{name} has no array {key!r}", "delete it and re-run `graded dataset`")
        if arr.shape != (size, *shape) or arr.dtype != dtype:
            fail("path", f"{name} array {key!r} has shape {arr.shape} {arr.dtype}, "
                 f"expected {(size, *shape)} {np.dtype(dtype)}", "delete it and re-run `graded dataset`")
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            fail("path", f"{name} array {key!r} contains NaN or infinity", "delete it and re-run `graded dataset`")
    return arrays


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSummary:
    """What :func:`generate_dataset` did.

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


def generate_dataset(
    path: str | os.PathLike,
    n: int,
    seed: int,
    chunk_size: int = 2000,
    workers: int | None = None,
    progress: Progress | None = None,
    bounds: Bounds = TABLE_S1,
    *,
    scheduler: Any = None,
    on_cluster: Callable[[dict[str, Any]], None] | None = None,
) -> GenerationSummary:
    """Generate (or resume) an FE dataset of ``n`` designs in directory ``path``.

    Parameters
    ----------
    path : path-like
        Output directory; created if missing. If it holds a dataset already, its
        meta.json must match these arguments, and verified chunks are kept.
    n : int
        Number of samples (>= 1).
    seed : int
        Seed of the whole dataset (0 <= seed < 2**63).
    chunk_size : int
        Samples per chunk file (the unit of parallel work and of resume).
    workers : int, optional
        Worker processes (default: all cores), each with single-threaded BLAS.
        ``1`` computes in this process (without ``scheduler``). With ``scheduler="local"``
        the number of Dask workers; not allowed with a scheduler address.
    progress : callable, optional
        ``progress(done_samples, n, message)`` after every chunk.
    bounds : Bounds
        Design space (SI Table S1 by default).
    scheduler : str or distributed.Client, optional
        Run the chunks as Dask tasks: ``"local"`` starts a ``LocalCluster``, an address
        (``"tcp://host:8786"``) connects to a running scheduler, a ``Client`` is used as is.
        ``path`` must be visible to every worker (shared storage). Default: the local path.
    on_cluster : callable, optional
        Called once with ``{"scheduler": address, "dashboard": link, "workers": count}``
        when the cluster is connected, before any chunk runs (the CLI prints it).

    Returns
    -------
    GenerationSummary

    Raises
    ------
    ValidationError
        Bad arguments, or ``path`` holds something else (a foreign directory, or a
        dataset made with other arguments).
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
    if not isinstance(bounds, Bounds):
        fail("bounds", f"expected Bounds, got {type(bounds).__name__}", None)
    n, seed, chunk_size, workers = int(n), int(seed), int(chunk_size), int(workers)

    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        fail("path", f"{directory} exists and is not a directory", "choose a new directory for the dataset")
    directory.mkdir(parents=True, exist_ok=True)
    meta = _new_meta(n, seed, chunk_size, bounds)
    if (directory / _META).exists():
        old = _read_meta(directory)
        for key in _SAME:
            if old.get(key) != meta[key]:
                fail("path", f"{directory} holds a dataset with {key} = {old.get(key)!r}, not {meta[key]!r}",
                     "use the same arguments to resume it, or choose another directory")
    else:
        if any(not _is_temporary(p) for p in directory.iterdir()):
            fail("path", f"{directory} is not empty and has no {_META}",
                 "choose a new or empty directory for the dataset")
        _write_json(directory / _META, meta)
    for stale in directory.iterdir():  # left by a killed run
        if _is_temporary(stale):
            stale.unlink(missing_ok=True)

    sizes = _chunk_sizes(n, chunk_size)
    todo: list[int] = []
    done = 0
    for k, size in enumerate(sizes):
        try:
            _load_chunk(directory / _CHUNK.format(k), meta, k, size)
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
    if scheduler is not None:
        tasks = [(str(directory), seed, k, sizes[k], chunk_size, meta["bounds"]) for k in todo]
        with _dask_client(scheduler, workers) as client:
            info = _cluster_info(client)
            address, dashboard, workers = info["scheduler"], info["dashboard"], info["workers"]
            _log.info("dask scheduler %s, %d workers, dashboard %s", address, workers, dashboard)
            if on_cluster is not None:
                on_cluster(info)
            if tasks:
                _check_shared(client, directory)
            for k in _run_on_dask(client, tasks):
                done += sizes[k]
                computed_samples += sizes[k]
                if progress is not None:
                    progress(done, n, f"chunk {k}")
        for stale in directory.iterdir():  # left by workers that died while writing
            if _is_temporary(stale):
                stale.unlink(missing_ok=True)
    elif workers == 1 or len(todo) <= 1:
        for k in todo:
            _run_chunk(str(directory), seed, k, sizes[k], chunk_size, meta["bounds"])
            done += sizes[k]
            computed_samples += sizes[k]
            if progress is not None:
                progress(done, n, f"chunk {k}")
    else:
        # spawned workers read the BLAS settings when numpy loads, and end with this process
        with process_pool(min(workers, len(todo)), env=SINGLE_THREADED_BLAS) as pool:
            pending = {pool.submit(_run_chunk, str(directory), seed, k, sizes[k], chunk_size, meta["bounds"]): k
                       for k in todo}
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
    from distributed import Client, LocalCluster

    if _is_client(scheduler):
        yield scheduler
        return
    if scheduler == "local":
        # one single-threaded worker process per core, BLAS single-threaded as in the pool
        with environment(SINGLE_THREADED_BLAS), LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, env=dict(SINGLE_THREADED_BLAS),
            dashboard_address=":0",
        ) as cluster, Client(cluster) as client:
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
    meta = str((directory / _META).resolve())
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
        key = f"graded-chunk-{args[2]:05d}-{run}"
        fut = client.submit(_run_chunk, *args, key=key, pure=False, retries=DASK_RETRIES)
        futures[fut] = args[2]
    try:
        for fut in as_completed(list(futures)):
            fut.result()
            yield futures[fut]
    except BaseException:
        client.cancel(list(futures))
        raise


def _write_json(path: Path, obj: Any) -> None:
    with atomic_path(path, suffix=_TMP_SUFFIX) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True, eq=False)
class LatticeDataset:
    """A loaded dataset: every per-sample array concatenated over chunks, plus meta.

    Attributes
    ----------
    topology : (n, 3, 2) int8
    rho : (n,) ; U, V : (n, 3) ; R1, R2 : (n, 3, 3)
        Design parameters (see :class:`graded.inverse.sampling.Designs`).
    C_ort : (n, 9) ; C_hat : (n, 21) ; C : (n, 21)
        FE labels, normalised by E_s (orders as in :mod:`graded.elastic`).
    meta : dict
        Contents of meta.json.
    """

    topology: np.ndarray
    rho: np.ndarray
    U: np.ndarray
    V: np.ndarray
    R1: np.ndarray
    R2: np.ndarray
    C_ort: np.ndarray
    C_hat: np.ndarray
    C: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rho.shape[0])

    @property
    def designs(self) -> Designs:
        """The design parameters as a :class:`Designs`."""
        return Designs(self.topology, self.rho, self.U, self.V, self.R1, self.R2)

    def subset(self, index: Any) -> LatticeDataset:
        """The samples selected by ``index`` (slice, integer array or boolean mask)."""
        return LatticeDataset(**{k: getattr(self, k)[index] for k in FIELDS}, meta=self.meta)


def load_dataset(path: str | os.PathLike) -> LatticeDataset:
    """Load and verify a dataset written by :func:`generate_dataset`.

    Parameters
    ----------
    path : path-like
        The dataset directory (or its meta.json).

    Raises
    ------
    ValidationError
        (field ``path``) if it is not a dataset of this format and version, a chunk is
        missing or unreadable, or an array has the wrong shape, dtype or header.
    """
    directory = Path(path)
    if directory.is_file() and directory.name == _META:
        directory = directory.parent
    if not directory.exists():
        raise FileNotFoundError(f"path: {directory} does not exist")
    if not directory.is_dir():
        fail("path", f"{directory} is not a dataset directory", "point to a directory written by `graded dataset`")
    meta = _read_meta(directory)
    sizes = _chunk_sizes(meta["n_samples"], meta["chunk_size"])
    parts = [_load_chunk(directory / _CHUNK.format(k), meta, k, s) for k, s in enumerate(sizes)]
    arrays = {key: np.concatenate([p[key] for p in parts]) for key in FIELDS}
    return LatticeDataset(**arrays, meta=meta)


def shipped_test_set() -> LatticeDataset:
    """The FE test set shipped inside the package (5,000 samples, seed 1, chunk size 1000).

    It is ``graded dataset datasets/test --n 5000 --seed 1 --chunk-size 1000``, held out
    from the training set (seed 0) by construction: the two seeds give disjoint streams.
    """
    from importlib import resources

    with resources.as_file(resources.files("graded.inverse") / "data" / "testset") as path:
        return load_dataset(path)


def split_indices(n: int, test_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random train/test split of ``range(n)``.

    Parameters
    ----------
    n : int
        Number of samples.
    test_fraction : float
        Fraction in the test part, in (0, 1); at least one sample goes to each part.
    seed : int
        Seed of the permutation.

    Returns
    -------
    train, test : int64 arrays
        Disjoint, sorted indices covering ``range(n)``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        fail("n", f"{n!r} is too small to split", "need at least 2 samples")
    if not 0.0 < float(test_fraction) < 1.0:
        fail("test_fraction", f"{test_fraction!r} is not in (0, 1)", "e.g. 0.1")
    n_test = min(max(1, round(n * float(test_fraction))), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])
