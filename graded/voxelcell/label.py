"""Stiffness labels of cubic-symmetric voxel cells from two FE load cases.

A cubic cell's stiffness has three independent constants, C11, C12 and C44 (Voigt, engineering
shear). The unit strain 11 gives the first column of C (C11, and C12 = C21 = C31) and the unit
strain 23 gives C44, so two load cases of :func:`graded.fem.homogenize_voxels` label a cell
instead of six.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validation import check_range, fail
from .symmetry import is_cubic_symmetric

__all__ = ["LABEL_NAMES", "LABEL_LOAD_CASES", "LABEL_RTOL", "CubicLabels", "cubic_labels", "cubic_stiffness",
           "cubic_projection"]

#: Columns of :attr:`CubicLabels.values`.
LABEL_NAMES = ("C11", "C12", "C44", "volume_fraction")
#: Voigt indices of the solved unit strains: 11 and 23.
LABEL_LOAD_CASES = (0, 3)
#: CG tolerance of the label solves. C12 is read from the 11 column as C21, which lacks the
#: energy correction (it needs the 22 fluctuation), so its error is linear in the residual, not
#: quadratic: measured on a 24^3 cubic cell, |dC12| / C11 is 9e-7 at the solver's default 1e-5
#: and 1e-9 at 1e-8 (C11 and C44 below 1e-15). 1e-8 costs 1.7x the iterations of 1e-5, and two
#: load cases at 1e-8 still take less time than six at the default.
LABEL_RTOL = 1e-8


@dataclass(frozen=True)
class CubicLabels:
    """Labels of a batch of cubic cells.

    Attributes
    ----------
    values : ndarray of float64, shape (M, 4)
        ``C11, C12, C44`` relative to the solid's Young's modulus ``E_s`` (dimensionless, Voigt
        with engineering shear) and the solid volume fraction; columns :data:`LABEL_NAMES`.
    iterations : ndarray of int64, shape (M,)
        CG iterations of the slower of the two load cases.
    converged : ndarray of bool, shape (M,)
    """

    values: np.ndarray
    iterations: np.ndarray
    converged: np.ndarray

    @property
    def C11(self) -> np.ndarray:
        """(M,) float64, / E_s."""
        return self.values[:, 0]

    @property
    def C12(self) -> np.ndarray:
        """(M,) float64, / E_s."""
        return self.values[:, 1]

    @property
    def C44(self) -> np.ndarray:
        """(M,) float64, / E_s."""
        return self.values[:, 2]

    @property
    def volume_fraction(self) -> np.ndarray:
        """(M,) float64."""
        return self.values[:, 3]


def cubic_labels(
    cells,
    *,
    nu: float = 0.3,
    rtol: float = LABEL_RTOL,
    device: str | None = None,
) -> CubicLabels:
    """FE labels (C11, C12, C44, volume fraction) of cubic-symmetric voxel cells.

    Parameters
    ----------
    cells : array_like of bool, shape (n, n, n) or (M, n, n, n)
        Solid masks, each invariant under the 48 cubic operations (the cells of
        :func:`graded.voxelcell.generate.generate_cell` are).
    nu : float
        Poisson's ratio of the solid.
    rtol : float
        CG tolerance, :data:`LABEL_RTOL` by default.
    device : str, optional
        Torch device of the solver (CPU by default).

    Returns
    -------
    CubicLabels
        Periodic boundary conditions; stiffness relative to ``E_s``.
    """
    from ..fem.voxel import homogenize_voxels  # torch is loaded on first use only

    arr = np.asarray(cells)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4 or arr.shape[0] < 1 or len(set(arr.shape[1:])) != 1:
        fail("cells", f"has shape {arr.shape}, expected (n, n, n) or (M, n, n, n)", "give cubic voxel grids")
    if arr.dtype != bool:
        fail("cells", f"has dtype {arr.dtype}, not bool", "give solid masks (True = solid)")
    for m, cell in enumerate(arr):
        if not is_cubic_symmetric(cell):
            fail("cells", f"cell {m} is not cubic-symmetric, so C11, C12, C44 do not describe it",
                 "symmetrise it (graded.voxelcell.symmetry) or label it with homogenize_voxels")
        if not cell.any():
            fail("cells", f"cell {m} has no solid", "give cells with solid voxels")
    check_range("nu", nu, -1.0, 0.5, inclusive=False, hint="give the Poisson's ratio of a stable isotropic solid")
    r = homogenize_voxels(arr, nu=nu, rtol=rtol, device=device, load_cases=LABEL_LOAD_CASES)
    values = np.stack([r.C[:, 0, 0], r.C[:, 1, 0], r.C[:, 3, 3], r.density], axis=1)
    return CubicLabels(values=values, iterations=r.iterations, converged=r.converged)


def cubic_stiffness(C3) -> np.ndarray:
    """Voigt stiffness matrices (..., 6, 6) of cubic constants (..., 3): C11, C12, C44.

    >>> cubic_stiffness([3.0, 1.0, 0.5])[[0, 0, 3], [0, 1, 3]].tolist()
    [3.0, 1.0, 0.5]
    """
    c = np.asarray(C3, dtype=np.float64)
    if c.shape[-1:] != (3,):
        fail("C3", f"has shape {c.shape}, expected (..., 3)", "give C11, C12, C44")
    out = np.zeros(c.shape[:-1] + (6, 6))
    for i in range(3):
        for j in range(3):
            out[..., i, j] = c[..., 0] if i == j else c[..., 1]
        out[..., 3 + i, 3 + i] = c[..., 2]
    return out


def cubic_projection(C) -> tuple[np.ndarray, float]:
    """The nearest cubic stiffness (axes of the frame given) to a Voigt matrix, and what is left.

    The least-squares projection in the Mandel norm: C11 is the mean of the three axial
    entries, C12 of the three off-diagonal normal entries, C44 of the three shear entries.

    Parameters
    ----------
    C : array_like, shape (6, 6)
        Voigt stiffness (engineering shear).

    Returns
    -------
    C3 : ndarray, shape (3,)
        C11, C12, C44.
    residual : float
        ``||M(C - cubic)||_F / ||M(C)||_F``, 0 for a cubic ``C``: the share no cubic cell has.
    """
    from ..elastic.metrics import relative_error

    m = np.asarray(C, dtype=np.float64)
    if m.shape != (6, 6):
        fail("C", f"has shape {m.shape}, expected (6, 6)", "give a Voigt stiffness matrix")
    C3 = np.array([np.mean(np.diag(m)[:3]), np.mean([m[0, 1], m[0, 2], m[1, 2]]), np.mean(np.diag(m)[3:])])
    return C3, float(relative_error(m, cubic_stiffness(C3)))
