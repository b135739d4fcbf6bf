"""Graded spinodoid parts: unit-variance superposition, local threshold, one watertight solid."""

from __future__ import annotations

import manifold3d as mf
import numpy as np
import pytest
import trimesh

from graded.grading.body import Body, box_body
from graded.mesh.solid import to_manifold
from graded.spinodoid import SpinodoidDesign, field_on_grid, sample_waves
from graded.spinodoid.mesh import blend_fields, field_correlation, mesh_graded_spinodoid
from graded.validation import ValidationError


def two_wave_sets(seed=0):
    rng = np.random.default_rng(seed)
    d1 = SpinodoidDesign(rho=0.35, theta=(90, 90, 90))
    d2 = SpinodoidDesign(rho=0.6, theta=(0, 30, 30))
    return [sample_waves(d1, rng), sample_waves(d2, rng)]


def test_blend_keeps_unit_variance_exactly():
    w = two_wave_sets()
    G = field_correlation(w)
    assert G[0, 0] == pytest.approx(1.0, abs=1e-12) and G[1, 1] == pytest.approx(1.0, abs=1e-12)
    assert abs(G[0, 1]) > 1e-4  # the two sets share lattice waves: they are correlated
    n = 16
    phi = np.stack([field_on_grid(s, n) for s in w])
    assert np.mean(phi[0] * phi[1]) == pytest.approx(G[0, 1], abs=1e-12)
    for lam in (0.0, 0.3, 0.5, 0.9):
        weights = np.stack([np.full((n, n, n), 1 - lam), np.full((n, n, n), lam)])
        mixed = blend_fields(phi, weights, G)
        assert np.mean(mixed**2) == pytest.approx(1.0, abs=1e-12)
    # a plain mix loses variance: (1 - l)^2 + l^2 + 2 l (1 - l) G_01 at l = 1/2
    plain = 0.5 * phi[0] + 0.5 * phi[1]
    assert np.mean(plain**2) == pytest.approx(0.5 + 0.5 * G[0, 1], abs=1e-12)


def _volume_in_box(mesh: trimesh.Trimesh, lo, hi) -> float:
    box = mf.Manifold.cube(tuple(np.subtract(hi, lo))).translate(tuple(lo))
    return (to_manifold(mesh) ^ box).volume()


def test_graded_box_is_one_watertight_body_with_graded_density():
    w = two_wave_sets()
    body = box_body((20.0, 10.0, 10.0))
    part = mesh_graded_spinodoid(body, np.array([[0.0, 5, 5], [20.0, 5, 5]]), w, [0.35, 0.6],
                                 cell_size=10.0, voxel_size=0.5)
    f = part.facts
    assert f.watertight and f.is_volume and f.bodies == 1 and f.voids == 0
    assert np.allclose(f.bounds[0], 0.0, atol=1e-9) and np.allclose(f.bounds[1], [20, 10, 10], atol=1e-9)
    left = _volume_in_box(part.mesh, (0, 0, 0), (5, 10, 10)) / 500.0
    right = _volume_in_box(part.mesh, (15, 0, 0), (20, 10, 10)) / 500.0
    # zeta = 1 over 2 cells: the far point still weighs ~10-25 % in the outer quarters
    assert 0.3 < left < 0.45 and 0.5 < right < 0.65
    assert part.removed_volume < 0.01 * f.volume


def test_clipped_to_a_mesh_body():
    w = two_wave_sets(1)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=6.0)
    sphere.apply_translation([6.0, 6.0, 6.0])
    body = Body(lo=np.zeros(3), hi=np.full(3, 12.0), mesh=sphere, name="sphere")
    part = mesh_graded_spinodoid(body, np.array([[6.0, 6, 6]]), w[:1], [0.5], cell_size=6.0, voxel_size=0.4)
    f = part.facts
    assert f.watertight and f.bodies == 1
    assert 0.4 < f.relative_density < 0.6  # against the sphere's volume
    assert np.linalg.norm(part.mesh.vertices - 6.0, axis=1).max() <= 6.0 + 1e-6


def test_too_coarse_voxels_are_refused():
    w = two_wave_sets()
    with pytest.raises(ValidationError, match="^voxel_size:"):
        mesh_graded_spinodoid(box_body((10.0, 10, 10)), np.array([[5.0, 5, 5]]), w[:1], [0.5],
                              cell_size=5.0, voxel_size=1.0)


def test_local_cell_is_the_part_around_a_control_point():
    from scipy.special import erfinv

    from graded.fem.voxel import homogenize_voxels
    from graded.spinodoid.mesh import local_cell

    w = two_wave_sets(2)
    points = np.array([[0.0, 0, 0], [400.0, 0, 0]])  # far apart: the other weight underflows to 0
    solid = local_cell(points[0], points, w, [0.45, 0.6], cell_size=5.0, resolution=16)
    phi = field_on_grid(w[0], 16)
    expect = phi <= np.sqrt(2) * erfinv(2 * 0.45 - 1)
    from graded.spinodoid import keep_percolating

    assert np.array_equal(solid, keep_percolating(expect)[0])
    assert abs(solid.mean() - 0.45) < 0.05
    # between the points the local cell follows the blended density
    mid = local_cell(np.array([200.0, 0, 0]), points, w, [0.45, 0.6], cell_size=5.0, resolution=16, zeta=1e-4)
    assert abs(mid.mean() - 0.525) < 0.05
    C = homogenize_voxels(mid).C[0]
    assert np.linalg.eigvalsh(C).min() > 0
