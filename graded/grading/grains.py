"""Grains: a lattice built in regions, each with phase fields of its own, joined at their boundaries.

One phase map ``phi(x)`` can build a lattice whose basis turns only as fast as a gradient
field allows: two cells turned far apart a few cells from each other ask for a blend that
no map follows (it folds over), whatever equivalent orientation the cells are written in
(:mod:`graded.grading.symmetry`). Crystals meet the same limit and answer it with grain
boundaries; so does this module. The control points are split into *groups*; each group is
graded smoothly by its own blend and phase fields, over its own region, and neighbouring
regions are joined across the boundary by struts:

* **Regions.** ``x`` belongs to the group of its nearest control point (the Voronoi cells
  of the points, merged per group). The interpolating blend's transitions lie on the same
  bisector planes, so within a group nothing changes, and every control point keeps its
  own cell exactly (its plateau lies in its own region).
* **Lattices.** Each group's lattice is assembled with the body's inside test narrowed to its
  region (:func:`graded.grading.assemble.assemble_graph`): struts that cross the boundary
  are dropped as they are at the body's surface.
* **Joints** (:func:`join_grains`). Of two neighbouring lattices, the one with fewer nodes
  that lost a strut at the boundary (and lie within one strut length of it) is the coarser;
  each of those nodes is linked to the nearest such node of the other lattice, if that one is
  within :data:`JOIN_REACH` of the longer of the two lattices' struts; nodes closer than the
  merge tolerance are merged instead. So a joint replaces a
  strut that the boundary cut. A joint strut has the mean diameter of the struts at its two
  ends, so it is at least as printable as they are.

The boundary is a defect of the lattice as it is of a crystal: its stiffness is not any
cell's, and the report says where the grains meet. :func:`graded.grading.pipeline.prepare_cells`
falls back to grains only where the whole blend cannot be followed, with the fewest groups
it can find.

:class:`GrainedField` and :class:`GrainedPhase` stand in for the blend
(:class:`graded.grading.field.GradingField`) and the phase fields
(:class:`graded.fem.phase.PhaseField`) of a single-region build: each evaluates at ``x``
the group whose region holds ``x``, so the as-built local cell, the closed loop and the
as-built map work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..fem.phase import PhaseFit
from ..graph import LatticeGraph
from .assemble import drop_unused_nodes

__all__ = ["GrainedField", "GrainedPhase", "JOIN_REACH", "boundary_distance", "join_grains", "nearest_group"]

#: A joint links two nodes at most this many times the longer strut of the two lattices
#: apart: a strut dropped at the boundary leaves its two ends one strut length apart, one
#: on each side, so 1.5 lengths reach across the gap without bridging to far nodes.
JOIN_REACH = 1.5


def nearest_group(x: np.ndarray, points: np.ndarray, group_of: np.ndarray) -> np.ndarray:
    """Group of the nearest control point, shape (N,), int64.

    Parameters
    ----------
    x : ndarray, shape (N, 3)
        Points (mm).
    points : ndarray, shape (k, 3)
        Control points (mm).
    group_of : ndarray, shape (k,), int
        Group of each control point.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    _, i = cKDTree(points).query(x)
    return np.asarray(group_of)[i]


def boundary_distance(x: np.ndarray, points: np.ndarray, group_of: np.ndarray, group: int) -> np.ndarray:
    """Distance (mm) from points of region ``group`` to the nearest bisector plane with another group.

    For ``x`` whose nearest point of the group is ``p_i``, the distance to the bisector plane
    of ``p_i`` and ``p_j`` is ``(|x - p_j|^2 - |x - p_i|^2) / (2 |p_i - p_j|)``; the minimum over
    the points ``p_j`` of other groups bounds the distance to the region's boundary from above
    (equal to it where the nearest piece of the boundary lies on that plane). ``inf`` when no
    other group exists.
    """
    x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
    group_of = np.asarray(group_of)
    own, other = points[group_of == group], points[group_of != group]
    if len(other) == 0:
        return np.full(len(x), np.inf)
    d_own, i = cKDTree(own).query(x)
    pi = own[i]
    d2_other = ((x[:, None, :] - other[None]) ** 2).sum(-1)  # (N, m)
    sep = np.linalg.norm(pi[:, None, :] - other[None], axis=-1)
    return ((d2_other - d_own[:, None] ** 2) / (2.0 * sep)).min(axis=1)


