"""Error measures and admissibility of stiffness matrices -- every error the project reports.

* :func:`nmse` -- normalised mean squared error of main-text Eq. 8;
* :func:`relative_error` -- relative Mandel (Frobenius) norm error, rotation invariant:
  the error of the elastic surface, the one ``graded design`` ranks by;
* :func:`relative_frobenius` -- relative Frobenius error of the Voigt matrices, the error of
  a build's report (design, as built);
* :func:`r2_score`, :func:`component_weights`, :func:`r2_error` -- per-component R^2 over a
  set of targets, and a single target's share of the summed ``1 - R^2``;
* :data:`MANDEL_W66`, :data:`MANDEL_W21` -- weights of a Voigt stiffness in its Mandel form;
* :data:`ROUNDOFF_ZERO` -- entries that count as exact zeros before an NMSE.
"""

from __future__ import annotations

import numpy as np

from ..tol import TOL
from ..validation import check_finite, fail

__all__ = [
    "nmse",
    "relative_error",
    "relative_frobenius",
    "r2_score",
    "r2_error",
    "component_weights",
    "MANDEL_W66",
    "MANDEL_W21",
    "ROUNDOFF_ZERO",
    "is_admissible",
    "check_admissible",
]

_MANDEL = np.array([1.0, 1.0, 1.0, np.sqrt(2.0), np.sqrt(2.0), np.sqrt(2.0)])
#: Elementwise weights (6, 6) of a Voigt stiffness in its Mandel form:
#: ``||M(C)||_F = ||C * MANDEL_W66||_F`` (shear rows and columns carry sqrt(2)).
MANDEL_W66 = _MANDEL[:, None] * _MANDEL[None, :]


def _mandel_w21() -> np.ndarray:
    w = np.array([1.0, 1, 1, 2, 2, 2])  # squared Mandel weights of the Voigt rows
    return np.array([w[i] * w[j] * (1.0 if i == j else 2.0) for i in range(6) for j in range(i, 6)])


#: Weights (21,) of the squared constants (upper triangle, row by row) in ``||M(C)||_F^2``:
#: off-diagonal entries count twice, shear rows carry 2.
MANDEL_W21 = _mandel_w21()

#: FE stiffness entries below this fraction of the largest count as exact zeros: they are
#: round-off (1e-16) or symmetry zeros blurred by rotations (1e-8), and would dominate an
#: NMSE (main Eq. 8), which divides by the reference entries.
ROUNDOFF_ZERO = 1e-6


