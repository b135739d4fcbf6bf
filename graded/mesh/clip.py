"""Cutting a triangle surface by axis-aligned planes with seams that match exactly.

A partitioned build meshes each tile of space from a halo of struts and keeps the part of
that surface inside its own box. Neighbouring tiles mesh the same triangles near their common
plane; for their pieces to share the seam vertex for vertex, the point where an edge crosses
the plane must come out bit for bit the same on both sides. :func:`clip_soup` computes it from
the edge's two ends in a fixed order (the end below the plane first), so it depends only on
the unordered edge, and puts the plane coordinate in exactly. No cap is made: the open seam
of one tile is closed by its neighbour's.

Ownership is half-open: a tile ``[lo, hi)`` keeps points with ``lo <= x < hi`` along each
axis, so a point on a plane belongs to exactly one side, and triangles that a cut reduces to
two coincident corners (a corner on the plane) are dropped.
"""

from __future__ import annotations

import numpy as np

__all__ = ["canonical_faces", "clip_soup", "soup_volume"]


def _cross_point(p: np.ndarray, q: np.ndarray, sp: np.ndarray, sq: np.ndarray, axis: int, value: float) -> np.ndarray:
    """Where edges ``p-q`` (K, 3) cross the plane ``x[axis] = value``; ``s = x[axis] - value`` at both ends.

    The end with the smaller ``s`` is the start, so ``(p, q)`` and ``(q, p)`` give the same bits.
    An end lying on the plane is returned as it is.
    """
    swap = sq < sp
    lo = np.where(swap[:, None], q, p)
    hi = np.where(swap[:, None], p, q)
    s_lo = np.where(swap, sq, sp)
    s_hi = np.where(swap, sp, sq)
    t = -s_lo / (s_hi - s_lo)
    x = lo + t[:, None] * (hi - lo)
    x[:, axis] = value
    return np.where((s_hi == 0.0)[:, None], hi, x)


def _clip_half(tri: np.ndarray, axis: int, value: float, keep_above: bool) -> np.ndarray:
    """Part of a triangle soup (T, 3, 3) on one side of a plane: ``x >= value`` or ``x < value``."""
    s = tri[:, :, axis] - value
    inside = s >= 0.0 if keep_above else s < 0.0
    n_in = inside.sum(axis=1)
    whole = tri[n_in == 3]
    out = [whole]
    for count in (1, 2):
        sel = np.flatnonzero(n_in == count)
        if not len(sel):
            continue
        # turn each triangle (orientation kept) so that its lone vertex comes first: the one
        # inside (count 1) or the one outside (count 2)
        lone = inside[sel] if count == 1 else ~inside[sel]
        r = np.argmax(lone, axis=1)
        idx = (r[:, None] + np.arange(3)[None, :]) % 3
        v = np.take_along_axis(tri[sel], idx[:, :, None], axis=1)
        sv = np.take_along_axis(s[sel], idx, axis=1)
        a, b, c = v[:, 0], v[:, 1], v[:, 2]
        ab = _cross_point(a, b, sv[:, 0], sv[:, 1], axis, value)
        ca = _cross_point(c, a, sv[:, 2], sv[:, 0], axis, value)
        if count == 1:  # a inside: triangle a, ab, ca
            out.append(np.stack([a, ab, ca], axis=1))
        else:  # a outside: quad b, c, ca, ab
            out.append(np.stack([b, c, ca], axis=1))
            out.append(np.stack([b, ca, ab], axis=1))
    res = np.concatenate(out) if len(out) > 1 else whole
    degenerate = (np.all(res[:, 0] == res[:, 1], axis=1) | np.all(res[:, 1] == res[:, 2], axis=1)
                  | np.all(res[:, 2] == res[:, 0], axis=1))
    return res[~degenerate] if degenerate.any() else res


