"""Mesh facts against closed-form solids."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from graded.mesh import mesh_facts


def test_box_facts_are_exact():
    box = trimesh.creation.box(extents=[2.0, 3.0, 4.0])
    f = mesh_facts(box, min_strut_diameter=0.4)
    assert f.volume == pytest.approx(24.0, rel=1e-12)
    assert f.reference_volume == pytest.approx(24.0, rel=1e-12)  # its own bounding box
    assert f.relative_density == pytest.approx(1.0)
    assert (f.triangles, f.vertices, f.bodies) == (12, 8, 1)
    assert f.watertight and f.is_volume and f.printable
    assert f.min_strut_diameter == 0.4
    d = f.to_dict()
    assert d["bounds"] == [[-1.0, -1.5, -2.0], [1.0, 1.5, 2.0]] and d["printable"] is True


def test_two_bodies_and_reference_volume():
    a = trimesh.creation.box(extents=[1, 1, 1])
    b = trimesh.creation.box(extents=[1, 1, 1])
    b.apply_translation([3, 0, 0])
    both = trimesh.util.concatenate([a, b])
    f = mesh_facts(both, reference_volume=8.0)
    assert f.bodies == 2 and not f.printable
    assert f.relative_density == pytest.approx(2.0 / 8.0)
    assert np.isnan(f.min_strut_diameter)


def test_open_mesh_is_not_watertight():
    box = trimesh.creation.box(extents=[1, 1, 1])
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-1], process=False)
    f = mesh_facts(open_box)
    assert not f.watertight and not f.is_volume and not f.printable


def test_enclosed_void_is_a_void_not_a_body():
    outer = trimesh.creation.box(extents=[4, 4, 4])
    inner = trimesh.creation.box(extents=[1, 1, 1])
    inner.invert()  # inward-facing shell: a cavity
    hollow = trimesh.util.concatenate([outer, inner])
    f = mesh_facts(hollow)
    assert (f.bodies, f.voids) == (1, 1)
    assert f.volume == pytest.approx(64.0 - 1.0)
    assert f.printable
