"""Hull joints vectorised over nodes of one kind: the same surface as one qhull run per node."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import ConvexHull

from graded.graph import LatticeGraph
from graded.mesh import bcc_graph, octet_graph, superpose
from graded.mesh.joints import (
    _borrowed_hull_fits,
    _joint_triangles,
    _twin_opposite,
    build_joint_surface,
    close_pairs,
)
from graded.mesh.solid import BALL_MARGIN
from graded.mesh.tessellation import area_scale, segments_for_radius, unit_ball_points, unit_ring


def _inputs(g: LatticeGraph):
    radius = np.stack([g.diameters, g.diameters], axis=1) / 2.0
    seg = segments_for_radius(radius.max(axis=1))
    vr = radius * area_scale(seg)[:, None]
    node_r = np.zeros(g.n_nodes)
    np.maximum.at(node_r, g.struts[:, 0], radius[:, 0])
    np.maximum.at(node_r, g.struts[:, 1], radius[:, 1])
    bseg = segments_for_radius(node_r)
    br = node_r * area_scale(bseg) + np.minimum(BALL_MARGIN * node_r, 0.005)
    return g.nodes, g.struts, vr, seg, bseg, br


def _jittered(g, scale, seed=0):
    rng = np.random.default_rng(seed)
    return LatticeGraph(g.nodes + rng.normal(0.0, scale, g.nodes.shape), g.struts, g.diameters, {})


@pytest.mark.parametrize(
    "graph",
    [
        bcc_graph((4, 3, 3)),
        octet_graph((3, 3, 2), d_min=0.25, d_max=0.45),
        superpose(bcc_graph((3, 3, 3)), octet_graph((3, 3, 3))),
        _jittered(bcc_graph((3, 3, 3)), 0.01),  # every node its own kind: all own qhull runs
    ],
    ids=["bcc", "octet", "bcc+octet", "jittered"],
)
def test_vectorised_joints_equal_one_hull_per_node(graph):
    args = _inputs(graph)
    a = build_joint_surface(*args, vectorise=True)
    b = build_joint_surface(*args, vectorise=False)
    assert len(a.vertices) == len(b.vertices) and len(a.triangles) == len(b.triangles)
    assert np.array_equal(a.fallback_struts, b.fallback_struts)
    assert np.array_equal(a.fallback_nodes, b.fallback_nodes)
    # same points (vertex blocks are ordered by kind, so compare as sets)
    assert np.array_equal(np.unique(a.vertices, axis=0), np.unique(b.vertices, axis=0))
    # qhull sums the hull volume in another order: equal to round-off
    assert a.joint_volume == pytest.approx(b.joint_volume, rel=1e-12)
    assert a.tube_volume == b.tube_volume

    def volume(s):
        t = s.vertices[s.triangles]
        return np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0

    assert volume(a) == pytest.approx(volume(b), rel=1e-12)


def _star(scale_ring=1.0, ball_r=0.2, stub=0.3):
    """Points of a joint: a ball and two rings of a right-angle pair of struts."""
    ball = unit_ball_points(16) * ball_r
    rings = []
    for d, e1, e2 in (((1, 0, 0), (0, 1, 0), (0, 0, 1)), ((0, 1, 0), (0, 0, 1), (1, 0, 0))):
        ring = unit_ring(10)
        c = stub * np.asarray(d, dtype=float)
        rings.append(c + 0.15 * scale_ring * (ring[:, :1] * np.asarray(e1) + ring[:, 1:] * np.asarray(e2)))
    pts = np.concatenate([ball, *rings])
    own = np.concatenate([np.full(len(ball), -1), np.zeros(10, dtype=int), np.ones(10, dtype=int)])
    return pts, own, len(ball)


def test_borrowed_hull_certificate_accepts_its_own_points_and_rejects_others():
    pts, own, nb = _star()
    simp, cap, _ = _joint_triangles(pts, own, nb, np.arange(2), np.array([8, 8]), 2)
    opp = _twin_opposite(simp)
    inner = np.setdiff1d(np.arange(len(pts)), simp.reshape(-1))
    shifted = pts + np.array([3.0, -1.0, 2.0])  # a translated node of the same kind
    assert _borrowed_hull_fits(np.stack([pts, shifted]), simp, opp, inner).tolist() == [True, True]
    # a ring point pulled 50 um towards the ring's axis (past its neighbours' chord) is no hull vertex
    # any more: the borrowed surface has a dent there
    dent = pts.copy()
    v = nb + 3
    dent[v] -= 0.05 * (dent[v] - [0.3, 0.0, 0.0]) / 0.15
    assert v not in ConvexHull(dent).vertices
    assert _borrowed_hull_fits(dent[None], simp, opp, inner).tolist() == [False]
    # random variations of the node: whatever is accepted is the points' own convex hull
    rng = np.random.default_rng(1)
    accepted = 0
    for _ in range(60):
        var = _star(rng.uniform(0.7, 1.3), rng.uniform(0.15, 0.25), rng.uniform(0.28, 0.4))[0]
        if _borrowed_hull_fits(var[None], simp, opp, inner)[0]:
            accepted += 1
            t = var[simp]
            vol = np.einsum("ij,ij->i", t[:, 0], np.cross(t[:, 1], t[:, 2])).sum() / 6.0
            assert vol == pytest.approx(ConvexHull(var).volume, rel=1e-9)
    assert 0 < accepted < 60  # both outcomes occur


def test_twin_opposite_rejects_open_surfaces():
    pts, own, nb = _star()
    simp, _, _ = _joint_triangles(pts, own, nb, np.arange(2), np.array([8, 8]), 2)
    assert _twin_opposite(simp) is not None
    assert _twin_opposite(simp[1:]) is None


def _brute_pairs(c, r, gap, c2=None, r2=None):
    if c2 is None:
        d = np.linalg.norm(c[:, None] - c[None], axis=2)
        hit = (d <= r[:, None] + r[None] + gap) & np.triu(np.ones(d.shape, dtype=bool), 1)
    else:
        d = np.linalg.norm(c[:, None] - c2[None], axis=2)
        hit = d <= r[:, None] + r2[None] + gap
    return set(zip(*np.nonzero(hit)))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(0, 60), k=st.integers(1, 40),
       spread=st.floats(0.0, 4.0))
def test_close_pairs_equals_brute_force(seed, n, k, spread):
    """Pairs found class by class are exactly the brute-force pairs, radii over 4 decades."""
    rng = np.random.default_rng(seed)
    c = rng.uniform(0, 10, (n, 3))
    r = 0.05 * 10 ** rng.uniform(0, spread, n)
    i, j = close_pairs(c, r, 1e-6)
    assert set(zip(i.tolist(), j.tolist())) == _brute_pairs(c, r, 1e-6)
    assert len(i) == len(set(zip(i.tolist(), j.tolist())))  # each pair once
    c2, r2 = rng.uniform(0, 10, (k, 3)), 0.05 * 10 ** rng.uniform(0, spread, k)
    i, j = close_pairs(c, r, 1e-6, c2, r2)
    assert set(zip(i.tolist(), j.tolist())) == _brute_pairs(c, r, 1e-6, c2, r2)


def test_one_long_strut_keeps_the_contact_search_local():
    """A fine lattice with one strut that reaches across it: that strut pairs with every other,
    the others only with their neighbours (searched in radius classes, not with the largest)."""
    g = octet_graph((12, 12, 12), 1.0, 0.05, 0.05)
    mid = 0.5 * (g.nodes[g.struts[:, 0]] + g.nodes[g.struts[:, 1]])
    reach = np.full(len(mid), 0.4)
    reach[0] = 20.0
    i, j = close_pairs(mid, reach, 1e-6)
    per_strut = np.bincount(np.concatenate([i, j]), minlength=len(mid))
    assert per_strut[0] == len(mid) - 1  # the long one reaches everything
    assert np.median(per_strut[1:]) < 60  # the others only their neighbours
    assert len(i) < 40 * len(mid)
