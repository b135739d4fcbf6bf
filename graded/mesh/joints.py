"""Boolean-free lattice surface: convex-hull joints stitched together by strut tubes.

Every node becomes the convex hull of its ball and of a short stub of each "capped" strut
that enters it (a ring of the strut polygon at distance ``t`` from the node centre). Each
strut between two such joints is a tube whose end rings *are* the stub rings of its two
joints, so joints and tubes share vertices and form one closed surface with no boolean.

Why this is a valid solid (and what goes to the boolean fallback when it is not):

* Stub distance of a node: ``t = (1 + STUB_MARGIN) * max(R_ball, R cot(theta_min / 2))``
  with ``R`` the largest capped-strut (vertex) radius at the node and ``theta_min`` the
  smallest angle between its capped struts. Then every stub ring lies strictly outside the
  ball and outside the half-spaces of the other stubs, so it is a facet of the hull, and two
  tubes leaving the node lie on opposite sides of their bisector plane: they never touch.
* The hull of a node lies on the node side of each cap plane, the tube on the other side;
  two joints on one strut are separated by the slab between their caps when
  ``t_a + t_b < L``. Sharp pairs of struts (closer than :data:`SHARP_ANGLE_DEG`, or with
  stubs longer than :data:`SHARP_BUDGET` of the strut) are resolved per node by leaving the
  strut in most such pairs uncapped; struts that
  still do not fit are uncapped too (stubs are recomputed without them, which only shortens
  them). Uncapped struts are drawn as full node-to-node cylinders in the fallback.
* Parts that are *not* neighbours (two tubes without a common node, a tube and a foreign
  joint, two joints without a common capped strut) are checked for contact with
  conservative bounds (capsules for tubes, the bounding sphere for a joint). Of two touching
  tubes one goes to the fallback; a tube touching a foreign joint goes; joints touching each
  other send their nodes to the fallback (ball + full cylinders).
* A hull whose stub rings do not come out as clean facets sends its node to the fallback.

Speed: nodes of one kind (same ball, same capped rings with the same directions, as in any
regular lattice whatever its grading) share one qhull run. The other nodes of the kind borrow
its triangles after a certificate with their own points: every edge convex and no point
outside any triangle's plane (:data:`HULL_PLANE_TOL`), which makes the borrowed surface
their own convex hull. Nodes failing it get their own qhull run, so the result does not
depend on the grouping (``benchmarks/joints.py`` measures both paths).

Fallback parts are returned separately; :mod:`graded.mesh.solid` unions them with the
stitched surface (manifold3d batch boolean, exact and robust). On single-topology lattices
the fallback set is empty; on superposed topologies it holds the struts that genuinely
overlap others (e.g. BCC diagonals passing 0.4 mm from octet struts).

The joints are slightly fuller than "ball + cylinders": the hull fills the concave web
between stubs (a fillet within the hull's bounding sphere ``sqrt(t^2 + R^2)``), which prints
better than a sharp notch; its volume is accounted for exactly (``joint_volume``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import ConvexHull, cKDTree

from .tessellation import unit_ball_points, unit_ring

__all__ = [
    "STUB_MARGIN",
    "CONTACT_GAP",
    "HULL_PLANE_TOL",
    "JointSurface",
    "build_joint_surface",
    "strut_frames",
    "segment_distance",
    "close_pairs",
    "RADIUS_CLASS_RATIO",
]

#: Relative extra distance of a stub ring beyond the strict separation bound. 2 % keeps the
#: ring a clean hull facet (qhull's precision is ~1e-13 relative) while adding little fillet.
STUB_MARGIN = 0.02
#: A pair of struts at a node is "sharp" when its stubs would take more than this fraction of
#: the shorter strut's length; the rest is left for the joint at the other end (at most
#: ``cot(30 deg) R`` for lattices without sharp pairs). Sharp pairs are resolved before the
#: exact fit test, which catches whatever still does not fit.
SHARP_BUDGET = 0.65
#: Struts closer than this angle at a node are a sharp pair too, whatever their length: their
#: stubs would be longer than ``cot(22.5 deg) R = 2.4 R`` and the hull would fill a long web
#: between them (17 % extra volume on BCC + octet at 35 degrees). One strut of each such pair
#: is drawn as a plain cylinder in the boolean fallback instead.
SHARP_ANGLE_DEG = 45.0
#: qhull runs tried per joint: first without pre-merging of coplanar facets ("Q0": the stub
#: rings are exactly coplanar and merging them costs ~0.6 ms per node), then qhull's default
#: (merged, triangulated) when the fast run does not give clean ring facets.
QHULL_OPTIONS = ("Q0", "Qt")
#: Two non-neighbouring parts closer than this (mm) are treated as touching and go to the
#: boolean fallback; 1 nm is far below any printable feature and above float round-off.
CONTACT_GAP = 1e-6


#: Radius classes of :func:`close_pairs` span at most this ratio: a class is searched with its
#: own largest radius, so a few long struts (dissolved collinear chains, joints across grains)
#: no longer set the search radius of every strut.
RADIUS_CLASS_RATIO = 2.0


def _radius_classes(radii: np.ndarray) -> list[np.ndarray]:
    """Indices of ``radii`` grouped into classes whose radii span at most :data:`RADIUS_CLASS_RATIO`."""
    if not len(radii):
        return []
    r = np.maximum(radii, np.max(radii) * 1e-12)
    key = np.floor(np.log(r / r.min()) / np.log(RADIUS_CLASS_RATIO)).astype(np.int64)
    order = np.argsort(key, kind="stable")
    cuts = np.flatnonzero(np.diff(key[order])) + 1
    return np.split(order, cuts)


def close_pairs(centres: np.ndarray, radii: np.ndarray, gap: float, others: np.ndarray | None = None,
                other_radii: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of balls that come within ``gap`` of each other.

    Parameters
    ----------
    centres : (n, 3) float64 array, mm
    radii : (n,) float64 array, mm
    gap : float
        mm.
    others, other_radii : (k, 3) and (k,) float64 arrays, optional
        A second set of balls: pairs are then (one of ``centres``, one of ``others``).

    Returns
    -------
    i, j : (p,) int64 arrays
        ``|c_i - c_j| <= r_i + r_j + gap``; with one set ``i < j``, each pair once.

    The balls are searched class by class (:func:`_radius_classes`), each pair of classes with
    the sum of their largest radii, so the work grows with the pairs each ball can reach and
    not with the largest ball of all (one long strut in a fine lattice made a search radius that
    held every other strut: 10^9 candidate pairs and 14 GB on a 49k-strut part).

    Examples
    --------
    >>> import numpy as np
    >>> c = np.array([[0.0, 0, 0], [1.0, 0, 0], [5.0, 0, 0]])
    >>> i, j = close_pairs(c, np.array([0.5, 0.5, 0.1]), 1e-6)
    >>> i.tolist(), j.tolist()
    ([0], [1])
    """
    same = others is None
    if same:
        others, other_radii = centres, radii
    ca = _radius_classes(radii)
    cb = ca if same else _radius_classes(other_radii)
    trees_a = [cKDTree(centres[k]) for k in ca]
    trees_b = trees_a if same else [cKDTree(others[k]) for k in cb]
    out_i, out_j = [], []
    for x, ka in enumerate(ca):
        ra = float(radii[ka].max())
        for y, kb in enumerate(cb):
            if same and y < x:
                continue
            reach = ra + float(other_radii[kb].max()) + gap
            if same and x == y:
                pairs = trees_a[x].query_pairs(reach, output_type="ndarray")
                i, j = ka[pairs[:, 0]], ka[pairs[:, 1]]
            else:
                hit = trees_a[x].sparse_distance_matrix(trees_b[y], reach, output_type="ndarray")
                i, j = ka[hit["i"]], kb[hit["j"]]
            near = np.linalg.norm(centres[i] - others[j], axis=1) <= radii[i] + other_radii[j] + gap
            i, j = i[near], j[near]
            if same:  # each pair once, smaller index first (indices of two classes never coincide)
                i, j = np.minimum(i, j), np.maximum(i, j)
            out_i.append(i)
            out_j.append(j)
    if not out_i:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_i).astype(np.int64), np.concatenate(out_j).astype(np.int64)


