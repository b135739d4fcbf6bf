"""Load cases of a spec (``loads:``) turned into boundary conditions on a point set.

The same case is applied to the lattice (its nodes) and to the continuum model (the
dof locations of its mesh): a region selects points, a support holds components of
their displacement at zero, a loaded region gets a prescribed displacement or a total
force shared by its points (equally for the lattice; as a uniform traction for the
continuum, see :mod:`graded.simulate.continuum`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import AppliedLoad, LoadCase, Spec, format_path
from ..validation import ValidationError

__all__ = ["BoundaryConditions", "region_mask", "boundary_conditions", "region_tolerance",
           "REGION_TOL_CELLS", "MAX_DISPLACEMENT_FRACTION"]

#: Default region tolerance, in built cell edges: lattice nodes of a face lie on it up to
#: round-off of the phase map (~1e-9 mm), the nearest interior nodes at least ~0.3 cells
#: away, so a tenth of a cell catches the face and nothing else.
REGION_TOL_CELLS = 0.1
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
    """Region tolerance in mm: the spec's, or :data:`REGION_TOL_CELLS` built cell edges."""
    return float(region.tolerance) if region.tolerance is not None else REGION_TOL_CELLS * cell_edge


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
