"""A graded part of free-form voxel cells, from a spec with ``family: voxel``.

The voxel branch of :func:`graded.build.build`:

1. every control point's ``target`` is projected onto the nearest cubic stiffness
   (:func:`graded.voxelcell.cubic_projection`; the share no cubic cell has is reported) and a cell
   is generated for it by the diffusion model (:func:`graded.inverse.voxelcell.design.design_voxel`:
   ``target.volume_fraction`` if given, regressor ranking, FE verification). Every point after
   the first is generated with boundary-similarity guidance towards the cell of the nearest
   point designed before it (:func:`~graded.inverse.voxelcell.design.boundary_goal`, weight
   :data:`BOUNDARY_WEIGHT`), so that neighbouring cells meet with similar faces, as the paper
   suggests for graded sequences;
2. the part's level function is a weighted soft union (:func:`soft_union`, softness
   :data:`SOFTNESS`), with the spec's weights (``blend.kind``: the interpolating weights by
   default, exactly 1 at their own point; or the SI's Gaussian), of the cells' periodic signed
   distances (trilinear between the 32^3 voxel centres), solid where negative: at a control
   point with interpolating weights the part is that point's cell, and in between each cell's
   solid thins out as its weight falls while the next one's grows, overlapping, so the part
   stays one body. (A linear blend of the distances, which is a linear blend of the codes,
   split the example part in two between two unrelated cells.)
3. the level function is sampled at ``voxel_size`` and meshed into one watertight solid clipped
   to the body (:func:`graded.mesh.level_set.mesh_level_set`);
4. the as-built stiffness at each point is the voxel FE of the periodic cell the part has there
   (:func:`local_cell`, weights frozen at the point) against the designed cell and the target.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from ..elastic.metrics import relative_frobenius
from ..grading.body import Body
from ..grading.field import GradingField
from ..mesh.level_set import LevelSetPart, mesh_level_set
from ..spec import Spec
from ..spinodoid.connectivity import ConnectivityReport, keep_percolating
from ..spinodoid.printability import THIN_WARN, thin_fraction
from ..validation import ValidationError, check_positive, check_shape, fail
from .code import signed_distance
from .label import cubic_labels, cubic_projection, cubic_stiffness

__all__ = ["VOXELS_PER_CELL", "MIN_CELL_VOXELS", "SOFTNESS", "BOUNDARY_WEIGHT", "soft_union", "VoxelPoint",
           "VoxelBuild", "blend_weights", "graded_voxel_level_function", "mesh_graded_voxel",
           "local_cell", "build_voxel"]

#: Default sampling of the part: voxels per cell edge (``voxel_size = cell_size / 32``), the
#: resolution the cells were generated and labelled at.
VOXELS_PER_CELL = 32
#: Fewest voxels per cell edge of the part's sampling: the generator's features are two voxels
#: across at 32^3, so sampling much coarser than half of that loses them.
MIN_CELL_VOXELS = 16
#: Softness of the blend between cells, in cell edges (module docstring): a cell's solid survives
#: where its weight is ``w`` down to ``SOFTNESS * log(1 / w)`` cell edges from its surface.
#: Measured on examples/voxel_scaffold.yaml (level set at 0.5 mm): the solid falls into 29 pieces
#: at 1/16, 10 at 1/32 and 1/64 (the largest spanning the part; the others are fragments the box
#: cuts off, removed by the mesher), 2 with a linear blend that splits the part in two.
SOFTNESS = 1.0 / 32.0
#: Weight of the boundary-similarity guidance between neighbouring control points' cells.
#: Measured on held-out cells (tests/test_voxel_diffusion.py): 0.5 halves the mean squared face
#: difference against unguided samples.
BOUNDARY_WEIGHT = 0.5


@dataclass
class VoxelPoint:
    """One control point: its generated cell, designed and as-built stiffness.

    Attributes
    ----------
    index : int
    name : str
    position : ndarray, shape (3,)
        mm.
    solid : ndarray of bool, shape (n, n, n)
        The generated cell.
    C_target : ndarray, shape (6, 6)
        The target, normalised by E_s.
    non_cubic : float
        Relative Mandel norm of the target's non-cubic part (what no cubic cell has).
    target_volume_fraction : float or None
    C_cell : ndarray, shape (6, 6)
        Voxel FE of the cell, / E_s.
    paper_error : float
        Eq. 4 of the voxel paper, cell against the cubic target.
    design_error : float
        ``||C_cell - C_target||_F / ||C_target||_F`` (the whole target).
    accepted, drawn : int
        Generated cells that were connected and printable, of those drawn.
    C_as_built : ndarray, shape (6, 6) or None
        Voxel FE of the part's local cell at the point.
    error_vs_cell : float or None
    connectivity : ConnectivityReport or None
        Of the local cell.
    thin_fraction : float or None
        Share of the cell's solid thinner than ``min_strut_diameter`` (None without a minimum).
    """

    index: int
    name: str
    position: np.ndarray
    solid: np.ndarray
    C_target: np.ndarray
    non_cubic: float
    target_volume_fraction: float | None
    C_cell: np.ndarray
    paper_error: float
    design_error: float
    accepted: int
    drawn: int
    units: str = "GPa"
    C_as_built: np.ndarray | None = None
    error_vs_cell: float | None = None
    connectivity: ConnectivityReport | None = None
    thin_fraction: float | None = None


@dataclass
class VoxelBuild:
    """Everything a voxel build made (the voxel counterpart of :class:`graded.build.BuildResult`)."""

    spec: Spec
    body: Body
    points: list[VoxelPoint]
    solid: LevelSetPart | None
    resolution: int
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)
    family: str = "voxel"

    @property
    def title(self) -> str:
        name = Path(self.spec.source).name if self.spec.source else "graded voxel part"
        return f"{name}: voxel cells, {len(self.points)} control points"


def blend_weights(points: np.ndarray, cell_size: float, kind: str, width: float, zeta: float):
    """``weights(x) -> (N, k)`` of the spec's blend (:class:`graded.grading.field.GradingField`)."""
    pts = check_shape("points", points, (None, 3))
    bases = np.repeat(np.eye(3)[None] * cell_size, len(pts), axis=0)
    return GradingField(pts, bases, zeta, length_scale=cell_size, kind=kind, width=width).weights


