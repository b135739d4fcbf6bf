"""Periodic beam homogenization against analytic oracles and invariances (DESIGN §5)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graded import ValidationError
from graded.elastic import axis_angle_to_matrix, directional_modulus, is_admissible, rotate_voigt
from graded.fem import PeriodicGraph, homogenize
from graded.inverse.sampling import sample_designs
from graded.topology import canonical
from graded.unitcell import UnitCell, diameter_from_density, homogenize_designs

STRETCH_RHO = 1e-4   # bending terms are O(rho^2): relative error ~1e-4
BENDING_RHO = 1e-3


def C_of(top, rho, **kw):
    return UnitCell(top, rho=rho, strict=False, **kw).stiffness()


def test_simple_cubic_stretch_limit():
    C = C_of("1x1", STRETCH_RHO) / STRETCH_RHO
    np.testing.assert_allclose(np.diag(C)[:3], 1 / 3, rtol=0.01)
    assert np.abs(C[0, 1]) < 0.01 / 3


def test_octet_stretch_limit():
    C = C_of("1x2", STRETCH_RHO) / STRETCH_RHO
    np.testing.assert_allclose([C[0, 0], C[0, 1], C[3, 3]], [1 / 6, 1 / 12, 1 / 12], rtol=0.01)
    E100 = directional_modulus(C, [[1, 0, 0]])[0]
    np.testing.assert_allclose(E100, 1 / 9, rtol=0.01)


def test_bcc_stretch_limit():
    C = C_of("1x3", STRETCH_RHO) / STRETCH_RHO
    np.testing.assert_allclose([C[0, 0], C[0, 1], C[3, 3]], [1 / 9] * 3, rtol=0.01)


def pin_jointed(graph: PeriodicGraph, F, d):
    """C_ijkl = (1/V) sum A L n_i n_j n_k n_l in Voigt form."""
    v = graph.bond_vectors(F)
    L = np.linalg.norm(v, axis=1)
    n = v / L[:, None]
    s = np.stack([n[:, 0] ** 2, n[:, 1] ** 2, n[:, 2] ** 2, n[:, 1] * n[:, 2], n[:, 0] * n[:, 2], n[:, 0] * n[:, 1]], 1)
    A = np.pi * d**2 / 4
    return np.einsum("m,mi,mj->ij", A * L, s, s) / abs(np.linalg.det(F))


def test_stretched_sheared_octet_matches_pin_jointed_formula():
    cell = UnitCell("1x2", rho=STRETCH_RHO, U=[1.3, 0.8, 1.1], V=[0.7, 1.6, 1.2],
                    R1=[0.7, 0.3, 0.5], R2=[-1.1, 0.2, -0.6], strict=False)
    C = cell.stiffness()
    ref = pin_jointed(cell.reference.periodic, cell.basis, cell.diameter())
    assert np.abs(C - ref).max() < 0.01 * np.abs(ref).max()


def test_trace_sum_equals_density_in_stretch_limit():
    # inversion-symmetric lattices deform affinely under hydrostatic strain: sum C_iijj = rho
    for top in ("1x1", "1x2", "1x3", "2x1+1x2+1x3"):
        cell = UnitCell(top, rho=STRETCH_RHO, U=[1.2, 0.9, 1.4], V=[1.1, 0.8, 1.3], R1=[0.4, 0.6, 0.1], strict=False)
        C = cell.stiffness()
        np.testing.assert_allclose(C[:3, :3].sum(), STRETCH_RHO, rtol=0.01)


def test_bending_limits():
    C = C_of("1x1", BENDING_RHO)
    np.testing.assert_allclose(C[3, 3], BENDING_RHO**2 / (6 * np.pi), rtol=0.02)
    C = C_of("1x3", BENDING_RHO)
    np.testing.assert_allclose(directional_modulus(C, [[1, 0, 0]])[0], 0.0919 * BENDING_RHO**2, rtol=0.02)


def test_rotating_the_cell_rotates_C_by_the_bond_matrix():
    cell = UnitCell("2x1+1x3+2x5", rho=0.03, U=[1.2, 0.7, 1.5], V=[0.9, 1.4, 0.6], R1=[1.0, 0.3, -0.4])
    R = axis_angle_to_matrix(2.1, -0.5, 0.6)
    C, Cr = cell.stiffness(), cell.rotated(R).stiffness()
    np.testing.assert_allclose(Cr, rotate_voigt(C, R), rtol=0, atol=1e-10 * np.abs(C).max())


@pytest.mark.parametrize("tid", range(1, 8))
def test_supercell_gives_the_same_stiffness(tid):
    for rho in (0.005, 0.08):
        a = UnitCell(f"1x{tid}", rho=rho, U=[1.1, 0.9, 1.3]).stiffness()
        b = UnitCell(f"2x{tid}", rho=rho, U=[1.1, 0.9, 1.3]).stiffness()
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-9 * np.abs(a).max())


def test_explicit_2x2x2_supercell_of_a_compound_cell():
    # homogenize the compound cell's graph on a basis twice as large after tiling it 2x2x2
    cell = UnitCell("1x2+1x3+1x5", rho=0.02, V=[1.2, 0.8, 1.0], R1=[0.5, 0.2, 0.3])
    g = cell.reference.periodic
    tiles = np.array(list(np.ndindex(2, 2, 2)))
    n = g.n_nodes
    nodes = np.concatenate([(g.nodes + t) / 2 for t in tiles])
    bonds, offs = [], []
    for k, t in enumerate(tiles):
        target = t + g.offsets
        wrap = np.floor_divide(target, 2)
        j_tile = target - 2 * wrap
        j_idx = np.array([np.flatnonzero((tiles == jt).all(1))[0] for jt in j_tile])
        bonds.append(np.stack([g.bonds[:, 0] + k * n, g.bonds[:, 1] + j_idx * n], 1))
        offs.append(wrap)
    big = PeriodicGraph(nodes, np.concatenate(bonds), np.concatenate(offs))
    d = cell.diameter()
    C2 = homogenize(big, 2 * cell.basis, d)
    np.testing.assert_allclose(C2, cell.stiffness(), rtol=0, atol=1e-9 * np.abs(C2).max())


def test_order_of_parts_does_not_matter():
    kw = dict(rho=0.04, U=[1.3, 0.6, 1.0], V=[1.1, 1.9, 0.8], R1=[0.3, 0.1, 0.9], R2=[2.0, -0.3, 0.4])
    a = UnitCell("2x1+1x3+2x6", **kw).stiffness()
    b = UnitCell("2x6+2x1+1x3", **kw).stiffness()
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * np.abs(a).max())


def test_random_designs_are_symmetric_positive_definite():
    d = sample_designs(1000, np.random.default_rng(7))
    basis = d.R2 @ (d.V[:, :, None] * np.eye(3)) @ d.R1 @ (d.U[:, :, None] * np.eye(3))
    keys = [canonical(tuple(map(tuple, t))) for t in d.topology.tolist()]
    C = np.empty((1000, 6, 6))
    for key in set(keys):
        idx = [i for i, k in enumerate(keys) if k == key]
        C[idx] = homogenize_designs(key, d.rho[idx], basis[idx])
    assert all(is_admissible(c) for c in C)
    # Voigt bound: the trace sum can never exceed rho
    assert np.all(C[:, :3, :3].sum(axis=(1, 2)) <= d.rho * (1 + 1e-9))


def test_batched_equals_one_by_one_and_scale_free():
    top = "2x1+1x3+2x5"
    rng = np.random.default_rng(3)
    F = np.stack([np.diag(rng.uniform(0.5, 2, 3)) for _ in range(4)])
    rho = rng.uniform(0.002, 0.1, 4)
    batch = homogenize_designs(top, rho, F)
    one = np.stack([homogenize_designs(top, rho[k:k + 1], F[k:k + 1])[0] for k in range(4)])
    scale = np.abs(batch).max()
    np.testing.assert_allclose(batch, one, rtol=1e-12, atol=1e-14 * scale)
    np.testing.assert_allclose(homogenize_designs(top, rho, 7.5 * F), batch, rtol=1e-10, atol=1e-14 * scale)


def test_relative_density_from_geometry():
    # simple cubic, unit cell: 3 struts of length 1 -> rho = 3 pi d^2 / 4
    d = diameter_from_density(((1, 1),), 0.01, np.eye(3))
    np.testing.assert_allclose(3 * np.pi * d**2 / 4, 0.01, rtol=1e-14)
    # octet: 24 struts of length sqrt(2)/2 in a unit cell
    d = UnitCell("1x2", rho=0.05).diameter(cell_size=2.0)
    np.testing.assert_allclose(24 * (np.sqrt(2) / 2 * 2) * np.pi * d**2 / 4 / 8, 0.05, rtol=1e-14)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(topology="1x2", rho=0.5), r"rho: 0.5 is outside the allowed range \[0.002, 0.1\]"),
        (dict(topology="1x2", rho=-0.1, strict=False), "rho: .* must be > 0"),
        (dict(topology="1x2", rho=0.01, U=[1, 0, 1]), "U: .* must be > 0"),
        (dict(topology="1x2", rho=0.01, V=[3, 1, 1]), r"V: .* outside the allowed range \[0.5, 2\]"),
        (dict(topology="1x9", rho=0.01), "topology: unknown topology id 9"),
        (dict(topology="2x1+x3", rho=0.01), "topology: cannot read"),
        (dict(topology="1x2", rho=0.01, R1=np.diag([1, 1, -1])), "R1: is not a rotation matrix"),
        (dict(topology="1x2", rho=0.01, U=[1e-12, 1e-12, 1], strict=False), "U, V: the affine map is singular"),
    ],
)
def test_bad_cell_parameters_name_the_field(kwargs, match):
    with pytest.raises(ValidationError, match=match):
        UnitCell(**kwargs)


@settings(max_examples=25, deadline=None)
@given(st.floats(0.5, 2.0), st.floats(0.5, 2.0), st.floats(0.5, 2.0), st.floats(-np.pi, np.pi))
def test_orthotropic_cells_stay_orthotropic(u1, u2, u3, theta):
    # U stretches along the cube's symmetry planes: couplings between normal and shear vanish
    C = UnitCell("1x2+1x3+2x5", rho=0.02, U=[u1, u2, u3]).stiffness()
    assert np.abs(C[:3, 3:]).max() < 1e-12 * np.abs(C).max()
    assert np.abs(C[3, 4]) + np.abs(C[3, 5]) + np.abs(C[4, 5]) < 1e-12 * np.abs(C).max()
