"""FE dataset of spinodoid cells: designs ``(rho, theta)`` and their periodic voxel-FE stiffness.

    graded dataset datasets/spinodoid-train --family spinodoid --n 1600 --seed 0 --chunk-size 40
    graded dataset datasets/spinodoid-test  --family spinodoid --n 200  --seed 1 --chunk-size 40

Every sample is one realisation of the anisotropic Gaussian random field of Kumar et al.
(Eqs. 1-3) in its principal frame (``R = I``), voxelised at :data:`RESOLUTION` voxels per cell
edge, islands removed, and homogenized by the periodic voxel FE
(:func:`graded.fem.homogenize_voxels`, E_s = 1, nu_s = 0.3). The rotation of a design is not
sampled: rotating a cell rotates its stiffness by the Bond matrix, which the forward model
applies exactly.

Design sampling (:func:`sample_spinodoid_designs`): ``rho`` uniform on ``bounds["rho"]``; each
cone angle is 0 with probability ``bounds["p_closed"]`` and otherwise uniform on
``bounds["theta"]`` degrees (draws with three closed cones are redrawn). The waves of sample
``j`` of chunk ``k`` come from ``SeedSequence(seed, spawn_key=(k, j))``, so any cell of the
dataset can be regenerated exactly (:func:`sample_waves_of`).

Resolution and wavelength, by measurement (``docs/voxel.md``, ``benchmarks/voxel.py``): at 32^3
and wavelength 0.2 of the cell a label costs 1.5-10 CPU seconds and is 1-5 % stiffer than at
128^3, while two realisations of one design differ by 5-8 % (relative standard deviation of the
diagonal constants): the realisation scatter, not the grid, limits what a label says about its
design, so more samples at 32^3 buy more accuracy per CPU-hour than fewer at 64^3 (16x the cost).

Axis permutations are an exact symmetry: permuting ``theta`` and the wave vectors permutes the
cell, so ``C(P theta) = P C(theta) P^T`` for the same realisation; :func:`permutation_augment`
turns every label into six.

On-disk format ``graded-spinodoid-dataset`` version 1 (:mod:`graded.inverse.chunks`): arrays
``rho`` (m,) designed density, ``theta`` (m, 3) degrees, ``density`` (m,) voxel density after
island removal, ``removed`` (m,) removed solid fraction, ``winding`` (m,) int8 percolation rank,
``C`` (m, 21) and ``C9`` (m, 9) (float64, / E_s), ``iterations`` (m,) int64.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graded.elastic import to_9, to_21
from graded.spinodoid import SpinodoidDesign, generate_cell, sample_waves
from graded.spinodoid.field import RHO_RANGE, THETA_MIN_DEG, WaveSet
from graded.validation import ValidationError, fail

from ..chunks import ChunkFormat, GenerationSummary, chunk_rng, generate_chunks, load_chunks

__all__ = [
    "SPINODOID",
    "SPINODOID_BOUNDS",
    "RESOLUTION",
    "SpinodoidDataset",
    "sample_spinodoid_designs",
    "label_spinodoids",
    "sample_waves_of",
    "permutation_augment",
    "generate_spinodoid_dataset",
    "load_spinodoid_dataset",
    "shipped_spinodoid_test_set",
]

#: Voxels per cell edge of every label (see the module docstring for the measurement behind it).
RESOLUTION = 32

#: The design space sampled by default (JSON-serialisable; stored in meta.json).
SPINODOID_BOUNDS: dict[str, Any] = {
    "rho": [RHO_RANGE[0], 0.9],
    "theta": [THETA_MIN_DEG, 90.0],
    "p_closed": 0.3,
    "wavelength": 0.2,
    "n_waves": 1000,
}

FIELDS: dict[str, tuple[tuple[int, ...], type]] = {
    "rho": ((), np.float64),
    "theta": ((3,), np.float64),
    "density": ((), np.float64),
    "removed": ((), np.float64),
    "winding": ((), np.int8),
    "C": ((21,), np.float64),
    "C9": ((9,), np.float64),
    "iterations": ((), np.int64),
}

FE_SETTINGS: dict[str, Any] = {
    "E": 1.0,
    "nu": 0.3,
    "resolution": RESOLUTION,
    "bc": "periodic",
    "solver": "graded.fem.homogenize_voxels",
    "model": "periodic hex8 voxels, void removed, islands removed",
}

SAMPLING = (
    "rho uniform on bounds.rho; each cone angle 0 with probability bounds.p_closed, else uniform "
    "on bounds.theta (degrees), all-closed redrawn; R = I; waves of sample j of chunk k from "
    "SeedSequence(seed, spawn_key=(k, j))"
)


def _check_bounds(bounds: Any) -> dict[str, Any]:
    if not isinstance(bounds, dict) or set(bounds) != set(SPINODOID_BOUNDS):
        fail("bounds", f"expected the keys {sorted(SPINODOID_BOUNDS)}", "use graded's SPINODOID_BOUNDS layout")
    lo, hi = (float(v) for v in bounds["rho"])
    if not RHO_RANGE[0] <= lo < hi <= RHO_RANGE[1]:
        fail("bounds.rho", f"[{lo}, {hi}] is not inside {list(RHO_RANGE)}", "give 0.3 <= lo < hi <= 1")
    tlo, thi = (float(v) for v in bounds["theta"])
    if not THETA_MIN_DEG <= tlo < thi <= 90.0:
        fail("bounds.theta", f"[{tlo}, {thi}] is not inside [{THETA_MIN_DEG:g}, 90]", "give 15 <= lo < hi <= 90")
    if not 0.0 <= float(bounds["p_closed"]) < 1.0:
        fail("bounds.p_closed", f"{bounds['p_closed']} is not in [0, 1)", "give a probability, e.g. 0.3")
    SpinodoidDesign(rho=0.5, theta=(90.0, 0.0, 0.0), wavelength=float(bounds["wavelength"]),
                    n_waves=int(bounds["n_waves"]))
    return bounds


def sample_spinodoid_designs(n: int, rng: np.random.Generator,
                             bounds: dict[str, Any] = SPINODOID_BOUNDS) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` designs from the design space.

    Returns
    -------
    rho : ndarray, shape (n,)
    theta : ndarray, shape (n, 3)
        Degrees, each 0 or in ``bounds["theta"]``, at least one open per row.
    """
    rho = rng.uniform(*bounds["rho"], n)
    theta = np.zeros((n, 3))
    for j in range(n):
        while True:
            t = np.where(rng.random(3) < bounds["p_closed"], 0.0, rng.uniform(*bounds["theta"], 3))
            if np.any(t > 0):
                theta[j] = t
                break
    return rho, theta