def soft_union(weights: np.ndarray, distances: np.ndarray, softness: float) -> np.ndarray:
    """Weighted soft union ``-s log sum_i w_i exp(-d_i / s)`` of signed distances.

    Parameters
    ----------
    weights : ndarray, shape (k, ...)
        Non-negative, summing to one over the first axis.
    distances : ndarray, shape (k, ...)
        Signed distances (negative in the solid), same unit as ``softness``.
    softness : float

    Returns
    -------
    ndarray, shape (...)
        Exactly ``d_i`` where ``w_i = 1``; where two cells share the weight, each keeps its solid
        thinned by ``softness * log(1 / w_i)`` and the two overlap, so the transition stays
        connected (a linear blend of unrelated cells is solid only where both nearly are, and
        breaks apart between them).
    """
    with np.errstate(divide="ignore"):
        a = np.log(weights) - distances / softness
    top = a.max(axis=0)
    return -softness * (top + np.log(np.exp(a - top).sum(axis=0)))


def _cell_distances(solids) -> list[np.ndarray]:
    """Signed distances of cells in cell edges (negative in the solid)."""
    return [signed_distance(s) / s.shape[0] for s in solids]


def graded_voxel_level_function(body: Body, weights, solids, *, cell_size: float, voxel_size: float):
    """Level function (solid where <= 0) at the voxel centres of the body's box (plus one voxel).

    Parameters
    ----------
    body : Body
    weights : callable
        ``weights(x (N, 3)) -> (N, k)`` (:func:`blend_weights`).
    solids : sequence of k ndarray of bool, shape (n, n, n)
        The control points' cells, periodic with edge ``cell_size`` mm.

    Returns
    -------
    g : ndarray, shape (n1, n2, n3), float64
        Blended signed distance, mm (in the cells' frame; the blend of distances is not itself a
        distance).
    origin : ndarray, shape (3,)
        Centre of voxel (0, 0, 0), mm.
    h : float
        Voxel size (mm).
    """
    cell_size = float(check_positive("cell_size", cell_size))
    voxel_size = float(check_positive("voxel_size", voxel_size))
    n_cell = cell_size / voxel_size
    if n_cell < MIN_CELL_VOXELS:
        fail("voxel_size", f"{voxel_size:g} mm gives {n_cell:.3g} voxels per {cell_size:g} mm cell",
             f"use at most {cell_size / MIN_CELL_VOXELS:.3g} mm")
    h = voxel_size
    lo = body.lo - h
    shape = tuple(int(math.ceil(s)) for s in (body.hi + h - lo) / h)
    origin = lo + 0.5 * h
    dist = [d * cell_size for d in _cell_distances(solids)]  # mm: a box clip then meets the faces exactly
    n = solids[0].shape[0]
    g = np.empty(shape)
    ys, zs = origin[1] + h * np.arange(shape[1]), origin[2] + h * np.arange(shape[2])
    Y, Z = np.meshgrid(ys, zs, indexing="ij")
    for i in range(shape[0]):  # one slab at a time keeps memory at a few grid copies
        xi = origin[0] + h * i
        x = np.column_stack([np.full(Y.size, xi), Y.reshape(-1), Z.reshape(-1)])
        w = weights(x)
        # cell-voxel coordinates: voxel k of a cell is centred at (k + 0.5) / n cell edges
        coords = (x / cell_size % 1.0) * n - 0.5
        used = [j for j in range(len(dist)) if np.any(w[:, j] > 0)]
        dj = np.stack([ndimage.map_coordinates(dist[j], coords.T, order=1, mode="grid-wrap") for j in used])
        g[i] = soft_union(w[:, used].T, dj, SOFTNESS * cell_size).reshape(Y.shape)
    return g, origin, h


