"""Phase fields that hit every control point's lattice basis (issue: compatible geometry).

The blended basis ``A(x)`` is in general not the inverse gradient of any map (its
reciprocal field has a curl where differently rotated or stretched cells meet), so the
least-squares phase fields of SI Eq. 13 miss it somewhere -- by default also at the
control points. Here the fit is

* weighted: ``c(x) = 1 + POINT_PENALTY * b(x)`` with a smooth bump ``b`` that is 1 within
  ``r_i - PENALTY_FALLOFF`` built cells of control point i and 0 beyond ``r_i``, so the
  cells around each point follow their target closely and the unavoidable misfit is
  pushed into the transition zones between points. ``r_i`` is
  :data:`PENALTY_RADIUS` cells, or less: the radius of the plateau of the point's own
  cell (where its weight is exactly 1, a compatible target), so the penalty never forces
  the fit to follow the incompatible transition;
* constrained: ``grad phi(x_i) = A_i^-1`` exactly at every control point (Lagrange
  multipliers, :func:`graded.fem.phase.solve_phase_fields`), so the as-built basis there
  is the point's own basis ``A_i / mu`` to round-off.

The fit's residuals (incompatibility over the box, basis error at every point) come back
as :class:`graded.fem.phase.PhaseFit` on the phase field.
"""

from __future__ import annotations

import numpy as np

from ..fem.phase import PhaseField, solve_phase_fields
from .field import GradingField, smooth_step

__all__ = ["solve_compatible_phase", "point_weight", "plateau_radii", "POINT_PENALTY", "PENALTY_RADIUS",
           "PENALTY_FALLOFF"]

#: Weight of the fit near the control points relative to elsewhere. The full weight lies
#: inside each point's plateau, where the target is one constant basis (compatible), so
#: it forces nothing incompatible: it only makes the field there affine, to ~1/penalty
#: (measured: the built cell at a point is its own cell to ~1e-6 of a cell edge with 1e6,
#: 1e-4 with 1e4). Larger contrasts start to show as round-off in the node positions
#: (1e8 moves nodes on the body's faces by ~2e-8 mm, the inside tolerance of a box body).
POINT_PENALTY = 1e6
#: Largest radius (built cells) of the penalty around a point; it is full within
#: ``PENALTY_RADIUS - PENALTY_FALLOFF`` = 1.5 cells, where the 3-cell window of the
#: independent as-built check lies along its axes.
PENALTY_RADIUS = 2.5
#: The penalty falls from full to none over this many built cells (inside the radius).
PENALTY_FALLOFF = 1.0


def plateau_radii(grading: GradingField) -> np.ndarray:
    """Radius (mm) around each control point within which its weight is exactly 1, shape (k,).

    For interpolating weights ``min_j (|x_i - x_j| - w_ij) / 2``; Gaussian weights have
    no plateau (0).
    """
    pts = grading.points
    k = len(pts)
    if grading.kind != "interpolating":
        return np.zeros(k)
    if k == 1:
        return np.full(k, np.inf)
    sep = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    w = np.minimum(grading.width * grading.length_scale, sep)
    half = (sep - w) / 2.0 + np.diag(np.full(k, np.inf))
    return half.min(axis=1)


def point_weight(points: np.ndarray, radii: np.ndarray, falloff: float, penalty: float = POINT_PENALTY):
    """The fit weight ``c(x)`` (module docstring) as a callable ``x (N, 3) -> (N,)``.

    ``radii`` (k,) mm: the penalty is full within ``radii - falloff`` of each point and falls
    to none at ``radii`` (mm).
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    r0 = np.asarray(radii, dtype=np.float64).reshape(-1)

    def weight(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        out = np.zeros(len(x))
        for p, r in zip(pts, r0):
            d = np.linalg.norm(x - p, axis=1)
            out = np.maximum(out, smooth_step(1.0 - 2.0 * (d - r + falloff) / falloff))
        return 1.0 + penalty * out

    return weight


def solve_compatible_phase(grading: GradingField, lo, hi, h: float, *, order: int, anchor, cell_edge: float,
                           exact: bool = True) -> PhaseField:
    """Phase fields for ``grading`` on the box ``[lo, hi]`` (mesh spacing ``h``, mm).

    Parameters
    ----------
    grading : GradingField
    lo, hi : array_like, shape (3,)
    h : float
        Phase mesh spacing (mm).
    order : {1, 2}
    anchor : array_like, shape (3,)
        ``phi(anchor) = 0`` (a cell corner there).
    cell_edge : float
        Built cell edge (mm), the unit of :data:`PENALTY_RADIUS` and :data:`PENALTY_FALLOFF`.
    exact : bool
        Weighted and constrained fit (module docstring); False gives the plain
        least-squares fit of SI Eq. 13.

    Returns
    -------
    PhaseField
        ``fit`` holds the residual and the per-point gradient and basis errors (the
        latter also for ``exact=False``, measured against ``A(x_i)^-1``).
    """
    points = grading.points
    if not exact:
        return solve_phase_fields(grading.inverse_basis, lo, hi, h, order=order, anchor=anchor,
                                  anchor_value=np.zeros(3), constraint_points=points, enforce=False)
    radii = np.minimum(PENALTY_RADIUS * cell_edge, plateau_radii(grading))
    # one point: the target is one constant basis, the plain fit is exact and the weight's
    # contrast would only add round-off
    weight = point_weight(points, radii, PENALTY_FALLOFF * cell_edge) if len(points) > 1 else None
    return solve_phase_fields(grading.inverse_basis, lo, hi, h, order=order, anchor=anchor,
                              anchor_value=np.zeros(3), weight=weight,
                              constraint_points=points, constraint_gradients=np.linalg.inv(grading.bases))
