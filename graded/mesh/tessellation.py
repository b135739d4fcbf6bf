"""How finely round shapes are cut into triangles: the chord tolerance and its consequences.

A strut of radius ``r`` is drawn as an ``n``-gon prism. ``n`` is the smallest count whose
inscribed polygon stays within :data:`CHORD_TOL` of the true circle (sagitta
``r (1 - cos(pi/n)) <= tol``). The polygon is then scaled by :func:`area_scale` so that its
area equals ``pi r^2``: the strut keeps its design cross-section (volume, axial stiffness and,
to within the chord error, bending stiffness) and the polygon's corners stick out by at most
``r (area_scale - 1)`` while its flats sit at most ``r (1 - area_scale cos(pi/n))`` inside;
both are below the sagitta, so every point of the drawn surface lies within ``tol`` of the
true one.
"""

from __future__ import annotations

from functools import cache

import numpy as np

__all__ = [
    "CHORD_TOL",
    "MIN_SEGMENTS",
    "MAX_SEGMENTS",
    "segments_for_radius",
    "area_scale",
    "unit_ring",
    "unit_ball_points",
]

#: Largest distance (mm) between the drawn surface and the true cylinder or ball. 10 um is
#: a quarter of a typical laser-powder-bed layer (30-60 um) and spot radius, so the facets
#: are below what a printer can resolve, while a 0.3 mm strut needs only 9-10 segments.
CHORD_TOL = 0.01
#: Fewest segments around a strut: below 8 a thin strut turns into a visibly square bar.
MIN_SEGMENTS = 8
#: Most segments around a strut: caps the triangle count for very thick struts.
MAX_SEGMENTS = 64


def segments_for_radius(radius, tol: float = CHORD_TOL) -> np.ndarray:
    """Segment count per radius so that the chord error stays below ``tol``.

    Parameters
    ----------
    radius : array_like of float, mm
    tol : float, mm

    Returns
    -------
    ndarray of int64, same shape as ``radius``, in ``[MIN_SEGMENTS, MAX_SEGMENTS]``.
    """
    r = np.asarray(radius, dtype=np.float64)
    ratio = np.clip(tol / np.maximum(r, 1e-300), 0.0, 1.0)
    with np.errstate(divide="ignore"):
        n = np.ceil(np.pi / np.arccos(1.0 - ratio))
    n = np.where(np.isfinite(n), n, MAX_SEGMENTS)
    return np.clip(n, MIN_SEGMENTS, MAX_SEGMENTS).astype(np.int64)


def area_scale(n) -> np.ndarray:
    """Factor on the circumradius of a regular ``n``-gon that makes its area ``pi r^2``.

    ``sqrt(2 pi / (n sin(2 pi / n)))``; 1.034 for n = 10, 1.008 for n = 20.
    """
    n = np.asarray(n, dtype=np.float64)
    return np.sqrt(2.0 * np.pi / (n * np.sin(2.0 * np.pi / n)))


@cache
def unit_ring(n: int) -> np.ndarray:
    """Unit circle polygon, shape (n, 2): ``(cos phi_k, sin phi_k)``, ``phi_k = 2 pi k / n``."""
    phi = 2.0 * np.pi * np.arange(n) / n
    out = np.stack([np.cos(phi), np.sin(phi)], axis=1)
    out.setflags(write=False)
    return out


@cache
def unit_ball_points(n: int) -> np.ndarray:
    """Points of a latitude-longitude unit sphere with ``n`` segments per great circle.

    Two poles plus ``n // 2 - 1`` rings of ``n`` points (the rings are rotated by half a
    segment from one to the next so the hull triangles stay well shaped). Shape (P, 3),
    all on the unit sphere.
    """
    n_lat = max(n // 2, 2)
    pts = [np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])]
    for i in range(1, n_lat):
        theta = np.pi * i / n_lat
        phi = 2.0 * np.pi * (np.arange(n) + 0.5 * (i % 2)) / n
        ring = np.stack(
            [np.sin(theta) * np.cos(phi), np.sin(theta) * np.sin(phi), np.full(n, np.cos(theta))], axis=1
        )
        pts.append(ring)
    out = np.concatenate(pts)
    out.setflags(write=False)
    return out
