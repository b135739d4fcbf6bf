"""Printability of a spinodoid cell: how much of its solid is thinner than the printer makes.

A spinodoid has no struts with a diameter to compare with ``min_strut_diameter``; its features
are sheets and ligaments of varying thickness. The measure used here is the morphological
opening of the periodic voxel solid by a ball of that diameter: solid the ball cannot reach
while staying inside the solid is thinner than the printer minimum (the local-thickness
definition of Hildebrand and Ruegsegger). The fraction of the solid volume it holds is reported
per control point; the resolution is the cell's voxel (cell_size / 32 by default), so features
within a voxel of the minimum are counted either way (a plate ``t`` voxels thick is printable
for a minimum under ``t - 1`` voxels and thin above ``t``).
"""

from __future__ import annotations

import math

import numpy as np

from ..validation import check_positive

__all__ = ["THIN_WARN", "thin_fraction"]

#: Share of a cell's solid volume thinner than the printer minimum above which a build warns
#: (a few voxels of a cell are always at the limit where two ligaments meet at a saddle).
THIN_WARN = 0.01
#: Half a voxel: a voxel centre lies half a voxel inside the voxel's faces.
_HALF = 0.5


def thin_fraction(solid: np.ndarray, voxel_size: float, min_feature: float) -> float:
    """Volume fraction of a periodic voxel solid that a ball of diameter ``min_feature`` cannot reach.

    Parameters
    ----------
    solid : ndarray of bool, shape (n1, n2, n3)
        The cell's solid voxels, periodic in all three directions.
    voxel_size : float
        Edge of a voxel in mm.
    min_feature : float
        Smallest feature the printer makes, in mm (``min_strut_diameter``).

    Returns
    -------
    float
        In [0, 1]; 0 for an empty solid or ``min_feature == 0``.

    Examples
    --------
    A periodic plate 6 voxels (0.6 mm) thick is printable at 0.4 mm and not at 0.8 mm:

    >>> import numpy as np
    >>> plate = np.zeros((16, 4, 4), dtype=bool); plate[5:11] = True
    >>> thin_fraction(plate, 0.1, 0.4), thin_fraction(plate, 0.1, 0.8)
    (0.0, 1.0)
    """
    from scipy.ndimage import distance_transform_edt

    check_positive("voxel_size", voxel_size)
    solid = np.asarray(solid, dtype=bool)
    n = int(solid.sum())
    if n == 0 or min_feature <= 0:
        return 0.0
    r = 0.5 * float(min_feature) / float(voxel_size)  # ball radius in voxels
    pad = int(math.ceil(r)) + 2
    s = np.pad(solid, pad, mode="wrap")
    # centres (voxel centres) of balls of radius r that fit in the solid: farther than r from the
    # boundary of every void voxel (its centre is half a voxel further)
    core = distance_transform_edt(s) > r + _HALF
    # the opening: every voxel within r of such a centre, with the half voxel that discrete
    # centres lose against continuous ones
    reached = distance_transform_edt(~core) <= r + _HALF if core.any() else np.zeros_like(core)
    inner = (slice(pad, -pad),) * 3
    thin = solid & ~reached[inner]
    return float(thin.sum()) / n
