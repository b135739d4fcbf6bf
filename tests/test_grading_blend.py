"""Interpolating blend weights and the polar basis blend (graded.grading.field)."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graded.grading.field import GradingField, blend_polar, interpolating_weights, polar_parts, smooth_step
from graded.validation import ValidationError

L = 2.0  # cell size, mm


def test_smooth_step_is_exactly_flat_outside_and_antisymmetric():
    t = np.linspace(-3, 3, 601)
    S = smooth_step(t)
    assert np.all(S[t <= -1] == 0.0) and np.all(S[t >= 1] == 1.0)
    assert np.allclose(S + smooth_step(-t), 1.0, atol=1e-15)
    assert smooth_step(0.0) == 0.5
    assert np.all(np.diff(S) >= 0) and np.all(np.diff(S[(t > -0.9) & (t < 0.9)]) > 0)


@pytest.mark.parametrize("k", [2, 3, 4])
def test_weights_are_exactly_one_at_their_own_point_and_a_partition_of_unity(k):
    rng = np.random.default_rng(k)
    pts = rng.uniform(0, 40, (k, 3))
    W = interpolating_weights(pts, pts, width=3.0, length_scale=L)
    assert np.array_equal(W, np.eye(k))  # exactly, not to a tolerance
    x = rng.uniform(-10, 50, (5000, 3))
    w = interpolating_weights(x, pts, width=3.0, length_scale=L)
    assert w.min() >= 0.0 and w.max() <= 1.0
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-14)


def test_two_point_transition_is_width_cells_thick_and_planar():
    # along the line the far point's weight is exactly 0 before the slab D/2 -+ w/2, exactly 1
    # after it and 1/2 on the bisector; off the axis (planar level sets) the same
    D, width = 10.0, 3.0
    pts = np.array([[0.0, 0, 0], [D * L, 0, 0]])
    s = np.linspace(-2, D + 2, 561)
    for off in (0.0, 3.7):
        x = np.stack([s * L, np.full_like(s, off), np.full_like(s, -off)], 1)
        w = interpolating_weights(x, pts, width, L)[:, 1]
        assert np.all(w[s <= D / 2 - width / 2] == 0.0)
        assert np.all(w[s >= D / 2 + width / 2] == 1.0)
        # strictly between 0 and 1 inside the slab (away from its edges, where S saturates in
        # double precision)
        inside = np.abs(s - D / 2) < 0.45 * width
        assert np.all((w[inside] > 0) & (w[inside] < 1))
        assert np.all(np.diff(w) >= 0)
        mid = interpolating_weights(np.array([[D * L / 2, off, -off]]), pts, width, L)[0, 1]
        assert mid == pytest.approx(0.5, abs=1e-15)


def test_width_is_capped_by_the_spacing_so_close_points_still_interpolate():
    pts = np.array([[0.0, 0, 0], [1.5 * L, 0, 0], [0, 2 * L, 0]])  # 1.5 and 2 cells apart, width 3
    assert np.array_equal(interpolating_weights(pts, pts, width=3.0, length_scale=L), np.eye(3))


def test_weights_are_smooth():
    # second differences shrink like h^2 everywhere (C2 at least), also across the plateau edges
    pts = np.array([[0.0, 0, 0], [8 * L, 0, 0], [3 * L, 6 * L, 0]])
    s = np.linspace(0, 8 * L, 4001)
    x = np.stack([s, 0.3 * s, np.ones_like(s)], 1)
    w = interpolating_weights(x, pts, 3.0, L)
    h = s[1] - s[0]
    d2 = np.abs(np.diff(w, 2, axis=0)).max() / h**2
    x2 = np.stack([s[::2], 0.3 * s[::2], np.ones_like(s[::2])], 1)
    d2c = np.abs(np.diff(interpolating_weights(x2, pts, 3.0, L), 2, axis=0)).max() / (2 * h) ** 2
    assert d2 < 10.0 and abs(d2 - d2c) < 0.05 * d2c  # a bounded second derivative


def test_polar_parts_reconstruct_the_basis():
    rng = np.random.default_rng(3)
    R = Rotation.random(5, random_state=4).as_matrix()
    U = np.einsum("kab,kb,kcb->kac", R, rng.uniform(0.5, 2, (5, 3)), R)  # SPD
    A = Rotation.random(5, random_state=5).as_matrix() @ U
    Rp, logU = polar_parts(A)
    lam, Q = np.linalg.eigh(logU)
    Up = np.einsum("kab,kb,kcb->kac", Q, np.exp(lam), Q)
    assert np.allclose(Rp @ Up, A, atol=1e-13)
    assert np.allclose(np.swapaxes(Rp, 1, 2) @ Rp, np.eye(3), atol=1e-13)
    assert np.allclose(np.linalg.det(Rp), 1.0)


def test_polar_blend_of_commuting_stretches_is_log_linear_and_rotations_stay_on_the_geodesic():
    # U1 = diag(a), U2 = diag(b): U(lam) = diag(a^(1-lam) b^lam) exactly; R1 = I, R2 = rotation by
    # theta about e: the mean is a rotation about e by an angle that grows monotonically 0 -> theta
    a, b = np.array([1.0, 1.5, 0.7]), np.array([1.3, 0.8, 1.0])
    theta, e = 1.2, np.array([1.0, 2.0, 2.0]) / 3.0
    R2 = Rotation.from_rotvec(theta * e).as_matrix()
    bases = np.stack([np.diag(a), R2 @ np.diag(b)])
    R, logU = polar_parts(bases)
    lam = np.linspace(0, 1, 21)
    W = np.stack([1 - lam, lam], 1)
    A = blend_polar(W, R, logU)
    U_expect = np.einsum("na,ab->nab", a ** (1 - lam[:, None]) * b ** lam[:, None], np.eye(3))
    Rb = A @ np.linalg.inv(U_expect)
    assert np.allclose(np.swapaxes(Rb, 1, 2) @ Rb, np.eye(3), atol=1e-12)  # A = R U with that U
    rv = Rotation.from_matrix(Rb).as_rotvec()
    ang = np.linalg.norm(rv, axis=1)
    assert np.allclose(rv[1:] / ang[1:, None], e, atol=1e-12)
    assert np.all(np.diff(ang) > 0) and ang[0] == pytest.approx(0, abs=1e-12) and ang[-1] == pytest.approx(theta)
    assert ang[10] == pytest.approx(theta / 2, abs=1e-12)  # symmetric at equal weights


def test_polar_field_is_exact_at_points_equivariant_and_never_collapses():
    rng = np.random.default_rng(7)
    pts = rng.uniform(0, 30, (3, 3))
    bases = L * Rotation.random(3, random_state=8).as_matrix() @ np.diag([1.0, 1.3, 0.8])
    f = GradingField(pts, bases, 0.5, L, kind="interpolating", width=3.0, basis_blend="polar")
    assert np.array_equal(f.basis(pts), bases)
    x = rng.uniform(-5, 35, (3000, 3))
    A = f.basis(x)
    # log-Euclidean stretch: det U(x) = prod det(U_i)^N_i >= min det (here all equal)
    assert np.allclose(np.linalg.det(A), np.linalg.det(bases[0]), rtol=1e-12)
    Q = Rotation.random(random_state=9).as_matrix()
    g = GradingField(pts @ Q.T, Q @ bases, 0.5, L, kind="interpolating", width=3.0, basis_blend="polar")
    assert np.allclose(g.basis(x @ Q.T), Q @ A, atol=1e-12)


def test_half_turn_blend_does_not_collapse_with_the_polar_blend():
    A1 = L * np.eye(3)
    A2 = L * Rotation.from_rotvec([0, 0, np.pi * 0.95]).as_matrix()
    pts = np.array([[0.0, 0, 0], [20.0, 0, 0]])
    x = np.stack([np.linspace(0, 20, 101), np.zeros(101), np.zeros(101)], 1)
    lin = GradingField(pts, np.stack([A1, A2]), 0.5, L, kind="interpolating", basis_blend="linear")
    with pytest.raises(ValidationError, match="degenerates"):
        lin.check_nondegenerate(x)
    pol = GradingField(pts, np.stack([A1, A2]), 0.5, L, kind="interpolating", basis_blend="polar")
    pol.check_nondegenerate(x)
    assert np.allclose(np.linalg.det(pol.basis(x)), L**3)


@pytest.mark.parametrize(("kw", "field"), [({"kind": "rbf"}, "blend.kind"), ({"width": 0.0}, "blend.width"),
                                          ({"basis_blend": "log"}, "blend.basis")])
def test_bad_blend_options_are_refused(kw, field):
    with pytest.raises(ValidationError, match=field.replace(".", r"\.")):
        GradingField(np.zeros((1, 3)), np.eye(3)[None], 0.5, **kw)


def test_coincident_points_are_refused_for_interpolation():
    with pytest.raises(ValidationError, match=r"control_points\[1\].position"):
        GradingField(np.zeros((2, 3)), np.stack([np.eye(3)] * 2), 0.5, kind="interpolating")
