"""Graph clean-up pieces: SI Eq. 16 blending, 2-core pruning, collinear-node dissolving."""

import numpy as np

from graded.grading.assemble import _dissolve, _two_core, blended_diameters, largest_component, strut_membership
from graded.topology import reference_graph


def test_membership_and_eq16_blend():
    ref = reference_graph(((2, 1), (1, 3), (2, 5), (1, 4)))
    member = strut_membership(ref.membership, ref.parts, [((2, 1), (1, 3), (2, 5)), ((1, 4),)])
    assert member[:, 0].any() and member[:, 1].any()
    # a strut on both topologies blends d1 -> d2, one on a single topology fades to 0
    w = np.array([[0.75, 0.25]] * len(member))
    d = blended_diameters(w, member, np.array([0.2, 0.4]))
    expect = 0.75 * 0.2 * member[:, 0] + 0.25 * 0.4 * member[:, 1]
    assert np.allclose(d, expect, atol=1e-15)


def test_two_core_removes_dangling_chains_and_keeps_cycles():
    # square 0-1-2-3 with a tail 3-4-5
    struts = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [3, 4], [4, 5]])
    keep = _two_core(struts, 6)
    assert keep.tolist() == [True, True, True, True, False, False]


def testlargest_component_only():
    struts = np.array([[0, 1], [1, 2], [2, 0], [3, 4]])
    assert largest_component(struts, 5).tolist() == [True, True, True, False]


def test_collinear_chains_through_lost_nodes_are_joined():
    # 0 --a-- 1 --b-- 2 --c-- 3 straight along x, plus a bent node 4 between 3 and 5.
    nodes = np.array([[0, 0, 0], [1, 0, 0], [1.5, 0, 0], [3, 0, 0], [3.5, 1, 0], [4, 0, 0.0]])
    struts = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    d = np.array([0.1, 0.2, 0.3, 0.5, 0.5])
    # nodes 1, 2 (collinear) and 4 (bent) lost a crossing strut
    s, dd, n = _dissolve(nodes, struts, d, np.array([1, 2, 4]))
    assert n == 2
    pairs = {tuple(sorted(p)) for p in s.tolist()}
    assert pairs == {(0, 3), (3, 4), (4, 5)}
    joined = dd[[tuple(sorted(p)) == (0, 3) for p in s.tolist()]][0]
    assert np.isclose(joined, (1 * 0.1 + 0.5 * 0.2 + 1.5 * 0.3) / 3.0)  # length-weighted mean