def nmse(target: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Normalised mean squared error of main-text Eq. 8.

    ``NMSE = sum_ij (C_ij^target - C_ij^pred)^2 / (C_ij^target)^2`` over all 36 Voigt
    entries. Entries whose target is exactly zero (e.g. the off-orthotropic zeros of an
    orthotropic target) have no relative error and are left out of the sum.

    Parameters
    ----------
    target, pred : ndarray, shape (..., 6, 6)

    Returns
    -------
    ndarray, shape (...)
    """
    t = np.asarray(target, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    nz = t != 0.0
    terms = np.where(nz, (t - p) ** 2 / np.where(nz, t, 1.0) ** 2, 0.0)
    return terms.sum(axis=(-2, -1))


def relative_error(target: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Relative Mandel-norm error ``||M(C - target)||_F / ||M(target)||_F``.

    Parameters
    ----------
    target, C : ndarray, shape (..., 6, 6)
        Broadcast against each other.

    Returns
    -------
    ndarray, shape (...)
    """
    target = np.asarray(target, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    return np.linalg.norm((C - target) * MANDEL_W66, axis=(-2, -1)) / np.linalg.norm(target * MANDEL_W66,
                                                                                      axis=(-2, -1))


def component_weights(C21: np.ndarray) -> np.ndarray:
    """Weights (21,) of the squared errors of the 21 constants that make the error sum
    track the per-component R^2 of a set of targets.

    ``w_c = 1 / Var(C_c)`` over ``C21`` (N, 21), rescaled to the sum of :data:`MANDEL_W21`
    (so losses keep their magnitude). The summed weighted squared error over the set is
    then ``sum_c (1 - R^2_c)`` up to one constant factor (:func:`r2_error`). The couplings
    ``C14, C25, C36`` and ``C45, C46, C56`` vary about 50x less than ``C11`` over randomly
    oriented cells, so the Mandel norm (weights 1-4) nearly ignores them.

    Raises
    ------
    ValidationError
        A component is constant over the targets (its R^2 is undefined).
    """
    var = np.asarray(C21, dtype=np.float64).reshape(-1, 21).var(0)
    if not np.all(var > 0):
        fail("C21", "a component is constant over the targets", "use a set of varied targets")
    w = 1.0 / var
    return w * (MANDEL_W21.sum() / w.sum())


def r2_error(target21: np.ndarray, C21: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted squared error ``sum_c w_c (C_c - T_c)^2`` over the 21 constants.

    Parameters
    ----------
    target21, C21 : ndarray, shape (..., 21)
        Target and design constants (broadcast against each other).
    weights : ndarray, shape (21,)
        ``1 / Var(T_c)`` over a set of targets up to one factor (:func:`component_weights`).

    Returns
    -------
    ndarray, shape (...), float64
        A target's contribution to ``sum_c (1 - R^2_c)`` of that set, up to one factor:
        picking per target the design that minimises it minimises the summed ``1 - R^2``.

    >>> r2_error(np.zeros(21), np.eye(21)[0] * 2.0, np.full(21, 0.5)).item()
    2.0
    """
    d = np.asarray(C21, dtype=np.float64) - np.asarray(target21, dtype=np.float64)
    return np.einsum("...c,c->...", d * d, np.asarray(weights, dtype=np.float64))


def r2_score(true: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Coefficient of determination per column: shapes (n, k) -> (k,)."""
    true = np.asarray(true, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    ss_res = np.sum((true - pred) ** 2, axis=0)
    ss_tot = np.sum((true - true.mean(axis=0)) ** 2, axis=0)
    return 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0)


def _defects(C: np.ndarray) -> tuple[float, float]:
    scale = float(np.abs(C).max()) or 1.0
    asym = float(np.abs(C - C.T).max()) / scale
    w = np.linalg.eigvalsh((C + C.T) / 2.0)
    return asym, float(w[0] / max(abs(w[-1]), 1e-300))


def is_admissible(C: np.ndarray) -> bool:
    """True if the 6x6 stiffness is symmetric and positive definite (TOL.symmetry, TOL.positive_definite)."""
    C = np.asarray(C, dtype=np.float64)
    if C.shape != (6, 6) or not np.all(np.isfinite(C)):
        return False
    asym, ratio = _defects(C)
    return asym <= TOL.symmetry and ratio > TOL.positive_definite


def check_admissible(C, field: str = "stiffness", *, symmetry_tol: float | None = None) -> np.ndarray:
    """Return C as a (6, 6) float64 array or raise ValidationError saying why it is not admissible."""
    C = check_finite(field, C)
    if C.shape != (6, 6):
        fail(field, f"has shape {C.shape}", "give a 6x6 Voigt matrix or 21 constants")
    asym, ratio = _defects(C)
    tol = TOL.symmetry if symmetry_tol is None else symmetry_tol
    if asym > tol:
        fail(field, f"is not symmetric (max |C - C^T| / max |C| = {asym:.2e})",
             "a stiffness must satisfy C_IJ = C_JI; check the order of the constants")
    if ratio <= TOL.positive_definite:
        w = np.linalg.eigvalsh((C + C.T) / 2.0)
        fail(field, f"is not positive definite (smallest eigenvalue {w[0]:.4g}, largest {w[-1]:.4g})",
             "no stable material has this stiffness; check signs and units")
    return C


def relative_frobenius(target: np.ndarray, C: np.ndarray) -> np.ndarray:
    """Relative Frobenius error of Voigt matrices, ``||C - target||_F / ||target||_F``.

    The error every build figure (design, as built) is given in: unlike the NMSE of
    main-text Eq. 8 it does not divide by near-zero entries, so it reads as a percentage.

    Parameters
    ----------
    target, C : ndarray, shape (..., 6, 6)

    Returns
    -------
    ndarray, shape (...)

    >>> import numpy as np
    >>> round(float(relative_frobenius(np.eye(6), 1.1 * np.eye(6))), 12)
    0.1
    """
    t = np.asarray(target, dtype=np.float64)
    c = np.asarray(C, dtype=np.float64)
    return np.linalg.norm(c - t, axis=(-2, -1)) / np.linalg.norm(t, axis=(-2, -1))