def mesh_graded_voxel(body: Body, weights, solids, *, cell_size: float, voxel_size: float,
                      progress=None) -> LevelSetPart:
    """Mesh the graded voxel part filling ``body`` (module docstring); ``progress(done, 4, msg)``."""
    g, origin, h = graded_voxel_level_function(body, weights, solids, cell_size=cell_size, voxel_size=voxel_size)
    if progress:
        progress(1, 4, "voxel-cell field sampled")
    return mesh_level_set(g, origin, h, body, label="voxel-cell",
                          progress=None if progress is None else (lambda k, n, msg: progress(1 + k, 4, msg)))


def local_cell(x, weights, solids) -> tuple[np.ndarray, ConnectivityReport]:
    """The periodic cell the part has around ``x`` (weights frozen there), islands removed.

    Returns
    -------
    solid : ndarray of bool, shape (n, n, n)
        Cubic-symmetric (a blend of cubic-symmetric distances).
    connectivity : ConnectivityReport
    """
    x = check_shape("x", x, (3,))
    w = weights(x[None])[0]
    used = np.flatnonzero(w > 0)
    dist = _cell_distances(solids)
    g = soft_union(w[used, None, None, None], np.stack([dist[j] for j in used]), SOFTNESS)
    return keep_percolating(g < 0)


def _design(spec: Spec, i: int, model, neighbour_code):
    """The generated cell of control point ``i`` and its design figures."""
    from ..inverse.design import parse_target
    from ..inverse.voxelcell.design import boundary_goal, design_voxel

    cp = spec.control_points[i]
    where = ("control_points", i, "target")
    try:
        C_t = parse_target(cp.target.stiffness, E=spec.material.E, units=cp.target.units)
        C3, residual = cubic_projection(C_t)
        goal = None if neighbour_code is None else boundary_goal(model, neighbour_code)
        d = design_voxel(model, C3, cp.target.volume_fraction, seed=spec.seed + 1000 * i, goal=goal,
                         goal_weight=BOUNDARY_WEIGHT if goal is not None else 0.0)
    except ValidationError as exc:
        raise spec.error(where, exc.problem, exc.hint) from None
    lo, hi = np.asarray(model.config.C_min), np.asarray(model.config.C_max)
    if np.any(C3 < lo) or np.any(C3 > hi):
        warnings.warn(f"{cp.name or f'point {i}'}: the cubic target C11, C12, C44 = {np.round(C3, 5).tolist()} (/ E_s) "
                      f"is outside the model's data range {np.round(lo, 5).tolist()} .. {np.round(hi, 5).tolist()}; "
                      f"the generated cell is {100 * d.paper_error[d.best]:.1f} % off (Eq. 4)", stacklevel=3)
    return d, C_t, residual