def clip_soup(tri: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The part of a triangle soup inside the half-open box ``[lo, hi)``, seams exact.

    Parameters
    ----------
    tri : ndarray (T, 3, 3) float64, mm
        Triangles, corners counter-clockwise seen from outside.
    lo, hi : ndarray (3,) float64, mm
        Box bounds; ``-inf`` / ``inf`` leave a side open.

    Returns
    -------
    ndarray (T', 3, 3) float64
        Triangles and pieces of triangles inside the box, orientation kept. Two boxes sharing a
        plane cut every triangle crossing it at the same points, so the union of their pieces
        is the uncut surface with the crossing triangles split along the plane.
    """
    out = np.asarray(tri, dtype=np.float64)
    for axis in range(3):
        if np.isfinite(lo[axis]):
            out = _clip_half(out, axis, float(lo[axis]), True)
        if np.isfinite(hi[axis]):
            out = _clip_half(out, axis, float(hi[axis]), False)
    return out


def soup_volume(tri: np.ndarray) -> float:
    """Signed volume (mm^3) enclosed by a triangle soup (T, 3, 3), by the divergence theorem.

    Additive over pieces: the volumes of the tiles' open pieces of one closed surface sum to the
    volume of the solid.
    """
    t = np.asarray(tri, dtype=np.float64)
    return float(np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0)


def _loops(tris: np.ndarray) -> list[list[int]] | None:
    """Boundary loops (vertex lists, in the triangles' winding) of a set of triangles; None if pinched."""
    a = np.concatenate([tris[:, 0], tris[:, 1], tris[:, 2]])
    b = np.concatenate([tris[:, 1], tris[:, 2], tris[:, 0]])
    n = int(max(a.max(), b.max())) + 1
    fwd = a * n + b
    bnd = ~np.isin(b * n + a, fwd)
    a, b = a[bnd], b[bnd]
    if len(np.unique(a)) != len(a):
        return None
    nxt = dict(zip(a.tolist(), b.tolist()))
    loops = []
    while nxt:
        start, cur = next(iter(nxt.items()))
        loop = [start]
        del nxt[start]
        while cur != start:
            if cur not in nxt:
                return None
            loop.append(cur)
            cur = nxt.pop(cur)
        loops.append(loop)
    return loops


def _canonical_quads(v, t1, t2):
    """Pairs of triangles (K, 3) forming a quad: the quad split from its smallest corner.

    Returns ``(triangles (K, 2, 3), good (K,) bool)``; ``good`` is False where the two do not
    share an edge.
    """
    k = len(t1)
    # rotate t2 so that it starts with an edge (b, a) reversed from an edge (a, b) of t1
    quad = np.full((k, 4), -1, dtype=np.int64)
    good = np.zeros(k, dtype=bool)
    for r1 in range(3):
        a, b, c = t1[:, r1], t1[:, (r1 + 1) % 3], t1[:, (r1 + 2) % 3]
        for r2 in range(3):
            x, y, z = t2[:, r2], t2[:, (r2 + 1) % 3], t2[:, (r2 + 2) % 3]
            hit = ~good & (x == b) & (y == a)
            quad[hit] = np.stack([b, c, a, z], axis=1)[hit]
            good |= hit
    pts = v[np.maximum(quad, 0)]  # (K, 4, 3)
    # start at the lexicographically smallest corner
    rank = np.zeros((k, 4), dtype=np.int64)
    for j in range(4):
        less = np.zeros((k, 4), dtype=bool)
        for i in range(4):
            d = pts[:, i] - pts[:, j]
            first = np.argmax(d != 0, axis=1)
            lt = np.take_along_axis(d, first[:, None], axis=1)[:, 0] < 0
            less[:, i] = lt
        rank[:, j] = less.sum(axis=1)
    start = np.argmin(rank, axis=1)
    idx = (start[:, None] + np.arange(4)[None, :]) % 4
    quad = np.take_along_axis(quad, idx, axis=1)
    pts = np.take_along_axis(pts, idx[:, :, None], axis=1)
    normal = np.cross(pts[:, 2] - pts[:, 0], pts[:, 3] - pts[:, 1])  # the quad's vector area (x2)
    # split along 0-2 if both halves face the quad's way, else along 1-3
    n_a = np.cross(pts[:, 1] - pts[:, 0], pts[:, 2] - pts[:, 0])
    n_b = np.cross(pts[:, 2] - pts[:, 0], pts[:, 3] - pts[:, 0])
    diag02 = (np.einsum("ij,ij->i", n_a, normal) > 0) & (np.einsum("ij,ij->i", n_b, normal) > 0)
    split02 = np.stack([quad[:, [0, 1, 2]], quad[:, [0, 2, 3]]], axis=1)
    split13 = np.stack([quad[:, [1, 2, 3]], quad[:, [1, 3, 0]]], axis=1)
    out = np.where(diag02[:, None, None], split02, split13)
    return out, good


def canonical_faces(v: np.ndarray, tris: np.ndarray, groups: np.ndarray,
                    touched: np.ndarray | None = None) -> np.ndarray:
    """Triangulate the pieces of every cut input face in a way that depends only on the piece.

    A boolean splits an input triangle into a polygon and triangulates it in an order that
    depends on the whole mesh, so two tiles holding the same polygon can split it along
    different diagonals, and a plane through the polygon then meets different edges. Each
    group of output triangles from one input face (``groups`` (T,), e.g. manifold3d's original
    id and face id) with more than one triangle is re-triangulated here: each boundary loop
    starts at its lexicographically smallest vertex and is triangulated on its own (manifold3d
    ``triangulate``) in the plane of its Newell normal. Groups with holes or pinched loops are
    left as they are.

    Parameters
    ----------
    v : ndarray (V, 3) float64
    tris : ndarray (T, 3) int64
    groups : ndarray (T,) int64
    touched : ndarray (T,) bool, optional
        Triangles with a vertex the boolean made; only groups holding one are re-triangulated
        (the others are input faces, already the same in every tile). Default: all groups.

    Returns
    -------
    ndarray (T', 3) int64, the same surface, same orientation.
    """

    if touched is not None:
        hit = np.unique(groups[touched])
        sel = np.flatnonzero(np.isin(groups, hit))
        if not len(sel):
            return tris
        rest = np.ones(len(tris), dtype=bool)
        rest[sel] = False
        return np.concatenate([tris[rest], canonical_faces(v, tris[sel], groups[sel])])
    order = np.argsort(groups, kind="stable")
    g = groups[order]
    cuts = np.flatnonzero(np.diff(g)) + 1
    starts = np.concatenate([[0], cuts])
    ends = np.concatenate([cuts, [len(g)]])
    size = ends - starts
    keep = np.ones(len(tris), dtype=bool)
    new = []
    pairs = starts[size == 2]
    if len(pairs):
        quads, good = _canonical_quads(v, tris[order[pairs]], tris[order[pairs + 1]])
        keep[order[pairs[good]]] = False
        keep[order[pairs[good] + 1]] = False
        new.append(quads[good].reshape(-1, 3))
    multi = np.flatnonzero(size > 2)
    for k in multi:
        grp = order[starts[k]:ends[k]]
        piece = _canonical_piece(v, tris[grp])  # most groups are one simple polygon
        if piece is not None:
            keep[grp] = False
            new.append(piece)
            continue
        for sel in _components(tris, grp):
            piece = _canonical_piece(v, tris[sel])
            if piece is not None:
                keep[sel] = False
                new.append(piece)
    if not new:
        return tris
    return np.concatenate([tris[keep]] + new)


def _components(tris: np.ndarray, sel: np.ndarray) -> list[np.ndarray]:
    """The triangles ``sel`` split into sets connected through shared vertices."""
    if len(sel) < 2:
        return [sel]
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    t = tris[sel]
    used, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1, 3)
    rows = np.concatenate([inv[:, 0], inv[:, 1]])
    cols = np.concatenate([inv[:, 1], inv[:, 2]])
    n = len(used)
    count, labels = connected_components(coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)),
                                         directed=False)
    if count == 1:
        return [sel]
    lab = labels[inv[:, 0]]
    order = np.argsort(lab, kind="stable")
    return np.split(sel[order], np.flatnonzero(np.diff(lab[order])) + 1)


