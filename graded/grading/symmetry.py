"""Equivalent cells: the same struts in space, written with another basis.

A cell's struts sit at reference positions ``xi`` in the unit cube and at ``A xi`` in space
(``A = L R2 V R1 U``, columns the translation vectors). A rotation ``G`` of the cube (a signed
permutation matrix with ``det G = +1``) that maps the cell's periodic strut set onto itself,
up to whole-cell shifts, is a symmetry of the topology: with the basis ``A G`` the struts are
the same ones in space. Since ``U G = G (G^T U G)`` with ``G^T U G`` diagonal,

    A G = L R2 V (R1 G) U',      U' = G^T diag(U) G   (U's stretches permuted),

so the equivalent cell is a cell of the design space: same topology and rho, ``R1 -> R1 G``,
``U`` permuted. It has the same stiffness and strut diameter as the cell it re-expresses.

The phase fields follow the blend of the control points' bases (:mod:`graded.grading.field`),
and which of a cell's equivalent bases enters the blend decides how far the blend turns and
stretches between the points: two cubic cells turned 90 degrees about an axis are one lattice,
but blended as given they ask the phase map to turn the lattice by 90 degrees across the
transition, which it can follow only partly (the blend's reciprocal basis is far from a
gradient). :func:`realignments` ranks the combinations of equivalent bases by the *misfit* of
the blend -- summed over pairs of points, the squared angle (radians) between the rotations of
their polar decompositions plus the squared Frobenius distance of their log-stretches -- so the
grading can blend the closest ones where the cells as given cannot be followed
(:func:`graded.grading.pipeline.prepare_cells`).
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

from ..tol import TOL
from ..topology import Topology, reference_graph, validate_parts
from ..unitcell import UnitCell
from .field import polar_parts

__all__ = ["CUBE_ROTATIONS", "MAX_COMBINATIONS", "Realignment", "blend_misfit", "equivalent_cell",
           "realignments", "topology_symmetries"]



def _cube_rotations() -> np.ndarray:
    out = []
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            G = np.zeros((3, 3), dtype=np.int64)
            G[np.arange(3), perm] = signs
            if round(np.linalg.det(G)) == 1:
                out.append(G)
    return np.stack(out)  # the identity first: permutation (0, 1, 2), signs (1, 1, 1)


#: The 24 rotations of the cube, as signed permutation matrices (the identity first).
CUBE_ROTATIONS = _cube_rotations()
#: Combinations of equivalent bases searched exhaustively (24^4: four cubic cells); above it
#: the search improves one point at a time from the cells as given.
MAX_COMBINATIONS = 400_000


@functools.lru_cache(maxsize=256)
def _symmetries(parts: tuple) -> np.ndarray:
    g = reference_graph(parts).periodic
    a = g.nodes[g.bonds[:, 0]]
    b = g.nodes[g.bonds[:, 1]] + g.offsets

    def struts(a: np.ndarray, b: np.ndarray) -> set:
        # integer coordinates on the merge grid; each strut shifted by whole cells so that one
        # end lies in [0, 1), both orders, the smaller key kept: a periodic strut, once
        period = int(round(1.0 / TOL.merge))
        qa = np.rint(a / TOL.merge).astype(np.int64)
        qb = np.rint(b / TOL.merge).astype(np.int64)
        sa = np.floor_divide(qa, period) * period
        sb = np.floor_divide(qb, period) * period
        k1 = np.concatenate([qa - sa, qb - sa], axis=1)
        k2 = np.concatenate([qb - sb, qa - sb], axis=1)
        keys = np.where((_lex_less(k1, k2))[:, None], k1, k2)
        return set(map(tuple, keys.tolist()))

    own = struts(a, b)
    keep = [G for G in CUBE_ROTATIONS if struts(a @ G.T, b @ G.T) == own]
    return np.array(keep, dtype=np.int64)


def _lex_less(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise ``x < y`` in lexicographic order, (n, m) integer arrays -> (n,) bool."""
    diff = x != y
    first = np.argmax(diff, axis=1)
    rows = np.arange(len(x))
    return diff[rows, first] & (x[rows, first] < y[rows, first])


def topology_symmetries(topology: Topology | str) -> np.ndarray:
    """The rotations of the cube that map a topology's periodic struts onto themselves.

    Parameters
    ----------
    topology : str or sequence of (tessellation, id)

    Returns
    -------
    ndarray, shape (m, 3, 3), int64
        Signed permutation matrices ``G`` (``det G = 1``), the identity first; m divides 24
        (24 for the cubic elementary topologies, fewer for the others and most superpositions).
    """
    from ..topology import parse_topology

    parts = parse_topology(topology) if isinstance(topology, str) else validate_parts(topology)
    return _symmetries(tuple(sorted(parts)))


def equivalent_cell(cell: UnitCell, G: np.ndarray) -> UnitCell:
    """The cell with basis ``cell.basis @ G``: the same struts in space when ``G`` is a
    symmetry of its topology (:func:`topology_symmetries`; module docstring).

    Parameters
    ----------
    cell : UnitCell
    G : array_like, shape (3, 3)
        A signed permutation matrix with determinant +1.

    Returns
    -------
    UnitCell
        Same topology, rho, V and R2; ``R1 @ G`` and the stretches of U permuted.
    """
    G = np.asarray(G, dtype=np.float64)
    U = np.diag(G.T @ np.diag(cell.U) @ G).copy()
    return UnitCell(cell.topology, cell.rho, U=U, V=cell.V, R1=cell.R1 @ G, R2=cell.R2, strict=cell.strict)


