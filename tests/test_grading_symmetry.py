"""Equivalent cells (``graded.grading.symmetry``): symmetries of the topologies, the same
stiffness in every equivalent orientation, and the phase fields' fallback to them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from graded.grading.pipeline import REALIGN_TRIES, prepare
from graded.grading.symmetry import (
    CUBE_ROTATIONS,
    blend_misfit,
    equivalent_cell,
    realignments,
    topology_symmetries,
)
from graded.spec import parse_spec
from graded.unitcell import UnitCell

#: FE of the same cell written with two bases: the periodic beam solve agrees to round-off.
SAME_FE = 1e-9


def _two_points(cell: dict, turned: dict) -> dict:
    return {"body": {"box": {"size": [24, 8, 8]}}, "cell_size": 2.0, "zeta": 0.1,
            "control_points": [{"position": [0, 4, 4], "cell": cell},
                               {"position": [24, 4, 4], "cell": {**cell, **turned}}]}


def test_cube_rotations_and_the_symmetries_of_the_elementary_topologies():
    assert len(CUBE_ROTATIONS) == 24 and np.array_equal(CUBE_ROTATIONS[0], np.eye(3))
    assert all(round(np.linalg.det(G)) == 1 for G in CUBE_ROTATIONS)
    sizes = {f"{t}x{i}": len(topology_symmetries(f"{t}x{i}")) for t in (1, 2) for i in range(1, 8)}
    assert all(24 % n == 0 for n in sizes.values())
    assert sizes["1x1"] == sizes["1x2"] == sizes["2x3"] == 24  # simple cubic, octet-like: every rotation
    assert min(sizes.values()) < 24  # and some are less symmetric
    for G in topology_symmetries("1x6"):
        assert np.array_equal(G @ G.T, np.eye(3))


@pytest.mark.parametrize("topology", ["2x1+1x3+2x5", "1x6", "1x4+2x7"])
def test_an_equivalent_cell_is_the_same_cell(topology):
    cell = UnitCell(topology, 0.04, U=[1.4, 0.9, 0.7], V=[1.1, 1.0, 0.8], R1=[0.7, 0.3, 0.4], R2=[1.9, 0.5, 0.1])
    C = cell.stiffness()
    for G in topology_symmetries(topology):
        eq = equivalent_cell(cell, G)
        assert np.allclose(eq.basis, cell.basis @ G, atol=1e-14)
        assert np.isclose(eq.diameter(2.0), cell.diameter(2.0), rtol=1e-12)
        assert np.allclose(eq.stiffness(), C, rtol=0, atol=SAME_FE * np.abs(C).max())


def test_a_rotation_that_is_no_symmetry_changes_the_cell():
    cell = UnitCell("1x6", 0.04, U=[1.4, 0.9, 0.7])
    sym = {G.tobytes() for G in topology_symmetries("1x6")}
    # a turn that moves the z axis (half-turns about the axes leave any orthotropic stiffness alone)
    other = next(G for G in CUBE_ROTATIONS if G.tobytes() not in sym and G[2, 2] == 0)
    C = cell.stiffness()
    assert not np.allclose(equivalent_cell(cell, other).stiffness(), C, rtol=0, atol=1e-3 * np.abs(C).max())


def test_realignments_find_the_quarter_turn_that_makes_two_cubic_cells_one_basis():
    a = UnitCell("2x1+1x3+2x5", 0.03)
    b = UnitCell("2x1+1x3+2x5", 0.03, R2=[np.pi / 2, 0, 0])  # the same lattice, a quarter turn about z
    assert blend_misfit(np.stack([a.basis, b.basis])) == pytest.approx((np.pi / 2) ** 2)
    ranked = realignments([a, b], 3)
    value, (Ga, Gb) = ranked[0]
    assert value < 1e-20 and [v for v, _ in ranked] == sorted(v for v, _ in ranked)
    assert np.allclose(a.basis @ Ga, b.basis @ Gb, atol=1e-12)
    assert realignments([a, a], 3) == []  # nothing is closer than the same basis


def test_a_turn_the_phase_fields_cannot_follow_is_built_in_an_equivalent_orientation():
    """A 132 degree turn about z: the phase map swells the middle cells ~8x (refused before);
    the same lattice turned by 42 degrees (a quarter turn less) is followed."""
    spec = parse_spec(_two_points({"topology": "2x1+1x3+2x5", "rho": 0.03}, {"R2": [2.3, 0, 0]}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        prep = prepare(spec)
    assert any("equivalent orientation" in str(w.message) and "point 1" in str(w.message) for w in caught)
    r = prep.realignment
    assert r is not None and r.changed in ([0], [1]) and 1 <= r.tries <= REALIGN_TRIES
    assert r.misfit_built < r.misfit_given and "cannot follow" in r.reason
    # the control points keep their cells exactly: the built basis there is the re-expressed one
    assert max(prep.phase.fit.point_basis_error) < 1e-9
    given = [UnitCell("2x1+1x3+2x5", 0.03), UnitCell("2x1+1x3+2x5", 0.03, R2=[2.3, 0, 0])]
    for i, cell in enumerate(given):
        assert np.allclose(prep.cells[i].basis, cell.basis @ r.symmetries[i], atol=1e-14)
    doc = r.to_dict()
    assert doc["kind"] == "equivalent cells" and doc["points"] == r.changed
