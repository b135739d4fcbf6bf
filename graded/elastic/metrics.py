"""Error measures and admissibility of stiffness matrices."""

from __future__ import annotations

import numpy as np

from ..tol import TOL
from ..validation import check_finite, fail

__all__ = ["nmse", "is_admissible", "check_admissible", "r2_score", "relative_frobenius"]


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
