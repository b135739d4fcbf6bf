"""Graded spinodoid parts: superposed random fields, local threshold, one watertight solid.

One wave set per control point (each periodic on a cell of edge ``cell_size`` mm), blended with
the grading's RBF weights ``w_i(x)`` (:func:`graded.grading.field.rbf_weights`):

    phi(x) = sum_i w_i(x) phi_i(x) / sqrt(w(x)^T G w(x)),   solid where phi(x) <= phi_0(x),

where ``G_ij`` is the exact mean product of fields i and j over the cell (1 on the diagonal;
the waves two sets share make it non-zero off the diagonal), so the mixture keeps unit variance
everywhere (a plain mix of two independent unit fields has variance ``(1 - l)^2 + l^2``). The
threshold follows the blended density ``rho(x) = sum_i w_i rho_i`` through the Gaussian
quantile of Eq. 3, ``phi_0 = sqrt(2) erfinv(2 rho - 1)``.

The level function is sampled on a voxel grid (the fields by FFT on one cell, tiled) and meshed
into one closed, oriented solid clipped to the body by :func:`graded.mesh.level_set.mesh_level_set`
(islands removed and reported), ready for the STL / 3MF writers of :mod:`graded.io`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import trimesh
from scipy.special import erfinv

from ..grading.body import Body
from ..grading.field import rbf_weights
from ..mesh.facts import MeshFacts
from ..mesh.level_set import mesh_level_set
from ..validation import ValidationError, check_positive, check_shape, fail
from .field import WaveSet, field_on_grid

__all__ = [
    "GradedSpinodoid",
    "field_correlation",
    "blend_fields",
    "graded_level_function",
    "mesh_graded_spinodoid",
    "local_cell",
    "MIN_CELL_VOXELS",
]

log = logging.getLogger("graded.spinodoid")

#: Fewest voxels per cell edge: the waves of the default wavelength (0.2 of the cell) have
#: lattice index up to 6, and sampling them needs more than twice that per edge.
MIN_CELL_VOXELS = 13
#: Densities are clipped into this open interval before the quantile (erfinv(+-1) is infinite).
_RHO_EPS = 1e-6


@dataclass(frozen=True)
class GradedSpinodoid:
    """A meshed graded spinodoid part.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        One closed, oriented solid (mm).
    facts : MeshFacts
        Volume, relative density (against the body's volume), watertightness, shell count.
    voxel_size : float
        Sampling step used (mm); ``cell_size / voxel_size`` is an integer.
    removed_shells : int
        Islands removed after the clip.
    removed_volume : float
        Their volume (mm^3).
    """

    mesh: trimesh.Trimesh
    facts: MeshFacts
    voxel_size: float
    removed_shells: int
    removed_volume: float


def field_correlation(waves: Sequence[WaveSet]) -> np.ndarray:
    """Mean product over the cell of every pair of fields, shape (k, k) (ones on the diagonal).

    Fields ``Re sum c_m exp(2 pi i m.x)`` with canonical half-space ``m`` correlate only through
    the wave vectors they share: ``<phi_a phi_b> = sum_shared Re(c_a conj(c_b)) / 2``.
    """
    k = len(waves)
    G = np.zeros((k, k))
    dicts = [{tuple(m): c for m, c in zip(w.m.tolist(), w.c)} for w in waves]
    for a in range(k):
        for b in range(k):
            shared = dicts[a].keys() & dicts[b].keys()
            G[a, b] = sum((dicts[a][m] * np.conj(dicts[b][m])).real for m in shared) / 2.0
    return G


def blend_fields(fields: np.ndarray, weights: np.ndarray, G: np.ndarray) -> np.ndarray:
    """Unit-variance superposition ``sum_i w_i phi_i / sqrt(w^T G w)``.

    Parameters
    ----------
    fields : ndarray, shape (k, ...)
    weights : ndarray, shape (k, ...)
        Blend weights at the same points (non-negative, summing to one).
    G : ndarray, shape (k, k)
        :func:`field_correlation` of the wave sets.
    """
    num = np.einsum("i...,i...->...", weights, fields)
    var = np.einsum("i...,ij,j...->...", weights, G, weights)
    return num / np.sqrt(var)


def _shifted(w: WaveSet, origin_cells: np.ndarray) -> WaveSet:
    """The same field with its argument shifted: phi'(y) = phi(y + origin)."""
    return WaveSet(m=w.m, c=w.c * np.exp(2j * math.pi * (w.m @ origin_cells)))


def graded_level_function(
    body: Body,
    points: np.ndarray,
    waves: Sequence[WaveSet],
    rho: np.ndarray,
    *,
    cell_size: float,
    voxel_size: float,
    zeta: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Level function ``phi - phi_0`` (solid where <= 0) at the voxel centres of the body's box.

    The grid covers the body's bounding box plus one voxel on every side.

    Returns
    -------
    g : ndarray, shape (n1, n2, n3), float64
    origin : ndarray, shape (3,)
        Centre of voxel (0, 0, 0), mm.
    h : float
        Voxel size actually used (``cell_size`` / integer), mm.
    """
    cell_size = float(check_positive("cell_size", cell_size))
    voxel_size = float(check_positive("voxel_size", voxel_size))
    points = check_shape("points", points, (None, 3))
    rho = np.asarray(rho, dtype=float).reshape(-1)
    if not (len(points) == len(waves) == len(rho)) or len(points) == 0:
        fail("points", f"{len(points)} points, {len(waves)} wave sets and {len(rho)} densities",
             "give one wave set and one density per control point")
    n_cell = max(int(round(cell_size / voxel_size)), 1)
    if n_cell < MIN_CELL_VOXELS:
        fail("voxel_size", f"{voxel_size:g} mm gives {n_cell} voxels per {cell_size:g} mm cell",
             f"use at most {cell_size / MIN_CELL_VOXELS:.3g} mm")
    h = cell_size / n_cell
    lo = body.lo - h
    shape = tuple(int(math.ceil(s)) for s in (body.hi + h - lo) / h)
    origin = lo + 0.5 * h
    # every field on one cell grid, shifted so that grid index 0 is the part's first voxel
    start = (lo / cell_size) % 1.0
    cells = [field_on_grid(_shifted(w, start), n_cell) for w in waves]
    idx = [np.arange(s) % n_cell for s in shape]
    G = field_correlation(waves)
    g = np.empty(shape)
    x2 = np.stack(np.meshgrid(origin[1] + h * np.arange(shape[1]), origin[2] + h * np.arange(shape[2]),
                              indexing="ij"), axis=-1).reshape(-1, 2)
    for i in range(shape[0]):  # one slab at a time keeps memory at a few grid copies
        x = np.column_stack([np.full(len(x2), origin[0] + h * i), x2])
        w = rbf_weights(x, points, zeta, cell_size).T.reshape(len(points), shape[1], shape[2])
        phi = np.stack([c[idx[0][i]][np.ix_(idx[1], idx[2])] for c in cells])
        local_rho = np.clip(np.tensordot(rho, w, axes=1), _RHO_EPS, 1 - _RHO_EPS)
        g[i] = blend_fields(phi, w, G) - math.sqrt(2.0) * erfinv(2.0 * local_rho - 1.0)
    return g, origin, h


def mesh_graded_spinodoid(
    body: Body,
    points: np.ndarray,
    waves: Sequence[WaveSet],
    rho: np.ndarray,
    *,
    cell_size: float,
    voxel_size: float,
    zeta: float = 1.0,
    progress: Callable[[int, int, str], None] | None = None,
) -> GradedSpinodoid:
    """Mesh a graded spinodoid filling ``body``.

    Parameters
    ----------
    body : Body
        Box (:func:`graded.grading.body.box_body`) or closed mesh (:func:`~graded.grading.body.mesh_body`).
    points : ndarray, shape (k, 3)
        Control points (mm).
    waves : sequence of k WaveSet
        Field of each control point (:func:`graded.spinodoid.sample_waves`), periodic on the cell.
    rho : array_like, shape (k,)
        Relative density at each control point.
    cell_size : float
        Edge of the periodic cell (mm): the wavelength in mm is ``design.wavelength * cell_size``.
    voxel_size : float
        Sampling step (mm), rounded so that a cell holds an integer number of voxels.
    zeta : float
        Sharpness of the RBF blend (per squared cell size), as in the lattice grading.
    progress : callable, optional
        ``progress(done, total, message)`` after each stage.

    Returns
    -------
    GradedSpinodoid
    """
    total = 4
    g, origin, h = graded_level_function(body, points, waves, rho, cell_size=cell_size, voxel_size=voxel_size,
                                         zeta=zeta)
    if progress:
        progress(1, total, "spinodoid field sampled")
    try:
        part = mesh_level_set(g, origin, h, body, progress=None if progress is None else
                              (lambda k, n, msg: progress(1 + k, total, msg)), label="spinodoid")
    except ValidationError as exc:
        if exc.field == "level":
            fail("rho", exc.problem, "raise the densities")
        raise
    return GradedSpinodoid(mesh=part.mesh, facts=part.facts, voxel_size=h, removed_shells=part.removed_shells,
                           removed_volume=part.removed_volume)


def local_cell(
    x: np.ndarray,
    points: np.ndarray,
    waves: Sequence[WaveSet],
    rho: np.ndarray,
    *,
    cell_size: float,
    resolution: int,
    zeta: float = 1.0,
) -> np.ndarray:
    """The periodic cell the graded part has around ``x``: blend weights frozen at ``x``.

    The fields are blended with the weights ``w(x)`` and thresholded at the blended density's
    Gaussian quantile, exactly as :func:`graded_level_function` does at ``x``, over one periodic
    cell; islands are removed. Its voxel FE is the as-built stiffness at ``x``.

    Parameters
    ----------
    x : array_like, shape (3,)
        Where (mm), typically a control point.
    points, waves, rho, cell_size, zeta
        As for :func:`mesh_graded_spinodoid`.
    resolution : int
        Voxels per cell edge.

    Returns
    -------
    ndarray of bool, shape (resolution,) * 3
    """
    from .connectivity import keep_percolating

    x = check_shape("x", x, (3,))
    points = check_shape("points", points, (None, 3))
    rho = np.asarray(rho, dtype=float).reshape(-1)
    w = rbf_weights(x[None], points, zeta, float(check_positive("cell_size", cell_size)))[0]
    phi = np.stack([field_on_grid(s, resolution) for s in waves])
    mixed = blend_fields(phi, w[:, None, None, None], field_correlation(waves))
    local_rho = float(np.clip(rho @ w, _RHO_EPS, 1 - _RHO_EPS))
    solid, _ = keep_percolating(mixed <= math.sqrt(2.0) * erfinv(2.0 * local_rho - 1.0))
    return solid
