"""Lattices in grains (``graded.grading.grains``): regions, joints, and the fallback that builds
a blend no single phase map can follow."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graded.build import build_graph
from graded.grading.assemble import largest_component
from graded.grading.grains import boundary_distance, join_grains, nearest_group
from graded.grading.local import local_stiffness
from graded.grading.pipeline import prepare
from graded.graph import LatticeGraph
from graded.spec import parse_spec
from graded.unitcell import UnitCell

#: The control points keep their own cells exactly: basis and FE stiffness to round-off.
EXACT = 1e-9

#: A 132 degree turn about an oblique axis of a cell with four symmetries, 12 cells apart:
#: the phase map cannot follow it as given nor in any equivalent orientation.
CELL = {"topology": "1x6", "rho": 0.03}
TURN = {"R2": [2.3, 0.6, 0.0]}


def _spec(**extra) -> dict:
    return {"body": {"box": {"size": [24, 8, 8]}}, "cell_size": 2.0, "zeta": 0.1,
            "control_points": [{"position": [0, 4, 4], "cell": CELL},
                               {"position": [24, 4, 4], "cell": {**CELL, **TURN}}], **extra}


coords = st.floats(-20, 20, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.tuples(coords, coords, coords), st.tuples(coords, coords, coords), st.tuples(coords, coords, coords))
def test_boundary_distance_of_two_groups_is_the_distance_to_the_bisector_plane(p, q, x):
    p, q, x = (np.array(v) for v in (p, q, x))
    if np.linalg.norm(p - q) < 1e-3:
        return
    points = np.stack([p, q])
    n = (q - p) / np.linalg.norm(q - p)
    plane = float((x - 0.5 * (p + q)) @ n)  # > 0 on q's side
    d = boundary_distance(x[None], points, np.array([0, 1]), 0)[0]
    assert d == pytest.approx(-plane, abs=1e-9 * (1 + np.abs(points).max() ** 2))
    assert nearest_group(x[None], points, np.array([0, 1]))[0] == (1 if plane > 0 else 0) or abs(plane) < 1e-9
    assert np.isinf(boundary_distance(x[None], points, np.array([0, 0]), 0)[0])  # one group: no boundary


def _chain(x0: float, x1: float, n: int, d: float) -> LatticeGraph:
    xs = np.linspace(x0, x1, n)
    nodes = np.stack([xs, np.zeros(n), np.zeros(n)], 1)
    struts = np.stack([np.arange(n - 1), np.arange(1, n)], 1)
    return LatticeGraph(nodes=nodes, struts=struts, diameters=np.full(n - 1, d))


def test_join_grains_links_the_cut_ends_across_the_boundary_and_nothing_else():
    from graded.grading.grains import GrainedField

    field = GrainedField(points=np.array([[-5.0, 0, 0], [5.0, 0, 0]]), bases=np.stack([np.eye(3)] * 2),
                         group_of=np.array([0, 1]), groups=((0,), (1,)), fields=(None, None))
    a, b = _chain(-3.8, -0.3, 8, 0.2), _chain(0.3, 3.8, 8, 0.4)  # struts 0.5 long, gap 0.6
    cut_a = np.zeros(8, dtype=bool)
    cut_a[-1] = True  # the end at the boundary lost its strut
    cut_b = np.zeros(8, dtype=bool)
    cut_b[0] = True
    g, joints, merged = join_grains([a, b], [cut_a, cut_b], field, merge_tol=1e-6)
    assert joints == 1 and merged == 0 and g.n_struts == 7 + 7 + 1
    assert largest_component(g.struts, g.n_nodes).all()  # one piece
    k = np.flatnonzero(np.isclose(np.linalg.norm(g.nodes[g.struts[:, 1]] - g.nodes[g.struts[:, 0]], axis=1), 0.6))
    assert len(k) == 1 and g.diameters[k[0]] == pytest.approx(0.3)  # mean of the two ends' struts
    # beyond the reach (JOIN_REACH x the longer strut) nothing is joined
    far = _chain(0.47, 3.97, 8, 0.4)  # in its band, 0.77 > JOIN_REACH * 0.5 from a
    g, joints, _ = join_grains([a, far], [cut_a, cut_b], field, merge_tol=1e-6)
    assert joints == 0
    # coincident cut ends are merged, not linked by a zero-length strut
    touching = _chain(-0.3, 3.2, 8, 0.4)
    g, joints, merged = join_grains([a, touching], [cut_a, cut_b], field, merge_tol=1e-6)
    assert joints == 0 and merged == 1 and g.n_nodes == 15 and largest_component(g.struts, g.n_nodes).all()


def test_a_blend_no_phase_map_follows_is_built_in_grains_with_each_point_its_own_cell():
    spec = parse_spec(_spec())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prep = prepare(spec)
    assert any("built in 2 grains (point 0; point 1)" in str(w.message) for w in caught)
    grains = prep.grains
    assert grains is not None and grains.groups == ((0,), (1,))
    assert max(prep.phase.fit.point_basis_error) < EXACT
    points = np.array([cp.position for cp in spec.control_points])
    assert np.array_equal(prep.field.weights(points), np.eye(2))
    x = np.array([[6.0, 4, 4], [11.9, 4, 4], [12.1, 1, 7], [20.0, 4, 4]])
    assert grains.grain_of(x).tolist() == [0, 0, 1, 1]
    w = prep.field.weights(x)
    assert np.array_equal(w, np.eye(2)[[0, 0, 1, 1]])  # one cell per grain, nothing blended across
    for i, cell in enumerate([UnitCell.from_dict(CELL), UnitCell.from_dict({**CELL, **TURN})]):
        C = cell.stiffness(nu=spec.material.nu)
        C_built = local_stiffness(prep, points[i])
        assert np.linalg.norm(C_built - C) / np.linalg.norm(C) < EXACT
        assert np.allclose(prep.cells[i].basis, cell.basis @ (np.eye(3) if prep.realignment is None
                                                              else prep.realignment.symmetries[i]), atol=1e-14)


def test_a_lattice_in_grains_is_one_connected_graph_inside_the_body():
    spec = parse_spec(_spec())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = build_graph(spec)
    assert graph.n_struts > 0 and largest_component(graph.struts, graph.n_nodes).all()
    assert graph.meta["grains"] == [[0], [1]]
    assert np.all(graph.nodes >= -1e-9) and np.all(graph.nodes <= np.array([24, 8, 8]) + 1e-9)
    # struts crossing the boundary plane x = 12 are the joints, and there are some
    a, b = graph.nodes[graph.struts[:, 0], 0], graph.nodes[graph.struts[:, 1], 0]
    crossing = (np.minimum(a, b) < 12.0) & (np.maximum(a, b) > 12.0)
    assert crossing.sum() > 0


def test_the_report_of_a_lattice_in_grains_names_the_groups_and_the_joints(tmp_path):
    import json

    from graded.build import build

    spec = parse_spec(_spec(outputs={"files": ["report"]}))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = build(spec, output_dir=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    grains = doc["grading"]["grains"]
    assert grains["groups"] == [[0], [1]] and grains["joining_struts"] == result.lattice.stats.extra["struts_joining"]
    assert doc["counts"]["grains"]["value"] == 2 and doc["counts"]["struts_joining"]["value"] > 0
    for p in doc["control_points"]:  # each point is its own cell, and the window check saw its own grain
        assert p["errors"]["as_built_vs_cell"]["rel_error"] < EXACT
        assert p["window_check"]["struts"] > 0
