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

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graded.validation import fail

from .chunks import (
    DASK_RETRIES,
    NPY_HEADER_MAX,
    ChunkFormat,
    GenerationSummary,
    chunk_rng,
    generate_chunks,
    load_chunks,
)
from .sampling import TABLE_S1, Bounds, Designs, sample_designs

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "FE_SETTINGS",
    "LATTICE",
    "NPY_HEADER_MAX",
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


Progress = Callable[[int, int, str], None]



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
    return sample_designs(size, chunk_rng(seed, index), bounds)


def _compute_chunk(seed: int, index: int, size: int, bounds: dict, **options) -> dict[str, np.ndarray]:
    if options:
        fail("options", f"{sorted(options)} do not apply to truss datasets", None)
    designs = chunk_designs(seed, index, size, Bounds.from_dict(bounds))
    arrays = {k: getattr(designs, k) for k in ("topology", "rho", "U", "V", "R1", "R2")}
    arrays.update(label_designs(designs))
    return arrays


def _check_bounds(bounds: Any) -> None:
    Bounds.from_dict(bounds)


#: The lattice family's dataset format (see the module docstring).
LATTICE = ChunkFormat(
    family="truss", format=FORMAT, version=FORMAT_VERSION, fields=FIELDS, fe=FE_SETTINGS,
    sampling=SAMPLING, compute=_compute_chunk, check_bounds=_check_bounds,
)


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
    """Generate (or resume) an FE dataset of ``n`` lattice designs in directory ``path``.

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
    if not isinstance(bounds, Bounds):
        fail("bounds", f"expected Bounds, got {type(bounds).__name__}", None)
    return generate_chunks(LATTICE, path, n, seed, chunk_size, bounds.to_dict(), workers, progress,
                           scheduler=scheduler, on_cluster=on_cluster)


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
    arrays, meta = load_chunks(LATTICE, path)
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