@dataclass(frozen=True)
class GrainedField:
    """The blend of a grained build: each region's own blend, the weights spread to all points.

    Attributes
    ----------
    points : ndarray, shape (k, 3)
        All control points (mm), spec order.
    bases : ndarray, shape (k, 3, 3)
        Their lattice bases (mm).
    group_of : ndarray, shape (k,), int64
        Group of each point.
    groups : tuple of tuple of int
        The points of each group.
    fields : tuple of GradingField
        Each group's blend over its points.
    """

    points: np.ndarray
    bases: np.ndarray
    group_of: np.ndarray
    groups: tuple
    fields: tuple

    def grain_of(self, x: np.ndarray) -> np.ndarray:
        """Region (group index) of each point, shape (N,)."""
        return nearest_group(x, self.points, self.group_of)

    def _per_group(self, x: np.ndarray, fn, shape: tuple) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        g = self.grain_of(x)
        out = np.zeros((len(x),) + shape)
        for k, (idx, f) in enumerate(zip(self.groups, self.fields)):
            sel = g == k
            if sel.any():
                fn(out, sel, idx, f, x[sel])
        return out

    def weights(self, x: np.ndarray) -> np.ndarray:
        """``N_i(x)``, shape (N, k): the region's blend weights, 0 for the points of other groups."""
        def put(out, sel, idx, f, xs):
            out[np.ix_(sel, list(idx))] = f.weights(xs)
        return self._per_group(x, put, (len(self.points),))

    def basis(self, x: np.ndarray) -> np.ndarray:
        """``A(x)``, shape (N, 3, 3): the region's blended basis."""
        def put(out, sel, idx, f, xs):
            out[sel] = f.basis(xs)
        return self._per_group(x, put, (3, 3))

    def inverse_basis(self, x: np.ndarray) -> np.ndarray:
        """``A(x)^-1``, shape (N, 3, 3)."""
        return np.linalg.inv(self.basis(x))

    def reciprocal(self, x: np.ndarray) -> np.ndarray:
        """``K(x) = A(x)^-T``, shape (N, 3, 3)."""
        return np.swapaxes(self.inverse_basis(x), -1, -2)


