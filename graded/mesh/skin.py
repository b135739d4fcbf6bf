"""A closing skin: the shell of the body between its surface and an inward offset.

Implant and housing designers close a lattice with a thin solid wall. The skin of thickness
``t`` is ``body - (body eroded by a ball of radius t)``: the erosion is manifold3d's exact
Minkowski difference with a polyhedral ball, so the skin follows every face, edge and
concave corner of the body. The polyhedral ball is scaled to circumscribe the true ball
(:func:`covering_ball`), so the wall is nowhere thinner than ``t`` (a printable wall stays
printable) and at most the chord tolerance thicker. The lattice is clipped half-way into
the wall (``erode(body, t / 2)``) before the two are united, so no lattice face lies on the
part's outer surface and the outer surface is the body's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import manifold3d as mf
import numpy as np
import trimesh

from ..validation import fail
from .tessellation import CHORD_TOL, MAX_SEGMENTS, segments_for_radius

__all__ = ["Skin", "covering_ball", "skin_shell"]


@dataclass(frozen=True)
class Skin:
    """A closing wall and the surface the lattice is clipped to inside it.

    Attributes
    ----------
    wall : manifold3d.Manifold
        ``body - erode(body, thickness)``.
    clip : manifold3d.Manifold
        ``erode(body, thickness / 2)``: the lattice ends in the middle of the wall, so no face
        of the lattice lies on (or within round-off of) a face of the part's surface.
    thickness : float
        mm.
    """

    wall: mf.Manifold
    clip: mf.Manifold
    thickness: float


def covering_ball(radius: float, chord_tol: float = CHORD_TOL) -> mf.Manifold:
    """A convex polyhedron containing the ball of ``radius`` (mm) and within ``chord_tol`` of it.

    The polyhedron is manifold3d's sphere with the segment count of the chord tolerance,
    scaled so that its nearest face lies at ``radius`` from the centre.
    """
    n = int(segments_for_radius(radius, chord_tol))
    while True:
        ball = mf.Manifold.sphere(radius, n)
        m = ball.to_mesh64()
        v = np.asarray(m.vert_properties, dtype=np.float64)[:, :3]
        tri = v[np.asarray(m.tri_verts, dtype=np.int64)]
        normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        scale = radius / float(np.min(np.einsum("ij,ij->i", normal, tri[:, 0])))
        # the sphere's triangles sag more than its equator's chords: refine until the
        # scaled vertices stay within the tolerance too
        if radius * (scale - 1.0) <= chord_tol or n >= 4 * MAX_SEGMENTS:
            return ball.scale([scale] * 3)
        n += 4


def skin_shell(body: trimesh.Trimesh, thickness: float, chord_tol: float = CHORD_TOL) -> Skin:
    """The wall of ``body`` of ``thickness`` (mm) and the lattice's clip surface inside it.

    Parameters
    ----------
    body : trimesh.Trimesh
        Closed surface of the body, mm.
    thickness : float
        Wall thickness, mm (> 0, less than half the body's smallest extent).
    chord_tol : float
        Largest excess thickness of the wall at curved or convex parts, mm.

    Returns
    -------
    Skin
    """
    from .solid import to_manifold

    t = float(thickness)
    outer = to_manifold(body, "body")
    inner = outer.minkowski_difference(covering_ball(t, chord_tol))
    if inner.is_empty() or inner.volume() <= 0:
        fail("skin.thickness", f"{t:g} mm leaves no inside to fill (the body is thinner than twice the skin)",
             "give a thinner skin or a larger body")
    clip = outer.minkowski_difference(covering_ball(t / 2, chord_tol))
    return Skin(wall=outer - inner, clip=clip, thickness=t)
