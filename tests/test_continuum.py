"""Tetrahedral linear elasticity with a varying anisotropic stiffness (graded.fem.continuum)."""

import numpy as np
import pytest

from graded.fem.continuum import (
    continuum_model,
    grid_mesh,
    probe,
    solve_continuum,
    stiffness_matrix,
    traction_load,
)

#: Affine fields are in the P1 and P2 spaces: patch tests are exact up to round-off.
EXACT = 1e-9
#: CG stops at a relative residual of 1e-9.
ITERATIVE = 1e-6


def isotropic(E, nu):
    lam, mu = E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[range(3), range(3)] += 2 * mu
    C[range(3, 6), range(3, 6)] = mu
    return C


def anisotropic(seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(6, 6))
    return A @ A.T + 6 * np.eye(6)


def boundary_dofs(model, lo, hi):
    P = model.points
    on = np.any(np.isclose(P, lo) | np.isclose(P, hi), axis=1)
    return np.flatnonzero(on)


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("solver", ["direct", "amg"])
def test_patch_test_affine_displacement_is_exact(order, solver):
    lo, hi = np.zeros(3), np.array([2.0, 3.0, 1.5])
    grid = grid_mesh(lo, hi, 0.5)
    model = continuum_model(grid, order)
    T = grid.mesh.t.shape[1]
    C = np.broadcast_to(anisotropic(), (T, 6, 6))
    G = np.array([[1.0, 0.2, -0.3], [0.1, -0.5, 0.4], [0.0, 0.3, 0.2]]) * 1e-3
    exact = model.points @ G.T + np.array([0.1, -0.2, 0.05])
    b = boundary_dofs(model, lo, hi)
    pres = model.dofs[b].reshape(-1)
    res = solve_continuum(model, C, prescribed=pres, values=exact[b].reshape(-1), solver=solver)
    tol = EXACT if solver == "direct" else ITERATIVE
    np.testing.assert_allclose(res.displacement, exact, atol=tol * np.abs(exact).max())
    eps = np.array([G[0, 0], G[1, 1], G[2, 2], G[1, 2] + G[2, 1], G[0, 2] + G[2, 0], G[0, 1] + G[1, 0]])
    # stresses are derivatives: the iterative error grows by ~1/h
    sigma = C[0] @ eps
    np.testing.assert_allclose(res.stress, np.broadcast_to(sigma, (T, 6)), atol=10 * tol * np.abs(sigma).max())
    # no external load: the support forces balance among themselves
    assert np.abs(res.reaction.sum(axis=0)).max() < tol * np.abs(res.reaction).sum()
    # the probe interpolates the affine field exactly anywhere inside
    x = np.random.default_rng(1).random((50, 3)) * hi
    v, found = probe(model, res.u, x)
    assert found.all()
    np.testing.assert_allclose(v, x @ G.T + np.array([0.1, -0.2, 0.05]), atol=tol * np.abs(exact).max())


def test_grid_mesh_keeps_selected_boxes_and_locates_points():
    grid = grid_mesh([0, 0, 0], [4, 4, 4], 1.0, keep=lambda c: np.linalg.norm(c - 2, axis=1) < 1.8)
    m = grid.mesh
    edges = np.stack([m.p[:, m.t[k]] - m.p[:, m.t[0]] for k in (1, 2, 3)], axis=-1)  # (3, T, 3)
    vol = np.abs(np.linalg.det(np.moveaxis(edges, 1, 0))).sum() / 6
    assert np.isclose(vol, len(np.unique(grid.box_of_tet)))  # unit boxes, six tets each, no overlap
    assert m.p.shape[1] == len(np.unique(m.t))  # no unused vertices
    x = np.array([[2.0, 2.0, 2.0], [0.05, 0.05, 0.05], [2.3, 1.1, 2.9]])
    tet = grid.locate(x)
    assert tet[1] == -1 and tet[0] >= 0 and tet[2] >= 0
    for k in (0, 2):  # barycentric coordinates of the found tet are all >= 0
        P = m.p[:, m.t[:, tet[k]]]
        lam = np.linalg.solve(np.vstack([P, np.ones(4)]), np.r_[x[k], 1.0])
        assert lam.min() > -1e-9


def test_traction_load_sums_to_the_force():
    grid = grid_mesh([0, 0, 0], [2, 3, 4], 0.5)
    model = continuum_model(grid, 2)
    m = grid.mesh
    bf = m.boundary_facets()
    top = bf[np.all(np.isclose(m.p[2, m.facets[:, bf]], 4.0), axis=0)]
    f = traction_load(model, top, np.array([0.0, 1.0, -2.0]))  # N/mm^2 on a 2 x 3 mm face
    np.testing.assert_allclose(f[model.dofs].sum(axis=0), [0.0, 6.0, -12.0], rtol=1e-12, atol=1e-12)


