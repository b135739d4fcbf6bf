"""Solid meshing: closure, one body, volumes against analytic values, printer minimum, clipping."""

from __future__ import annotations

import manifold3d as mf
import numpy as np
import pytest
import trimesh
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graded.graph import LatticeGraph
from graded.mesh import CHORD_TOL, bcc_graph, mesh_graph, octet_graph
from graded.mesh.solid import _check_solid, unique_float32_rows
from graded.validation import ValidationError


def _unit(v):
    v = np.asarray(v, dtype=float)
    return v / np.linalg.norm(v)


def _assert_printable(res):
    f = res.facts
    assert f.watertight and f.is_volume and f.bodies == 1
    assert f.volume > 0 and f.triangles == len(res.mesh.faces)


# --- single strut: V = pi r^2 L + 4/3 pi r^3 (two half balls outside the strut) ----------------
# The strut polygons have the circle's area, so the prism part is exact; only the ball facets
# deviate, by at most ~CHORD_TOL (flats up to ~1.5 tol inside, corners tol/2 outside) over one
# ball's area 4 pi r^2 (two half balls). Bound: |V - V_analytic| <= CHORD_TOL * 4 pi r^2.
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    r=st.floats(0.05, 1.0),
    length_factor=st.floats(3.0, 20.0),
    direction=st.tuples(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1)).filter(
        lambda v: np.linalg.norm(v) > 0.1
    ),
    origin=st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(-50, 50)),
)
def test_single_strut_volume_within_chord_error(r, length_factor, direction, origin):
    L = r * length_factor
    p = np.asarray(origin)
    q = p + L * _unit(direction)
    res = mesh_graph(LatticeGraph([p, q], [[0, 1]], [2 * r]))
    _assert_printable(res)
    v_exact = np.pi * r**2 * L + 4.0 / 3.0 * np.pi * r**3
    assert abs(res.facts.volume - v_exact) <= CHORD_TOL * 4 * np.pi * r**2
    assert res.stats["fallback_struts"] == 0


def test_single_strut_union_method_agrees():
    r, L = 0.2, 2.0
    g = LatticeGraph([[0, 0, 0], [0, 0, L]], [[0, 1]], [2 * r])
    v_exact = np.pi * r**2 * L + 4.0 / 3.0 * np.pi * r**3
    a = mesh_graph(g, method="joints").facts.volume
    b = mesh_graph(g, method="union").facts.volume
    for v in (a, b):
        assert abs(v - v_exact) <= CHORD_TOL * 4 * np.pi * r**2


# --- random stars: one body, closed, volume between disjoint tubes and tubes + hull spheres -----
@st.composite
def stars(draw):
    k = draw(st.integers(1, 7))
    dirs = []
    for _ in range(200):
        if len(dirs) == k:
            break
        v = _unit(draw(st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda v: np.linalg.norm(v) > 0.2)))
        if all(np.dot(v, u) < np.cos(np.radians(35)) for u in dirs):
            dirs.append(v)
    lengths = [draw(st.floats(1.5, 3.0)) for _ in dirs]
    diam = [draw(st.floats(0.2, 0.5)) for _ in dirs]
    nodes = np.vstack([[0, 0, 0]] + [L * d for L, d in zip(lengths, dirs)])
    struts = [[0, i + 1] for i in range(len(dirs))]
    return LatticeGraph(nodes, struts, diam)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(g=stars())
def test_random_star_is_one_closed_body(g):
    res = mesh_graph(g)
    _assert_printable(res)
    r = g.diameters / 2
    union = mesh_graph(g, method="union").facts.volume
    # The hull joints contain the balls-and-cylinders solid (up to polygon round-off) and add
    # the fillet between struts, which lies inside the centre joint's bounding sphere of
    # radius hypot(t, R): stub t = 1.05 R max(1, cot(theta_min / 2)), R the vertex radius.
    R = r.max() * 1.06
    dirs = (g.nodes[1:] - g.nodes[0]) / g.lengths[:, None]
    theta = np.pi
    if len(dirs) > 1:
        cos = dirs @ dirs.T
        np.fill_diagonal(cos, -1)
        theta = np.arccos(cos.max())
    t = 1.05 * R * max(1.0, 1.0 / np.tan(theta / 2))
    rho = np.hypot(t, R)
    assert res.facts.volume >= union * (1 - 0.02)
    assert res.facts.volume <= union + 4.0 / 3.0 * np.pi * rho**3
    assert res.facts.volume <= g.strut_volume + (len(r) + 1) * 4.0 / 3.0 * np.pi * rho**3


