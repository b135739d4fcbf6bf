"""Rotations: axis-angle (as in the SI tables), 6D representation (SI Eq. 6), Bond matrices (SI Eqs. 7-9)."""

from __future__ import annotations

import numpy as np

from ..validation import check_finite, check_rotation, fail
from ._index import BOND_COL_K, BOND_COL_L, BOND_ROW_I, BOND_ROW_J, BOND_SHEAR

__all__ = [
    "bond_matrix",
    "rotate_voigt",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_from_6d",
    "rotation_to_6d",
    "as_rotation",
]


def bond_matrix(R: np.ndarray) -> np.ndarray:
    """Bond stress-transformation matrix K of a rotation (SI Eqs. 8-9).

    ``K[I, J] = R[i, k] R[j, l] + R[i, l] R[j, k]`` for shear columns J = (k, l), k != l,
    and ``R[i, k] R[j, k]`` for normal columns, with I = (i, j) in Voigt order. With
    engineering shear strain, ``C' = K C K^T`` equals ``R_ip R_jq R_kr R_ls C_pqrs``.

    Parameters
    ----------
    R : ndarray, shape (..., 3, 3)

    Returns
    -------
    ndarray, shape (..., 6, 6)
    """
    R = np.asarray(R, dtype=np.float64)
    a = R[..., BOND_ROW_I, BOND_COL_K] * R[..., BOND_ROW_J, BOND_COL_L]
    b = R[..., BOND_ROW_I, BOND_COL_L] * R[..., BOND_ROW_J, BOND_COL_K]
    return a + BOND_SHEAR * b


def rotate_voigt(C: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Rotate a Voigt stiffness: ``K(R) C K(R)^T`` (SI Eq. 7). Shapes (..., 6, 6), (..., 3, 3)."""
    K = bond_matrix(R)
    return K @ np.asarray(C, dtype=np.float64) @ np.swapaxes(K, -1, -2)


def axis_angle_to_matrix(theta, e1, e2, e3=None) -> np.ndarray:
    """Rotation matrix from an angle and axis, as in the SI tables.

    Parameters
    ----------
    theta : float or ndarray (...)
        Angle in radians.
    e1, e2 : float or ndarray (...)
        First two axis components; ``e3 = sqrt(1 - e1^2 - e2^2)`` unless given.

    Returns
    -------
    ndarray, shape (..., 3, 3)

    >>> np.round(axis_angle_to_matrix(np.pi / 2, 0.0, 0.0) @ [1.0, 0.0, 0.0], 12)
    array([0., 1., 0.])
    """
    theta = check_finite("theta", theta)
    e1 = check_finite("e1", e1)
    e2 = check_finite("e2", e2)
    if e3 is None:
        s = 1.0 - e1**2 - e2**2
        if np.any(s < -1e-9):
            fail("axis", f"e1^2 + e2^2 = {float(np.max(e1**2 + e2**2)):.6g} exceeds 1",
                 "give a unit axis: e1^2 + e2^2 <= 1 (e3 = sqrt(1 - e1^2 - e2^2))")
        e3 = np.sqrt(np.clip(s, 0.0, None))
    e = np.stack(np.broadcast_arrays(e1, e2, np.asarray(e3, dtype=np.float64)), axis=-1)
    n = np.linalg.norm(e, axis=-1, keepdims=True)
    if np.any(n < 1e-12):
        fail("axis", "has zero length", "give a unit rotation axis")
    e = e / n
    c, s = np.cos(theta)[..., None, None], np.sin(theta)[..., None, None]
    x, y, z = e[..., 0], e[..., 1], e[..., 2]
    zero = np.zeros_like(x)
    W = np.stack([np.stack([zero, -z, y], -1), np.stack([z, zero, -x], -1), np.stack([-y, x, zero], -1)], -2)
    outer = e[..., :, None] * e[..., None, :]
    return c * np.eye(3) + s * W + (1 - c) * outer


def matrix_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Angle and axis ``(theta, e1, e2)`` of a rotation, with the SI convention e3 >= 0.

    The angle lies in (-pi, pi]; the axis is flipped (and the angle negated) so that
    its third component is non-negative. Shape (3, 3) -> (3,) or (..., 3, 3) -> (..., 3).
    """
    R = np.asarray(R, dtype=np.float64)
    w = np.stack([R[..., 2, 1] - R[..., 1, 2], R[..., 0, 2] - R[..., 2, 0], R[..., 1, 0] - R[..., 0, 1]], -1)
    s = np.linalg.norm(w, axis=-1)
    # atan2 keeps full precision near 0 and pi, where arccos of the trace loses half the digits
    theta = np.arctan2(s / 2.0, (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0)
    axis = np.where(s[..., None] > 1e-8, w / np.maximum(s, 1e-300)[..., None], 0.0)
    # near theta = pi the antisymmetric part vanishes: take the axis from R + I
    near_pi = (s <= 1e-8) & (theta > np.pi / 2)
    if np.any(near_pi):
        B = (R[near_pi] + np.eye(3)) / 2.0
        col = np.argmax(np.einsum("...ii->...i", B), axis=-1)
        v = np.take_along_axis(B, col[:, None, None].repeat(3, 1), axis=2)[..., 0]
        axis[near_pi] = v / np.linalg.norm(v, axis=-1, keepdims=True)
    identity = (s <= 1e-8) & ~near_pi
    axis[identity] = (0.0, 0.0, 1.0)
    theta = np.where(identity, 0.0, theta)
    flip = axis[..., 2] < 0
    axis = np.where(flip[..., None], -axis, axis)
    theta = np.where(flip, -theta, theta)
    return np.concatenate([theta[..., None], axis[..., :2]], axis=-1)


def rotation_from_6d(a: np.ndarray) -> np.ndarray:
    """Rotation from the 6D representation (SI Eq. 6): Gram-Schmidt on two 3-vectors.

    Parameters
    ----------
    a : ndarray, shape (..., 6)
        ``a[..., :3] = a1``, ``a[..., 3:] = a2``.

    Returns
    -------
    ndarray, shape (..., 3, 3) with columns b1, b2, b3.
    """
    a = np.asarray(a, dtype=np.float64)
    a1, a2 = a[..., :3], a[..., 3:]
    b1 = a1 / np.linalg.norm(a1, axis=-1, keepdims=True)
    u = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = u / np.linalg.norm(u, axis=-1, keepdims=True)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def rotation_to_6d(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rotation_from_6d`: the first two columns, shape (..., 6)."""
    R = np.asarray(R, dtype=np.float64)
    return np.concatenate([R[..., :, 0], R[..., :, 1]], axis=-1)


def as_rotation(field: str, value) -> np.ndarray:
    """Accept a 3x3 rotation matrix or an axis-angle triple ``(theta, e1, e2)``."""
    arr = check_finite(field, value)
    if arr.shape == (3,):
        theta, e1, e2 = arr
        if e1**2 + e2**2 > 1 + 1e-9:
            fail(field, f"axis components e1={e1:.6g}, e2={e2:.6g} give e1^2+e2^2 > 1",
                 "axis-angle is (theta, e1, e2) with e3 = sqrt(1 - e1^2 - e2^2)")
        return axis_angle_to_matrix(theta, e1, e2)
    if arr.shape == (3, 3):
        return check_rotation(field, arr)
    fail(field, f"has shape {arr.shape}", "give a 3x3 rotation matrix or an axis-angle (theta, e1, e2)")