def graded_bar(h, order=2):
    """Bar [0,1]^2 x [0,L] with E(z) = E0 (1 + a z), nu = 0, uniaxial stress by rollers."""
    L, E0, a, s = 4.0, 100.0, 0.5, 2.0
    grid = grid_mesh([0, 0, 0], [1, 1, L], h)
    model = continuum_model(grid, order)
    m = grid.mesh
    zc = m.p[2, m.t].mean(axis=0)
    C = (E0 * (1 + a * zc))[:, None, None] * np.diag([1, 1, 1, 0.5, 0.5, 0.5])[None]
    P = model.points
    held = [(np.isclose(P[:, 0], 0), 0), (np.isclose(P[:, 1], 0), 1), (np.isclose(P[:, 2], 0), 2)]
    pres = np.concatenate([model.dofs[np.flatnonzero(mask), k] for mask, k in held])
    bf = m.boundary_facets()
    top = bf[np.all(np.isclose(m.p[2, m.facets[:, bf]], L), axis=0)]
    res = solve_continuum(model, C, prescribed=pres, values=np.zeros(len(pres)),
                          load=traction_load(model, top, np.array([0.0, 0.0, s])), solver="direct")
    tip = np.isclose(P[:, 2], L)
    exact = s / (E0 * a) * np.log(1 + a * L)  # u_z(L) = int_0^L s / E(z) dz
    return abs(res.displacement[tip, 2].mean() - exact) / exact, res


def test_mesh_refinement_converges_for_a_graded_bar():
    # element-wise constant stiffness (centroid value) is a midpoint rule: error O(h^2)
    errors = [graded_bar(h)[0] for h in (1.0, 0.5, 0.25)]
    assert errors[0] > errors[1] > errors[2]
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert rates.min() > 1.8, (errors, rates)
    assert errors[-1] < 2e-3


def test_reactions_balance_the_load():
    _, res = graded_bar(0.5)
    # the rollers carry the 2 N/mm^2 x 1 mm^2 load
    np.testing.assert_allclose(res.reaction.sum(axis=0), [0.0, 0.0, -2.0], atol=1e-9)


def test_bad_inputs_are_refused():
    grid = grid_mesh([0, 0, 0], [1, 1, 1], 0.5)
    model = continuum_model(grid, 1)
    with pytest.raises(ValueError, match="C: has shape"):
        solve_continuum(model, np.zeros((3, 6, 6)), prescribed=np.arange(3), values=np.zeros(3))
    with pytest.raises(ValueError, match="order"):
        continuum_model(grid, 3)
    with pytest.raises(ValueError, match="stiffness: has shape"):
        solve_continuum(model, np.broadcast_to(np.eye(6), (model.grid.mesh.t.shape[1], 6, 6)),
                        prescribed=np.arange(3), values=np.zeros(3), stiffness=np.eye(3))
    with pytest.raises(ValueError, match="no grid box"):
        grid_mesh([0, 0, 0], [1, 1, 1], 0.5, keep=lambda c: np.zeros(len(c), dtype=bool))


def test_one_assembly_serves_several_cases():
    """solve_continuum with the stiffness of stiffness_matrix is the same solve (cases of one body share it)."""
    lo, hi = np.zeros(3), np.array([1.0, 1.0, 2.0])
    model = continuum_model(grid_mesh(lo, hi, 0.5), 2)
    C = np.broadcast_to(anisotropic(3), (model.grid.mesh.t.shape[1], 6, 6))
    K = stiffness_matrix(model, C)
    base = model.dofs[np.isclose(model.points[:, 2], 0.0)].reshape(-1)
    top = model.dofs[np.isclose(model.points[:, 2], 2.0), 2]
    pres = np.concatenate([base, top])
    vals = np.concatenate([np.zeros(len(base)), np.full(len(top), -0.01)])
    a = solve_continuum(model, C, prescribed=pres, values=vals, solver="direct")
    b = solve_continuum(model, C, prescribed=pres, values=vals, solver="direct", stiffness=K)
    np.testing.assert_allclose(b.u, a.u, rtol=0, atol=EXACT * np.abs(a.u).max())
    np.testing.assert_allclose(b.reaction, a.reaction, rtol=0, atol=EXACT * np.abs(a.reaction).max())