# --- lattices --------------------------------------------------------------------------------
def test_bcc_lattice_joints_vs_union():
    g = bcc_graph((2, 2, 2))
    a = mesh_graph(g)
    b = mesh_graph(g, method="union")
    _assert_printable(a)
    _assert_printable(b)
    assert a.stats["fallback_struts"] == 0 and a.stats["fallback_nodes"] == 0
    # hull joints fill the webs between struts: a few percent more than balls + cylinders
    assert b.facts.volume < a.facts.volume < 1.15 * b.facts.volume
    # both below the node-to-node strut volume plus all node balls
    balls = 4 / 3 * np.pi * (g.diameters.max() / 2 * 1.06) ** 3 * g.n_nodes
    assert a.facts.volume < g.strut_volume + balls


def test_octet_lattice_is_printable_and_dense_enough():
    g = octet_graph((2, 2, 2))
    res = mesh_graph(g)
    _assert_printable(res)
    # relative density against the bounding box (4 mm cube + ball/strut overhang)
    box = np.prod(np.ptp(res.mesh.vertices, axis=0))
    assert res.facts.relative_density == pytest.approx(res.facts.volume / box, rel=1e-12)
    assert res.facts.min_strut_diameter == pytest.approx(g.diameters.min())


def test_tapered_strut_volume_between_prisms():
    g = LatticeGraph([[0, 0, 0], [0, 0, 3.0]], [[0, 1]], [0.4])
    res = mesh_graph(g, end_diameters=[[0.3, 0.6]])
    _assert_printable(res)
    frustum = np.pi * 3.0 / 3 * (0.15**2 + 0.15 * 0.3 + 0.3**2)
    balls = 2 / 3 * np.pi * (0.15**3 + 0.3**3)
    # the tube tapers between the stub rings, so it is within the thin and thick prisms
    assert np.pi * 0.15**2 * 3 < res.facts.volume < np.pi * 0.3**2 * 3 + 4 / 3 * np.pi * 0.3**3
    assert res.facts.volume == pytest.approx(frustum + balls, rel=0.15)


# --- fallback paths: touching non-neighbours, short struts, sharp angles --------------------------
def test_touching_struts_fall_back_to_boolean_union():
    # two struts crossing without a common node, plus a sharp 8-degree pair and a short strut
    nodes = np.array(
        [
            [0, 0, 0], [4, 0, 0],  # strut A along x
            [2, -2, 0.1], [2, 2, 0.1],  # strut B crossing A 0.1 mm above it
            [0, 0, 0], [4, 0.55, 0],  # 8 degrees off A from node 0 (duplicate node 4 -> node 0)
            [4, 0, 0.15],  # short strut from node 1
        ],
        dtype=float,
    )
    struts = [[0, 1], [2, 3], [0, 5], [1, 6], [1, 3]]
    g = LatticeGraph(nodes, struts, [0.3, 0.3, 0.3, 0.3, 0.3])
    res = mesh_graph(g)
    _assert_printable(res)
    assert res.stats["fallback_struts"] >= 2
    ref = mesh_graph(g, method="union")
    assert res.facts.volume == pytest.approx(ref.facts.volume, rel=0.1)


# --- printer minimum ------------------------------------------------------------------------------
def test_thin_struts_raise_by_default():
    g = bcc_graph((1, 1, 1), d_min=0.2, d_max=0.5)
    with pytest.raises(ValidationError, match="diameters"):
        mesh_graph(g, min_diameter=0.35)


