"""Every writer round-trips: write, read back with an independent reader, compare with tolerances."""

from __future__ import annotations

import json

import meshio
import numpy as np
import pytest
import trimesh

from graded.io import (
    read_3mf,
    read_graph_csv,
    read_graph_json,
    read_stl,
    read_vtu,
    write_3mf,
    write_graph_csv,
    write_graph_json,
    write_stl,
    write_vtu,
)
from graded.mesh import bcc_graph, mesh_graph
from graded.validation import ValidationError

# float32 storage: relative 2^-24 of the largest coordinate (parts here are < 10 mm)
F32_TOL = 10.0 * 2.0**-23
# 3MF text with 6 decimals (lib3mf's default precision): one unit in the last place + float32
MF3_TOL = 1e-6 + F32_TOL


@pytest.fixture(scope="module")
def part():
    g = bcc_graph((2, 1, 1))
    g.nodes += np.array([1.25, -0.5, 3.0])  # off-origin, non-round coordinates
    g.meta["name"] = "test part"
    return g, mesh_graph(g)


def test_stl_roundtrip_trimesh_and_own_reader(tmp_path, part):
    g, res = part
    path = write_stl(tmp_path / "part.stl", res.mesh.vertices, res.mesh.faces)
    tri, normals = read_stl(path)
    np.testing.assert_allclose(tri, res.mesh.vertices[res.mesh.faces], atol=F32_TOL)
    np.testing.assert_allclose(normals, res.mesh.face_normals, atol=1e-6)
    loaded = trimesh.load(path, file_type="stl")
    assert len(loaded.faces) == len(res.mesh.faces)
    assert len(loaded.vertices) == len(res.mesh.vertices)  # merged back to the shared vertices
    assert loaded.is_watertight and loaded.is_volume
    assert loaded.volume == pytest.approx(res.mesh.volume, rel=1e-6)
    with open(path, "rb") as fh:
        assert not fh.read(80).lower().startswith(b"solid")


def test_3mf_mesh_roundtrip(tmp_path, part):
    g, res = part
    path = write_3mf(tmp_path / "part.3mf", res.mesh.vertices, res.mesh.faces)
    unit, objs, build = read_3mf(path)
    assert unit == "MilliMeter"
    assert len(objs) == 1 and build == [objs[0].resource_id]
    np.testing.assert_allclose(objs[0].vertices, res.mesh.vertices, atol=MF3_TOL)
    np.testing.assert_array_equal(objs[0].triangles, res.mesh.faces)
    back = trimesh.Trimesh(objs[0].vertices, objs[0].triangles, process=False)
    assert back.is_watertight and back.volume == pytest.approx(res.mesh.volume, rel=1e-5)


def test_3mf_beam_lattice_roundtrip(tmp_path, part):
    g, res = part
    path = write_3mf(tmp_path / "lattice.3mf", res.mesh.vertices, res.mesh.faces, graph=g)
    unit, objs, build = read_3mf(path)
    assert unit == "MilliMeter"
    solid, lattice = objs
    assert build == [lattice.resource_id]
    assert lattice.representation == solid.resource_id
    np.testing.assert_array_equal(lattice.beams, g.struts)
    # radii are written with 6 decimals (one unit in the last place)
    np.testing.assert_allclose(lattice.beam_radii, np.stack([g.diameters / 2] * 2, axis=1), atol=1e-6)
    np.testing.assert_allclose(lattice.vertices, g.nodes, atol=MF3_TOL)
    node_r = np.zeros(g.n_nodes)
    np.maximum.at(node_r, g.struts.reshape(-1), np.repeat(g.diameters / 2, 2))
    np.testing.assert_allclose(lattice.ball_radii, node_r[lattice.balls], atol=1e-6)
    assert set(lattice.balls) == set(range(g.n_nodes))
    np.testing.assert_array_equal(solid.triangles, res.mesh.faces)


def test_vtu_roundtrip(tmp_path, part):
    g, _ = part
    path = write_vtu(tmp_path / "graph.vtu", g, cell_data={"cell_id": np.arange(g.n_struts)})
    m = meshio.read(path)
    np.testing.assert_array_equal(m.cells[0].data, g.struts)
    np.testing.assert_allclose(m.points, g.nodes, rtol=0, atol=0)  # binary float64: exact
    np.testing.assert_allclose(m.cell_data["diameter"][0], g.diameters, rtol=0, atol=0)
    np.testing.assert_allclose(m.cell_data["length"][0], g.lengths, rtol=1e-15)
    back = read_vtu(path)
    np.testing.assert_array_equal(back.struts, g.struts)
    np.testing.assert_array_equal(back.diameters, g.diameters)


def test_graph_json_roundtrip_is_exact(tmp_path, part):
    g, _ = part
    path = write_graph_json(tmp_path / "graph.json", g)
    doc = json.loads(path.read_text())
    assert doc["format"] == "graded-lattice-graph" and doc["units"] == "mm"
    back = read_graph_json(path)
    np.testing.assert_array_equal(back.nodes, g.nodes)
    np.testing.assert_array_equal(back.struts, g.struts)
    np.testing.assert_array_equal(back.diameters, g.diameters)
    assert back.meta == g.meta


def test_graph_csv_roundtrip_is_exact(tmp_path, part):
    g, _ = part
    path = write_graph_csv(tmp_path / "graph.csv", g)
    assert path.read_text().splitlines()[0] == "strut,node0,node1,x0,y0,z0,x1,y1,z1,diameter"
    back = read_graph_csv(path)
    np.testing.assert_array_equal(back.nodes, g.nodes)
    np.testing.assert_array_equal(back.struts, g.struts)
    np.testing.assert_array_equal(back.diameters, g.diameters)


def test_writers_are_atomic_and_check_suffix(tmp_path, part):
    g, res = part
    target = tmp_path / "keep.stl"
    target.write_bytes(b"old")
    with pytest.raises(ValidationError, match="path"):
        write_stl(tmp_path / "part.obj", res.mesh.vertices, res.mesh.faces)
    # a failing write (bad triangle index) leaves the old file and no temporary behind
    with pytest.raises(IndexError):
        write_stl(target, res.mesh.vertices, np.array([[0, 1, 10**9]]))
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.stl"]
    with pytest.raises(ValidationError, match="path"):
        write_graph_json(tmp_path / "graph.txt", g)


def test_foreign_json_is_rejected(tmp_path):
    p = tmp_path / "x.json"
    p.write_text('{"format": "something-else"}')
    with pytest.raises(ValidationError, match="path"):
        read_graph_json(p)


def test_atomic_writes_get_ordinary_file_permissions(tmp_path):
    import os
    import stat

    from graded.io.atomic import atomic_path

    mask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("x")
    finally:
        os.umask(mask)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644