def _canonical_piece(v: np.ndarray, tris: np.ndarray) -> np.ndarray | None:
    """One connected planar piece re-triangulated from its smallest corner; None to keep it as it is."""
    import manifold3d as mf

    if len(tris) < 2:
        return None
    loops = _loops(tris)
    if not loops or len(loops) != 1:  # pinched, or with holes: left as the boolean made it
        return None
    idx = np.asarray(loops[0], dtype=np.int64)
    pts = v[idx]
    first = int(np.lexsort(pts.T[::-1])[0])  # the smallest corner (x, then y, then z)
    idx = np.roll(idx, -first)
    pts = v[idx]
    normal = np.cross(pts, np.roll(pts, -1, axis=0)).sum(axis=0)  # Newell: twice the vector area
    norm = np.linalg.norm(normal)
    if not norm > 0:
        return None
    nrm = normal / norm
    helper = np.zeros(3)
    helper[int(np.argmin(np.abs(nrm)))] = 1.0
    u = np.cross(helper, nrm)
    u /= np.linalg.norm(u)
    w = np.cross(nrm, u)
    p2 = np.ascontiguousarray(np.stack([pts @ u, pts @ w], axis=1))
    t = np.asarray(mf.triangulate([p2]), dtype=np.int64).reshape(-1, 3)
    if len(t) != len(idx) - 2:
        return None
    return idx[t]
