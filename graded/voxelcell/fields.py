"""Random cubic-symmetric scalar fields on a voxel cell, whose level sets are the cells.

Two families, both periodic on the unit cell and exactly cubic-symmetric on the grid:

* ``"trig"``: a few products of cosines and sines of integer wave numbers,
  ``g(x) = sum_t a_t prod_d f_td(2 pi k_td x_d)`` with ``f`` in {cos, sin}, evaluated at the
  voxel centres of the first octant, averaged over the axis permutations and mirrored into the
  other octants. Mirroring (rather than averaging over the 48 operations, which would cancel
  every term with a sine factor, sines being odd under the mirrors) keeps the sine terms, so
  the family is richer than symmetric cosine sums; the mirrored field is continuous with a
  kink on the mirror planes.
* ``"noise"``: white noise smoothed by a periodic Gaussian filter of a random length scale,
  averaged over the 48 operations (:func:`graded.voxelcell.symmetry.symmetrise`), smooth
  everywhere.

The fields are defined in cell units, so the same parameters give the same geometry at any
resolution (the noise family up to its voxel-level sampling).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ..validation import check_count, check_positive, fail
from .symmetry import expand_octant, symmetrise, symmetrise_octant

__all__ = ["TrigParams", "NoiseParams", "trig_field", "noise_field", "sample_trig", "sample_noise"]


@dataclass(frozen=True)
class TrigParams:
    """A sum of trigonometric products.

    Attributes
    ----------
    wave_numbers : ndarray of int64, shape (T, 3)
        Integer wave numbers ``k_td >= 0`` per term and axis (periods of the cell edge).
    sine : ndarray of bool, shape (T, 3)
        Factor ``d`` of term ``t`` is ``sin`` (else ``cos``); sines have ``k >= 1``.
    amplitudes : ndarray of float64, shape (T,)
    """

    wave_numbers: np.ndarray
    sine: np.ndarray
    amplitudes: np.ndarray

    def __post_init__(self):
        k = np.asarray(self.wave_numbers)
        s = np.asarray(self.sine)
        a = np.asarray(self.amplitudes, dtype=np.float64)
        if k.ndim != 2 or k.shape[1] != 3 or k.shape[0] < 1:
            fail("wave_numbers", f"has shape {k.shape}, expected (T, 3)", "give three wave numbers per term")
        if not np.issubdtype(k.dtype, np.integer) or np.any(k < 0):
            fail("wave_numbers", "must be integers >= 0", "integer wave numbers keep the field periodic")
        if s.shape != k.shape or s.dtype != bool:
            fail("sine", f"has shape {s.shape} and dtype {s.dtype}, expected bool {k.shape}", None)
        if np.any(s & (k == 0)):
            fail("sine", "has a sine factor of wave number 0, which is zero", "give sines wave numbers >= 1")
        if a.shape != (k.shape[0],) or not np.all(np.isfinite(a)):
            fail("amplitudes", f"has shape {a.shape}, expected ({k.shape[0]},) finite values", None)
        object.__setattr__(self, "wave_numbers", k.astype(np.int64))
        object.__setattr__(self, "amplitudes", a)


@dataclass(frozen=True)
class NoiseParams:
    """Smoothed periodic white noise.

    Attributes
    ----------
    length_scale : float
        Standard deviation of the Gaussian filter, in cell edges.
    noise_seed : int
        Seed of the white noise (``numpy.random.default_rng(noise_seed)``), so the field can
        be drawn again from its parameters.
    """

    length_scale: float
    noise_seed: int

    def __post_init__(self):
        check_positive("length_scale", self.length_scale, hint="give a filter width in cell edges")
        check_count("noise_seed", self.noise_seed, 0)


def _check_n(n) -> int:
    n = check_count("n", n, 2)
    if n % 2:
        fail("n", f"{n} voxels per edge is odd", "give an even n (the cell is stored as its n/2 octant)")
    return n


def trig_field(params: TrigParams, n: int) -> np.ndarray:
    """The trigonometric field on an ``n^3`` cell, cubic-symmetric by mirroring its octant.

    Parameters
    ----------
    params : TrigParams
    n : int
        Voxels per cell edge (even).

    Returns
    -------
    ndarray of float64, shape (n, n, n)
    """
    n = _check_n(n)
    h = n // 2
    x = 2 * np.pi * (np.arange(h) + 0.5) / n  # voxel centres of the first octant, times 2 pi
    g = np.zeros((h, h, h))
    for k, s, a in zip(params.wave_numbers, params.sine, params.amplitudes):
        f = [np.sin(k[d] * x) if s[d] else np.cos(k[d] * x) for d in range(3)]
        g += a * f[0][:, None, None] * f[1][None, :, None] * f[2][None, None, :]
    return expand_octant(symmetrise_octant(g))


def noise_field(params: NoiseParams, n: int) -> np.ndarray:
    """The smoothed noise field on an ``n^3`` cell, averaged over the 48 cubic operations.

    Parameters
    ----------
    params : NoiseParams
    n : int
        Voxels per cell edge (even).

    Returns
    -------
    ndarray of float64, shape (n, n, n)
        Periodic (the filter wraps around the cell).
    """
    n = _check_n(n)
    white = np.random.default_rng(params.noise_seed).standard_normal((n, n, n))
    smooth = ndimage.gaussian_filter(white, sigma=params.length_scale * n, mode="wrap")
    return symmetrise(smooth)


def sample_trig(rng: np.random.Generator, n_terms: tuple[int, int], k_max: int) -> TrigParams:
    """Draw a trigonometric field.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_terms : (int, int)
        Inclusive range of the number of terms T.
    k_max : int
        Largest wave number (>= 1); each factor's is uniform in ``0 .. k_max`` (sines ``1 ..``).

    Returns
    -------
    TrigParams
        Amplitudes standard normal; a term whose three wave numbers are 0 (a constant) gets
        ``k = 1`` on its first axis.
    """
    T = int(rng.integers(n_terms[0], n_terms[1] + 1))
    sine = rng.random((T, 3)) < 0.5
    k = rng.integers(0, k_max + 1, size=(T, 3))
    k = np.where(sine, np.maximum(k, 1), k)
    k[np.all(k == 0, axis=1), 0] = 1
    return TrigParams(wave_numbers=k, sine=sine, amplitudes=rng.standard_normal(T))


def sample_noise(rng: np.random.Generator, length_scale: tuple[float, float]) -> NoiseParams:
    """Draw a smoothed-noise field: length scale log-uniform in ``length_scale`` (cell edges)."""
    lo, hi = np.log(length_scale[0]), np.log(length_scale[1])
    return NoiseParams(length_scale=float(np.exp(rng.uniform(lo, hi))), noise_seed=int(rng.integers(2**63 - 1)))
