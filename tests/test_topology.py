"""Superposition of elementary topologies: counts derived by hand from the geometry."""

import numpy as np
import pytest

from graded import ValidationError
from graded.topology import canonical, format_topology, parse_topology, reference_graph


def test_parse_and_format_round_trip():
    assert parse_topology("2x1+1x3+2x5") == ((2, 1), (1, 3), (2, 5))
    assert parse_topology(" 3 + 2X7 ") == ((1, 3), (2, 7))
    assert format_topology(((2, 1), (1, 3))) == "2x1+1x3"
    assert canonical(((2, 5), (1, 3), (2, 5))) == ((1, 3), (2, 5))


@pytest.mark.parametrize(
    "text, match",
    [("2x8", "topology: unknown topology id 8"), ("3x1", "tessellation: 3 is not allowed"),
     ("2x1++1x3", "topology: cannot read ''"), ("abc", "topology: cannot read 'abc'"), ("", "topology")],
)
def test_parse_rejects_bad_strings(text, match):
    with pytest.raises(ValidationError, match=match):
        parse_topology(text)


@pytest.mark.parametrize(
    "parts, nodes, bonds",
    [
        ("1x1", 1, 3),    # simple cubic: one node, three axis bonds
        ("1x2", 4, 24),   # octet (FCC): 4 nodes x 12 neighbours / 2
        ("1x3", 2, 8),    # BCC: corner + centre, 8 diagonals
        ("2x1", 8, 24),   # SC at half spacing: 8 nodes x 3 bonds
        ("1x7", 5, 11),   # honeycomb prism: 4 wall nodes + (0,0,0) on a straight wall, 7 in-plane + 4 vertical
    ],
)
def test_elementary_periodic_counts(parts, nodes, bonds):
    g = reference_graph(parts).periodic
    assert (g.n_nodes, g.n_bonds) == (nodes, bonds)


def test_collinear_overlap_merges_into_the_finer_lattice():
    # 1x SC edges lie on the 2x SC grid lines and are split at its mid-edge nodes
    a, b = reference_graph("1x1+2x1").periodic, reference_graph("2x1").periodic
    assert (a.n_nodes, a.n_bonds) == (b.n_nodes, b.n_bonds) == (8, 24)


def test_bcc_diagonals_split_at_nodes_of_topology_6():
    # Four of the eight BCC diagonals (towards (0,0,0), (1,1,1), (1,1,0), (0,0,1)) pass through
    # nodes of topology 6 at (1/4,1/4,1/4), (3/4,3/4,3/4), (3/4,3/4,1/4), (1/4,1/4,3/4); their
    # corner halves coincide with struts of topology 6. 8 + 1 nodes; 16 + (8 + 4) - 4 bonds.
    g = reference_graph("1x3+1x6").periodic
    assert (g.n_nodes, g.n_bonds) == (9, 24)
    assert g.membership.all(axis=1).sum() == 4  # the shared corner halves


def test_crossing_struts_get_new_nodes():
    # The vertical walls of the honeycomb prism (topology 7) at (x, y) = (0, 1/6), (1/2, 1/3),
    # (1/2, 2/3), (0, 5/6) cross the y-lines of the 2x SC grid in the mid-plane z = 1/2:
    # four new nodes. Bonds: y-lines 4 x 4, x-lines 8, z-lines 8, slanted walls 4,
    # vertical walls split in two 4 x 2 -> 44.
    g = reference_graph("1x7+2x1").periodic
    assert (g.n_nodes, g.n_bonds) == (16, 44)
    expected_new = {(0, 1 / 6, 0.5), (0.5, 1 / 3, 0.5), (0.5, 2 / 3, 0.5), (0, 5 / 6, 0.5)}
    have = {tuple(np.round(x, 9)) for x in g.nodes}
    assert {tuple(np.round(x, 9)) for x in expected_new} <= have
    # every bond is a straight piece: no node lies strictly inside another bond
    d = g.nodes[g.bonds[:, 1]] + g.offsets - g.nodes[g.bonds[:, 0]]
    for k in range(g.n_bonds):
        for shift in np.ndindex(3, 3, 3):
            pts = g.nodes + np.array(shift) - 1 - g.nodes[g.bonds[k, 0]]
            t = pts @ d[k] / (d[k] @ d[k])
            inside = (t > 1e-9) & (t < 1 - 1e-9)
            dist = np.linalg.norm(pts - t[:, None] * d[k], axis=1)
            assert not np.any(inside & (dist < 1e-9))


def test_order_and_repetition_do_not_change_the_graph():
    a = reference_graph("2x1+1x3+2x5").periodic
    b = reference_graph("2x5+2x1+1x3").periodic
    c = reference_graph("1x3+2x5+2x1+2x5").periodic
    for g in (b, c):
        assert (g.n_nodes, g.n_bonds) == (a.n_nodes, a.n_bonds)
        np.testing.assert_allclose(np.sort(g.nodes, axis=0), np.sort(a.nodes, axis=0))


def test_cube_representation_maps_onto_periodic_bonds():
    ref = reference_graph("1x2+1x3")
    assert ref.nodes.min() >= 0 and ref.nodes.max() <= 1
    # every periodic bond has at least one image in the cube, and lengths agree
    assert set(ref.cube_to_periodic.tolist()) == set(range(ref.periodic.n_bonds))
    lc = np.linalg.norm(ref.nodes[ref.struts[:, 1]] - ref.nodes[ref.struts[:, 0]], axis=1)
    lp = np.linalg.norm(ref.periodic.bond_vectors(np.eye(3)), axis=1)[ref.cube_to_periodic]
    np.testing.assert_allclose(lc, lp, atol=1e-12)
    np.testing.assert_array_equal(ref.membership, ref.periodic.membership[ref.cube_to_periodic])