def test_thin_struts_dropped_on_request():
    g = bcc_graph((1, 1, 1), d_min=0.2, d_max=0.5)
    res = mesh_graph(g, min_diameter=0.35, thin="drop")
    thin = np.flatnonzero(g.diameters < 0.35)
    np.testing.assert_array_equal(res.dropped_struts, thin)
    assert len(res.kept_struts) + len(thin) == g.n_struts
    assert res.facts.min_strut_diameter >= 0.35
    assert res.facts.watertight and res.facts.is_volume


def test_all_thin_is_an_error():
    g = bcc_graph((1, 1, 1), d_min=0.2, d_max=0.25)
    with pytest.raises(ValidationError, match="diameters"):
        mesh_graph(g, min_diameter=0.3, thin="drop")


@pytest.mark.parametrize(
    "graph, field",
    [
        (LatticeGraph(np.zeros((2, 3)), np.zeros((0, 2)), np.zeros(0)), "graph"),
        (LatticeGraph([[0, 0, 0], [1, 0, 0]], [[0, 1]], [-0.1]), "diameters"),
        (LatticeGraph([[0, 0, 0], [0, 0, 0]], [[0, 1]], [0.3]), "struts"),
    ],
)
def test_bad_graphs_are_rejected(graph, field):
    with pytest.raises(ValidationError, match=field):
        mesh_graph(graph)


def test_bad_options_are_rejected():
    g = bcc_graph((1, 1, 1))
    with pytest.raises(ValidationError, match="thin"):
        mesh_graph(g, thin="ignore")
    with pytest.raises(ValidationError, match="method"):
        mesh_graph(g, method="voxels")
    with pytest.raises(ValidationError, match="end_diameters"):
        mesh_graph(g, end_diameters=np.ones((3, 2)))


# --- clipping ----------------------------------------------------------------------------------------
def test_clip_to_body_sphere():
    g = bcc_graph((3, 3, 3))
    body = trimesh.creation.icosphere(subdivisions=3, radius=2.6)
    body.apply_translation([3.0, 3.0, 3.0])
    res = mesh_graph(g, body=body, drop_islands=True)
    f = res.facts
    assert f.watertight and f.is_volume and f.bodies == 1
    assert f.reference_volume == pytest.approx(body.volume, rel=1e-9)
    assert f.relative_density == pytest.approx(f.volume / body.volume)
    full = mesh_graph(g).facts.volume
    assert f.volume < full
    # every vertex inside the body (up to its facet round-off)
    r = np.linalg.norm(res.mesh.vertices - 3.0, axis=1)
    assert r.max() <= 2.6 + 1e-9


def test_open_body_is_rejected():
    g = bcc_graph((1, 1, 1))
    box = trimesh.creation.box(extents=[2, 2, 2])
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2], process=False)
    with pytest.raises(ValidationError, match="body"):
        mesh_graph(g, body=open_box)


def test_broken_manifold_result_raises_runtime_error():
    with pytest.raises(RuntimeError, match="status"):
        _check_solid(mf.Manifold(), "union")


def test_progress_is_reported():
    calls = []
    mesh_graph(bcc_graph((1, 1, 1)), progress=lambda d, t, m: calls.append((d, t, m)))
    assert calls[0][0] == 0 and calls[-1][0] == calls[-1][1]


def test_volume_accounting_joints_plus_tubes():
    # without fallback parts the solid is the disjoint union of hull joints and tubes; the
    # tubes are exact-area prisms, so strut volume - tube volume is the stub material the
    # joints replace (node-to-node struts overlap at nodes, hence joints < stubs here)
    g = octet_graph((2, 2, 2))
    res = mesh_graph(g)
    s = res.stats
    assert s["fallback_struts"] == 0
    assert res.facts.volume == pytest.approx(s["joint_volume_mm3"] + s["tube_volume_mm3"], rel=1e-12)
    stubs = g.strut_volume - s["tube_volume_mm3"]
    assert 0 < s["joint_volume_mm3"] < stubs + g.n_nodes * 4 / 3 * np.pi * (0.25 * 1.06) ** 3