def build_voxel(spec: Spec, body: Body, *, mesh: bool = True, progress=None, mesh_progress=None,
                timings: dict | None = None, model=None) -> VoxelBuild:
    """Generate cells, mesh the graded part and measure it at the control points (module docstring).

    Parameters
    ----------
    spec : Spec
        ``spec.family == "voxel"``; every control point has a ``target``.
    body : Body
    mesh : bool
        Mesh the part (the slow step); without it only the cells and as-built figures.
    progress, mesh_progress : callable, optional
        ``progress(done, total, message)`` per point and per meshing stage.
    timings : dict, optional
        Filled with seconds per stage.
    model : VoxelModel, optional
        Default: the shipped one.
    """
    from ..inverse.voxelcell.model import load_voxel_model

    model = load_voxel_model() if model is None else model
    timings = {} if timings is None else timings
    k = len(spec.control_points)
    total = 2 * k
    tell = progress or (lambda *a: None)
    t = time.perf_counter()
    points: list[VoxelPoint] = []
    codes: list[np.ndarray] = []
    xs = np.array([cp.position for cp in spec.control_points], dtype=np.float64)
    nu = spec.material.nu
    for i, cp in enumerate(spec.control_points):
        name = cp.name or f"point {i}"
        tell(i, total, f"{name}: generating voxel cells for the target")
        nb = None
        if points:
            nearest = int(np.argmin(np.linalg.norm(xs[:i] - xs[i], axis=1)))
            nb = codes[nearest]
        d, C_t, residual = _design(spec, i, model, nb)
        cell = d.cell
        C3 = d.fe[d.best, :3] if abs(nu - 0.3) < 1e-12 else cubic_labels(cell, nu=nu).values[0, :3]
        C_cell = cubic_stiffness(C3)
        point = VoxelPoint(i, name, xs[i], cell, C_t, residual, cp.target.volume_fraction, C_cell,
                           float(d.paper_error[d.best]), float(relative_frobenius(C_t, C_cell)), len(d.solids),
                           d.n_drawn, units=cp.target.units)
        if spec.min_strut_diameter > 0:
            point.thin_fraction = thin_fraction(cell, spec.cell_size / cell.shape[0], spec.min_strut_diameter)
            if point.thin_fraction > THIN_WARN:
                warnings.warn(f"{name}: {100 * point.thin_fraction:.0f} % of the cell's solid is thinner than "
                              f"min_strut_diameter {spec.min_strut_diameter:g} mm, which the printer cannot make; "
                              "use a larger cell_size or a higher volume_fraction", stacklevel=2)
        points.append(point)
        codes.append(model.code.encode(cell)[0])
    timings["cells"] = time.perf_counter() - t

    weights = blend_weights(xs, spec.cell_size, spec.blend.kind, spec.blend.width, spec.zeta)
    solids = [p.solid for p in points]
    t = time.perf_counter()
    for p in points:
        tell(k + p.index, total, f"{p.name}: as-built cell FE")
        local, conn = local_cell(p.position, weights, solids)
        p.connectivity = conn
        if local.any():
            p.C_as_built = cubic_stiffness(cubic_labels(local, nu=nu).values[0, :3])
            p.error_vs_cell = float(relative_frobenius(p.C_cell, p.C_as_built))
    timings["as_built"] = time.perf_counter() - t

    solid = None
    if mesh:
        t = time.perf_counter()
        if mesh_progress:
            mesh_progress(0, 4, "meshing the voxel-cell part")
        voxel = spec.voxel_size or spec.cell_size / VOXELS_PER_CELL
        try:
            solid = mesh_graded_voxel(body, weights, solids, cell_size=spec.cell_size, voxel_size=voxel,
                                      progress=mesh_progress)
        except ValidationError as exc:
            raise spec.error(("voxel_size",) if exc.field == "voxel_size" else ("control_points",), exc.problem,
                             exc.hint) from None
        timings["mesh"] = time.perf_counter() - t
    tell(total, total, "voxel cells measured")
    return VoxelBuild(spec, body, points, solid, points[0].solid.shape[0], timings=timings)
