"""Least-squares phase fields (SI Eq. 13) against exact solutions and convergence theory."""

import numpy as np
import pytest

from graded.fem.phase import box_tet_mesh, nested_dissection, solve_phase_fields

# A sheared, stretched lattice basis: columns are translation vectors (mm).
A = np.array([[2.0, 0.3, 0.1], [0.2, 1.5, 0.0], [0.0, 0.4, 1.8]])
AINV = np.linalg.inv(A)


def constant(x):
    return np.broadcast_to(AINV, (len(x), 3, 3))


@pytest.mark.parametrize("order", [1, 2])
def test_constant_reciprocal_basis_is_reproduced_exactly(order):
    # grad phi = A^-1 everywhere, anchored at the origin: phi(x) = A^-1 x, which lies in
    # the P1 space, so the discrete solution is exact up to round-off (1e-11).
    f = solve_phase_fields(constant, [0, 0, 0], [3, 2, 2.5], 0.5, order=order, anchor=[0, 0, 0])
    x = np.random.default_rng(0).uniform(-0.3, 3.3, (2000, 3))  # also a bit outside the box
    phi, grad = f.evaluate(x)
    assert np.abs(phi - x @ AINV.T).max() < 1e-11
    assert np.abs(grad - AINV).max() < 1e-11


def _phi_star(x):
    return 0.3 * x[:, 0] ** 2 - 0.2 * x[:, 0] * x[:, 1] + 0.5 * x[:, 2] + x[:, 1] * x[:, 2]


def _grad_phi_star(x):
    return np.stack([0.6 * x[:, 0] - 0.2 * x[:, 1], -0.2 * x[:, 0] + x[:, 2], 0.5 + x[:, 1]], axis=1)


def _solenoidal(x):
    # w = curl-type field from psi1 = x(1-x) y(1-y) (in the xy plane) and psi2 = y(1-y) z(1-z)
    # (in the yz plane): div w = 0 and w . n = 0 on every face of the unit cube.
    X, Y, Z = x.T
    w = np.zeros_like(x)
    w[:, 0] = X * (1 - X) * (1 - 2 * Y)
    w[:, 1] = -(1 - 2 * X) * Y * (1 - Y) + Y * (1 - Y) * (1 - 2 * Z)
    w[:, 2] = -(1 - 2 * Y) * Z * (1 - Z)
    return 3.0 * w


def test_divergence_free_part_with_zero_flux_is_ignored():
    # k = grad(phi*) + w with div w = 0, w.n = 0: int w . grad v = 0 for every v, so the
    # least-squares solution is phi* itself. phi* is quadratic (in the P2 space) and the
    # default quadrature (order 4) integrates the cubic w times linear grad v exactly.
    def target(x):
        k = _grad_phi_star(x) + _solenoidal(x)
        return np.repeat(k[:, None, :], 3, axis=1)

    f = solve_phase_fields(target, [0, 0, 0], [1, 1, 1], 0.25, order=2, anchor=[0.5, 0.5, 0.5],
                           anchor_value=np.full(3, _phi_star(np.array([[0.5, 0.5, 0.5]]))[0]))
    x = np.random.default_rng(1).uniform(0, 1, (2000, 3))
    phi, grad = f.evaluate(x)
    assert np.abs(phi - _phi_star(x)[:, None]).max() < 1e-10
    assert np.abs(grad - _grad_phi_star(x)[:, None, :]).max() < 1e-9
    # the solenoidal part is really there (not a vacuous test): |w| ~ 0.7 somewhere
    assert np.abs(_solenoidal(x)).max() > 0.5


def _smooth(x):
    return np.sin(2 * x[:, 0]) * np.cos(1.5 * x[:, 1]) + np.exp(0.5 * x[:, 2]) * x[:, 0]


def _smooth_grad(x):
    g = np.stack(
        [
            2 * np.cos(2 * x[:, 0]) * np.cos(1.5 * x[:, 1]) + np.exp(0.5 * x[:, 2]),
            -1.5 * np.sin(2 * x[:, 0]) * np.sin(1.5 * x[:, 1]),
            0.5 * np.exp(0.5 * x[:, 2]) * x[:, 0],
        ],
        axis=1,
    )
    return np.repeat(g[:, None, :], 3, axis=1)


@pytest.mark.parametrize("order, spacings", [(1, [1 / 4, 1 / 8, 1 / 16]), (2, [1 / 2, 1 / 4, 1 / 8])])
def test_l2_convergence_rate_matches_theory(order, spacings):
    # Manufactured solution, k = grad(phi*). The L2 error of the mean-free part is
    # estimated at 20k fixed random points (Monte-Carlo L2 norm, sampling error << the
    # rate tolerance). Theory: O(h^(p+1)) -> 2 for P1, 3 for P2; accept +-0.2 on the
    # finest pair.
    x = np.random.default_rng(2).uniform(0, 1, (20000, 3))
    errors = []
    for h in spacings:
        f = solve_phase_fields(_smooth_grad, [0, 0, 0], [1, 1, 1], h, order=order)
        e = f(x)[:, 0] - _smooth(x)
        e -= e.mean()
        errors.append(np.sqrt(np.mean(e**2)))
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert abs(rates[-1] - (order + 1)) < 0.2, rates
    assert np.all(rates > order + 1 - 0.4), rates


def test_mesh_location_finds_the_containing_tetrahedron():
    g = box_tet_mesh([0, -1, 2], [2, 1, 3], 0.4)
    x = np.random.default_rng(3).uniform([0, -1, 2], [2, 1, 3], (5000, 3))
    elem, X = g.locate(x)
    lam = np.concatenate([1 - X.sum(1, keepdims=True), X], axis=1)
    assert lam.min() > -1e-12  # barycentric coordinates inside the element
    p = g.mesh.p.T[g.mesh.t[:, elem].T]  # (N, 4, 3)
    assert np.allclose(np.einsum("nk,nkd->nd", lam, p), x, atol=1e-12)


def test_nested_dissection_is_a_permutation():
    ijk = np.stack(np.meshgrid(*[np.arange(0, 17)] * 3, indexing="ij"), -1).reshape(-1, 3)
    p = nested_dissection(ijk)
    assert np.array_equal(np.sort(p), np.arange(len(ijk)))
