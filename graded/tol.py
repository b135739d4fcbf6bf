"""Every tolerance of the geometry and validation code, named once with its reason.

Numbers are relative to the reference unit cube (edge 1) unless stated.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tolerances", "TOL"]


@dataclass(frozen=True)
class Tolerances:
    #: Two reference-cube points closer than this are the same node. The published
    #: coordinates are multiples of 1/12 at worst, so anything below ~1e-3 separates
    #: distinct nodes; 1e-9 leaves room for round-off of splitting arithmetic.
    merge: float = 1e-9
    #: A point this close to a segment (relative to cube edge) lies on it. Used when
    #: splitting crossing and collinear struts.
    on_segment: float = 1e-9
    #: Rotation matrices: max |R^T R - I| accepted from users (files print ~6 digits).
    rotation: float = 1e-5
    #: Relative symmetry defect max|C - C^T| / max|C| tolerated in a stiffness matrix.
    symmetry: float = 1e-8
    #: Smallest eigenvalue / largest eigenvalue below which a stiffness is not positive
    #: definite (round-off of FE results sits near 1e-14).
    positive_definite: float = 1e-12
    #: |det F| of an affine cell map below this (cube volume 1) is singular.
    singular_map: float = 1e-9
    #: Stiffness entries below this fraction of the largest |C_ij| are FE round-off (a
    #: periodic beam solve leaves 1e-16 to 1e-14 relative where the value is exactly 0) and
    #: are shown as 0.
    stiffness_roundoff: float = 1e-10


TOL = Tolerances()