#: A hull borrowed from another node of the same kind is accepted for a node when, with the
#: node's own points, no point lies more than this (mm) outside any of its triangles' planes
#: (checked across every edge and for every point the hull leaves inside). 1 pm: far above
#: round-off of coordinates up to metres (1e-13 mm at 100 mm) and far below any feature, so an
#: accepted surface is the node's convex hull to within 1 pm.
HULL_PLANE_TOL = 1e-9
#: Decimals of the unit strut directions that name a node's kind. Only a grouping key: every
#: node of a kind is checked against the borrowed hull (:data:`HULL_PLANE_TOL`).
KIND_DECIMALS = 6
#: Nodes whose joints are checked in one batch of array work (bounds the temporary memory to
#: about ``HULL_BATCH * points * triangles * 8`` bytes for the inside test, ~30 MB for BCC).
HULL_BATCH = 128


@dataclass
class JointSurface:
    """Result of :func:`build_joint_surface`.

    Attributes
    ----------
    vertices : ndarray (V, 3) float64, mm
    triangles : ndarray (T, 3) int64, outward (counter-clockwise) orientation
    fallback_nodes : ndarray (k,) int64
        Nodes that must be drawn as balls and unioned.
    fallback_struts : ndarray (j,) int64
        Struts that must be drawn as full node-to-node cylinders and unioned.
    stub : ndarray (N,) float64
        Stub distance ``t`` per node (0 for nodes without struts), mm.
    reasons : dict
        Why parts went to the fallback: struts uncapped at sharp pairs / as too short,
        nodes with a foreign joint too close, struts touching a foreign joint or tube,
        nodes whose hull failed.
    joint_volume, tube_volume : float
        Volumes (mm^3) of the hull joints and of the stitched tubes; without fallback parts
        the solid's volume is exactly their sum.
    """

    vertices: np.ndarray
    triangles: np.ndarray
    fallback_nodes: np.ndarray
    fallback_struts: np.ndarray
    stub: np.ndarray
    joint_volume: float = 0.0
    tube_volume: float = 0.0
    reasons: dict = field(default_factory=dict)


