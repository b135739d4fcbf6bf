"""Anisotropic Gaussian random fields of spinodoid cells (Kumar et al. 2020, Eqs. 1-3).

``phi(x) = sqrt(2/N) sum_i cos(beta n_i . x + gamma_i)`` with unit wave directions ``n_i``
uniform on the union of the double cones ``|n . e_j| > cos(theta_j)`` (Eq. 2) in the cell's
principal frame, rotated by ``R`` into the cell frame, and phases uniform in ``[0, 2 pi)``.
The solid is ``phi <= phi_0`` with ``phi_0`` the ``rho``-quantile (Eq. 3).

To make the field periodic on the unit cell, every wave vector is snapped to the nearest
reciprocal lattice vector ``2 pi m`` (``m`` integer, ``|m| ~ 1 / wavelength``); a snapped
vector that leaves the cone union is redrawn. The snapping changes each wavelength by at most
``sqrt(3)/2`` lattice steps (about 17 % at 5 wavelengths per cell) and quantises the directions;
more wavelengths per cell resolve the cones more finely. Waves that coincide after snapping
(``m`` or ``-m`` drawn twice) are merged, and the amplitudes are scaled so that the field has
exactly unit mean square over the cell, which the superposition of graded fields relies on.
Coordinates are in cell units (the cell is ``[0, 1)^3``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..validation import check_count, check_positive, check_range, check_rotation, fail

__all__ = [
    "SpinodoidDesign",
    "WaveSet",
    "THETA_MIN_DEG",
    "RHO_RANGE",
    "sample_waves",
    "field_on_grid",
    "field_at",
    "in_cones",
]

#: Smallest non-zero cone half-angle (degrees), the paper's design-space limit.
THETA_MIN_DEG = 15.0
#: Relative densities of the paper's design space: below 0.3 disjoint solid becomes common.
RHO_RANGE = (0.3, 1.0)
#: Draws of wave directions per accepted wave before giving up (cone union too narrow to hold
#: a lattice vector of the requested wavelength).
_MAX_DRAWS_PER_WAVE = 200


@dataclass(frozen=True)
class SpinodoidDesign:
    """Design parameters of one spinodoid cell.

    Attributes
    ----------
    rho : float
        Relative density (solid volume fraction), in [0.3, 1] in the paper's design space.
    theta : tuple of 3 float
        Cone half-angles (degrees) about the principal axes, each 0 or in [15, 90].
    R : ndarray, shape (3, 3)
        Rotation of the principal axes into the cell frame (columns: principal axes).
    wavelength : float
        Wavelength ``2 pi / beta`` relative to the cell edge (the paper: 0.2, beta = 10 pi / l).
    n_waves : int
        Number N of waves drawn.
    """

    rho: float
    theta: tuple[float, float, float]
    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    wavelength: float = 0.2
    n_waves: int = 1000

    def __post_init__(self):
        check_range("rho", self.rho, 0.0, 1.0, hint="give a solid volume fraction in (0, 1]")
        if not 0.0 < float(self.rho):
            fail("rho", f"{self.rho} must be > 0", "give a solid volume fraction in (0, 1]")
        th = np.asarray(self.theta, dtype=float)
        if th.shape != (3,):
            fail("theta", f"has shape {th.shape}, expected (3,)", "give three cone angles in degrees")
        check_range("theta", th, 0.0, 90.0, hint="give angles in degrees in {0} or [15, 90]")
        if np.any((th > 0) & (th < THETA_MIN_DEG)):
            fail("theta", f"{th.tolist()} has an angle in (0, {THETA_MIN_DEG:g}) degrees",
                 f"use 0 (no cone) or at least {THETA_MIN_DEG:g} degrees")
        if not np.any(th > 0):
            fail("theta", "all three cone angles are 0, so no wave direction is allowed",
                 "open at least one cone (e.g. theta = (90, 0, 0) for an isotropic cell)")
        object.__setattr__(self, "theta", tuple(float(t) for t in th))
        object.__setattr__(self, "R", check_rotation("R", self.R))
        check_positive("wavelength", self.wavelength)
        if self.wavelength > 1.0:
            fail("wavelength", f"{self.wavelength} exceeds the cell edge", "give a wavelength <= 1 (cell units)")
        check_count("n_waves", self.n_waves, 1)


@dataclass(frozen=True)
class WaveSet:
    """A periodic random field ``phi(x) = sum_k Re(c_k exp(2 pi i m_k . x))`` on the unit cell.

    Attributes
    ----------
    m : ndarray of int, shape (K, 3)
        Distinct lattice wave vectors (no two equal or opposite).
    c : ndarray of complex, shape (K,)
        Complex amplitudes; ``sum |c|^2 / 2 = 1`` (unit mean square, zero mean).
    """

    m: np.ndarray
    c: np.ndarray

    @property
    def max_index(self) -> int:
        """Largest ``|m_i|``: a periodic grid needs more than twice this many voxels per edge."""
        return int(np.abs(self.m).max()) if len(self.m) else 0


def in_cones(directions: np.ndarray, theta_deg) -> np.ndarray:
    """Whether unit vectors (..., 3) lie in the union of double cones of half-angles theta (Eq. 2)."""
    th = np.radians(np.asarray(theta_deg, dtype=float))
    open_ = th > 0
    return np.any((np.abs(directions) > np.cos(th)) & open_, axis=-1)


def _sample_cone_directions(n: int, theta_deg, rng: np.random.Generator) -> np.ndarray:
    """n unit vectors uniform on the cone union (rejection from the uniform sphere)."""
    out = np.empty((0, 3))
    for _ in range(_MAX_DRAWS_PER_WAVE):
        v = rng.standard_normal((4 * n + 16, 3))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out = np.concatenate([out, v[in_cones(v, theta_deg)]])
        if len(out) >= n:
            return out[:n]
    fail("theta", "the cone union is too narrow to sample", "open the cones wider")


def sample_waves(design: SpinodoidDesign, rng: np.random.Generator) -> WaveSet:
    """Draw the waves of one spinodoid cell, periodic on the unit cell.

    Parameters
    ----------
    design : SpinodoidDesign
    rng : numpy.random.Generator
        Source of randomness (pass a seeded one for reproducible cells).

    Returns
    -------
    WaveSet
    """
    n = design.n_waves
    radius = 1.0 / design.wavelength
    ms = np.empty((0, 3), dtype=np.int64)
    draws = 0
    while len(ms) < n:
        need = n - len(ms)
        d = _sample_cone_directions(need, design.theta, rng) @ design.R.T
        m = np.rint(d * radius).astype(np.int64)
        norm = np.linalg.norm(m, axis=1)
        ok = norm > 0
        back = (m[ok] / norm[ok, None]) @ design.R  # principal frame
        good = np.zeros(len(m), dtype=bool)
        good[np.flatnonzero(ok)[in_cones(back, design.theta)]] = True
        ms = np.concatenate([ms, m[good]])
        draws += need
        if draws > _MAX_DRAWS_PER_WAVE * n and len(ms) == 0:
            fail("wavelength", f"{design.wavelength} leaves no lattice wave vector inside the cones {design.theta}",
                 "use a shorter wavelength (more wavelengths per cell) or wider cones")
    gamma = rng.uniform(0.0, 2.0 * math.pi, n)
    amp = math.sqrt(2.0 / n) * np.exp(1j * gamma)
    # canonical half space: flip m with the first non-zero component negative (cos is even)
    first = np.take_along_axis(ms, np.argmax(ms != 0, axis=1)[:, None], axis=1)[:, 0]
    flip = first < 0
    ms[flip] *= -1
    amp[flip] = np.conj(amp[flip])
    uniq, inv = np.unique(ms, axis=0, return_inverse=True)
    c = np.zeros(len(uniq), dtype=complex)
    np.add.at(c, inv.reshape(-1), amp)
    keep = np.abs(c) > 0
    uniq, c = uniq[keep], c[keep]
    c /= math.sqrt(np.sum(np.abs(c) ** 2) / 2.0)
    return WaveSet(m=uniq, c=c)


def field_on_grid(waves: WaveSet, shape) -> np.ndarray:
    """The field at the voxel centres of a periodic grid over the unit cell (exact, by inverse FFT).

    Parameters
    ----------
    waves : WaveSet
    shape : int or tuple of 3 int
        Voxels per cell edge.

    Returns
    -------
    ndarray, shape ``shape``, float64
    """
    shape = (int(shape),) * 3 if np.isscalar(shape) else tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        fail("shape", f"{shape} is not three positive voxel counts", "give e.g. 64 or (64, 64, 64)")
    need = 2 * waves.max_index + 1
    if min(shape) < need:
        fail("resolution", f"{min(shape)} voxels per edge under-sample waves of index {waves.max_index}",
             f"use at least {need} voxels per edge, or a longer wavelength")
    n = np.array(shape)
    F = np.zeros(shape, dtype=complex)
    # sample at voxel centres (j + 1/2) / n: shift by exp(2 pi i m / (2 n))
    c = waves.c * np.exp(1j * math.pi * (waves.m / n).sum(axis=1)) * 0.5 * n.prod()
    idx = tuple((waves.m % n).T)
    np.add.at(F, idx, c)
    idx = tuple(((-waves.m) % n).T)
    np.add.at(F, idx, np.conj(c))
    return np.fft.ifftn(F).real


def field_at(waves: WaveSet, x: np.ndarray, *, chunk: int = 1 << 16) -> np.ndarray:
    """The field at arbitrary points (..., 3), in cell units (direct sum over the waves)."""
    x = np.asarray(x, dtype=float)
    pts = x.reshape(-1, 3)
    out = np.empty(len(pts))
    k = 2.0 * math.pi * waves.m.T.astype(float)
    for s in range(0, len(pts), chunk):
        out[s : s + chunk] = (np.exp(1j * (pts[s : s + chunk] @ k)) @ waves.c).real
    return out.reshape(x.shape[:-1])
