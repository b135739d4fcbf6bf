"""Connected components of a periodic voxel solid, and which of them percolate.

A periodic solid is a torus: a component *percolates* when it connects to its own periodic
image, i.e. it winds around the cell. Components that do not are islands of the tessellated
material (they carry no load and cannot be printed). Voxels count as connected through shared
faces only: hexahedral elements that share just an edge or a corner form a hinge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["ConnectivityReport", "periodic_components", "keep_percolating"]

_FACES = ndimage.generate_binary_structure(3, 1)


@dataclass(frozen=True)
class ConnectivityReport:
    """What :func:`keep_percolating` found and removed.

    Attributes
    ----------
    n_components : int
        Periodic face-connected components of the solid given.
    n_removed : int
        Components removed (those that do not wind around the cell).
    removed_fraction : float
        Removed voxels over all voxels (a density, like rho).
    winding_rank : int
        Number of independent directions (0-3) in which the kept solid connects to its own
        periodic images; 3 for a solid that carries load in every direction.
    n_kept : int
        Percolating components kept (normally 1).
    """

    n_components: int
    n_removed: int
    removed_fraction: float
    winding_rank: int
    n_kept: int

    @property
    def fully_connected(self) -> bool:
        """One kept component, connected to its images along all three axes."""
        return self.n_kept == 1 and self.winding_rank == 3


def periodic_components(solid: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Face-connected components of a periodic solid and their winding ranks.

    Parameters
    ----------
    solid : ndarray of bool, shape (n1, n2, n3)

    Returns
    -------
    labels : ndarray of int, shape (n1, n2, n3)
        0 for void, 1..K for the periodic components.
    ranks : list of int, length K
        Winding rank (0-3) of each component: 0 for an island.
    """
    solid = np.asarray(solid, dtype=bool)
    labels, k = ndimage.label(solid, structure=_FACES)
    parent = np.arange(k + 1)
    offset = np.zeros((k + 1, 3), dtype=np.int64)  # position of a label relative to its parent
    windings: dict[int, list[np.ndarray]] = {}

    def find(a: int) -> tuple[int, np.ndarray]:
        off = np.zeros(3, dtype=np.int64)
        while parent[a] != a:
            off += offset[a]
            a = parent[a]
        return a, off

    for axis in range(3):
        hi = np.take(labels, -1, axis=axis).reshape(-1)
        lo = np.take(labels, 0, axis=axis).reshape(-1)
        pairs = np.unique(np.stack([hi, lo], axis=1)[(hi > 0) & (lo > 0)], axis=0)
        step = np.zeros(3, dtype=np.int64)
        step[axis] = 1
        for a, b in pairs:
            # the image of b across the face sits one cell further along `axis` than a's copy
            ra, oa = find(int(a))
            rb, ob = find(int(b))
            if ra != rb:
                parent[rb] = ra
                offset[rb] = oa + step - ob
                windings.setdefault(ra, []).extend(windings.pop(rb, []))
            else:
                w = oa + step - ob
                if np.any(w):
                    windings.setdefault(ra, []).append(w)
    roots = np.array([find(a)[0] for a in range(k + 1)])
    uniq, inverse = np.unique(roots[1:], return_inverse=True)
    remap = np.zeros(k + 1, dtype=np.int64)
    remap[1:] = inverse + 1
    ranks = [int(np.linalg.matrix_rank(np.array(windings[r]))) if windings.get(r) else 0 for r in uniq]
    return remap[labels], ranks


def keep_percolating(solid: np.ndarray) -> tuple[np.ndarray, ConnectivityReport]:
    """Remove the islands of a periodic solid: keep the components that wind around the cell.

    Parameters
    ----------
    solid : ndarray of bool, shape (n1, n2, n3)

    Returns
    -------
    kept : ndarray of bool, shape (n1, n2, n3)
    report : ConnectivityReport
    """
    solid = np.asarray(solid, dtype=bool)
    labels, ranks = periodic_components(solid)
    keep_ids = [i + 1 for i, r in enumerate(ranks) if r > 0]
    kept = np.isin(labels, keep_ids)
    if keep_ids:
        all_w = max(ranks[i - 1] for i in keep_ids)
    else:
        all_w = 0
    report = ConnectivityReport(
        n_components=len(ranks),
        n_removed=len(ranks) - len(keep_ids),
        removed_fraction=float((solid & ~kept).mean()),
        winding_rank=int(all_w),
        n_kept=len(keep_ids),
    )
    return kept, report