def test_superposed_lattice_with_sharp_angles_and_distortion():
    # BCC + octet: 35-degree pairs at the cube corners force some struts into the boolean
    # fallback; a smooth 0.02 mm distortion must not break anything
    from graded.mesh import superpose

    g = superpose(bcc_graph((2, 2, 2)), octet_graph((2, 2, 2)))
    assert g.n_struts == 64 + 240
    rng = np.random.default_rng(7)
    g = LatticeGraph(g.nodes + rng.normal(scale=0.02, size=g.nodes.shape), g.struts, g.diameters)
    res = mesh_graph(g)
    _assert_printable(res)
    layers = res.stats["layers"]
    # the first layer leaves the sharp/overlapping struts; the second stitches most of them
    assert 0 < layers[0]["struts"] - layers[0]["stitched_struts"] < g.n_struts / 2
    assert len(layers) >= 2 and layers[1]["stitched_struts"] > 0
    union = mesh_graph(g, method="union").facts.volume
    # joints only add fillet material: a few percent to ~15 % over balls + cylinders here
    assert union * 0.99 < res.facts.volume < union * 1.2


def test_polygon_width_respects_printer_minimum():
    d = 0.3
    g = LatticeGraph([[0, 0, 0], [0, 0, 3.0]], [[0, 1]], [d])
    res = mesh_graph(g, min_diameter=d)
    assert res.stats["min_polygon_width_mm"] >= d - 1e-12
    # measured on the mesh: the mid-length cross-section's inscribed circle
    section = res.mesh.section(plane_origin=[0, 0, 1.5], plane_normal=[0, 0, 1])
    pts = section.vertices[:, :2]
    ring = pts[np.argsort(np.arctan2(pts[:, 1], pts[:, 0]))]
    edge = np.roll(ring, -1, axis=0) - ring
    # distance from the axis to each polygon edge line
    dist = np.abs(edge[:, 0] * ring[:, 1] - edge[:, 1] * ring[:, 0]) / np.linalg.norm(edge, axis=1)
    assert 2 * dist.min() >= d - 1e-9
    # without the minimum the equal-area polygon is a little narrower across the flats
    plain = mesh_graph(g)
    assert plain.stats["min_polygon_width_mm"] < d


@pytest.mark.parametrize("method", ["joints", "union"])
def test_boolean_slivers_are_welded_for_float32_export(tmp_path, method):
    # booleans leave sliver edges far below float32 resolution; after welding, the STL read
    # back (float32, coincident vertices merged) is still watertight
    from graded.io import write_stl
    from graded.mesh import superpose

    g = superpose(bcc_graph((2, 2, 2)), octet_graph((2, 2, 2)))
    g = LatticeGraph(g.nodes + 20.0, g.struts, g.diameters)  # coordinates ~20-24 mm
    res = mesh_graph(g, method=method)
    path = write_stl(tmp_path / "part.stl", res.mesh.vertices, res.mesh.faces)
    back = trimesh.load(path, file_type="stl")
    assert back.is_watertight and back.is_volume and back.body_count == 1
    assert back.volume == pytest.approx(res.facts.volume, rel=1e-5)


# a few distinct coordinate values (signed zeros, ties in x and y only) so that rows repeat often
_COORD = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e-30, 3.4e38, 40.0, np.nextafter(np.float32(40.0), 50.0)])


@given(st.lists(st.tuples(_COORD, _COORD, _COORD), min_size=1, max_size=60))
@settings(max_examples=200, deadline=None)
def test_unique_float32_rows_is_the_row_partition(rows):
    a = np.array(rows, dtype=np.float32)
    uniq, inv, counts = unique_float32_rows(a, return_counts=True)
    ref, ref_counts = np.unique(a, axis=0, return_counts=True)  # compares values: -0.0 == 0.0
    assert uniq.dtype == np.float32 and inv.shape == (len(a),)
    assert np.array_equal(uniq[inv], a)  # value equality: -0.0 == 0.0
    assert len(uniq) == len(ref)
    assert sorted(counts.tolist()) == sorted(ref_counts.tolist())
    assert np.array_equal(np.bincount(inv, minlength=len(uniq)), counts)
    assert not np.signbit(uniq[uniq == 0]).any()  # one zero, the positive one
