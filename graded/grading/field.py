"""The grading field: blend weights over the control points and the blended lattice basis.

Each control point ``x_i`` carries a lattice basis ``A_i`` (3x3, columns = translation
vectors in mm, ``A_i = cell_size * F_i``). Between the points the basis is blended with
weights ``N_i(x)`` (non-negative, summing to one) of one of two kinds.

**Interpolating weights** (``kind="interpolating"``, the default of a spec). With the
signed distance ``s_ij(x) = (|x - x_j|^2 - |x - x_i|^2) / (2 |x_i - x_j|)`` of ``x`` from the
bisector plane of points i and j (positive on i's side) and the C-infinity step ``S(t)``
that is exactly 0 for ``t <= -1`` and exactly 1 for ``t >= 1``,

    g_i(x) = prod_{j != i} S(2 s_ij(x) / w_ij),      N_i = g_i / sum_k g_k,

with ``w_ij = min(width * L, |x_i - x_j|)``. At ``x_i`` every argument of ``g_i`` is
``|x_i - x_j| / w_ij >= 1`` and ``g_j`` has the factor ``S(-|x_i - x_j| / w_ij) = 0``, so
``N_i(x_i) = 1`` and ``N_j(x_i) = 0`` exactly. Between two points the transition is the
slab ``|s_ij| < w_ij / 2`` around their bisector plane, ``width`` cells thick; outside it
the nearest point's cell fills a plateau. For two points the weights depend only on the
position along the line through them, as the Gaussians do. The nearest point always has
all its factors ``>= 1/2``, so the normaliser never vanishes; the weights are C-infinity.

**Gaussian weights** (``kind="gaussian"``, SI Eq. 14, kept to reproduce the paper):

    N(x, x_i) = exp(-zeta |x - x_i|^2 / L^2) / sum_j exp(-zeta |x - x_j|^2 / L^2).

Distances are in units of the cell size ``L``, so ``zeta`` is dimensionless; with two
points ``D`` cells apart the weight of the far point rises from 12 % to 88 % over about
``4 / (zeta D)`` cells. The exponent is shifted by its maximum, so the weights stay finite
far from all points. These weights are never exactly 1 at a control point.

**Basis blend.** ``basis_blend="linear"`` is SI Eq. 15, ``A(x) = sum_i N_i A_i``; blending
differently rotated bases in real space shrinks and shears them (two cells turned 180
degrees apart average to a flat basis). ``basis_blend="polar"`` splits every basis by the
polar decomposition ``A_i = R_i U_i`` (``R_i`` a rotation, ``U_i`` symmetric positive
definite) and blends the parts separately:

    U(x) = expm(sum_i N_i logm U_i),      R(x) = weighted quaternion mean of the R_i,
    A(x) = R(x) U(x).

The quaternion mean (the rotation whose unit quaternion ``q`` maximises
``sum_i N_i (q . q_i)^2``, the top eigenvector of ``sum_i N_i q_i q_i^T``; independent of the
signs of the ``q_i``) is equivariant: rotating every ``A_i`` by ``Q`` rotates ``A(x)`` by
``Q``. The log-Euclidean stretch keeps ``det U(x) = prod_i det(U_i)^{N_i}`` (never
collapses) and the blend is exactly ``A_i`` wherever ``N_i = 1``.

A linear blend of very different bases can collapse; :meth:`GradingField.check_nondegenerate`
finds where and refuses with a message naming the place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from ..validation import ValidationError, check_choice, check_positive, check_shape

__all__ = [
    "GradingField",
    "DEGENERATE_RATIO",
    "BLEND_KINDS",
    "BASIS_BLENDS",
    "DEFAULT_WIDTH",
    "rbf_weights",
    "interpolating_weights",
    "smooth_step",
    "polar_parts",
    "blend_polar",
]

#: det A(x) below this fraction of the smallest control-point det A_i counts as a
#: collapsed blend: the cell there is squashed >10x in volume against every cell the
#: user asked for, so the phase field cannot follow it and cells would overlap.
DEGENERATE_RATIO = 0.1
#: Weight kinds: exact interpolation with a set transition width, or the SI's Gaussians.
BLEND_KINDS = ("interpolating", "gaussian")
#: Basis blends: stretch and rotation separately (polar), or the SI's real-space sum.
BASIS_BLENDS = ("polar", "linear")
#: Default transition width of the interpolating weights, in cells: wide enough that
#: a 30-degree turn changes the basis by ~0.17 per cell, narrow enough that points
#: 5 cells apart keep a plateau of their own cell one cell around them.
DEFAULT_WIDTH = 3.0
#: Points evaluated at once (the pairwise factors are (N, k, k)).
_BLOCK = 100_000


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


def smooth_step(t: np.ndarray) -> np.ndarray:
    """C-infinity step: exactly 0 for ``t <= -1``, exactly 1 for ``t >= 1``, ``S(0) = 1/2``.

    ``S(t) = f(1 + t) / (f(1 + t) + f(1 - t))`` with ``f(s) = exp(-1/s)`` for ``s > 0`` and 0
    otherwise; ``S(-t) = 1 - S(t)``.
    """
    t = np.asarray(t, dtype=np.float64)
    a, b = 1.0 + t, 1.0 - t
    with np.errstate(divide="ignore", over="ignore"):
        fa = np.where(a > 0, np.exp(-1.0 / np.where(a > 0, a, 1.0)), 0.0)
        fb = np.where(b > 0, np.exp(-1.0 / np.where(b > 0, b, 1.0)), 0.0)
    return fa / (fa + fb)  # fa + fb > 0 for every t: one of a, b is >= 1


def interpolating_weights(x: np.ndarray, points: np.ndarray, width: float, length_scale: float = 1.0) -> np.ndarray:
    """Interpolating blend weights (module docstring): ``N_i(x_j) = delta_ij`` exactly.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Evaluation points (mm).
    points : ndarray, shape (k, 3)
        Distinct control points (mm).
    width : float
        Transition width in ``length_scale`` units (cells); capped per pair of points at
        their distance, so the weights interpolate whatever the spacing.
    length_scale : float
        Cell size (mm).

    Returns
    -------
    ndarray, shape (N, k)
        Non-negative, every row sums to one, C-infinity in x.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    p = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    k = len(p)
    if k == 1:
        return np.ones((len(x), 1))
    sep = np.linalg.norm(p[:, None] - p[None], axis=-1)
    w = np.minimum(width * length_scale, sep)
    np.fill_diagonal(w, 1.0)
    scale = 1.0 / (np.where(sep > 0, sep, 1.0) * w)  # 2 s_ij / w_ij = (d_j^2 - d_i^2) / (sep_ij w_ij)
    off = ~np.eye(k, dtype=bool)
    out = np.empty((len(x), k))
    for s in range(0, len(x), _BLOCK):
        d2 = ((x[s : s + _BLOCK, None, :] - p[None]) ** 2).sum(-1)  # (n, k)
        t = (d2[:, None, :] - d2[:, :, None]) * scale[None]  # t[n, i, j] = 2 s_ij / w_ij
        f = np.where(off[None], smooth_step(t), 1.0)
        g = f.prod(axis=2)
        out[s : s + _BLOCK] = g / g.sum(axis=1, keepdims=True)
    return out


