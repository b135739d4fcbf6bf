"""Partitioned meshing: tiles cut by planes, exact seams, one watertight body streamed to disk."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st

from graded.build import build
from graded.io.stl import StlStream, read_stl, write_stl
from graded.mesh import bcc_graph, mesh_graph, octet_graph, superpose
from graded.mesh.clip import canonical_faces, clip_soup, soup_volume
from graded.mesh.tiles import _open_edges, mesh_graph_tiled, plan_tiles, reversed_pairs
from graded.spec import parse_spec

#: Volume of the tiled solid against the one-piece solid: the issue's bar. Both are the same
#: polygons (tiles only cut and re-join them), so they agree far closer (round-off, ~1e-14).
VOLUME_REL = 1e-3
#: Round-off between a sum of pieces and the whole (float64 sums of ~1e5 terms of ~1 mm^3).
ROUNDOFF_REL = 1e-10

SPEC = """\
body:
  box: {size: [8, 6, 6]}
cell_size: 2.0
material: {E: 110, nu: 0.3}
control_points:
  - position: [1, 3, 3]
    cell: {topology: "2x1+1x3+2x5", rho: 0.03}
  - position: [7, 3, 3]
    cell: {topology: "1x1+2x4+1x6", rho: 0.06}
min_strut_diameter: 0.02
outputs: {files: [stl, 3mf]}
"""


def _closed_pieces(pieces) -> trimesh.Trimesh:
    soup = np.concatenate(pieces)
    return trimesh.Trimesh(vertices=soup.reshape(-1, 3), faces=np.arange(3 * len(soup)).reshape(-1, 3),
                           process=True)


def test_clip_pieces_of_complementary_boxes_rejoin_exactly():
    ball = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    rng = np.random.default_rng(1)
    ball.vertices = ball.vertices * (1 + 0.1 * rng.random((len(ball.vertices), 1)))  # no symmetric planes
    soup = ball.vertices[ball.faces]
    cuts = np.array([0.1234, -0.2718, 0.0])  # the z cut goes through vertices of the sphere's equator
    pieces = []
    for corner in np.ndindex(2, 2, 2):
        lo = np.where(np.array(corner) == 0, -np.inf, cuts)
        hi = np.where(np.array(corner) == 0, cuts, np.inf)
        pieces.append(clip_soup(soup, lo, hi))
    assert all(len(p) for p in pieces)
    whole = _closed_pieces(pieces)
    assert whole.is_watertight and whole.is_winding_consistent
    assert sum(soup_volume(p) for p in pieces) == pytest.approx(ball.volume, rel=ROUNDOFF_REL)
    # every piece lies in its own box
    for corner, p in zip(np.ndindex(2, 2, 2), pieces):
        side = np.array(corner) == 1
        assert np.all(np.where(side, p.reshape(-1, 3) >= cuts, p.reshape(-1, 3) <= cuts))


def test_canonical_faces_does_not_depend_on_the_given_split():
    # a planar hexagon split two different ways comes out split the same way
    ang = np.linspace(0, 2 * np.pi, 7)[:-1]
    v = np.column_stack([np.cos(ang), np.sin(ang) * 0.7, np.zeros(6)])
    fan0 = np.array([[0, i, i + 1] for i in range(1, 5)])
    fan3 = np.array([[3, (3 + i) % 6, (4 + i) % 6] for i in range(1, 5)])
    a = canonical_faces(v, fan0, np.zeros(4, dtype=np.int64))
    b = canonical_faces(v, fan3, np.zeros(4, dtype=np.int64))
    key = lambda t: sorted(tuple(np.roll(r, -int(np.argmin(r)))) for r in t)  # noqa: E731
    assert key(a) == key(b)
    area = lambda t: np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])[:, 2].sum()  # noqa: E731
    assert area(a) == pytest.approx(area(fan0), rel=1e-12) and area(a) > 0


def test_stl_stream_patches_the_count_and_matches_write_stl(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=2)
    tri = mesh.vertices[mesh.faces]
    with StlStream(tmp_path / "a.stl") as out:
        out.write_triangles(tri[:100])
        out.write_triangles(tri[100:])
    write_stl(tmp_path / "b.stl", mesh.vertices, mesh.faces)
    assert (tmp_path / "a.stl").read_bytes() == (tmp_path / "b.stl").read_bytes()
    got, _ = read_stl(tmp_path / "a.stl")
    assert len(got) == len(mesh.faces)


def test_stl_stream_leaves_no_file_on_error(tmp_path):
    with pytest.raises(RuntimeError), StlStream(tmp_path / "c.stl") as out:
        out.write_triangles(np.zeros((1, 3, 3)))
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("clip", [False, True])
def test_tiled_superposed_lattice_is_one_closed_body_equal_to_one_piece(tmp_path, clip):
    # BCC + octet: struts passing close to each other go to the boolean fallback, so the seams
    # also cross faces the union and the body clip cut
    g = superpose(bcc_graph((3, 3, 3), cell=2.0), octet_graph((3, 3, 3), cell=2.0))
    body = trimesh.creation.box(bounds=[[0.5, 0.5, 0.5], [5.7, 5.7, 5.7]]) if clip else None
    ref = mesh_graph(g, body=body)
    out = mesh_graph_tiled(g, tmp_path / "part.stl", body=body, tile_struts=400, scheduler="serial")
    assert out.stats["tiles"] >= 3 and out.stats["seam_half_edges"] > 0
    assert out.facts.volume == pytest.approx(ref.facts.volume, rel=VOLUME_REL)
    back = trimesh.load(out.path)
    assert len(back.faces) == out.facts.triangles
    assert back.is_watertight and back.is_winding_consistent
    assert back.volume == pytest.approx(ref.facts.volume, rel=VOLUME_REL)
    if clip:
        assert np.all(back.bounds[0] >= 0.5 - 1e-6) and np.all(back.bounds[1] <= 5.7 + 1e-6)


def test_tile_plan_owns_every_strut_once():
    g = bcc_graph((5, 4, 3), cell=2.0)
    from graded.mesh.solid import select_struts, strut_geometry

    dia, kept, _, _ = select_struts(g, None, "raise", None)
    geo = strut_geometry(g, dia, kept, 0.01, None)
    plan = plan_tiles(geo, 100)
    mid = 0.5 * (geo.nodes[geo.struts[:, 0]] + geo.nodes[geo.struts[:, 1]])
    owners = np.zeros(len(mid), dtype=int)
    for lo, hi in plan.boxes():
        owners += np.all((mid >= lo) & (mid < hi), axis=1)
    assert np.all(owners == 1)
    assert np.prod(plan.shape) >= int(np.ceil(g.n_struts / 100))
    # cuts never pass through a node coordinate
    for axis, cuts in enumerate(plan.planes):
        assert not np.isin(cuts, geo.nodes[:, axis]).any()


def test_partitioned_build_is_one_watertight_body_like_the_unpartitioned_build(tmp_path):
    spec = parse_spec(SPEC)
    ref = build(spec, output_dir=tmp_path / "one")
    tiled = build(spec, output_dir=tmp_path / "tiles", tiled_above=10, tile_struts=400, scheduler="serial")
    assert ref.solid.mesh is not None and tiled.solid.mesh is None
    assert tiled.solid.stats["tiles"] >= 4
    assert tiled.solid.facts.volume == pytest.approx(ref.solid.facts.volume, rel=VOLUME_REL)
    back = trimesh.load(tiled.files["stl"])
    assert len(back.faces) == tiled.solid.facts.triangles
    assert back.is_watertight and back.is_winding_consistent and len(back.split(only_watertight=False)) == 1
    assert back.volume == pytest.approx(ref.solid.facts.volume, rel=VOLUME_REL)
    # inside the body (the box clip margin is 1e-5 mm; float32 adds 1e-6)
    lo, hi = ref.body.lo, ref.body.hi
    assert np.all(back.bounds[0] >= lo - 2e-5) and np.all(back.bounds[1] <= hi + 2e-5)
    assert tiled.solid.stats["max_excursion_mm"] <= 2e-5
    # the 3MF holds the same closed mesh
    from graded.io.threemf import read_3mf

    _, objects, _ = read_3mf(tiled.files["3mf"])
    m3 = trimesh.Trimesh(objects[0].vertices, objects[0].triangles, process=False)
    assert len(m3.faces) == len(back.faces) and m3.is_watertight
    assert sorted(p.name for p in (tmp_path / "tiles").iterdir() if not p.name.startswith(".")) == sorted(
        p.name for p in (tmp_path / "one").iterdir() if not p.name.startswith("."))


def test_tiles_on_a_local_dask_cluster_give_the_same_triangles_as_in_process(tmp_path, monkeypatch):
    import graded.mesh.tiles as tiles_module

    monkeypatch.setattr(tiles_module, "TILE_HEARTBEAT_S", 0.001)  # every wait times out at first
    told = []
    g = bcc_graph((4, 4, 4), cell=2.0)
    serial = mesh_graph_tiled(g, tmp_path / "serial.stl", tile_struts=250, scheduler="serial")
    dask = mesh_graph_tiled(g, tmp_path / "dask.stl", tile_struts=250, scheduler="local", workers=2,
                            progress=lambda d, t, m: told.append((d, t, m)))
    # while tiles run in the workers, the build says so between the finished tiles
    alive = [d for d, _, m in told if m.startswith("meshing tiles:")]
    assert alive and alive == sorted(alive) and alive[-1] < dask.stats["tiles"]
    assert serial.stats["tiles"] >= 2
    a, _ = read_stl(serial.path)
    b, _ = read_stl(dask.path)
    # tiles arrive in completion order on the cluster: compare the triangles as sets
    key = lambda t: np.sort(t.reshape(len(t), -1).view(np.dtype((np.void, 72))).ravel())  # noqa: E731
    assert np.array_equal(key(a), key(b))
    assert dask.facts.volume == pytest.approx(serial.facts.volume, rel=ROUNDOFF_REL)
    assert dask.stats["worker_peak_rss_gb"] > 0


def test_streamed_3mf_reads_back_the_float32_mesh(tmp_path):
    from graded.io.threemf import read_3mf, write_3mf_stream

    mesh = trimesh.creation.icosphere(subdivisions=2)
    write_3mf_stream(tmp_path / "s.3mf", mesh.vertices, mesh.faces, name='a "part" <1>')
    unit, objects, build_items = read_3mf(tmp_path / "s.3mf")
    (obj,) = objects
    assert unit == "MilliMeter" and obj.name == 'a "part" <1>' and build_items == [obj.resource_id]
    assert np.array_equal(obj.triangles, mesh.faces)
    assert np.array_equal(obj.vertices, mesh.vertices.astype(np.float32).astype(np.float64))  # 9 digits: exact


def test_streamed_3mf_is_the_same_file_formatted_in_worker_processes(tmp_path, monkeypatch):
    import zipfile

    from graded.io import threemf

    mesh = trimesh.creation.icosphere(subdivisions=2)  # 162 vertices, 320 triangles
    monkeypatch.setattr(threemf, "STREAM_BLOCK", 50)  # 4 vertex blocks, the last one partial
    paths = [threemf.write_3mf_stream(tmp_path / f"w{w}.3mf", mesh.vertices, mesh.faces, workers=w)
             for w in (1, 2)]
    models = [zipfile.ZipFile(p).read("3D/3dmodel.model") for p in paths]
    assert models[0] == models[1]
    assert models[0].count(b"<vertex ") == 162 and models[0].count(b"<triangle ") == 320
    _, (obj,), _ = threemf.read_3mf(paths[1])
    assert np.array_equal(obj.triangles, mesh.faces)


def _box_with_sliver(x0=10.0):
    """A closed 20 mm cube whose top face holds a sliver cluster that float32 storage fuses only in part.

    P1 and P3 lie 0.2 um apart and round to the same float32 point; P2, 2 um from both, rounds
    to another. P1 and P3 share no edge but both border Q, through the sliver triangles
    (P2, Q, P1) and (P2, P3, Q): once P1 and P3 are fused, four triangles meet at the edge
    Q-P1, and (P2, Q, P1) and (B, Q, P3) use it in the same direction.
    """
    z = 20.0
    p2, p1, p3, q = (x0 - 2e-6, 10.0, z), (x0, 10.0 + 1e-7, z), (x0, 10.0 - 1e-7, z), (15.0, 10.0, z)
    a, b, c, d = (0.0, 0.0, z), (20.0, 0.0, z), (20.0, 20.0, z), (0.0, 20.0, z)
    top = [(a, p3, p2), (a, b, p3), (b, q, p3), (b, c, q), (c, p1, q), (c, d, p1), (d, p2, p1), (d, a, p2),
           (p2, q, p1), (p2, p3, q)]
    box = trimesh.creation.box(bounds=[[0.0, 0.0, 0.0], [20.0, 20.0, 20.0]])
    rest = box.vertices[box.faces[~np.all(box.vertices[box.faces][:, :, 2] == z, axis=1)]]
    soup = np.concatenate([rest, np.asarray(top, dtype=np.float64)])
    v, inv = np.unique(soup.reshape(-1, 3), axis=0, return_inverse=True)
    return v, inv.reshape(-1, 3).astype(np.int64)


def _float32_triangles(v, tris):
    from graded.mesh.solid import unique_float32_rows

    _, inv = unique_float32_rows(v[tris].reshape(-1, 3))
    t = inv.reshape(-1, 3)
    return t[(t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 2] != t[:, 0])]


def test_tile_collapses_a_sliver_that_float32_fuses_only_in_part():
    from graded.mesh.tiles import _open_edges, _tile_surface, collapse_short_edges

    v, tris = _box_with_sliver()
    open_mask, manifold = _open_edges(tris)
    assert manifold and not open_mask.any()  # closed and 2-manifold in float64
    groups, fresh = np.arange(len(tris)), np.zeros(len(v), dtype=bool)
    lo, hi = np.full(3, -np.inf), np.full(3, np.inf)
    # without the collapse float32 storage puts four triangles at one edge: two of them are one
    # triangle back to back, which cancel, and the surface is closed again
    _, manifold = _open_edges(_float32_triangles(v, tris))
    assert not manifold
    bare = _tile_surface(0, lo, hi, v, tris, groups, fresh, 0.0)
    assert len(bare["seam"]) == 0 and len(bare["records"]) == len(tris) - 2
    assert bare["volume"] == pytest.approx(8000.0, rel=1e-12)
    out = _tile_surface(0, lo, hi, v, tris, groups, fresh, 1e-5)
    assert len(out["seam"]) == 0 and out["components"] == 1
    assert out["volume"] == pytest.approx(8000.0, rel=1e-12)
    back = trimesh.Trimesh(vertices=out["records"]["vertices"].reshape(-1, 3),
                           faces=np.arange(3 * len(out["records"])).reshape(-1, 3), process=True)
    assert back.is_watertight and back.is_winding_consistent and back.volume == pytest.approx(8000.0)
    # a tile cut at z = 5 collapses the cluster too (its triangles lie clear of the plane) and is open on the
    # plane only
    cut = _tile_surface(1, np.array([-np.inf, -np.inf, 5.0]), hi, v, tris, groups, fresh, 1e-5)
    assert len(cut["seam"]) > 0
    # three vertices become one, so four triangles go; a cluster with two pinned vertices stays as it is
    assert len(collapse_short_edges(v, tris, 1e-5)) == len(tris) - 4
    sliver = np.flatnonzero(np.abs(v[:, 0] - 10.0) < 1e-5)
    assert len(sliver) == 3
    pinned = np.zeros(len(v), dtype=bool)
    pinned[sliver[:2]] = True
    assert np.array_equal(collapse_short_edges(v, tris, 1e-5, pinned), tris)
    # and a plane crossing the cluster's triangles pins it (no seam vertex moves): its back-to-back
    # pair cancels instead, and the tile is open on its plane only
    pinned_cut = _tile_surface(1, np.array([5.0, -np.inf, -np.inf]), hi, v, tris, groups, fresh, 1e-5)
    seam = pinned_cut["seam"][pinned_cut["seam_open"]]
    assert len(seam) > 0 and np.all(seam[..., 0] == np.float32(5.0))


def _oriented(t):
    """Triangles as a sorted list of rotations with the smallest corner first (orientation kept)."""
    k = np.argmin(t, axis=1)
    r = np.stack([t[np.arange(len(t)), (k + j) % 3] for j in range(3)], axis=1)
    return sorted(map(tuple, r.tolist()))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), pairs=st.integers(0, 6), copies=st.integers(0, 3))
def test_reversed_pairs_cancel_and_leave_a_closed_surface_closed(seed, pairs, copies):
    """Back-to-back pairs glued into a closed surface (float32 flattening a needle sliver) are
    removed exactly; a face that also has a reversed copy keeps one of itself."""
    rng = np.random.default_rng(seed)
    faces = trimesh.creation.icosphere(subdivisions=1).faces.astype(np.int64)
    extra = []
    for _ in range(pairs):  # a stray pair on any three corners
        a, b, c = rng.choice(42, 3, replace=False)
        extra += [[a, b, c], [a, c, b]]
    for f in faces[rng.choice(len(faces), copies, replace=False)]:  # a face, its reverse and itself again
        extra += [[f[0], f[2], f[1]], list(f)]
    t = np.concatenate([faces, np.array(extra, dtype=np.int64).reshape(-1, 3)])
    t = t[rng.permutation(len(t))]
    drop = reversed_pairs(t)
    assert int(drop.sum()) == 2 * (pairs + copies)
    assert _oriented(t[~drop]) == _oriented(faces)
    open_mask, manifold = _open_edges(t[~drop])
    assert manifold and not open_mask.any()


def test_sliver_a_mesh_reader_would_fuse_is_collapsed_near_a_zero_coordinate():
    """A vertex split by one float32 step where a coordinate is near 0 (finer than the 1e-8 mm a
    reader such as trimesh merges to): float32 keeps both, a reader fuses them and opens the
    surface, so the tile collapses the sliver and the surface is the unsplit one."""
    from graded.mesh.tiles import collapse_short_edges

    ico = trimesh.creation.icosphere(subdivisions=1)
    v = ico.vertices + [1.0 - ico.vertices[:, 0].min() - 0.95, 2.0, 3.0]  # leftmost vertex at x = 0.05
    faces = ico.faces.astype(np.int64)
    k = int(np.argmin(v[:, 0]))
    i = int(np.flatnonzero((faces == k).any(axis=1))[0])
    f = np.roll(faces[i], -int(np.flatnonzero(faces[i] == k)[0]))  # (k, a, b)
    a, b = int(f[1]), int(f[2])
    split = v[k].astype(np.float32)
    split[0] = np.nextafter(split[0], np.float32(1.0))  # one float32 step (3.7e-9 mm) to the right
    assert float(split[0]) - float(np.float32(v[k, 0])) < 1e-8
    v2 = np.vstack([v.astype(np.float32).astype(np.float64), split.astype(np.float64)])
    kk = len(v)
    t = faces.copy()
    t[i] = [kk, a, b]
    t = np.vstack([t, [[k, a, kk], [k, kk, b]]])  # two slivers keep the split surface closed
    open_mask, manifold = _open_edges(t)
    assert manifold and not open_mask.any()
    out = collapse_short_edges(v2, t, 1e-5)
    assert _oriented(out) == _oriented(faces)


def test_one_piece_solid_that_float32_opens_is_meshed_again_as_one_tile(tmp_path, request):
    """Where the one-piece weld cannot keep the solid closed in float32, the build meshes it as one
    tile (the tiled path's float32 clean-up) instead of failing: the same solid."""
    spec = parse_spec(SPEC)
    ref = build(spec, output_dir=tmp_path / "one")
    request.getfixturevalue("float32_opens")  # only after the reference build
    again = build(spec, output_dir=tmp_path / "again")
    assert again.solid.stats["float32_fallback"] == "one tile" and again.solid.stats["tiles"] == 1
    assert again.solid.facts.volume == pytest.approx(ref.solid.facts.volume, rel=VOLUME_REL)
    back = trimesh.load(again.files["stl"])
    assert back.is_watertight and len(back.split(only_watertight=False)) == 1