@dataclass(frozen=True)
class GrainedPhase:
    """The phase fields of a grained build: each region evaluates its own.

    Attributes
    ----------
    field : GrainedField
        Says which region holds a point.
    phases : tuple of PhaseField
        One per group.
    """

    field: GrainedField
    phases: tuple

    def evaluate(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Values (N, 3) and gradients (N, 3, 3) of the region's phase fields at ``x``."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        g = self.field.grain_of(x)
        phi, grad = np.zeros((len(x), 3)), np.zeros((len(x), 3, 3))
        for k, ph in enumerate(self.phases):
            sel = g == k
            if sel.any():
                phi[sel], grad[sel] = ph.evaluate(x[sel])
        return phi, grad

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Values only, shape (N, 3)."""
        return self.evaluate(x)[0]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """Gradients only, shape (N, 3, 3)."""
        return self.evaluate(x)[1]

    @property
    def coeffs(self) -> np.ndarray:
        """All groups' degrees of freedom, stacked, shape (sum of n_dofs, 3)."""
        return np.concatenate([p.coeffs for p in self.phases])

    @property
    def fit(self) -> PhaseFit | None:
        """The groups' fits together: the worst residuals, per-point errors in spec order."""
        fits = [p.fit for p in self.phases]
        if any(f is None for f in fits):
            return None
        k = len(self.field.points)
        grad_err, basis_err = np.full(k, np.nan), np.full(k, np.nan)
        for idx, f in zip(self.field.groups, fits):
            if len(f.point_basis_error) == len(idx):
                grad_err[list(idx)] = f.point_gradient_error
                basis_err[list(idx)] = f.point_basis_error
        return PhaseFit(residual=max(f.residual for f in fits),
                        weighted_residual=max(f.weighted_residual for f in fits),
                        point_gradient_error=grad_err, point_basis_error=basis_err)


def _node_diameter(graph: LatticeGraph) -> np.ndarray:
    """Mean diameter of the struts at each node (mm), shape (n_nodes,)."""
    ends = graph.struts.ravel()
    d = np.repeat(graph.diameters, 2)
    count = np.bincount(ends, minlength=graph.n_nodes)
    return np.bincount(ends, weights=d, minlength=graph.n_nodes) / np.maximum(count, 1)


def join_grains(graphs: list[LatticeGraph], cut: list[np.ndarray], field: GrainedField,
                merge_tol: float) -> tuple[LatticeGraph, int, int]:
    """One graph of the regions' lattices, joined across their boundaries (module docstring).

    Parameters
    ----------
    graphs : list of LatticeGraph
        Each group's lattice, inside its region (mm).
    cut : list of ndarray, shape (n_nodes,), bool
        Per lattice, the nodes that lost a strut at the region's boundary
        (:attr:`graded.grading.assemble.AssemblyStats.cut`).
    field : GrainedField
    merge_tol : float
        Nodes of two lattices closer than this (mm) are merged to their mean.

    Returns
    -------
    graph : LatticeGraph
    joints : int
        Struts added across the boundaries.
    merged : int
        Nodes merged across the boundaries.
    """
    offsets = np.cumsum([0] + [g.n_nodes for g in graphs])
    nodes = np.concatenate([g.nodes for g in graphs])
    struts = np.concatenate([g.struts + o for g, o in zip(graphs, offsets[:-1])])
    diam = np.concatenate([g.diameters for g in graphs])
    node_d = np.concatenate([_node_diameter(g) for g in graphs])
    reach_of = [float(np.linalg.norm(g.nodes[g.struts[:, 1]] - g.nodes[g.struts[:, 0]], axis=1).max())
                if g.n_struts else 0.0 for g in graphs]
    band = []
    for k, g in enumerate(graphs):
        near = cut[k] & (boundary_distance(g.nodes, field.points, field.group_of, k) <= reach_of[k])
        band.append(np.flatnonzero(near) + offsets[k])
    pairs = set()
    for a in range(len(graphs)):
        for b in range(a + 1, len(graphs)):
            ia, ib = band[a], band[b]
            if len(ia) == 0 or len(ib) == 0:
                continue
            reach = JOIN_REACH * max(reach_of[a], reach_of[b])
            # from the side with fewer cut nodes (the coarser lattice), so that no node of it
            # fans out to many fine ones
            src, dst = (ia, ib) if len(ia) <= len(ib) else (ib, ia)
            dist, j = cKDTree(nodes[dst]).query(nodes[src], distance_upper_bound=reach)
            ok = np.isfinite(dist)
            for p, q in zip(src[ok], dst[j[ok]]):
                pairs.add((min(p, q), max(p, q)))
    pairs = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    length = np.linalg.norm(nodes[pairs[:, 1]] - nodes[pairs[:, 0]], axis=1)
    close = length < merge_tol
    # merge coincident nodes across the boundary, link the others
    n = len(nodes)
    merged = 0
    if close.any():
        m = pairs[close]
        ncomp, label = connected_components(coo_matrix((np.ones(len(m)), (m[:, 0], m[:, 1])), shape=(n, n)),
                                            directed=False)
        cnt = np.bincount(label, minlength=ncomp)
        nodes = np.stack([np.bincount(label, weights=nodes[:, a], minlength=ncomp) for a in range(3)], 1) / cnt[:, None]
        node_d = np.bincount(label, weights=node_d, minlength=ncomp) / cnt
        merged = n - ncomp
        struts, pairs = label[struts], label[pairs]
    link = pairs[~close]
    link = link[link[:, 0] != link[:, 1]]
    joints = len(link)
    struts = np.concatenate([struts, link])
    diam = np.concatenate([diam, 0.5 * (node_d[link[:, 0]] + node_d[link[:, 1]])])
    key = np.sort(struts, axis=1)
    _, first = np.unique(key, axis=0, return_index=True)
    first = np.sort(first[key[first, 0] != key[first, 1]])
    struts, diam = struts[first], diam[first]
    nodes, struts, _ = drop_unused_nodes(nodes, struts)
    return LatticeGraph(nodes=nodes, struts=struts, diameters=diam), joints, merged
