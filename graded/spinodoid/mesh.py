"""Graded spinodoid parts: superposed random fields, local threshold, one watertight solid.

One wave set per control point (each periodic on a cell of edge ``cell_size`` mm), blended with
the grading's RBF weights ``w_i(x)`` (:func:`graded.grading.field.rbf_weights`):

    phi(x) = sum_i w_i(x) phi_i(x) / sqrt(w(x)^T G w(x)),   solid where phi(x) <= phi_0(x),

where ``G_ij`` is the exact mean product of fields i and j over the cell (1 on the diagonal;
the waves two sets share make it non-zero off the diagonal), so the mixture keeps unit variance
everywhere (a plain mix of two independent unit fields has variance ``(1 - l)^2 + l^2``). The
threshold follows the blended density ``rho(x) = sum_i w_i rho_i`` through the Gaussian
quantile of Eq. 3, ``phi_0 = sqrt(2) erfinv(2 rho - 1)``.

The level function is sampled on a voxel grid (the fields by FFT on one cell, tiled), meshed
by marching cubes (scikit-image, outward normals), intersected with the body by manifold3d, and
reduced to one shell: islands of the thresholded grid are removed before meshing (face
connectivity), and any shell a clip by a mesh body splits off after it; both are reported. A
box body clips in the level function (maximum with its signed distance), so no boolean is needed.
The result is a closed, oriented 2-manifold in millimetres, ready for the STL / 3MF writers of
:mod:`graded.io`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import manifold3d as mf
import numpy as np
import trimesh
from scipy import ndimage
from scipy.special import erfinv
from skimage.measure import marching_cubes

from ..grading.body import Body
from ..grading.field import rbf_weights
from ..mesh.facts import MeshFacts, mesh_facts
from ..mesh.solid import to_manifold, to_trimesh
from ..validation import check_positive, check_shape, fail
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
#: Level value given to the padding around the grid: far on the void side, so marching cubes
#: closes the solid half a voxel outside the body, where the clip then cuts it.
_VOID_PAD = 1e3
#: Level value given to islands mirrored to the void side (exact zeros would stay on the surface).
_MIRROR_MIN = 1e-9
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
    if body.mesh is None:
        # a box clips in the level function itself: max with the box's signed distance puts
        # the faces exactly on the box (marching cubes interpolates a linear function exactly)
        axes = [origin[d] + h * np.arange(g.shape[d]) for d in range(3)]
        box = [np.maximum(body.lo[d] - axes[d], axes[d] - body.hi[d]) for d in range(3)]
        np.maximum(g, box[0][:, None, None], out=g)
        np.maximum(g, box[1][None, :, None], out=g)
        np.maximum(g, box[2][None, None, :], out=g)
    # islands on the voxel grid (face connectivity): mirror them to the void side
    labels, count = ndimage.label(g <= 0, structure=ndimage.generate_binary_structure(3, 1))
    if count == 0:
        fail("rho", "the thresholded field has no solid inside the body", "raise the densities")
    sizes = np.bincount(labels.reshape(-1))[1:]
    main = int(np.argmax(sizes)) + 1
    others = (labels > 0) & (labels != main)
    g[others] = np.maximum(-g[others], _MIRROR_MIN)
    del labels, others
    padded = np.pad(-g, 1, constant_values=-_VOID_PAD)  # solid where the padded volume is > 0
    del g
    verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(h, h, h), allow_degenerate=False)
    del padded
    verts = verts + (origin - h)
    faces = faces[:, ::-1]  # scikit-image winds its triangles inward for this sign convention
    raw = mf.Manifold(mf.Mesh64(vert_properties=np.ascontiguousarray(verts, dtype=np.float64),
                                tri_verts=np.ascontiguousarray(faces, dtype=np.uint32)))
    del verts, faces
    if raw.status() != mf.Error.NoError or raw.is_empty():
        raise RuntimeError(f"mesh: marching cubes gave no closed manifold (manifold3d status {raw.status().name})")
    if raw.volume() < 0:
        raise RuntimeError("mesh: marching cubes surface is inside out")
    if progress:
        progress(2, total, "spinodoid surface extracted")
    solid = raw if body.mesh is None else raw ^ to_manifold(body.mesh, "body")
    if progress:
        progress(3, total, "clipped to the body")
    mesh = to_trimesh(solid)
    removed, n_removed = float(sizes.sum() - sizes[main - 1]) * h**3, int(count - 1)
    if _shell_count(mesh) > 1:  # the clip by a mesh body (or a corner contact) split it
        shells = solid.decompose()
        vols = np.array([sh.volume() for sh in shells])
        keep = int(np.argmax(vols))
        removed += float(vols.sum() - vols[keep])
        n_removed += len(shells) - 1
        mesh = to_trimesh(shells[keep])
    if n_removed:
        log.info("spinodoid part: removed %d islands (%.3g mm^3)", n_removed, removed)
    body_volume = float(np.prod(body.hi - body.lo)) if body.mesh is None else float(body.mesh.volume)
    facts = mesh_facts(mesh, reference_volume=body_volume)
    if progress:
        progress(4, total, "spinodoid part meshed")
    return GradedSpinodoid(mesh=mesh, facts=facts, voxel_size=h, removed_shells=n_removed, removed_volume=removed)


def _shell_count(mesh: trimesh.Trimesh) -> int:
    """Vertex-connected shells of a triangle mesh."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(mesh.faces, dtype=np.int64)
    n = len(mesh.vertices)
    adj = coo_matrix((np.ones(2 * len(f), dtype=np.int8), (np.r_[f[:, 0], f[:, 1]], np.r_[f[:, 1], f[:, 2]])),
                     shape=(n, n))
    return int(connected_components(adj, directed=False)[0])


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
