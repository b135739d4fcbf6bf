"""Cubic symmetry (point group m-3m) of voxel cells about the cell centre.

A cell is a grid of ``n x n x n`` voxels, voxel ``(i, j, k)`` centred at
``((i + 1/2) / n, (j + 1/2) / n, (k + 1/2) / n)`` in cell units. The 48 operations of the
cube's full symmetry group act on the voxel centres: any permutation of the three axes
combined with any of the mirrors ``i -> n - 1 - i`` (the plane through the cell centre; by
periodicity the cell faces are mirror planes too). For even ``n`` a cubic-symmetric cell is
determined by one octant, ``field[:n//2, :n//2, :n//2]``, and, since the octant is invariant
under the six axis permutations, by the octant's *fundamental domain*: the voxels
``(a, b, c)`` with ``a <= b <= c``, ``h (h + 1) (h + 2) / 6`` of them for ``h = n/2``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..validation import fail

__all__ = [
    "CubicOperation",
    "CUBIC_OPERATIONS",
    "apply_operation",
    "orbit_index",
    "symmetrise",
    "symmetrise_octant",
    "is_cubic_symmetric",
    "octant_of",
    "expand_octant",
    "fundamental_size",
    "fundamental_indices",
    "pack_fundamental",
    "unpack_fundamental",
]


@dataclass(frozen=True)
class CubicOperation:
    """One of the 48 symmetries of the cube acting on a voxel grid.

    Attributes
    ----------
    perm : tuple of int, length 3
        Axis permutation: output axis ``a`` is input axis ``perm[a]`` (as ``numpy.transpose``).
    flip : tuple of bool, length 3
        Mirror ``i -> n - 1 - i`` of output axis ``a`` where ``flip[a]``, applied after the
        permutation.
    """

    perm: tuple[int, int, int]
    flip: tuple[bool, bool, bool]


#: The 48 operations of m-3m: 6 axis permutations times 8 mirror combinations (identity first).
CUBIC_OPERATIONS: tuple[CubicOperation, ...] = tuple(
    CubicOperation(tuple(p), tuple(f))
    for p in itertools.permutations(range(3))
    for f in itertools.product((False, True), repeat=3)
)


def _check_cube(field, name: str = "field", *, even: bool = False) -> np.ndarray:
    arr = np.asarray(field)
    if arr.ndim != 3 or len(set(arr.shape)) != 1 or arr.shape[0] < 1:
        fail(name, f"has shape {arr.shape}, expected (n, n, n)", "give a cubic grid of voxels")
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        fail(name, f"has dtype {arr.dtype}, not bool or numeric", "give a bool solid or a real field")
    if even and arr.shape[0] % 2:
        fail(name, f"has {arr.shape[0]} voxels per edge, an odd number", "give an even n (the octant is n/2 per edge)")
    return arr


def apply_operation(field: np.ndarray, op: CubicOperation) -> np.ndarray:
    """The field carried by one cubic symmetry operation.

    Parameters
    ----------
    field : ndarray, shape (n, n, n), any dtype
    op : CubicOperation

    Returns
    -------
    ndarray, shape (n, n, n), same dtype (a view where possible)
    """
    arr = _check_cube(field)
    out = np.transpose(arr, op.perm)
    axes = tuple(a for a in range(3) if op.flip[a])
    return np.flip(out, axes) if axes else out


@lru_cache(maxsize=32)
def _orbits(n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(n)
    fold = np.minimum(i, n - 1 - i)  # mirror images share a folded index
    h = (n + 1) // 2
    s = np.sort(np.stack(np.meshgrid(fold, fold, fold, indexing="ij")), axis=0)  # and permutations
    key = (s[0] * h + s[1]) * h + s[2]  # increasing in (a, b, c) lexicographically
    _, ids = np.unique(key, return_inverse=True)
    ids = ids.reshape(n, n, n).astype(np.int64)
    sizes = np.bincount(ids.reshape(-1))
    ids.setflags(write=False)
    sizes.setflags(write=False)
    return ids, sizes


def orbit_index(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Orbits of the 48 operations on the voxels of an ``n^3`` cell.

    Parameters
    ----------
    n : int
        Voxels per cell edge (>= 1).

    Returns
    -------
    ids : ndarray of int64, shape (n, n, n), read-only
        Orbit of every voxel, ``0 .. K-1``. Orbits are numbered in lexicographic order of
        their representative ``(a, b, c)``, ``a <= b <= c``, in the first octant, so for even
        ``n`` orbit ``q`` is entry ``q`` of :func:`pack_fundamental`.
    sizes : ndarray of int64, shape (K,), read-only
        Voxels per orbit (8, 24 or 48 for even ``n``).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        fail("n", f"{n!r} is not an integer >= 1", "give the voxels per cell edge")
    return _orbits(int(n))


def symmetrise(field: np.ndarray) -> np.ndarray:
    """Average of a field over the 48 cubic operations.

    Parameters
    ----------
    field : array_like, shape (n, n, n), bool or real

    Returns
    -------
    ndarray of float64, shape (n, n, n)
        ``(1/48) sum_g g(field)``, computed as the mean over each orbit, so the result is
        invariant under every operation exactly (voxels of one orbit hold the same float).
    """
    arr = _check_cube(field).astype(np.float64)
    ids, sizes = _orbits(arr.shape[0])
    means = np.bincount(ids.reshape(-1), weights=arr.reshape(-1), minlength=sizes.size) / sizes
    return means[ids]


def symmetrise_octant(octant: np.ndarray) -> np.ndarray:
    """Average of an octant over the six axis permutations (the octant's own symmetries).

    Parameters
    ----------
    octant : array_like, shape (h, h, h), bool or real

    Returns
    -------
    ndarray of float64, shape (h, h, h)
        Invariant under every axis permutation exactly; :func:`expand_octant` turns it into a
        cubic-symmetric cell of ``2h`` voxels per edge.
    """
    arr = _check_cube(octant, "octant").astype(np.float64)
    h = arr.shape[0]
    ids, _ = _orbits(2 * h)
    ids = ids[:h, :h, :h]
    sizes = np.bincount(ids.reshape(-1))  # 1, 3 or 6: permutations only within the octant
    means = np.bincount(ids.reshape(-1), weights=arr.reshape(-1), minlength=sizes.size) / sizes
    return means[ids]


def is_cubic_symmetric(field: np.ndarray, atol: float = 0.0) -> bool:
    """Whether a field is invariant under all 48 cubic operations.

    Parameters
    ----------
    field : array_like, shape (n, n, n), bool or real
    atol : float
        Largest absolute difference allowed (0: exact equality; ignored for bool).

    Returns
    -------
    bool
        Checked on three generators of the group (a mirror, a transposition and a cyclic
        permutation of the axes), which imply invariance under all 48.
    """
    arr = _check_cube(field)
    images = (np.flip(arr, 0), np.transpose(arr, (1, 0, 2)), np.transpose(arr, (1, 2, 0)))
    if arr.dtype == bool or atol == 0:
        return all(np.array_equal(arr, g) for g in images)
    return all(np.allclose(arr, g, rtol=0.0, atol=atol) for g in images)


def octant_of(field: np.ndarray) -> np.ndarray:
    """The first octant ``field[:n/2, :n/2, :n/2]`` (a copy), which stores a cubic cell.

    Parameters
    ----------
    field : array_like, shape (n, n, n), n even

    Returns
    -------
    ndarray, shape (n/2, n/2, n/2), same dtype
    """
    arr = _check_cube(field, even=True)
    h = arr.shape[0] // 2
    return arr[:h, :h, :h].copy()


def _check_permutation_symmetric(arr: np.ndarray) -> None:
    if not (np.array_equal(arr, arr.transpose(1, 0, 2)) and np.array_equal(arr, arr.transpose(1, 2, 0))):
        fail(
            "octant",
            "is not invariant under the axis permutations, so its mirror images do not form a cubic cell",
            "symmetrise it first with symmetrise_octant",
        )


def expand_octant(octant: np.ndarray) -> np.ndarray:
    """The full cubic cell from one octant, by the mirrors ``i -> n - 1 - i`` of each axis.

    Parameters
    ----------
    octant : array_like, shape (h, h, h), any dtype
        Must be invariant under the six axis permutations (exactly), e.g. the output of
        :func:`symmetrise_octant` or :func:`octant_of` of a cubic cell.

    Returns
    -------
    ndarray, shape (2h, 2h, 2h), same dtype
        Invariant under all 48 operations; ``octant_of`` of it is ``octant``.
    """
    arr = _check_cube(octant, "octant")
    _check_permutation_symmetric(arr)
    h = arr.shape[0]
    idx = np.concatenate([np.arange(h), np.arange(h)[::-1]])
    return arr[np.ix_(idx, idx, idx)]


def fundamental_size(h: int) -> int:
    """Voxels ``(a, b, c)``, ``0 <= a <= b <= c < h``, of the fundamental domain of an ``h^3`` octant."""
    if isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1:
        fail("h", f"{h!r} is not an integer >= 1", "give the voxels per octant edge (n/2)")
    return int(h) * (int(h) + 1) * (int(h) + 2) // 6


@lru_cache(maxsize=32)
def fundamental_indices(h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Octant indices ``(a, b, c)`` (each (F,) int64) of the fundamental domain, in the order of
    :func:`pack_fundamental`."""
    abc = np.array(list(itertools.combinations_with_replacement(range(h), 3)), dtype=np.int64)
    return abc[:, 0], abc[:, 1], abc[:, 2]


def pack_fundamental(octant: np.ndarray) -> np.ndarray:
    """The values of a permutation-symmetric octant on its fundamental domain.

    Parameters
    ----------
    octant : array_like, shape (h, h, h), any dtype
        Invariant under the six axis permutations.

    Returns
    -------
    ndarray, shape (h (h + 1) (h + 2) / 6,), same dtype
        ``octant[a, b, c]`` for ``a <= b <= c`` in lexicographic order.
    """
    arr = _check_cube(octant, "octant")
    _check_permutation_symmetric(arr)
    return arr[fundamental_indices(arr.shape[0])].copy()


def unpack_fundamental(values: np.ndarray, h: int) -> np.ndarray:
    """The permutation-symmetric octant from its fundamental-domain values.

    Parameters
    ----------
    values : array_like, shape (h (h + 1) (h + 2) / 6,), any dtype
        As returned by :func:`pack_fundamental`.
    h : int
        Voxels per octant edge.

    Returns
    -------
    ndarray, shape (h, h, h), dtype of ``values``
    """
    size = fundamental_size(h)
    vals = np.asarray(values)
    if vals.shape != (size,):
        fail("values", f"has shape {vals.shape}, expected ({size},)", f"give the {size} fundamental values of h={h}")
    ids, _ = _orbits(2 * int(h))
    return vals[ids[: int(h), : int(h), : int(h)]]
