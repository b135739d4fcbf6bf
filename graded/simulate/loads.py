"""Load cases of a spec (``loads:``) turned into boundary conditions on a point set.

The same case is applied to the lattice (its nodes) and to the continuum model (the
dof locations of its mesh): a region selects points, a support holds components of
their displacement at zero, a loaded region gets a prescribed displacement or a total
force. The force is a uniform traction on the region: for the continuum it is
integrated over the boundary facets the region catches (:mod:`graded.simulate.run`),
for the lattice it is shared by the caught nodes in proportion to their tributary area
(:func:`tributary_weights`), so a node at the rim of a face or alone in a sparse patch
does not carry the same force as one in the middle of a dense one.

A ``face`` region catches the lattice's surface layer by default (:func:`face_tolerance`):
the graph keeps only struts with both ends inside the body, so where the body cuts cells
(stretched, rotated or graded cells, curved bodies) the outermost nodes lie up to about
half a cell inside the face. A tenth of a cell catches a third to a half of such a face
(measured on the rotated 20 mm block of ``benchmarks/simulate.py``), and a load on those
few nodes bends their struts instead of compressing the part: 36x too soft at 4 cells
across, 2x at 8. The depth is chosen once per region on the lattice and used for both
models (:func:`resolve_tolerances`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import AppliedLoad, LoadCase, Spec, format_path
from ..validation import ValidationError

__all__ = ["BoundaryConditions", "region_mask", "boundary_conditions", "region_tolerance", "face_tolerance",
           "resolve_tolerances", "tributary_weights", "REGION_TOL_CELLS", "FACE_TOL_CELLS", "FACE_COVERAGE",
           "TRIBUTARY_RADIUS_CELLS", "MAX_DISPLACEMENT_FRACTION"]

#: Default tolerance of ``plane`` and ``box`` regions, in built cell edges: lattice nodes
#: of a plane of whole cells lie on it up to round-off of the phase map (~1e-9 mm), the
#: nearest others at least ~0.25 cells away, so a tenth of a cell catches the plane only.
REGION_TOL_CELLS = 0.1
#: Candidate depths of a ``face`` region's surface layer, in built cell edges; the first
#: whose nodes cover :data:`FACE_COVERAGE` of what the deepest covers is used. On the
#: rotated, stretched block of ``benchmarks/simulate.py`` (cells cut at every face) the
#: nodes within 0.1 / 0.3 / 0.45 cells of a face come within a third of a cell (in its
#: plane) of 33-54 % / 95-99 % / 100 % of its area; whole cells cover it at 0.1. Deeper
#: than needed would hold a slab of whole cells rigid (stiffer by ~ depth / length).
FACE_TOL_CELLS = (0.1, 0.2, 0.3, 0.45)
#: Fraction of the deepest candidate's covered area (samples within
#: :data:`TRIBUTARY_RADIUS_CELLS` of a caught node) a face's surface layer must cover.
FACE_COVERAGE = 0.95
#: Tributary area of a lattice node: the part of the region's plane nearer to it than to
#: any other caught node, and within this many built cell edges of it (a hole in the
#: surface is not load-bearing area).
TRIBUTARY_RADIUS_CELLS = 0.5
#: Samples per built cell edge of the grid that measures tributary areas (each node of a
#: half-cell node grid gets ~25 samples: its share to ~4 %, exact on a uniform grid).
TRIBUTARY_SAMPLES_PER_CELL = 10
#: Cap on those samples (memory and time of the nearest-node query).
TRIBUTARY_MAX_SAMPLES = 2_000_000
#: A prescribed displacement larger than this fraction of the body's smallest extent is
#: outside linear elasticity (strain of several percent) and almost surely in the wrong
#: unit (m given as mm: 1000x too large is caught; um given as mm as well).
MAX_DISPLACEMENT_FRACTION = 0.05

_AXES = {"x": 0, "y": 1, "z": 2}


@dataclass(frozen=True)
class BoundaryConditions:
    """Boundary conditions of one case on a point set.

    Attributes
    ----------
    fixed_points, fixed_components : ndarray of int, shape (P,)
        Point index and component (0, 1, 2) of every prescribed displacement.
    fixed_values : ndarray, shape (P,)
        Prescribed displacement (mm).
    loaded_points : list of ndarray of int
        Points of every loaded region, in the order of ``case.loaded``.
    forces : list of ndarray or None
        Total force (3,) in N of each loaded region; ``None`` for displacement-controlled.
    displacements : list of ndarray or None
        Prescribed displacement (3,) of each displacement-controlled region (NaN = free).
    """

    fixed_points: np.ndarray
    fixed_components: np.ndarray
    fixed_values: np.ndarray
    loaded_points: list
    forces: list
    displacements: list


def region_tolerance(region, cell_edge: float) -> float:
    """Region tolerance in mm: the spec's, else :data:`FACE_TOL_CELLS` (faces) or
    :data:`REGION_TOL_CELLS` (planes, boxes) built cell edges."""
    if region.tolerance is not None:
        return float(region.tolerance)
    return (FACE_TOL_CELLS[-1] if region.face is not None else REGION_TOL_CELLS) * cell_edge


def _plane_samples(q: np.ndarray, bounds, r: float, cell_edge: float) -> np.ndarray:
    """Cell-centred samples (S, 2) of the rectangle around in-plane points q (K, 2), grown by r."""
    a, b = q.min(axis=0) - r, q.max(axis=0) + r
    if bounds is not None:
        a, b = np.maximum(a, bounds[0]), np.minimum(b, bounds[1])
    ext = np.maximum(b - a, 0.0)
    step = cell_edge / TRIBUTARY_SAMPLES_PER_CELL
    if np.prod(ext / step + 1) > TRIBUTARY_MAX_SAMPLES:
        step = float(np.sqrt(np.prod(ext) / TRIBUTARY_MAX_SAMPLES)) * 1.01
    n = np.maximum(1, np.ceil(ext / step).astype(np.int64))
    g = [a[k] + (np.arange(n[k]) + 0.5) * ext[k] / n[k] for k in range(2)]
    return np.stack(np.meshgrid(*g, indexing="ij"), axis=-1).reshape(-1, 2)


def face_tolerance(region, nodes: np.ndarray, lo: np.ndarray, hi: np.ndarray, cell_edge: float) -> float:
    """Depth (mm) of the lattice's surface layer at a face region with no tolerance given.

    The smallest of :data:`FACE_TOL_CELLS` whose nodes come within
    :data:`TRIBUTARY_RADIUS_CELLS` (in the face plane) of :data:`FACE_COVERAGE` of the
    face area that the deepest candidate's nodes cover.

    Parameters
    ----------
    region : Support or AppliedLoad with ``face`` set
    nodes : ndarray, shape (N, 3)
        Lattice nodes (mm).
    lo, hi : ndarray, shape (3,)
        Body bounds (mm).
    cell_edge : float
        Built cell edge (mm).
    """
    from scipy.spatial import cKDTree

    lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
    x = np.asarray(nodes, dtype=np.float64).reshape(-1, 3)
    ax = _AXES[region.face[0]]
    depth = np.abs(x[:, ax] - (lo[ax] if region.face[1] == "-" else hi[ax]))
    cands = [t * cell_edge for t in FACE_TOL_CELLS]
    deep = depth <= cands[-1]
    if deep.sum() < 2:
        return cands[-1]
    _, axes, bounds = _region_plane(region, lo, hi)
    q = x[deep] @ axes.T
    r = TRIBUTARY_RADIUS_CELLS * cell_edge
    S = _plane_samples(q, bounds, r, cell_edge)
    d, _ = cKDTree(q).query(S, distance_upper_bound=r)
    hit = np.isfinite(d)
    if not hit.any():
        return cands[-1]
    # a sample is covered at depth t when some node within t lies within r of it
    dq = depth[deep]
    tree = cKDTree(S[hit])
    best = np.full(int(hit.sum()), np.inf)  # shallowest node within r of each covered sample
    for k, nb in enumerate(tree.query_ball_point(q, r)):
        if nb:
            nb = np.asarray(nb)
            best[nb] = np.minimum(best[nb], dq[k])
    for t in cands:
        if np.mean(best <= t) >= FACE_COVERAGE:
            return t
    return cands[-1]


def resolve_tolerances(case: LoadCase, nodes: np.ndarray, lo: np.ndarray, hi: np.ndarray, cell_edge: float):
    """The case with the tolerance of every region set (mm), from the lattice nodes.

    Face regions without a tolerance get :func:`face_tolerance`; planes and boxes
    :data:`REGION_TOL_CELLS` cell edges. Both models of a case use the result, so they
    hold and load the same slabs.
    """
    def fill(r):
        if r.tolerance is not None:
            return r
        t = face_tolerance(r, nodes, lo, hi, cell_edge) if r.face is not None else REGION_TOL_CELLS * cell_edge
        return r.model_copy(update={"tolerance": float(t)})

    return case.model_copy(update={"fixed": [fill(r) for r in case.fixed], "loaded": [fill(r) for r in case.loaded]})


def _region_plane(region, lo: np.ndarray, hi: np.ndarray):
    """Unit normal (3,) of a region's load plane and the in-plane bounds it is clipped to.

    Returns ``(normal, axes, bounds)``: ``axes`` (2, 3) an orthonormal in-plane basis,
    ``bounds`` (2, 2) the lower and upper in-plane coordinates of the region on the body's
    bounds (``None`` for a plane of arbitrary normal: its extent is the caught nodes').
    """
    if region.plane is not None:
        n = np.asarray(region.plane.normal, dtype=np.float64)
        n = n / np.linalg.norm(n)
        a = np.eye(3)[int(np.argmin(np.abs(n)))]
        u = np.cross(n, a)
        u /= np.linalg.norm(u)
        return n, np.stack([u, np.cross(n, u)]), None
    if region.face is not None:
        ax = _AXES[region.face[0]]
        blo, bhi = lo, hi
    else:
        blo = np.maximum(lo, np.asarray(region.box.lo, dtype=np.float64))
        bhi = np.minimum(hi, np.asarray(region.box.hi, dtype=np.float64))
        ax = int(np.argmin(np.maximum(bhi - blo, 0.0)))  # a box loads through its thinnest extent
    keep = [k for k in range(3) if k != ax]
    return np.eye(3)[ax], np.eye(3)[keep], np.stack([blo[keep], bhi[keep]])


def tributary_weights(region, points: np.ndarray, lo: np.ndarray, hi: np.ndarray, cell_edge: float) -> np.ndarray:
    """Share of a uniform traction on a region that each of its points carries.

    The region's plane (a face, a plane, or a box's thinnest cross-section) is sampled on a
    grid of :data:`TRIBUTARY_SAMPLES_PER_CELL` per cell edge, within the body's bounds; each
    sample within :data:`TRIBUTARY_RADIUS_CELLS` cell edges of a point (in the plane) goes to
    the nearest point. A point's weight is its share of the samples: its tributary area
    over the region's loaded area.

    Parameters
    ----------
    region : Support or AppliedLoad of the spec
    points : ndarray, shape (K, 3)
        The points the region caught (mm).
    lo, hi : ndarray, shape (3,)
        Body bounds (mm).
    cell_edge : float
        Built cell edge (mm).

    Returns
    -------
    ndarray, shape (K,), float64
        Non-negative, summing to 1 (equal shares if the points span no area).
    """
    from scipy.spatial import cKDTree

    x = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    K = len(x)
    if K <= 1:
        return np.ones(K)
    _, axes, bounds = _region_plane(region, np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
    q = x @ axes.T  # (K, 2) in-plane coordinates
    r = TRIBUTARY_RADIUS_CELLS * cell_edge
    S = _plane_samples(q, bounds, r, cell_edge)
    d, nearest = cKDTree(q).query(S, distance_upper_bound=r)
    hit = np.isfinite(d)
    counts = np.bincount(nearest[hit], minlength=K).astype(np.float64)
    total = counts.sum()
    return counts / total if total > 0 else np.full(K, 1.0 / K)


def region_mask(region, points: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float) -> np.ndarray:
    """Points (N, 3) that a region (face / plane / box of the spec) catches, shape (N,) bool.

    Faces are the planes of the body's axis-aligned bounds ``lo``, ``hi`` (mm).
    """
    x = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if region.face is not None:
        ax = _AXES[region.face[0]]
        level = lo[ax] if region.face[1] == "-" else hi[ax]
        return np.abs(x[:, ax] - level) <= tol
    if region.plane is not None:
        n = np.asarray(region.plane.normal, dtype=np.float64)
        n = n / np.linalg.norm(n)
        return np.abs((x - np.asarray(region.plane.point)) @ n) <= tol
    b = region.box
    return np.all((x >= np.asarray(b.lo) - tol) & (x <= np.asarray(b.hi) + tol), axis=1)


def _describe(region) -> str:
    if region.face is not None:
        return f"face {region.face}"
    if region.plane is not None:
        return f"plane through {region.plane.point} with normal {region.plane.normal}"
    return f"box {region.box.lo} to {region.box.hi}"


def _error(spec: Spec | None, path: tuple, problem: str, hint: str) -> ValidationError:
    if spec is not None:
        return spec.error(path, problem, hint)
    return ValidationError(format_path(path), problem, hint)


def boundary_conditions(
    case: LoadCase,
    index: int,
    points: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    cell_edge: float,
    *,
    spec: Spec | None = None,
    what: str = "lattice node",
) -> BoundaryConditions:
    """Resolve a load case on a point set.

    Parameters
    ----------
    case : LoadCase
    index : int
        Position of the case in ``loads.cases`` (for error paths).
    points : ndarray, shape (N, 3)
        Lattice nodes or mesh dof locations (mm).
    lo, hi : ndarray, shape (3,)
        Body bounds (mm), for ``face`` regions and the displacement plausibility check.
    cell_edge : float
        Built cell edge (mm), for the default region tolerance.
    spec : Spec, optional
        Gives YAML line numbers in errors.
    what : str
        Name of a point in error messages.

    Raises
    ------
    ValidationError
        A region that catches no point, a displacement too large for linear elasticity
        (likely a unit mistake), or a point both fixed and loaded in one component.
    """
    base = ("loads", "cases", index)
    extent = float(np.min(np.asarray(hi) - np.asarray(lo)))
    fp, fc, fv = [], [], []
    for k, sup in enumerate(case.fixed):
        tol = region_tolerance(sup, cell_edge)
        idx = np.flatnonzero(region_mask(sup, points, lo, hi, tol))
        if len(idx) == 0:
            raise _error(spec, base + ("fixed", k), f"{_describe(sup)} catches no {what} (tolerance {tol:.3g} mm)",
                         "move the region onto the part or give a larger tolerance (mm)")
        for comp in sup.components:
            fp.append(idx)
            fc.append(np.full(len(idx), _AXES[comp]))
            fv.append(np.zeros(len(idx)))
    loaded, forces, disps = [], [], []
    for k, item in enumerate(case.loaded):
        tol = region_tolerance(item, cell_edge)
        idx = np.flatnonzero(region_mask(item, points, lo, hi, tol))
        if len(idx) == 0:
            raise _error(spec, base + ("loaded", k), f"{_describe(item)} catches no {what} (tolerance {tol:.3g} mm)",
                         "move the region onto the part or give a larger tolerance (mm)")
        loaded.append(idx)
        if item.force is not None:
            forces.append(np.asarray(item.force, dtype=np.float64))
            disps.append(None)
            continue
        g = np.array([np.nan if c is None else c for c in item.displacement], dtype=np.float64)
        _check_displacement(item, g, extent, spec, base + ("loaded", k, "displacement"))
        forces.append(None)
        disps.append(g)
        for ax in np.flatnonzero(np.isfinite(g)):
            fp.append(idx)
            fc.append(np.full(len(idx), ax))
            fv.append(np.full(len(idx), g[ax]))
    fp = np.concatenate(fp).astype(np.int64)
    fc = np.concatenate(fc).astype(np.int64)
    fv = np.concatenate(fv)
    key = fp * 3 + fc
    ukey, first, counts = np.unique(key, return_index=True, return_counts=True)
    if np.any(counts > 1):
        # the same component held twice: fine if the values agree (a corner in two faces)
        for kk in ukey[counts > 1]:
            v = fv[key == kk]
            if np.ptp(v) > 0:
                raise _error(spec, base, f"a {what} at {np.round(points[kk // 3], 3).tolist()} mm gets two "
                             f"different displacements in {'xyz'[kk % 3]} ({v.min():g} and {v.max():g} mm)",
                             "make the fixed and loaded regions disjoint")
    for k, idx in enumerate(loaded):
        if forces[k] is None:
            continue
        held = np.isin(idx[:, None] * 3 + np.arange(3), ukey).any(axis=0)
        if np.any(held & (forces[k] != 0)):
            ax = "xyz"[int(np.flatnonzero(held & (forces[k] != 0))[0])]
            raise _error(spec, base + ("loaded", k), f"the force acts in {ax} on {what}s whose {ax} displacement "
                         "is also fixed, so it would go straight into the support",
                         "make the fixed and loaded regions disjoint")
    return BoundaryConditions(fp[first], fc[first], fv[first], loaded, forces, disps)


def _check_displacement(item: AppliedLoad, g: np.ndarray, extent: float, spec, path) -> None:
    mag = float(np.nanmax(np.abs(g)))
    if mag > MAX_DISPLACEMENT_FRACTION * extent:
        raise _error(spec, path, f"{mag:g} mm is {100 * mag / extent:.0f} % of the part's smallest extent "
                     f"({extent:.3g} mm), far outside small strains (likely a unit mistake)",
                     f"give it in mm, at most {MAX_DISPLACEMENT_FRACTION * extent:.3g} mm here")