def _rotation_angle(R: np.ndarray) -> np.ndarray:
    c = (np.trace(R, axis1=-2, axis2=-1) - 1.0) / 2.0
    return np.arccos(np.clip(c, -1.0, 1.0))


def _pair_misfits(bases: list[np.ndarray]) -> dict:
    """(i, j) -> (n_i, n_j) misfit of every pair of the points' candidate bases (n_i, 3, 3)."""
    parts = [polar_parts(b) for b in bases]
    out = {}
    for i, j in itertools.combinations(range(len(bases)), 2):
        (Ri, Li), (Rj, Lj) = parts[i], parts[j]
        angle = _rotation_angle(np.einsum("aji,bjk->abik", Ri, Rj))
        stretch = np.linalg.norm(Li[:, None] - Lj[None], axis=(-2, -1))
        out[i, j] = angle**2 + stretch**2
    return out


def blend_misfit(bases: np.ndarray) -> float:
    """The misfit (module docstring) of the control points' bases (k, 3, 3) as they are."""
    b = np.asarray(bases, dtype=np.float64)
    return float(sum(m[0, 0] for m in _pair_misfits([x[None] for x in b]).values()))


def realignments(cells: list[UnitCell], limit: int) -> list[tuple[float, np.ndarray]]:
    """Combinations of equivalent bases of the cells, least misfit first.

    Parameters
    ----------
    cells : list of UnitCell
        The control points' cells (their ``basis``; the cell size scales every basis alike).
    limit : int
        Combinations returned at most.

    Returns
    -------
    list of (misfit, symmetries)
        ``symmetries`` (k, 3, 3) int64: ``G_i`` of every cell (the identity where the cell is
        kept as given). Only combinations with less misfit than the cells as given, and
        never the cells as given themselves.
    """
    groups = [topology_symmetries(c.topology) for c in cells]
    k = len(cells)
    if k < 2:
        return []
    misfit = _pair_misfits([c.basis @ g for c, g in zip(cells, groups)])
    given = sum(m[0, 0] for m in misfit.values())
    sizes = [len(g) for g in groups]
    if int(np.prod(sizes)) <= MAX_COMBINATIONS:
        total = np.zeros(sizes)
        for (i, j), m in misfit.items():
            shape = [1] * k
            shape[i], shape[j] = sizes[i], sizes[j]
            total = total + m.reshape(shape)
        flat = np.round(total.reshape(-1), 12)  # equal misfits: the earlier (fewer changes) first
        order = np.argsort(flat, kind="stable")
        picks = [np.unravel_index(n, sizes) for n in order[: int(limit) + 1]]
        scored = [(float(flat[n]), p) for n, p in zip(order, picks)]
    else:
        scored = [_descend(misfit, sizes)]
    out = []
    for value, pick in scored:
        if all(int(p) == 0 for p in pick) or value >= given - 1e-12:
            continue
        out.append((value, np.stack([groups[i][int(p)] for i, p in enumerate(pick)])))
    return out[: int(limit)]


def _descend(misfit: dict, sizes: list[int]) -> tuple[float, tuple]:
    """Coordinate descent from the cells as given: each point's best basis given the others."""
    pick = [0] * len(sizes)

    def cost(p) -> float:
        return float(sum(m[p[i], p[j]] for (i, j), m in misfit.items()))

    best = cost(pick)
    improved = True
    while improved:
        improved = False
        for i, n in enumerate(sizes):
            for a in range(n):
                trial = pick[:i] + [a] + pick[i + 1:]
                c = cost(trial)
                if c < best - 1e-12:
                    best, pick, improved = c, trial, True
    return best, tuple(pick)


@dataclass(frozen=True)
class Realignment:
    """The fallback :func:`graded.grading.pipeline.prepare_cells` took: equivalent cells.

    Attributes
    ----------
    symmetries : ndarray, shape (k, 3, 3), int64
        ``G_i`` per control point: the built basis is ``A_i G_i`` (identity: as given).
    misfit_given, misfit_built : float
        Misfit (module docstring) of the bases as given and as blended.
    tries : int
        Combinations solved until one could be followed.
    reason : str
        Why the cells as given were not built (the phase-map check's message).
    """

    symmetries: np.ndarray
    misfit_given: float
    misfit_built: float
    tries: int
    reason: str

    @property
    def changed(self) -> list[int]:
        """Indices of the control points whose cell is re-expressed."""
        eye = np.eye(3, dtype=np.int64)
        return [i for i, G in enumerate(self.symmetries) if not np.array_equal(G, eye)]

    def then(self, other: Realignment | None) -> Realignment:
        """This realignment followed by ``other`` (a later rebuild of the re-expressed cells)."""
        if other is None:
            return self
        return Realignment(self.symmetries @ other.symmetries, self.misfit_given, other.misfit_built,
                           self.tries + other.tries, self.reason)

    def to_dict(self) -> dict:
        return {"kind": "equivalent cells", "points": self.changed,
                "symmetries": self.symmetries.tolist(), "misfit_given": self.misfit_given,
                "misfit_built": self.misfit_built, "tries": self.tries, "reason": self.reason}
