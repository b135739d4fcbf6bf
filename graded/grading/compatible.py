"""Phase fields that hit every control point's lattice basis (issue: compatible geometry).

The blended basis ``A(x)`` is in general not the inverse gradient of any map (its
reciprocal field has a curl where differently rotated or stretched cells meet), so the
least-squares phase fields of SI Eq. 13 miss it somewhere -- by default also at the
control points. Here the fit is

* weighted: ``c(x) = 1 + POINT_PENALTY * b(x)`` with a smooth bump ``b`` that is 1 within
  :data:`PENALTY_RADII` ``[0]`` built cells of a control point and 0 beyond ``[1]``, so the
  cells around each point follow their target closely and the unavoidable misfit is
  pushed into the transition zones between points;
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

__all__ = ["solve_compatible_phase", "point_weight", "POINT_PENALTY", "PENALTY_RADII"]

#: Weight of the fit near the control points relative to elsewhere: large enough that
#: the misfit there drops by about this factor, small enough that the weighted Laplacian
#: stays well conditioned (contrast 1e2 costs nothing in the direct solve).
POINT_PENALTY = 100.0
#: Inner and outer radius (built cells) of the penalty bump: the 3-cell window the
#: independent as-built check cuts around a point lies within the inner radius of 1.5
#: cells along its axes; the bump falls to 0 over the next cell.
PENALTY_RADII = (1.5, 2.5)


def point_weight(points: np.ndarray, cell_edge: float, penalty: float = POINT_PENALTY, radii=PENALTY_RADII):
    """The fit weight ``c(x)`` (module docstring) as a callable ``x (N, 3) -> (N,)``."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    r0, r1 = radii[0] * cell_edge, radii[1] * cell_edge

    def weight(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        out = np.zeros(len(x))
        for p in pts:
            d = np.linalg.norm(x - p, axis=1)
            out = np.maximum(out, smooth_step((r0 + r1 - 2.0 * d) / (r1 - r0)))
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
        Built cell edge (mm), the unit of :data:`PENALTY_RADII`.
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
    return solve_phase_fields(grading.inverse_basis, lo, hi, h, order=order, anchor=anchor,
                              anchor_value=np.zeros(3), weight=point_weight(points, cell_edge),
                              constraint_points=points, constraint_gradients=np.linalg.inv(grading.bases))
