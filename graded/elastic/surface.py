"""Directional Young's modulus E(d) (SI Eq. 1)."""

from __future__ import annotations

import numpy as np

__all__ = ["directional_modulus", "sphere_directions"]


def directional_modulus(C: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Young's modulus along unit directions: ``E(d) = 1 / (d⊗d : C^-1 : d⊗d)``.

    With engineering shear strain the uniaxial stress ``d⊗d`` in Voigt form is
    ``s = (d1², d2², d3², d2 d3, d1 d3, d1 d2)`` and ``1/E = s^T S s``, S = C^-1.

    Parameters
    ----------
    C : ndarray, shape (..., 6, 6)
        Voigt stiffness (any unit; E comes out in the same unit).
    d : ndarray, shape (K, 3)
        Directions (normalised here).

    Returns
    -------
    ndarray, shape (..., K)

    >>> C = np.diag([1.0, 1.0, 1.0, 0.5, 0.5, 0.5])   # nu = 0, E = 1 isotropic
    >>> np.round(directional_modulus(C, np.array([[1.0, 1.0, 0.0]])), 12)
    array([1.])
    """
    d = np.asarray(d, dtype=np.float64).reshape(-1, 3)
    d = d / np.linalg.norm(d, axis=1, keepdims=True)
    s = np.stack([d[:, 0] ** 2, d[:, 1] ** 2, d[:, 2] ** 2, d[:, 1] * d[:, 2], d[:, 0] * d[:, 2], d[:, 0] * d[:, 1]], 1)
    S = np.linalg.inv(np.asarray(C, dtype=np.float64))
    return 1.0 / np.einsum("ki,...ij,kj->...k", s, S, s)


def sphere_directions(n_theta: int = 48, n_phi: int = 96) -> tuple[np.ndarray, tuple[int, int]]:
    """A latitude-longitude grid of unit vectors, shape (n_theta * n_phi, 3), and the grid shape."""
    t = np.linspace(0.0, np.pi, n_theta)
    p = np.linspace(0.0, 2.0 * np.pi, n_phi)
    T, P = np.meshgrid(t, p, indexing="ij")
    d = np.stack([np.sin(T) * np.cos(P), np.sin(T) * np.sin(P), np.cos(T)], -1).reshape(-1, 3)
    return d, (n_theta, n_phi)
