"""The FE oracle: stiffness of a batch of designs by FE homogenization.

Every FE check of the inverse package -- verifying designs, polishing them, evaluating the
networks -- goes through :func:`fe_stiffness`, which groups the designs by lattice and
homogenizes each group in one batch (:func:`graded.unitcell.homogenize_designs`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .sampling import design_basis

__all__ = ["fe_stiffness", "sorted_parts"]

Progress = Callable[[int, int, str], None]


def sorted_parts(topology: np.ndarray) -> np.ndarray:
    """(n, 6) int keys of designs' topologies with the three parts sorted.

    Parameters
    ----------
    topology : array_like, shape (n, 3, 2) or (3, 2)
        Parts ``[tessellation, id]``, in any order (the lattice is their union).

    Returns
    -------
    ndarray, shape (n, 6), int64
    """
    t = np.asarray(topology).reshape(-1, 3, 2).astype(np.int64)
    k = t[..., 0] * 8 + t[..., 1]
    order = np.argsort(k, axis=1, kind="stable")
    return np.take_along_axis(t, order[..., None], axis=1).reshape(-1, 6)


def fe_stiffness(topology, rho, U, V, R1, R2, *, progress: Progress | None = None) -> np.ndarray:
    """FE stiffness of designs given as dataset-style arrays.

    Parameters
    ----------
    topology : array_like, shape (n, 3, 2), int
    rho : array_like, shape (n,)
    U, V : array_like, shape (n, 3)
    R1, R2 : array_like, shape (n, 3, 3)
    progress : callable, optional
        ``progress(done, n, message)`` after each group of designs that share a lattice.

    Returns
    -------
    ndarray, shape (n, 6, 6), float64
        Stiffness normalised by E_s (Poisson's ratio of the dataset, 0.3).
    """
    from graded.unitcell import homogenize_designs

    topology = np.asarray(topology)
    n = topology.shape[0]
    rho = np.asarray(rho, dtype=np.float64)
    basis = design_basis(U, V, R1, R2)
    out = np.empty((n, 6, 6))
    keys, inverse = np.unique(sorted_parts(topology), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    done = 0
    for g, key in enumerate(keys):
        idx = np.flatnonzero(inverse == g)
        parts = tuple((int(key[2 * p]), int(key[2 * p + 1])) for p in range(3))
        out[idx] = homogenize_designs(parts, rho[idx], basis[idx])
        done += len(idx)
        if progress is not None:
            progress(done, n, f"FE {done}/{n}")
    return out