def polar_parts(bases: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right polar decomposition ``A = R U`` of bases (k, 3, 3) with ``det A > 0``.

    Returns
    -------
    R : ndarray, shape (k, 3, 3)
        Proper rotations.
    log_U : ndarray, shape (k, 3, 3)
        Matrix logarithm of the symmetric positive-definite stretch ``U = sqrt(A^T A)``.
    """
    A = np.asarray(bases, dtype=np.float64).reshape(-1, 3, 3)
    lam, Q = np.linalg.eigh(np.swapaxes(A, -1, -2) @ A)
    s = np.sqrt(lam)
    U_inv = np.einsum("kab,kb,kcb->kac", Q, 1.0 / s, Q)
    R = A @ U_inv
    log_U = np.einsum("kab,kb,kcb->kac", Q, np.log(s), Q)
    return R, log_U


def _sym_exp(L: np.ndarray) -> np.ndarray:
    lam, Q = np.linalg.eigh(L)
    return np.einsum("nab,nb,ncb->nac", Q, np.exp(lam), Q)


def blend_polar(weights: np.ndarray, rotations: np.ndarray, log_stretches: np.ndarray) -> np.ndarray:
    """Polar blend ``A = R U`` for weights (N, k) of rotations (k, 3, 3) and log-stretches (k, 3, 3).

    Returns
    -------
    ndarray, shape (N, 3, 3)
    """
    w = np.asarray(weights, dtype=np.float64)
    U = _sym_exp(np.einsum("nk,kab->nab", w, log_stretches))
    q = Rotation.from_matrix(rotations).as_quat()  # (k, 4), sign irrelevant below
    M = np.einsum("nk,ka,kb->nab", w, q, q)
    _, vec = np.linalg.eigh(M)
    R = Rotation.from_quat(vec[:, :, -1]).as_matrix()
    return R @ U


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
        Gaussian sharpness per squared ``length_scale`` (SI Eq. 14; used by ``kind="gaussian"``).
    length_scale : float
        Cell size in mm (distances in the weights are in these units).
    kind : {"gaussian", "interpolating"}
        Weight kind (module docstring). The class default reproduces the SI.
    width : float
        Transition width of the interpolating weights, in cells.
    basis_blend : {"linear", "polar"}
        SI Eq. 15 or the polar blend (module docstring).
    """

    points: np.ndarray
    bases: np.ndarray
    zeta: float
    length_scale: float = 1.0
    kind: str = "gaussian"
    width: float = DEFAULT_WIDTH
    basis_blend: str = "linear"

    def __post_init__(self) -> None:
        pts = check_shape("control_points", self.points, (None, 3))
        if len(pts) == 0:
            raise ValidationError("control_points", "is empty", "give at least one control point")
        bases = check_shape("control_points", self.bases, (len(pts), 3, 3))
        zeta = float(check_positive("zeta", self.zeta, hint="zeta > 0 sets the transition width (SI Eq. 14)"))
        scale = float(check_positive("cell_size", self.length_scale))
        kind = check_choice("blend.kind", self.kind, BLEND_KINDS)
        width = float(check_positive("blend.width", self.width, hint="the transition width is a number of cells > 0"))
        basis_blend = check_choice("blend.basis", self.basis_blend, BASIS_BLENDS)
        det = np.linalg.det(bases)
        if np.any(np.abs(det) <= 0) or np.any(np.sign(det) != np.sign(det[0])):
            raise ValidationError("control_points", "a control-point lattice basis is singular or mirrored",
                                  "give cells with positive stretches and proper rotations")
        if basis_blend == "polar" and det[0] < 0:
            raise ValidationError("control_points", "the lattice bases are mirrored (det A_i < 0)",
                                  "give cells with positive stretches and proper rotations")
        if kind == "interpolating" and len(pts) > 1:
            sep = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(len(pts))
            if sep.min() <= 0:
                i, j = np.argwhere(sep <= 0)[0]
                raise ValidationError(f"control_points[{j}].position", f"coincides with control point {i}",
                                      "give every control point its own position")
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "bases", bases)
        object.__setattr__(self, "zeta", zeta)
        object.__setattr__(self, "length_scale", scale)
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "width", width)
        object.__setattr__(self, "basis_blend", basis_blend)
        if basis_blend == "polar":
            R, log_U = polar_parts(bases)
            object.__setattr__(self, "_rotations", R)
            object.__setattr__(self, "_log_stretches", log_U)

    def weights(self, x: np.ndarray) -> np.ndarray:
        """``N_i(x)``, shape (N, k)."""
        if self.kind == "interpolating":
            return interpolating_weights(x, self.points, self.width, self.length_scale)
        return rbf_weights(x, self.points, self.zeta, self.length_scale)

    def basis(self, x: np.ndarray) -> np.ndarray:
        """``A(x)``, shape (N, 3, 3): SI Eq. 15 or the polar blend (module docstring)."""
        w = self.weights(x)
        if self.basis_blend == "polar":
            out = np.empty((len(w), 3, 3))
            for s in range(0, len(w), _BLOCK):
                out[s : s + _BLOCK] = blend_polar(w[s : s + _BLOCK], self._rotations, self._log_stretches)
            # where one weight is exactly 1 the blend is that basis (no eigen round-off)
            own = w == 1.0
            hit = own.any(axis=1)
            out[hit] = self.bases[np.argmax(own[hit], axis=1)]
            return out
        return np.einsum("nk,kab->nab", w, self.bases)

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
                "degrees between neighbouring points), use the polar basis blend, or add an "
                "intermediate control point whose cell lies between the two",
            )
