"""The grading field: RBF weights (SI Eq. 14) and the blended lattice basis (SI Eq. 15).

Each control point ``x_i`` carries a lattice basis ``A_i`` (3x3, columns = translation
vectors in mm, ``A_i = cell_size * F_i``). Between them the basis is blended with
normalised Gaussian radial basis functions

    N(x, x_i) = exp(-zeta |x - x_i|^2 / L^2) / sum_j exp(-zeta |x - x_j|^2 / L^2),

    A(x) = sum_i A_i N(x, x_i),        K(x) = A(x)^-T  (reciprocal basis, columns k_j).

**Length unit of zeta.** Distances are measured in units of the cell size ``L`` (the
``length_scale``), so ``zeta`` is dimensionless and a spec keeps its meaning when it is
scaled: with two points ``D`` cells apart the weight of the far point rises from 12 %
to 88 % over about ``4 / (zeta D)`` cells around the midplane. The exponent is shifted
by its maximum before exponentiation, so far from all points (large exponents) the
weights stay finite and sum to one.

A blend of very different bases can collapse (e.g. two cells rotated by 180 degrees
about an axis average to a flat basis); :meth:`GradingField.check_nondegenerate` finds
where and refuses with a message naming the place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import ValidationError, check_positive, check_shape

__all__ = ["GradingField", "DEGENERATE_RATIO", "rbf_weights"]

#: det A(x) below this fraction of the smallest control-point det A_i counts as a
#: collapsed blend: the cell there is squashed >10x in volume against every cell the
#: user asked for, so the phase field cannot follow it and cells would overlap.
DEGENERATE_RATIO = 0.1


def rbf_weights(x: np.ndarray, points: np.ndarray, zeta: float, length_scale: float = 1.0) -> np.ndarray:
    """Normalised Gaussian RBF weights ``N(x, x_i)`` of SI Eq. 14.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Evaluation points (mm).
    points : ndarray, shape (k, 3)
        Control points (mm).
    zeta : float
        Transition sharpness (> 0), per squared ``length_scale``.
    length_scale : float
        Unit in which distances enter the exponent (the cell size, mm).

    Returns
    -------
    ndarray, shape (N, k)
        Non-negative weights; every row sums to one.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    d2 = ((x[:, None, :] - p[None, :, :]) ** 2).sum(-1) / length_scale**2
    e = -zeta * d2
    e -= e.max(axis=1, keepdims=True)  # max-shift: the largest term is exp(0) = 1
    w = np.exp(e)
    return w / w.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class GradingField:
    """Blended lattice basis over the body.

    Attributes
    ----------
    points : ndarray, shape (k, 3)
        Control point positions (mm).
    bases : ndarray, shape (k, 3, 3)
        Lattice bases ``A_i`` (mm), columns are translation vectors.
    zeta : float
        RBF sharpness per squared ``length_scale`` (SI Eq. 14).
    length_scale : float
        Cell size in mm (distances in the RBF are in these units).
    """

    points: np.ndarray
    bases: np.ndarray
    zeta: float
    length_scale: float = 1.0

    def __post_init__(self) -> None:
        pts = check_shape("control_points", self.points, (None, 3))
        if len(pts) == 0:
            raise ValidationError("control_points", "is empty", "give at least one control point")
        bases = check_shape("control_points", self.bases, (len(pts), 3, 3))
        zeta = float(check_positive("zeta", self.zeta, hint="zeta > 0 sets the transition width (SI Eq. 14)"))
        scale = float(check_positive("cell_size", self.length_scale))
        det = np.linalg.det(bases)
        if np.any(np.abs(det) <= 0) or np.any(np.sign(det) != np.sign(det[0])):
            raise ValidationError("control_points", "a control-point lattice basis is singular or mirrored",
                                  "give cells with positive stretches and proper rotations")
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "bases", bases)
        object.__setattr__(self, "zeta", zeta)
        object.__setattr__(self, "length_scale", scale)

    def weights(self, x: np.ndarray) -> np.ndarray:
        """``N(x, x_i)``, shape (N, k)."""
        return rbf_weights(x, self.points, self.zeta, self.length_scale)

    def basis(self, x: np.ndarray) -> np.ndarray:
        """``A(x)`` (SI Eq. 15), shape (N, 3, 3)."""
        return np.einsum("nk,kab->nab", self.weights(x), self.bases)

    def inverse_basis(self, x: np.ndarray) -> np.ndarray:
        """``A(x)^-1``, shape (N, 3, 3): row ``j`` is ``k_j``, the target gradient of phi_j."""
        return np.linalg.inv(self.basis(x))

    def reciprocal(self, x: np.ndarray) -> np.ndarray:
        """``K(x) = A(x)^-T``, shape (N, 3, 3): columns are the reciprocal vectors ``k_j``."""
        return np.swapaxes(self.inverse_basis(x), -1, -2)

    def check_nondegenerate(self, x: np.ndarray, *, field: str = "control_points") -> None:
        """Refuse if ``det A(x)`` collapses at any of the sample points ``x`` (N, 3).

        Raises
        ------
        ValidationError
            Naming the worst point and its determinant relative to the control points'.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        ref = np.abs(np.linalg.det(self.bases)).min()
        sign = np.sign(np.linalg.det(self.bases[0]))
        worst_ratio, worst_x = np.inf, None
        for s in range(0, len(x), 100_000):
            det = sign * np.linalg.det(self.basis(x[s : s + 100_000])) / ref
            k = int(np.argmin(det))
            if det[k] < worst_ratio:
                worst_ratio, worst_x = float(det[k]), x[s + k]
        if worst_x is not None and worst_ratio < DEGENERATE_RATIO:
            where = ", ".join(f"{v:.4g}" for v in worst_x)
            raise ValidationError(
                field,
                f"the blended lattice basis A(x) degenerates at x = ({where}) mm "
                f"(det A there is {worst_ratio:.3g} x the smallest control-point det A_i, "
                f"limit {DEGENERATE_RATIO:g})",
                "blend cells that are less different in orientation (no rotation near 180 "
                "degrees between neighbouring points) or add an intermediate control point "
                "whose cell lies between the two",
            )
