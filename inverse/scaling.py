"""Feature and label scalings of the networks (SI section 3.A, Eqs. 2-4), plus the
physics-based normalisations that let small networks learn from 200k samples.

SI scalings
-----------
* design features rho, U_i, V_i are min-max scaled to [0, 1] with the Table S1 bounds
  (SI Eq. 2): :func:`scale_design` / :func:`unscale_design`;
* stiffness labels are min-max scaled per component to [-1, 1] (SI Eqs. 3-4):
  :class:`MinMax`.

Physics normalisations (ours)
-----------------------------
* **Density.** A truss lattice's stiffness scales between ``rho`` (stretching) and
  ``rho^2`` (bending), so the first forward network learns ``C_ort / rho``, which varies
  far less over the design space than ``C_ort`` itself (:func:`density_label`).
* **Magnitude.** The trace of the Mandel form of a stiffness,
  ``s = C11 + C22 + C33 + 2 (C44 + C55 + C66)``, is invariant under rotation. The second
  forward network and the inverse model see ``C / s`` (dimensionless, O(1)) and
  ``log s`` separately (:func:`stiffness_scale`, :func:`log_scale_feature`), and the
  second forward network predicts ``C_hat / s``. Every sample then contributes to the
  loss with its relative error, whatever its density.

All functions accept numpy arrays or torch tensors (they only use arithmetic and
indexing), so the same code scales data on disk and tensors inside the networks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from graded.validation import fail

__all__ = [
    "RHO_RANGE",
    "STRETCH_RANGE",
    "LOG_SCALE_RANGE",
    "DIAG_21",
    "SHEAR_21",
    "DIAG_9",
    "SHEAR_9",
    "scale_unit",
    "unscale_unit",
    "stiffness_scale",
    "stiffness_scale_9",
    "log_scale_feature",
    "density_label",
    "MinMax",
]

#: Relative density bounds of SI Table S1.
RHO_RANGE = (0.002, 0.1)
#: Principal stretch bounds of SI Table S1 (U and V alike).
STRETCH_RANGE = (0.5, 2.0)
#: Range of ``log s`` (s = Mandel trace of C / E_s) mapped to [0, 1] for the networks.
#: Lattices in Table S1 have s between ~1e-6 (rho = 0.002, bending) and ~0.2 (rho = 0.1,
#: stretching); the bounds are generous so no target is clipped.
LOG_SCALE_RANGE = (math.log(1e-8), math.log(1.0))

#: Positions of C11, C22, C33 and of C44, C55, C66 in the 21-constant order.
DIAG_21 = (0, 6, 11)
SHEAR_21 = (15, 18, 20)
#: The same in the 9-constant (orthotropic) order C11 C12 C13 C22 C23 C33 C44 C55 C66.
DIAG_9 = (0, 3, 5)
SHEAR_9 = (6, 7, 8)


def scale_unit(x, lo: float, hi: float):
    """Min-max scale ``x`` from ``[lo, hi]`` to ``[0, 1]`` (SI Eq. 2)."""
    return (x - lo) / (hi - lo)


def unscale_unit(x, lo: float, hi: float):
    """Inverse of :func:`scale_unit` (SI Eq. 10)."""
    return x * (hi - lo) + lo


def stiffness_scale(c21):
    """Rotation-invariant magnitude ``s`` of stiffnesses given as 21 constants.

    Parameters
    ----------
    c21 : array or tensor, shape (..., 21)

    Returns
    -------
    shape (...): ``C11 + C22 + C33 + 2 (C44 + C55 + C66)`` (trace of the Mandel form;
    positive for every positive-definite stiffness).
    """
    d = c21[..., DIAG_21[0]] + c21[..., DIAG_21[1]] + c21[..., DIAG_21[2]]
    g = c21[..., SHEAR_21[0]] + c21[..., SHEAR_21[1]] + c21[..., SHEAR_21[2]]
    return d + 2.0 * g


def stiffness_scale_9(c9):
    """:func:`stiffness_scale` for orthotropic constants (..., 9)."""
    d = c9[..., DIAG_9[0]] + c9[..., DIAG_9[1]] + c9[..., DIAG_9[2]]
    g = c9[..., SHEAR_9[0]] + c9[..., SHEAR_9[1]] + c9[..., SHEAR_9[2]]
    return d + 2.0 * g


def log_scale_feature(s):
    """``log s`` mapped to [0, 1] with :data:`LOG_SCALE_RANGE` (works for numpy and torch)."""
    if isinstance(s, np.ndarray) or np.isscalar(s):
        ls = np.log(np.maximum(s, 1e-300))
    else:  # torch tensor
        ls = s.clamp_min(1e-300).log()
    return scale_unit(ls, *LOG_SCALE_RANGE)


def density_label(c, rho):
    """``c / rho`` with ``rho`` broadcast over the last axis (first forward network's label)."""
    return c / rho[..., None]


@dataclass
class MinMax:
    """Per-component min-max scaling to [-1, 1] (SI Eqs. 3-4).

    Attributes
    ----------
    lo, hi : ndarray, shape (k,)
        Per-component minimum and maximum of the training labels.
    """

    lo: np.ndarray
    hi: np.ndarray

    def __post_init__(self) -> None:
        self.lo = np.asarray(self.lo, dtype=np.float64).reshape(-1)
        self.hi = np.asarray(self.hi, dtype=np.float64).reshape(-1)
        if self.lo.shape != self.hi.shape:
            fail("scaler", f"lo {self.lo.shape} and hi {self.hi.shape} differ in shape", None)
        if not (np.all(np.isfinite(self.lo)) and np.all(np.isfinite(self.hi))):
            fail("scaler", "has non-finite bounds", "refit it on finite labels")
        # A constant component (e.g. identically zero) would divide by zero.
        span = self.hi - self.lo
        self.hi = np.where(span > 0, self.hi, self.lo + 1.0)

    @classmethod
    def fit(cls, y: np.ndarray) -> MinMax:
        """Fit on labels ``y`` of shape (n, k)."""
        y = np.asarray(y, dtype=np.float64)
        return cls(y.min(axis=0), y.max(axis=0))

    @property
    def span(self) -> np.ndarray:
        return self.hi - self.lo

    def scale(self, y):
        """Labels -> [-1, 1] (SI Eq. 3)."""
        return 2.0 * (y - self.lo) / self.span - 1.0

    def unscale(self, y):
        """[-1, 1] -> labels (SI Eq. 4)."""
        return 0.5 * (y + 1.0) * self.span + self.lo

    def to_dict(self) -> dict[str, Any]:
        return {"lo": self.lo.tolist(), "hi": self.hi.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MinMax:
        if not isinstance(data, dict) or set(data) != {"lo", "hi"}:
            fail("scaler", f"expected keys ['hi', 'lo'], got {sorted(data) if isinstance(data, dict) else data!r}",
                 "the weights sidecar is damaged; re-save the model")
        return cls(np.asarray(data["lo"], dtype=np.float64), np.asarray(data["hi"], dtype=np.float64))
