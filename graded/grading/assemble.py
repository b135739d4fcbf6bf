"""From placed cells to one clean strut graph (SI Eq. 16 and the clean-up of SI section 5).

Every cell carries the superposed topology of all control points' cells (reference-cube
representation of :func:`graded.topology.reference_graph`). The steps:

1. nodes of every cell through the inverse phase map (shared nodes solved once), struts
   re-pointed to them, duplicate struts of shared faces dropped;
2. clip to the body: a strut stays if both its nodes are inside;
3. merge near-coincident nodes (closer than :data:`MERGE_FRACTION` of a cell edge) to
   their mean position with ``scipy.spatial.cKDTree``, re-point struts, drop duplicates;
4. diameters ``d_s(x) = sum_i d_i^s N(x, x_i)`` at strut midpoints (SI Eq. 16), where
   ``d_i^s`` is cell i's diameter if strut s lies on cell i's topology and 0 otherwise;
   struts thinner than the printable minimum (or negligibly thin, :data:`NEGLIGIBLE`)
   are dropped;
5. dangling struts pruned (the 2-core of the graph) and islands removed: only the largest
   connected component is kept (a printed part must be one piece);
6. nodes that lost struts in step 4 and now just join two collinear struts (a crossing
   whose other strut vanished) are dissolved: the chain becomes one strut whose diameter
   is the length-weighted mean, so no spurious short struts remain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..graph import LatticeGraph
from .placement import CellPlacement, place_nodes

__all__ = ["assemble_graph", "AssemblyStats", "MERGE_FRACTION", "largest_component", "NEGLIGIBLE", "COLLINEAR_COS",
           "strut_membership", "blended_diameters", "drop_unused_nodes"]

#: Nodes closer than this fraction of the built cell edge are one node. Nodes placed
#: through the inverse phase map coincide exactly; distinct reference nodes are >= 1/12
#: of a cell apart, so 1e-3 merges only near-coincident nodes (SI section 5).
MERGE_FRACTION = 1e-3
#: Struts whose blended diameter is below this fraction of the largest diameter they have
#: at any control point only exist in the tails of the Gaussian weights (their axial
#: stiffness, ~d^2, is below 1e-4 of the full strut's): dropped even without a printable
#: minimum.
NEGLIGIBLE = 1e-2
#: Most dropped struts whose midpoints are kept for the report (an even subsample beyond):
#: enough to show where the printer minimum bites without making report.json large.
MAX_LOCATED = 500
#: Two struts at a dissolvable node are collinear if the cosine of the angle between
#: them is below -COLLINEAR_COS (about 1.8 degrees off straight).
COLLINEAR_COS = 0.9995


@dataclass
class AssemblyStats:
    """Counts after each step (JSON-ready), and where thin struts were dropped.

    ``thin_at`` (K, 3) holds the midpoints (mm) of the struts dropped as thin, an even
    subsample of at most :data:`MAX_LOCATED`.
    """

    cells: int = 0
    nodes_placed: int = 0
    struts_placed: int = 0
    struts_in_body: int = 0
    nodes_merged: int = 0
    struts_negligible: int = 0
    struts_thin: int = 0
    struts_dangling: int = 0
    struts_islands: int = 0
    nodes_dissolved: int = 0
    newton_failures: int = 0
    thin_at: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    extra: dict = field(default_factory=dict)
    #: Nodes of the graph that lost a strut at the boundary of the region (body or grain), bool.
    cut: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))


def strut_membership(ref_membership: np.ndarray, parts: tuple, cell_topologies: list[tuple]) -> np.ndarray:
    """``member[s, i]``: strut s of the superposed reference graph lies on cell i's topology.

    Parameters
    ----------
    ref_membership : ndarray, shape (S, P), bool
        Membership of the superposed reference graph in its ``parts``.
    parts : tuple of (tessellation, id)
    cell_topologies : list of tuple of (tessellation, id)
    """
    cols = {p: c for c, p in enumerate(parts)}
    out = np.zeros((len(ref_membership), len(cell_topologies)), dtype=bool)
    for i, top in enumerate(cell_topologies):
        out[:, i] = ref_membership[:, [cols[p] for p in top]].any(axis=1)
    return out


def blended_diameters(weights: np.ndarray, member: np.ndarray, cell_diameters: np.ndarray) -> np.ndarray:
    """SI Eq. 16: ``d = sum_i N_i d_i [s in cell i]`` for weights (M, k) and member (M, k)."""
    return np.einsum("mk,mk,k->m", weights, member.astype(np.float64), np.asarray(cell_diameters, dtype=np.float64))


def _dedupe(struts: np.ndarray) -> np.ndarray:
    """Index of the first occurrence of each undirected strut, and no self-loops."""
    key = np.sort(struts, axis=1)
    ok = np.flatnonzero(key[:, 0] != key[:, 1])
    _, first = np.unique(key[ok], axis=0, return_index=True)
    return ok[np.sort(first)]


def _degree(struts: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(struts.ravel(), minlength=n)


def _two_core(struts: np.ndarray, n: int) -> np.ndarray:
    """Mask of struts in the 2-core (repeatedly remove struts at degree-1 nodes)."""
    keep = np.ones(len(struts), dtype=bool)
    while True:
        deg = _degree(struts[keep], n)
        bad = keep & ((deg[struts[:, 0]] < 2) | (deg[struts[:, 1]] < 2))
        if not bad.any():
            return keep
        keep &= ~bad


def drop_unused_nodes(nodes: np.ndarray, struts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop the nodes no strut uses and renumber the struts.

    Parameters
    ----------
    nodes : (n, 3) float64 array
    struts : (m, 2) int array of node indices

    Returns
    -------
    nodes : (k, 3) float64 array
        The used nodes, in their original order.
    struts : (m, 2) int64 array
        The struts, pointing into the kept nodes.
    used : (k,) int64 array
        Index of each kept node in the input (to carry per-node data along).

    Examples
    --------
    >>> import numpy as np
    >>> nodes, struts, used = drop_unused_nodes(np.eye(3) * [1, 2, 3], np.array([[2, 0]]))
    >>> struts.tolist(), used.tolist()
    ([[1, 0]], [0, 2])
    """
    used = np.unique(struts)
    remap = np.full(len(nodes), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    return nodes[used], remap[struts].reshape(-1, 2), used


def largest_component(struts: np.ndarray, n: int) -> np.ndarray:
    if len(struts) == 0:
        return np.zeros(0, dtype=bool)
    a = coo_matrix((np.ones(len(struts)), (struts[:, 0], struts[:, 1])), shape=(n, n))
    _, label = connected_components(a, directed=False)
    lab = label[struts[:, 0]]
    counts = np.bincount(lab)
    return lab == np.argmax(counts)


def _dissolve(nodes: np.ndarray, struts: np.ndarray, diam: np.ndarray, candidates: np.ndarray):
    """Join chains of struts through degree-2 candidate nodes where they are collinear."""
    n = len(nodes)
    deg = _degree(struts, n)
    cand = np.zeros(n, dtype=bool)
    cand[candidates] = True
    cand &= deg == 2
    if not cand.any():
        return struts, diam, 0
    # the two struts at each candidate node
    ends = np.concatenate([struts[:, 0], struts[:, 1]])
    sid = np.concatenate([np.arange(len(struts))] * 2)
    other = np.concatenate([struts[:, 1], struts[:, 0]])
    sel = cand[ends]
    order = np.argsort(ends[sel], kind="stable")
    e, s, o = ends[sel][order], sid[sel][order], other[sel][order]
    e2, s2, o2 = e.reshape(-1, 2), s.reshape(-1, 2), o.reshape(-1, 2)
    v1 = nodes[o2[:, 0]] - nodes[e2[:, 0]]
    v2 = nodes[o2[:, 1]] - nodes[e2[:, 0]]
    cos = np.einsum("ij,ij->i", v1, v2) / (np.linalg.norm(v1, axis=1) * np.linalg.norm(v2, axis=1))
    straight = cos < -COLLINEAR_COS
    if not straight.any():
        return struts, diam, 0
    dissolved = np.zeros(n, dtype=bool)
    dissolved[e2[straight, 0]] = True
    # struts joined through dissolved nodes form chains: connected components of struts
    m = len(struts)
    link = s2[straight]
    g = coo_matrix((np.ones(len(link)), (link[:, 0], link[:, 1])), shape=(m, m))
    nchain, chain = connected_components(g, directed=False)
    length = np.linalg.norm(nodes[struts[:, 1]] - nodes[struts[:, 0]], axis=1)
    tot_len = np.bincount(chain, weights=length, minlength=nchain)
    new_d = np.bincount(chain, weights=length * diam, minlength=nchain) / tot_len
    # chain end points: strut ends that are not dissolved (each chain has exactly two,
    # unless it is a closed loop of dissolved nodes, which a straight chain cannot be)
    end_node = np.concatenate([struts[:, 0], struts[:, 1]])
    end_chain = np.concatenate([chain, chain])
    keep_end = ~dissolved[end_node]
    ec, en = end_chain[keep_end], end_node[keep_end]
    order = np.argsort(ec, kind="stable")
    ec, en = ec[order], en[order]
    good = np.bincount(ec, minlength=nchain) == 2  # a closed loop would have no ends
    pairs = en[good[ec]].reshape(-1, 2)  # chains in ascending order, two ends each
    bad = ~good[chain]
    out_struts = np.concatenate([pairs, struts[bad]])
    out_diam = np.concatenate([new_d[good], diam[bad]])
    n_dissolved = int(dissolved.sum()) - int(np.unique(struts[bad].ravel()[dissolved[struts[bad].ravel()]]).size)
    return out_struts, out_diam, n_dissolved


def assemble_graph(
    phase,
    mu: float,
    cells: CellPlacement,
    ref_nodes: np.ndarray,
    ref_struts: np.ndarray,
    member: np.ndarray,
    weights_fn,
    cell_diameters: np.ndarray,
    contains_fn,
    *,
    cell_edge: float,
    min_diameter: float = 0.0,
    progress=None,
) -> tuple[LatticeGraph, AssemblyStats]:
    """Build the graded strut graph.

    Parameters
    ----------
    phase : graded.fem.PhaseField
    mu : float
    cells : CellPlacement
    ref_nodes : ndarray, shape (R, 3)
        Superposed reference-cube nodes.
    ref_struts : ndarray, shape (S, 2)
    member : ndarray, shape (S, k), bool
        Strut s lies on control point i's topology.
    weights_fn : callable
        ``weights_fn(x (N, 3)) -> (N, k)`` RBF weights (SI Eq. 14).
    cell_diameters : ndarray, shape (k,)
        Strut diameter of each control point's cell (mm).
    contains_fn : callable
        ``contains_fn(x (N, 3)) -> (N,) bool`` inside test of the body.
    cell_edge : float
        Built cell edge (mm), the scale of the merge tolerance.
    min_diameter : float
        Printable minimum strut diameter (mm).

    Returns
    -------
    graph : LatticeGraph
    stats : AssemblyStats
    """
    stats = AssemblyStats(cells=len(cells.index))
    step = (lambda k, msg: progress(k, 6, msg)) if progress else (lambda k, msg: None)

    # 1. nodes and struts of all cells
    nodes, node_of, ok = place_nodes(phase, mu, cells, ref_nodes)
    stats.nodes_placed = len(nodes)
    stats.newton_failures = int((~ok).sum())
    ns = len(ref_struts)
    struts = node_of[:, ref_struts].reshape(-1, 2)
    stype = np.tile(np.arange(ns), len(cells.index))
    keep = _dedupe(struts)
    struts, stype = struts[keep], stype[keep]
    stats.struts_placed = len(struts)
    step(2, "nodes placed")

    # 2. clip to the body (and drop anything hanging on an unconverged node)
    inside = contains_fn(nodes) & ok
    keep = inside[struts[:, 0]] & inside[struts[:, 1]]
    cut = np.zeros(len(nodes), dtype=bool)
    crossing = struts[inside[struts[:, 0]] ^ inside[struts[:, 1]]]
    cut[crossing[inside[crossing]]] = True
    struts, stype = struts[keep], stype[keep]
    stats.struts_in_body = len(struts)
    nodes, struts, used = drop_unused_nodes(nodes, struts)
    cut = cut[used]

    # 3. merge near-coincident nodes to their mean
    pairs = cKDTree(nodes).query_pairs(MERGE_FRACTION * cell_edge, output_type="ndarray")
    if len(pairs):
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(nodes), len(nodes)))
        ncomp, label = connected_components(g, directed=False)
        cnt = np.bincount(label, minlength=ncomp)
        mean = np.stack([np.bincount(label, weights=nodes[:, a], minlength=ncomp) for a in range(3)], 1) / cnt[:, None]
        stats.nodes_merged = len(nodes) - ncomp
        nodes, struts = mean, label[struts]
        cut = np.bincount(label, weights=cut, minlength=ncomp) > 0
        keep = _dedupe(struts)
        struts, stype = struts[keep], stype[keep]
    full_degree = _degree(struts, len(nodes))
    step(3, "clipped and merged")

    # 4. blended diameters at strut midpoints (SI Eq. 16), thin struts dropped
    mid = 0.5 * (nodes[struts[:, 0]] + nodes[struts[:, 1]])
    d = np.empty(len(struts))
    for s in range(0, len(struts), 200_000):
        sl = slice(s, s + 200_000)
        d[sl] = blended_diameters(weights_fn(mid[sl]), member[stype[sl]], cell_diameters)
    dmax = (member * np.asarray(cell_diameters)[None, :]).max(axis=1)[stype]
    # negligible: struts of a cell whose blend weight has (all but) vanished here, absent by
    # design; thin: struts the blend asks for that the printer cannot make
    negligible = (d < NEGLIGIBLE * dmax) | (d <= 0)
    thin = ~negligible & (d < min_diameter)
    stats.struts_negligible = int(negligible.sum())
    stats.struts_thin = int(thin.sum())
    stats.thin_at = mid[thin][:: max(1, int(thin.sum()) // MAX_LOCATED)][:MAX_LOCATED].copy()
    drop = thin | negligible
    struts, stype, d = struts[~drop], stype[~drop], d[~drop]
    step(4, "diameters blended")

    # 5. dangling struts and islands
    core = _two_core(struts, len(nodes))
    stats.struts_dangling = int((~core).sum())
    struts, stype, d = struts[core], stype[core], d[core]
    main = largest_component(struts, len(nodes))
    stats.struts_islands = int((~main).sum())
    struts, stype, d = struts[main], stype[main], d[main]
    step(5, "pruned")

    # 6. dissolve collinear degree-2 nodes left by dropped crossing struts
    lost = np.flatnonzero(_degree(struts, len(nodes)) < full_degree)
    struts, d, stats.nodes_dissolved = _dissolve(nodes, struts, d, lost)
    keep = _dedupe(struts)  # safety: a joined chain never duplicates a strut, but be sure
    struts, d = struts[keep], d[keep]

    nodes, struts, used = drop_unused_nodes(nodes, struts)
    graph = LatticeGraph(nodes=nodes, struts=struts, diameters=d)
    stats.cut = cut[used]
    step(6, "graph assembled")
    return graph, stats