def _design(rho: float, theta, bounds: dict[str, Any]) -> SpinodoidDesign:
    return SpinodoidDesign(rho=float(rho), theta=tuple(theta), wavelength=float(bounds["wavelength"]),
                           n_waves=int(bounds["n_waves"]))


def _wave_rng(seed: int, index: int, j: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, j)))


def sample_waves_of(seed: int, index: int, j: int, rho: float, theta,
                    bounds: dict[str, Any] = SPINODOID_BOUNDS) -> WaveSet:
    """The waves of sample ``j`` of chunk ``index`` of a dataset with this ``seed`` (regenerates its cell)."""
    return sample_waves(_design(rho, theta, bounds), _wave_rng(seed, index, j))


def label_spinodoids(rho: np.ndarray, theta: np.ndarray, rngs, bounds: dict[str, Any] = SPINODOID_BOUNDS,
                     resolution: int = RESOLUTION, device: str | None = None) -> dict[str, np.ndarray]:
    """Voxelise and homogenize spinodoid designs, one cell per (rho, theta, generator).

    ``device`` (e.g. ``"cuda"``) runs the voxel FE there; the labels agree with the CPU's to the
    solver tolerance.

    Returns
    -------
    dict
        ``density``, ``removed``, ``winding``, ``C`` (n, 21), ``C9`` (n, 9), ``iterations``.
    """
    from graded.fem import homogenize_voxels

    n = len(rho)
    out = {k: np.zeros((n, *shape), dtype=dtype) for k, (shape, dtype) in FIELDS.items() if k not in ("rho", "theta")}
    for j, rng in enumerate(rngs):
        cell = generate_cell(_design(rho[j], theta[j], bounds), resolution, rng)
        r = homogenize_voxels(cell.solid, nu=FE_SETTINGS["nu"], device=device)
        if not r.converged[0]:
            raise RuntimeError(f"voxel FE of spinodoid sample {j} did not converge")
        out["density"][j] = cell.density
        out["removed"][j] = cell.connectivity.removed_fraction
        out["winding"][j] = cell.connectivity.winding_rank
        out["C"][j] = to_21(r.C[0])
        out["C9"][j] = to_9(r.C[0])
        out["iterations"][j] = r.iterations[0]
    return out


