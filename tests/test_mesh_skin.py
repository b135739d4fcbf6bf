"""The closing skin (graded.mesh.skin): wall thickness, exactness on boxes, one body with a lattice."""

from __future__ import annotations

import manifold3d as mf
import numpy as np
import pytest
import trimesh
from hypothesis import given, settings
from hypothesis import strategies as st

from graded.build import build
from graded.mesh import mesh_graph
from graded.mesh.facts import mesh_facts
from graded.mesh.skin import covering_ball, skin_shell
from graded.mesh.solid import keep_largest_body
from graded.mesh.tessellation import CHORD_TOL
from graded.spec import parse_spec

#: Round-off of manifold3d's float32-free (double) booleans and of the polyhedron scaling.
EXACT = 1e-9


@settings(max_examples=25, deadline=None)
@given(st.floats(0.05, 5.0))
def test_covering_ball_contains_the_ball_within_the_chord_tolerance(r):
    m = covering_ball(r).to_mesh64()
    v = np.asarray(m.vert_properties, dtype=np.float64)[:, :3]
    tri = v[np.asarray(m.tri_verts, dtype=np.int64)]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    face_distance = np.einsum("ij,ij->i", n, tri[:, 0])
    assert face_distance.min() >= r * (1 - EXACT)  # every face outside the ball: the wall is never thinner
    assert np.linalg.norm(v, axis=1).max() <= r + CHORD_TOL  # and at most the chord tolerance thicker


@pytest.mark.parametrize("t", [0.3, 1.0])
def test_box_skin_is_the_box_minus_the_shrunk_box(t):
    size = np.array([12.0, 7.0, 5.0])
    skin = skin_shell(trimesh.creation.box(bounds=[np.zeros(3), size]), t)
    thinnest = size.prod() - np.prod(size - 2 * t)
    thickest = size.prod() - np.prod(size - 2 * (t + CHORD_TOL))
    assert thinnest * (1 - EXACT) <= skin.wall.volume() <= thickest
    lo = np.array(skin.clip.bounding_box()[:3])
    assert np.all((lo >= t / 2 - EXACT) & (lo <= t / 2 + CHORD_TOL))  # the lattice ends mid-wall
    assert len(skin.wall.decompose()) == 2  # an outer and an inner shell


def testkeep_largest_body_keeps_the_cavity_and_drops_islands_inside_it():
    skin = skin_shell(trimesh.creation.box(bounds=[[0, 0, 0], [10, 10, 10]]), 0.5)
    rod = mf.Manifold.cube([1, 1, 9.6]).translate([2, 2, 0.2])  # reaches the wall at both ends
    island = mf.Manifold.cube([1, 1, 1]).translate([4, 4, 4])  # floats in the cavity
    kept, dropped = keep_largest_body(skin.wall + rod + island)
    assert dropped == 1
    assert kept.volume() == pytest.approx((skin.wall + rod).volume(), rel=EXACT)


SKINNED = {
    "body": {"box": {"size": [12, 8, 8]}},
    "cell_size": 4.0,
    "control_points": [{"position": [2, 4, 4], "cell": {"topology": "1x1+1x3+1x3", "rho": 0.06}},
                       {"position": [10, 4, 4], "cell": {"topology": "1x2+1x2+1x2", "rho": 0.05}}],
    "min_strut_diameter": 0.2,
    "skin": {"thickness": 0.4},
    "outputs": {"files": ["stl"]},
}


def test_build_with_skin_is_one_closed_body_with_the_body_as_its_surface(tmp_path):
    spec = parse_spec(SKINNED, base_dir=tmp_path)
    result = build(spec, output_dir=tmp_path / "out", write=True)
    part = trimesh.load(tmp_path / "out" / "part.stl")
    facts = mesh_facts(part)
    assert part.is_watertight and facts.bodies == 1 and facts.voids == 1  # one wall holding the lattice
    np.testing.assert_allclose(part.bounds, [[0, 0, 0], [12, 8, 8]], atol=1e-5)  # float32 STL round-off
    assert result.body.excursion(part.vertices) <= 1e-5
    # the wall plus the lattice inside it: more than the wall, less than wall + unskinned lattice
    # (the struts' ends inside the wall are absorbed by it)
    skin = result.solid.stats["skin_volume_mm3"]
    lattice = mesh_graph(result.graph, min_diameter=0.2, body=result.body.surface()).facts.volume
    assert skin + 0.5 * lattice < facts.volume < skin + lattice


def test_skinned_part_above_the_tiling_size_is_meshed_in_one_piece(tmp_path):
    """A skin is one wall around the part: above the tiling size the part is meshed in one
    piece (not refused, not tiled), the same solid as below it."""
    spec = parse_spec(SKINNED, base_dir=tmp_path)
    below = build(spec, output_dir=tmp_path / "below")
    above = build(spec, output_dir=tmp_path / "above", tiled_above=10, scheduler="serial")
    assert above.graph.n_struts > 10
    assert above.solid.mesh is not None and "tiles" not in above.solid.stats  # one piece
    assert above.solid.facts.volume == pytest.approx(below.solid.facts.volume, rel=EXACT)
    assert above.solid.facts.bodies == 1


def test_skinned_part_beyond_the_memory_is_refused_with_the_cell_size_that_fits(tmp_path):
    from graded.build import _check_one_piece
    from graded.validation import ValidationError

    spec = parse_spec(SKINNED, base_dir=tmp_path)
    _check_one_piece(spec, 190_000, memory=24 * 2**30)  # fits: nothing said
    with pytest.raises(ValidationError, match=r"skin: a skinned part is meshed in one piece, and this one's "
                       r"400,000 struts need about 37.3 GiB, more than this machine's 24 GiB allow .*; use a "
                       r"cell_size of at least 4\.99 mm, or leave out skin"):
        _check_one_piece(spec, 400_000, memory=24 * 2**30)


def test_skinned_solid_that_float32_opens_is_meshed_again_as_one_tile(tmp_path, request):
    """The float32 fall-back (one tile) keeps the skin: the same closed wall holding the lattice."""
    spec = parse_spec(SKINNED, base_dir=tmp_path)
    ref = build(spec, output_dir=tmp_path / "one")
    request.getfixturevalue("float32_opens")  # only after the reference build
    again = build(spec, output_dir=tmp_path / "again")
    assert again.solid.stats["float32_fallback"] == "one tile" and again.solid.stats["skin_mm"] == 0.4
    assert again.solid.facts.volume == pytest.approx(ref.solid.facts.volume, rel=1e-6)
    part = trimesh.load(again.files["stl"])
    facts = mesh_facts(part)
    assert part.is_watertight and facts.bodies == 1 and facts.voids == 1
    assert again.solid.stats["max_excursion_mm"] <= 1e-5