def strut_frames(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-handed orthonormal frames ``(e1, e2)`` with ``e1 x e2 = d`` for unit ``d`` (M, 3)."""
    helper = np.zeros_like(d)
    helper[np.arange(len(d)), np.argmin(np.abs(d), axis=1)] = 1.0
    e1 = np.cross(d, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(d, e1)
    return e1, e2


def segment_distance(p0, p1, q0, q1) -> np.ndarray:
    """Closest distance between segments ``[p0, p1]`` and ``[q0, q1]`` (all (K, 3)); shape (K,)."""
    d1 = p1 - p0
    d2 = q1 - q0
    r = p0 - q0
    a = np.einsum("ij,ij->i", d1, d1)
    e = np.einsum("ij,ij->i", d2, d2)
    f = np.einsum("ij,ij->i", d2, r)
    c = np.einsum("ij,ij->i", d1, r)
    b = np.einsum("ij,ij->i", d1, d2)
    denom = a * e - b * b
    tiny = 1e-300
    s = np.where(denom > 1e-12 * a * e, np.clip((b * f - c * e) / np.maximum(denom, tiny), 0.0, 1.0), 0.0)
    t = (b * s + f) / np.maximum(e, tiny)
    # clamp t and recompute s where needed
    t_lo = t < 0.0
    t_hi = t > 1.0
    s = np.where(t_lo, np.clip(-c / np.maximum(a, tiny), 0.0, 1.0), s)
    s = np.where(t_hi, np.clip((b - c) / np.maximum(a, tiny), 0.0, 1.0), s)
    t = np.clip(t, 0.0, 1.0)
    c1 = p0 + d1 * s[:, None]
    c2 = q0 + d2 * t[:, None]
    return np.linalg.norm(c1 - c2, axis=1)


def _point_segment_distance(x, p0, p1) -> np.ndarray:
    d = p1 - p0
    dd = np.maximum(np.einsum("ij,ij->i", d, d), 1e-300)
    s = np.clip(np.einsum("ij,ij->i", x - p0, d) / dd, 0.0, 1.0)
    return np.linalg.norm(x - (p0 + d * s[:, None]), axis=1)


def _joint_triangles(pts, own, n_ball, keys, expected, n_keys):
    """Outward hull triangles of one joint and the cap each belongs to (-1: joint body).

    Tries qhull without pre-merging first (4-5x faster on the exactly coplanar stub rings),
    then qhull's default merging. Accepts a hull only if every stub-ring point is a hull
    vertex and every ring is covered by exactly ``n - 2`` triangles of its own points (a clean
    polygon facet); returns None when neither run passes, so the node goes to the fallback.
    """
    for options in QHULL_OPTIONS:
        try:
            hull = ConvexHull(pts, qhull_options=options)
        except Exception:
            continue
        simp = hull.simplices.astype(np.int64)
        nrm = np.cross(pts[simp[:, 1]] - pts[simp[:, 0]], pts[simp[:, 2]] - pts[simp[:, 0]])
        flip = np.einsum("ij,ij->i", nrm, hull.equations[:, :3]) < 0
        simp[flip] = simp[flip][:, ::-1]
        o = own[simp]
        cap = np.where((o[:, 0] == o[:, 1]) & (o[:, 1] == o[:, 2]), o[:, 0], -1)
        on_hull = np.zeros(len(pts), dtype=bool)
        on_hull[hull.vertices] = True
        if not np.all(on_hull[n_ball:]):
            continue
        cap_counts = np.bincount(cap[cap >= 0], minlength=n_keys)[keys]
        if np.all(cap_counts == expected):
            return simp, cap, float(hull.volume)
    return None


def _node_kinds(good, ptr, inc_strut, inc_end, capped, segments, d, ball_segments):
    """Group nodes by kind: same ball, same capped rings (segments, end, direction), canonically ordered.

    Returns a list of ``(nodes (G,), ring struts (G, k), ring ends (G, k))``; the rings of every
    node are in the same canonical order, so equal kinds have equal point layouts.
    """
    counts = np.diff(ptr)
    node_of = np.repeat(np.arange(len(counts)), counts)
    is_good = np.zeros(len(counts), dtype=bool)
    is_good[good] = True
    sel = np.flatnonzero(capped[inc_strut] & is_good[node_of])
    ss, ee, nn = inc_strut[sel], inc_end[sel], node_of[sel]
    dq = np.round(d[ss] * 10**KIND_DECIMALS).astype(np.int64)
    rows = np.column_stack([segments[ss], ee, dq])
    order = np.lexsort((rows[:, 4], rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0], nn))
    ss, ee, nn, rows = ss[order], ee[order], nn[order], np.ascontiguousarray(rows[order])
    k_of = np.bincount(nn, minlength=len(counts))
    start = np.concatenate([[0], np.cumsum(k_of)])
    groups: dict = {}
    for a in good:
        lo, hi = start[a], start[a + 1]
        groups.setdefault((int(ball_segments[a]), rows[lo:hi].tobytes()), []).append(a)
    out = []
    for members in groups.values():
        g = np.asarray(members, dtype=np.int64)
        k = int(k_of[g[0]])
        idx = start[g][:, None] + np.arange(k)[None, :]
        out.append((g, ss[idx], ee[idx]))
    return out


def _twin_opposite(simp: np.ndarray) -> np.ndarray | None:
    """For each triangle edge ``(simp[t, k], simp[t, k+1])``: the vertex opposite it across the edge
    (in the neighbouring triangle), shape (T, 3); None if the surface is not closed and 2-manifold."""
    n = int(simp.max()) + 1
    a = simp.reshape(-1)
    b = simp[:, [1, 2, 0]].reshape(-1)
    third = simp[:, [2, 0, 1]].reshape(-1)
    fwd = a * n + b
    order = np.argsort(fwd)
    if len(np.unique(fwd)) != len(fwd):
        return None
    pos = np.searchsorted(fwd[order], b * n + a)
    pos = np.minimum(pos, len(fwd) - 1)
    twin = order[pos]
    if not np.array_equal(fwd[twin], b * n + a):
        return None
    return third[twin].reshape(-1, 3)


def _hull_joints(good, nodes, ptr, inc_strut, inc_end, capped, d, segments, radii, e1, e2, t0, t1,
                 ball_segments, ball_radius, ring_start, vectorise):
    """Hull joints of the nodes ``good``, vectorised over nodes of the same kind.

    Nodes of one kind (see :func:`_node_kinds`) have the same point layout: the ball, then the
    rings. The first node's hull (qhull) is borrowed by the others when it is provably their
    own convex hull as well: every edge convex and every point on or inside every triangle's
    plane, to :data:`HULL_PLANE_TOL`. Nodes that fail that test (or all, with
    ``vectorise=False``) get their own qhull run. Fills ``ring_start`` (M, 2) in place.

    Returns
    -------
    verts, tris, caps : lists of arrays (vertex blocks, triangles with global indices, cap owner
        ``strut*2+end`` or -1 per triangle); joint_volume : float; failed : ndarray of nodes
        whose hull failed.
    """
    m = len(segments)
    may_borrow = None
    if not isinstance(vectorise, bool):
        may_borrow = np.asarray(vectorise, dtype=bool)
        vectorise = True
    verts: list[np.ndarray] = []
    tris: list[np.ndarray] = []
    caps: list[np.ndarray] = []
    failed: list[int] = []
    volume = 0.0
    offset = 0
    for g_nodes, S, E in _node_kinds(good, ptr, inc_strut, inc_end, capped, segments, d, ball_segments):
        k = S.shape[1]
        ball_unit = unit_ball_points(int(ball_segments[g_nodes[0]]))
        nb = len(ball_unit)
        seg_slot = segments[S[0]] if k else np.zeros(0, dtype=np.int64)
        starts = nb + np.concatenate([[0], np.cumsum(seg_slot)[:-1]]).astype(np.int64)
        own_slot = np.concatenate([np.full(nb, -1, dtype=np.int64)] + [np.full(int(n), j) for j, n in
                                                                        enumerate(seg_slot)])
        template = None
        for b0 in range(0, len(g_nodes), HULL_BATCH):
            G = g_nodes[b0:b0 + HULL_BATCH]
            Sb, Eb = S[b0:b0 + HULL_BATCH], E[b0:b0 + HULL_BATCH]
            pieces = [ball_unit[None] * ball_radius[G][:, None, None] + nodes[G][:, None, :]]
            for j in range(k):
                s, e = Sb[:, j], Eb[:, j]
                ring = unit_ring(int(seg_slot[j]))
                centre = np.where(e[:, None] == 0, t0[s], t1[s])
                r = radii[s, e]
                pieces.append(centre[:, None, :] + r[:, None, None] * (ring[None, :, :1] * e1[s][:, None, :]
                                                                         + ring[None, :, 1:] * e2[s][:, None, :]))
            pts = np.concatenate(pieces, axis=1)  # (g, P, 3)
            keys = Sb * 2 + Eb
            ok = np.zeros(len(G), dtype=bool)
            if vectorise and template is None and len(g_nodes) > 1:  # a lone node of its kind: own qhull
                found = _joint_triangles(pts[0], own_slot, nb, np.arange(k), seg_slot - 2, max(k, 1))
                template = False
                if found is not None:
                    opp = _twin_opposite(found[0])
                    if opp is not None:
                        inner = np.setdiff1d(np.arange(pts.shape[1]), found[0].reshape(-1))
                        template = (found[0], found[1], opp, inner)
            if vectorise and template:
                simp, cap_slot, opp, inner = template
                first = 1 if b0 == 0 else 0  # the first node's own hull is the template
                ok[:first] = True
                if len(G) > first:
                    ok[first:] = _borrowed_hull_fits(pts[first:], simp, opp, inner)
                if may_borrow is not None:  # the others run qhull on their own points
                    ok[first:] &= may_borrow[G[first:]]
            if ok.any():
                P = pts.shape[1]
                good_pts = pts[ok]
                A, B, C = (good_pts[:, simp[:, i]] - nodes[G[ok]][:, None, :] for i in range(3))
                volume += float(np.einsum("gtk,gtk->", A, np.cross(B, C))) / 6.0
                n_ok = int(ok.sum())
                offs = offset + P * np.arange(n_ok)
                verts.append(good_pts.reshape(-1, 3))
                tris.append((simp[None] + offs[:, None, None]).reshape(-1, 3))
                if k:
                    cap = np.where(cap_slot[None] >= 0, keys[ok][:, np.maximum(cap_slot, 0)], -1)
                else:  # a lone ball
                    cap = np.full((n_ok, len(simp)), -1, dtype=np.int64)
                caps.append(cap.reshape(-1))
                ring_start[Sb[ok], Eb[ok]] = offs[:, None] + starts[None, :]
                offset += P * n_ok
            for i in np.flatnonzero(~ok):
                own = np.where(own_slot >= 0, keys[i][np.maximum(own_slot, 0)], -1) if k else own_slot
                found = _joint_triangles(pts[i], own, nb, keys[i], seg_slot - 2, 2 * m)
                if found is None:
                    failed.append(int(G[i]))
                    continue
                simp_i, cap_i, vol = found
                volume += vol
                verts.append(pts[i])
                tris.append(simp_i + offset)
                caps.append(cap_i)
                ring_start[Sb[i], Eb[i]] = offset + starts
                offset += len(pts[i])
    return verts, tris, caps, volume, np.asarray(failed, dtype=np.int64)


def _borrowed_hull_fits(pts, simp, opp, inner) -> np.ndarray:
    """Is the triangulation ``simp`` the convex hull of each point set ``pts[g]`` (g, P, 3)?

    A closed, consistently outward surface all of whose edges are convex is the boundary of a
    convex body; it is the hull of the points if also no unused point lies outside it. Both
    are checked as signed distances to the triangles' planes, allowing :data:`HULL_PLANE_TOL`.
    """
    A = pts[:, simp[:, 0]]
    nrm = np.cross(pts[:, simp[:, 1]] - A, pts[:, simp[:, 2]] - A)
    area2 = np.linalg.norm(nrm, axis=2)
    ok = np.all(area2 > 0.0, axis=1)
    unit = nrm / np.maximum(area2, 1e-300)[:, :, None]
    for j in range(3):
        dist = np.einsum("gtk,gtk->gt", pts[:, opp[:, j]] - A, unit)
        ok &= np.all(dist <= HULL_PLANE_TOL, axis=1)
    if len(inner):
        off = np.einsum("gtk,gtk->gt", A, unit)
        height = np.matmul(pts[:, inner], unit.transpose(0, 2, 1))  # (g, inner, T), batched BLAS
        ok &= np.all(height <= off[:, None, :] + HULL_PLANE_TOL, axis=(1, 2))
    return ok


def _incidence(n_nodes: int, struts: np.ndarray):
    """CSR incidence: for node a, entries ptr[a]:ptr[a+1] of (strut, end)."""
    ends = struts.reshape(-1)
    order = np.argsort(ends, kind="stable")
    inc_strut = order // 2
    inc_end = order % 2
    counts = np.bincount(ends, minlength=n_nodes)
    ptr = np.concatenate([[0], np.cumsum(counts)])
    return ptr, inc_strut, inc_end, counts


def _min_angle(ptr, inc_dir, counts) -> np.ndarray:
    """Smallest angle (rad) between the outgoing strut directions at each node (pi if < 2)."""
    n = len(counts)
    dmax = int(counts.max()) if n else 0
    out = np.full(n, np.pi)
    if dmax < 2:
        return out
    slot = np.arange(len(inc_dir)) - np.repeat(ptr[:-1], counts)
    node_of = np.repeat(np.arange(n), counts)
    pad = np.zeros((n, dmax, 3))
    pad[node_of, slot] = inc_dir
    valid = np.zeros((n, dmax), dtype=bool)
    valid[node_of, slot] = True
    cos = np.einsum("nik,njk->nij", pad, pad)
    mask = valid[:, :, None] & valid[:, None, :] & ~np.eye(dmax, dtype=bool)[None]
    cos = np.where(mask, cos, -1.0)
    out = np.arccos(np.clip(cos.max(axis=(1, 2)), -1.0, 1.0))
    return out


def _uncap_sharp_pairs(ptr, inc_strut, inc_dir, counts, length, r_tube) -> np.ndarray:
    """Choose struts to leave without caps so that no node needs over-long stubs.

    Two struts at a node at angle theta need stubs of about ``R cot(theta / 2)``; when that
    exceeds half the shorter strut, at least one of the pair cannot be a stitched tube. Per
    node, greedily uncap the strut in the most such pairs until none is left (a minimum
    vertex cover in spirit: with superposed topologies, e.g. BCC + octet at a cube corner,
    this uncaps the 8 diagonals rather than the 12 face diagonals). Returns ``capped`` (M,).
    """
    m = len(length)
    capped = np.ones(m, dtype=bool)
    n = len(counts)
    dmax = int(counts.max()) if n else 0
    if dmax < 2:
        return capped
    slot = np.arange(len(inc_dir)) - np.repeat(ptr[:-1], counts)
    node_of = np.repeat(np.arange(n), counts)
    pad_dir = np.zeros((n, dmax, 3))
    pad_dir[node_of, slot] = inc_dir
    pad_s = np.full((n, dmax), -1, dtype=np.int64)
    pad_s[node_of, slot] = inc_strut
    valid = pad_s >= 0
    R = np.zeros(n)
    np.maximum.at(R, node_of, r_tube[inc_strut])
    pad_len = np.where(valid, length[np.maximum(pad_s, 0)], np.inf)
    cos = np.clip(np.einsum("nik,njk->nij", pad_dir, pad_dir), -1.0, 1.0)
    half = np.arccos(cos) / 2.0
    with np.errstate(divide="ignore"):
        need = (1.0 + STUB_MARGIN) * R[:, None, None] * np.where(half > 0, 1.0 / np.tan(half), np.inf)
    budget = SHARP_BUDGET * np.minimum(pad_len[:, :, None], pad_len[:, None, :]) / (1.0 + STUB_MARGIN)
    sharp = (need >= budget) | (2.0 * half < np.radians(SHARP_ANGLE_DEG))
    bad = valid[:, :, None] & valid[:, None, :] & ~np.eye(dmax, dtype=bool)[None] & sharp
    for a in np.flatnonzero(bad.any(axis=(1, 2))):
        conflict = bad[a].copy()
        while conflict.any():
            worst = int(np.argmax(conflict.sum(axis=1)))
            capped[pad_s[a, worst]] = False
            conflict[worst, :] = False
            conflict[:, worst] = False
    return capped


def build_joint_surface(
    nodes: np.ndarray,
    struts: np.ndarray,
    radii: np.ndarray,
    segments: np.ndarray,
    ball_segments: np.ndarray,
    ball_radius: np.ndarray,
    *,
    vectorise: bool | np.ndarray = True,
) -> JointSurface:
    """Stitched hull-joint surface of a strut graph (see module docstring).

    Parameters
    ----------
    nodes : (N, 3) float64, mm
    struts : (M, 2) int64
    radii : (M, 2) float64
        Polygon vertex radius of each strut at its first and second node (mm), i.e. the
        design radius times :func:`~graded.mesh.tessellation.area_scale`.
    segments : (M,) int64
        Polygon segment count per strut.
    ball_segments : (N,) int64
        Segment count of each node ball.
    ball_radius : (N,) float64
        Vertex radius of each node ball (mm).
    vectorise : bool or ndarray (N,) bool
        Mesh the joints of nodes of one kind together from one hull (see
        :func:`_hull_joints`); ``False`` runs qhull on every node (the reference path). A mask
        lets only the marked nodes borrow a hull; the others get qhull's hull of their own
        points, which depends on nothing else (a partitioned build uses it near the tile
        planes, where coplanar hull facets must be split the same way in both tiles).
    """
    n_nodes = len(nodes)
    m = len(struts)
    p = nodes[struts[:, 0]]
    q = nodes[struts[:, 1]]
    vec = q - p
    length = np.linalg.norm(vec, axis=1)
    d = vec / length[:, None]
    e1, e2 = strut_frames(d)

    ptr, inc_strut, inc_end, counts = _incidence(n_nodes, struts)
    inc_dir = np.where(inc_end[:, None] == 0, d[inc_strut], -d[inc_strut])
    node_of_inc = np.repeat(np.arange(n_nodes), counts)
    r_tube = radii.max(axis=1)

    # Stubs only for "capped" struts. A strut too short for the stubs at both ends loses its
    # caps (it becomes a full fallback cylinder); the stubs at its nodes are then recomputed
    # without it, which only shortens them, so the loop ends (usually after 1-3 rounds).
    capped = _uncap_sharp_pairs(ptr, inc_strut, inc_dir, counts, length, r_tube)
    reasons = {"sharp_struts": int((~capped).sum())}
    while True:
        keep_inc = capped[inc_strut]
        kcounts = np.bincount(node_of_inc[keep_inc], minlength=n_nodes)
        kptr = np.concatenate([[0], np.cumsum(kcounts)])
        theta = _min_angle(kptr, inc_dir[keep_inc], kcounts)
        r_node = np.zeros(n_nodes)
        np.maximum.at(r_node, node_of_inc[keep_inc], r_tube[inc_strut[keep_inc]])
        with np.errstate(divide="ignore"):
            cot = np.where(theta < np.pi, 1.0 / np.tan(theta / 2.0), 0.0)
        stub = (1.0 + STUB_MARGIN) * np.maximum(ball_radius, r_node * np.maximum(cot, 1.0))
        stub = np.where(counts > 0, stub, 0.0)
        short = capped & ~(stub[struts[:, 0]] + stub[struts[:, 1]] < length / (1.0 + STUB_MARGIN))
        if not short.any():
            break
        capped &= ~short
    reasons["short_struts"] = int((~capped).sum()) - reasons["sharp_struts"]

    bad_node = counts == 0
    # bounding sphere of each joint: ball or the farthest stub-ring vertex
    rho = np.where(kcounts > 0, np.maximum(ball_radius, np.sqrt(stub**2 + r_node**2)), ball_radius)

    def tube_ok():
        return capped & ~bad_node[struts[:, 0]] & ~bad_node[struts[:, 1]]

    good = ~bad_node
    # joint-joint contacts between nodes without a common capped strut (those are separated
    # by the slab between their caps)
    gidx = np.flatnonzero(good)
    if len(gidx) > 1:
        a, b = close_pairs(nodes[gidx], rho[gidx], CONTACT_GAP)
        if len(a):
            a, b = gidx[a], gidx[b]
            cs = struts[capped]
            key = np.minimum(cs[:, 0], cs[:, 1]) * n_nodes + np.maximum(cs[:, 0], cs[:, 1])
            linked = np.isin(np.minimum(a, b) * n_nodes + np.maximum(a, b), key)
            bad_node[a[~linked]] = True
            bad_node[b[~linked]] = True
    reasons["joint_contact_nodes"] = int(bad_node.sum() - (counts == 0).sum())

    tube = tube_ok()
    t0 = p + d * stub[struts[:, 0], None]
    t1 = q - d * stub[struts[:, 1], None]
    tidx = np.flatnonzero(tube)
    # joint-tube contacts (foreign joint)
    gidx = np.flatnonzero(~bad_node)
    if len(tidx) and len(gidx):
        mid = 0.5 * (t0[tidx] + t1[tidx])
        half = 0.5 * np.linalg.norm(t1[tidx] - t0[tidx], axis=1)
        reach = half + r_tube[tidx]
        ti, ni = close_pairs(mid, reach, CONTACT_GAP, nodes[gidx], rho[gidx])
        if len(ti):
            ts, ns = tidx[ti], gidx[ni]
            foreign = (struts[ts, 0] != ns) & (struts[ts, 1] != ns)
            ts, ns = ts[foreign], ns[foreign]
            dist = _point_segment_distance(nodes[ns], t0[ts], t1[ts])
            touch = dist <= rho[ns] + r_tube[ts] + CONTACT_GAP
            tube[ts[touch]] = False
            reasons["joint_tube_contact_struts"] = int(len(np.unique(ts[touch])))
    # tube-tube contacts without a common node
    tidx = np.flatnonzero(tube)
    if len(tidx) > 1:
        mid = 0.5 * (t0[tidx] + t1[tidx])
        reach = 0.5 * np.linalg.norm(t1[tidx] - t0[tidx], axis=1) + r_tube[tidx]
        i, j = close_pairs(mid, reach, CONTACT_GAP)
        if len(i):
            i, j = tidx[i], tidx[j]
            sa, sb = struts[i], struts[j]
            share = (sa[:, :1] == sb).any(axis=1) | (sa[:, 1:] == sb).any(axis=1)
            i, j = i[~share], j[~share]
            if len(i):
                dist = segment_distance(t0[i], t1[i], t0[j], t1[j])
                touch = dist <= r_tube[i] + r_tube[j] + CONTACT_GAP
                i, j = i[touch], j[touch]
                # one strut of each touching pair suffices: take the one in more pairs
                deg = np.bincount(np.concatenate([i, j]), minlength=m)
                drop = np.where((deg[i] > deg[j]) | ((deg[i] == deg[j]) & (i > j)), i, j)
                tube[drop] = False
                reasons["tube_contact_struts"] = int(len(np.unique(drop)))

    # ---- hulls of the good joints -------------------------------------------------------
    ring_start = np.full((m, 2), -1, dtype=np.int64)
    verts, tris, tri_cap, joint_volume, failed = _hull_joints(
        np.flatnonzero(~bad_node), nodes, ptr, inc_strut, inc_end, capped, d, segments, radii, e1, e2,
        t0, t1, ball_segments, ball_radius, ring_start, vectorise,
    )
    bad_node[failed] = True  # qhull precision trouble: the boolean fallback draws these nodes
    hull_failed = int(len(failed))

    tube &= ~bad_node[struts[:, 0]] & ~bad_node[struts[:, 1]]
    tube &= (ring_start[:, 0] >= 0) & (ring_start[:, 1] >= 0)
    if verts:
        vertices = np.concatenate(verts)
        triangles = np.concatenate(tris)
        caps = np.concatenate(tri_cap)
        # drop the cap triangles where a tube attaches, keep the others closed
        open_cap = caps >= 0
        open_cap[open_cap] = tube[caps[open_cap] // 2]
        triangles = triangles[~open_cap]
        # tubes: quads between the two rings
        tube_tris = []
        for n in np.unique(segments[tube]):
            sel = np.flatnonzero(tube & (segments == n))
            k = np.arange(n)
            kn = (k + 1) % n
            A = ring_start[sel, 0][:, None]
            B = ring_start[sel, 1][:, None]
            t_a = np.stack([A + k, A + kn, B + kn], axis=-1)
            t_b = np.stack([A + k, B + kn, B + k], axis=-1)
            tube_tris.append(np.concatenate([t_a, t_b], axis=1).reshape(-1, 3))
        if tube_tris:
            triangles = np.concatenate([triangles] + tube_tris)
        used = np.zeros(len(vertices), dtype=bool)
        used[triangles.reshape(-1)] = True
        remap = np.cumsum(used) - 1
        vertices = vertices[used]
        triangles = remap[triangles]
    else:
        vertices = np.zeros((0, 3))
        triangles = np.zeros((0, 3), dtype=np.int64)

    has_struts = counts > 0
    fallback_nodes = np.flatnonzero(bad_node & has_struts)
    fallback_struts = np.flatnonzero(~tube)
    # tube volume: frustum of two regular n-gons with circumradii ra, rb over the tube length
    n = segments[tube].astype(np.float64)
    ra, rb = radii[tube, 0], radii[tube, 1]
    h = np.maximum(length[tube] - stub[struts[tube, 0]] - stub[struts[tube, 1]], 0.0)
    poly = 0.5 * n * np.sin(2.0 * np.pi / n)
    tube_volume = float(np.sum(poly * h / 3.0 * (ra * ra + ra * rb + rb * rb)))
    reasons["hull_failed_nodes"] = hull_failed
    return JointSurface(
        vertices, triangles, fallback_nodes, fallback_struts, stub, joint_volume, tube_volume, reasons
    )
