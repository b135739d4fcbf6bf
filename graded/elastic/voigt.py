"""Voigt <-> fourth-order tensor, packing of the 21 / 9 independent constants.

Voigt order 11, 22, 33, 23, 13, 12 with engineering shear strain, so the stiffness
tensor maps to the Voigt matrix with no factors: ``C_V[I, J] = C[i, j, k, l]``.
"""

from __future__ import annotations

import numpy as np

from ._index import FROM_9, FROM_21, NAMES_9, NAMES_21, ORTHO_COLS, ORTHO_ROWS, TENSOR_TO_VOIGT, TRIU

__all__ = [
    "voigt_to_tensor",
    "tensor_to_voigt",
    "to_21",
    "from_21",
    "to_9",
    "from_9",
    "NAMES_21",
    "NAMES_9",
]


def voigt_to_tensor(C: np.ndarray) -> np.ndarray:
    """Fourth-order tensor from a Voigt stiffness.

    Parameters
    ----------
    C : ndarray, shape (..., 6, 6)

    Returns
    -------
    ndarray, shape (..., 3, 3, 3, 3)
    """
    C = np.asarray(C)
    idx = TENSOR_TO_VOIGT
    return C[..., idx[:, :, None, None], idx[None, None, :, :]]


def tensor_to_voigt(T: np.ndarray) -> np.ndarray:
    """Voigt stiffness (..., 6, 6) from a tensor (..., 3, 3, 3, 3) with minor symmetries."""
    T = np.asarray(T)
    i, j = np.array([0, 1, 2, 1, 0, 0]), np.array([0, 1, 2, 2, 2, 1])
    return T[..., i[:, None], j[:, None], i[None, :], j[None, :]]


def to_21(C: np.ndarray) -> np.ndarray:
    """The 21 independent constants (upper triangle, row by row), shape (..., 21).

    >>> to_21(np.eye(6))[:7]
    array([1., 0., 0., 0., 0., 0., 1.])
    """
    C = np.asarray(C)
    return C[..., TRIU[0], TRIU[1]]


def from_21(c: np.ndarray) -> np.ndarray:
    """Symmetric (..., 6, 6) matrix from (..., 21) upper-triangle constants."""
    c = np.asarray(c)
    return c[..., FROM_21]


def to_9(C: np.ndarray) -> np.ndarray:
    """Orthotropic constants C11, C12, C13, C22, C23, C33, C44, C55, C66, shape (..., 9)."""
    C = np.asarray(C)
    return C[..., ORTHO_ROWS, ORTHO_COLS]


def from_9(c: np.ndarray) -> np.ndarray:
    """Orthotropic (..., 6, 6) stiffness from its 9 constants (other entries zero)."""
    c = np.asarray(c)
    padded = np.concatenate([c, np.zeros(c.shape[:-1] + (1,), dtype=c.dtype)], axis=-1)
    return padded[..., FROM_9]
