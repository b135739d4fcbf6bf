"""RBF weights (SI Eq. 14), blended basis (Eq. 15), reciprocal basis, degenerate blends."""

import numpy as np
import pytest

from graded.elastic import axis_angle_to_matrix
from graded.grading.field import DEGENERATE_RATIO, GradingField, rbf_weights
from graded.validation import ValidationError

L = 2.0  # cell size, mm


def test_weights_match_eq14_and_sum_to_one():
    pts = np.array([[0.0, 0, 0], [6, 0, 0], [3, 4, 0]])
    x = np.random.default_rng(0).uniform(-2, 8, (200, 3))
    w = rbf_weights(x, pts, zeta=0.3, length_scale=L)
    d2 = ((x[:, None] - pts[None]) ** 2).sum(-1) / L**2
    naive = np.exp(-0.3 * d2) / np.exp(-0.3 * d2).sum(1, keepdims=True)
    assert np.allclose(w, naive, rtol=1e-12, atol=1e-15)
    assert np.allclose(w.sum(1), 1.0, atol=1e-14)


def test_two_point_blend_is_si_eq17():
    # SI Eq. 17: lambda(x1) = e^{-zeta (x1 - D)^2} / (e^{-zeta x1^2} + e^{-zeta (x1 - D)^2})
    D, zeta = 5.0, 0.5
    pts = np.array([[0.0, 0, 0], [D * L, 0, 0]])
    s = np.linspace(0, D, 41)
    x = np.stack([s * L, np.full_like(s, 0.7), np.full_like(s, -0.3)], 1)  # off-axis too
    lam = np.exp(-zeta * (s - D) ** 2) / (np.exp(-zeta * s**2) + np.exp(-zeta * (s - D) ** 2))
    assert np.allclose(rbf_weights(x, pts, zeta, L)[:, 1], lam, atol=1e-14)


def test_max_shift_keeps_far_points_finite():
    # 1e4 cells away every plain exponential underflows to 0 (0/0 = NaN); the shifted
    # weights are exact: the nearer point gets all the weight.
    pts = np.array([[0.0, 0, 0], [1.0, 0, 0]])
    w = rbf_weights(np.array([[2e4, 0, 0], [-2e4, 0, 0]]), pts, zeta=0.5, length_scale=1.0)
    assert np.all(np.isfinite(w))
    assert np.allclose(w, [[0, 1], [1, 0]])


def test_basis_and_reciprocal():
    A1 = L * np.diag([1.0, 1.2, 0.8])
    A2 = L * axis_angle_to_matrix(0.4, 0.0, 0.0) @ np.diag([1.5, 1.0, 1.0])
    f = GradingField(np.array([[0.0, 0, 0], [40.0, 0, 0]]), np.stack([A1, A2]), zeta=0.5, length_scale=L)
    # at the control points the other weight is exp(-0.5 * 20^2) ~ 1e-87: exactly A_i
    assert np.allclose(f.basis(np.array([[0.0, 0, 0]]))[0], A1, atol=1e-14)
    assert np.allclose(f.basis(np.array([[40.0, 0, 0]]))[0], A2, atol=1e-14)
    x = np.random.default_rng(1).uniform(0, 40, (50, 3))
    A, K = f.basis(x), f.reciprocal(x)
    # k_i . a_j = delta_ij, and A = sum N_i A_i
    assert np.allclose(np.einsum("nai,naj->nij", K, A), np.eye(3), atol=1e-12)
    assert np.allclose(A, np.einsum("nk,kab->nab", f.weights(x), f.bases), atol=1e-14)
    assert np.allclose(f.inverse_basis(x), np.linalg.inv(A), atol=1e-12)


def test_half_turn_blend_degenerates_with_location():
    # a cell and the same cell turned 180 degrees about z average to a flat basis at the
    # midplane x = 10 mm (det A = 0 there)
    A1 = L * np.eye(3)
    A2 = L * axis_angle_to_matrix(np.pi, 0.0, 0.0)
    f = GradingField(np.array([[0.0, 0, 0], [20.0, 0, 0]]), np.stack([A1, A2]), zeta=0.5, length_scale=L)
    x = np.stack([np.linspace(0, 20, 41), np.zeros(41), np.zeros(41)], 1)
    with pytest.raises(ValidationError, match=r"control_points: .*degenerates at x = \(10, 0, 0\) mm"):
        f.check_nondegenerate(x)
    # a quarter turn stays well conditioned (det A >= 1/2 of det A_i, above the limit)
    A3 = L * axis_angle_to_matrix(np.pi / 2, 0.0, 0.0)
    g = GradingField(np.array([[0.0, 0, 0], [20.0, 0, 0]]), np.stack([A1, A3]), zeta=0.5, length_scale=L)
    g.check_nondegenerate(x)
    assert np.linalg.det(g.basis(x)).min() / L**3 == pytest.approx(0.5, rel=1e-9) and DEGENERATE_RATIO < 0.5


@pytest.mark.parametrize("zeta", [0.0, -1.0])
def test_non_positive_zeta_is_refused(zeta):
    with pytest.raises(ValidationError, match="zeta"):
        GradingField(np.zeros((1, 3)), np.eye(3)[None], zeta=zeta)


def test_non_positive_cell_size_is_refused():
    with pytest.raises(ValidationError, match="cell_size"):
        GradingField(np.zeros((1, 3)), np.eye(3)[None], zeta=0.5, length_scale=0.0)