def _compute_chunk(seed: int, index: int, size: int, bounds: dict, device: str | None = None) -> dict[str, np.ndarray]:
    rho, theta = sample_spinodoid_designs(size, chunk_rng(seed, index), bounds)
    labels = label_spinodoids(rho, theta, (_wave_rng(seed, index, j) for j in range(size)), bounds, device=device)
    return {"rho": rho, "theta": theta, **labels}


def _check_bounds_quietly(bounds: Any) -> None:
    try:
        _check_bounds(bounds)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError("bounds", f"is malformed ({exc})", "regenerate the dataset") from None


#: The spinodoid family's dataset format.
SPINODOID = ChunkFormat(
    family="spinodoid", format="graded-spinodoid-dataset", version=1, fields=FIELDS, fe=FE_SETTINGS,
    sampling=SAMPLING, compute=_compute_chunk, check_bounds=_check_bounds_quietly,
)


# permutation matrices of the Voigt 6-vector for the six axis permutations
def _voigt_permutation(p: tuple[int, int, int]) -> np.ndarray:
    P = np.zeros((3, 3))
    P[np.arange(3), p] = 1.0  # (P x)_i = x_{p[i]}
    from graded.elastic import bond_matrix

    return bond_matrix(P)


PERMUTATIONS = tuple(itertools.permutations(range(3)))


def permutation_augment(theta: np.ndarray, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every sample under the six axis permutations (exact: the permuted field is the permuted cell).

    Parameters
    ----------
    theta : ndarray, shape (n, 3)
    C : ndarray, shape (n, 6, 6)

    Returns
    -------
    theta6 : ndarray, shape (6 n, 3)
    C6 : ndarray, shape (6 n, 6, 6)
        Permutation-major: rows ``[k n, (k + 1) n)`` are permutation ``PERMUTATIONS[k]``.
    """
    thetas, Cs = [], []
    for p in PERMUTATIONS:
        B = _voigt_permutation(p)
        thetas.append(theta[:, list(p)])
        Cs.append(B @ C @ B.T)
    return np.concatenate(thetas), np.concatenate(Cs)


@dataclass(frozen=True, eq=False)
class SpinodoidDataset:
    """A loaded spinodoid dataset (every array concatenated over chunks), plus meta."""

    rho: np.ndarray
    theta: np.ndarray
    density: np.ndarray
    removed: np.ndarray
    winding: np.ndarray
    C: np.ndarray
    C9: np.ndarray
    iterations: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.rho.shape[0])

    def subset(self, index: Any) -> SpinodoidDataset:
        return SpinodoidDataset(**{k: getattr(self, k)[index] for k in FIELDS}, meta=self.meta)


def generate_spinodoid_dataset(
    path: str | os.PathLike,
    n: int,
    seed: int,
    chunk_size: int = 40,
    workers: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    bounds: dict[str, Any] = SPINODOID_BOUNDS,
    *,
    scheduler: Any = None,
    on_cluster: Callable[[dict[str, Any]], None] | None = None,
    device: str | None = None,
) -> GenerationSummary:
    """Generate (or resume) a spinodoid FE dataset; arguments as :func:`graded.inverse.chunks.generate_chunks`.

    ``device`` runs the voxel FE of every worker there (``"cuda"`` where a GPU is lent; use one
    worker per GPU).
    """
    bounds = _check_bounds(dict(bounds))
    return generate_chunks(SPINODOID, path, n, seed, chunk_size, bounds, workers, progress,
                           scheduler=scheduler, on_cluster=on_cluster, options={"device": device} if device else {})


def load_spinodoid_dataset(path: str | os.PathLike) -> SpinodoidDataset:
    """Load and verify a dataset written by :func:`generate_spinodoid_dataset`."""
    arrays, meta = load_chunks(SPINODOID, path)
    return SpinodoidDataset(**arrays, meta=meta)


def shipped_spinodoid_test_set() -> SpinodoidDataset:
    """The FE test set shipped inside the package (200 cells, seed 1, chunk size 40), held out
    from the training set (seed 0) by construction."""
    from importlib import resources

    with resources.as_file(resources.files("graded.inverse.spinodoid") / "data" / "testset") as path:
        return load_spinodoid_dataset(path)
