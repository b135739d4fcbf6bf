"""Elastic algebra against the tensor definitions (not against itself)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graded import ValidationError
from graded import elastic as el
from graded.elastic import torch as et


def random_rotation(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def random_spd(rng):
    A = rng.normal(size=(6, 6))
    return A @ A.T + 6 * np.eye(6)


def isotropic(E=1.0, nu=0.3):
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    C = np.zeros((6, 6))
    C[:3, :3] = lam
    C[range(3), range(3)] += 2 * mu
    C[range(3, 6), range(3, 6)] = mu
    return C


def test_voigt_tensor_round_trip_and_symmetries():
    rng = np.random.default_rng(0)
    C = random_spd(rng)
    T = el.voigt_to_tensor(C)
    assert T.shape == (3, 3, 3, 3)
    np.testing.assert_array_equal(T, T.transpose(1, 0, 2, 3))
    np.testing.assert_array_equal(T, T.transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(el.tensor_to_voigt(T), C)
    assert T[1, 2, 0, 1] == C[3, 5]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_bond_rotation_equals_tensor_rotation(seed):
    rng = np.random.default_rng(seed)
    C, R = random_spd(rng), random_rotation(rng)
    T = el.voigt_to_tensor(C)
    T_rot = np.einsum("ip,jq,kr,ls,pqrs->ijkl", R, R, R, R, T)
    np.testing.assert_allclose(el.rotate_voigt(C, R), el.tensor_to_voigt(T_rot), rtol=0, atol=1e-12 * np.abs(C).max())


def test_bond_matrix_group_properties():
    rng = np.random.default_rng(1)
    R1, R2 = random_rotation(rng), random_rotation(rng)
    np.testing.assert_allclose(el.bond_matrix(R1 @ R2), el.bond_matrix(R1) @ el.bond_matrix(R2), atol=1e-13)
    np.testing.assert_allclose(el.bond_matrix(np.eye(3)), np.eye(6), atol=0)
    # isotropic stiffness is invariant
    np.testing.assert_allclose(el.rotate_voigt(isotropic(), R1), isotropic(), atol=1e-13)


def test_axis_angle_matches_si_convention_and_round_trips():
    R = el.axis_angle_to_matrix(np.pi / 2, 0.0, 0.0)  # about e3
    np.testing.assert_allclose(R @ [1, 0, 0], [0, 1, 0], atol=1e-15)
    rng = np.random.default_rng(2)
    for _ in range(200):
        R = random_rotation(rng)
        aa = el.matrix_to_axis_angle(R)
        assert -np.pi <= aa[0] <= np.pi
        np.testing.assert_allclose(el.axis_angle_to_matrix(*aa), R, atol=1e-10)
    # angle pi and identity edge cases
    for R in (el.axis_angle_to_matrix(np.pi, 0.6, 0.0), np.eye(3)):
        np.testing.assert_allclose(el.axis_angle_to_matrix(*el.matrix_to_axis_angle(R)), R, atol=1e-10)


def test_6d_representation_round_trip_numpy_and_torch():
    rng = np.random.default_rng(3)
    Rs = np.stack([random_rotation(rng) for _ in range(20)])
    np.testing.assert_allclose(el.rotation_from_6d(el.rotation_to_6d(Rs)), Rs, atol=1e-13)
    a = rng.normal(size=(20, 6))
    Rn = el.rotation_from_6d(a)
    np.testing.assert_allclose(Rn.transpose(0, 2, 1) @ Rn, np.broadcast_to(np.eye(3), Rn.shape), atol=1e-13)
    np.testing.assert_allclose(np.linalg.det(Rn), 1.0, atol=1e-13)
    Rt = et.rotation_from_6d(torch.as_tensor(a)).numpy()
    np.testing.assert_allclose(Rt, Rn, atol=1e-14)


def test_torch_bond_and_packing_match_numpy_and_have_gradients():
    rng = np.random.default_rng(4)
    C = random_spd(rng)
    a = torch.tensor(rng.normal(size=6), requires_grad=True)
    Ct = et.rotate_voigt(torch.as_tensor(C), et.rotation_from_6d(a))
    R = el.rotation_from_6d(a.detach().numpy())
    np.testing.assert_allclose(Ct.detach().numpy(), el.rotate_voigt(C, R), atol=1e-12)
    Ct.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0
    c21 = el.to_21(C)
    np.testing.assert_array_equal(et.from_21(torch.as_tensor(c21)).numpy(), C)
    np.testing.assert_array_equal(et.to_21(torch.as_tensor(C)).numpy(), c21)
    c9 = el.to_9(C)
    np.testing.assert_array_equal(et.from_9(torch.as_tensor(c9)).numpy(), el.from_9(c9))


def test_21_order_is_row_by_row_upper_triangle():
    assert el.NAMES_21[:7] == ("C11", "C12", "C13", "C14", "C15", "C16", "C22")
    assert el.NAMES_21[-1] == "C66" and len(el.NAMES_21) == 21
    assert el.NAMES_9 == ("C11", "C12", "C13", "C22", "C23", "C33", "C44", "C55", "C66")


def test_directional_modulus_isotropic_and_cubic():
    d = np.random.default_rng(5).normal(size=(50, 3))
    np.testing.assert_allclose(el.directional_modulus(isotropic(2.5, 0.3), d), 2.5, rtol=1e-12)
    # cubic: E100 = (C11 - C12)(C11 + 2 C12) / (C11 + C12)
    C = np.zeros((6, 6))
    C[:3, :3] = 0.4
    C[range(3), range(3)] = 1.0
    C[range(3, 6), range(3, 6)] = 0.2
    np.testing.assert_allclose(el.directional_modulus(C, [[1, 0, 0]]), (0.6 * 1.8) / 1.4, rtol=1e-12)
    # E along [111] from the cubic formula 1/E = S11 - 2 (S11 - S12 - S44/2)/3
    S = np.linalg.inv(C)
    inv_e111 = S[0, 0] - 2 * (S[0, 0] - S[0, 1] - S[3, 3] / 2) / 3
    np.testing.assert_allclose(el.directional_modulus(C, [[1, 1, 1]]), 1 / inv_e111, rtol=1e-12)


def test_nmse_matches_definition():
    t = isotropic()
    p = t * 1.1
    nz = np.count_nonzero(t)
    np.testing.assert_allclose(el.nmse(t, p), nz * 0.01, rtol=1e-12)
    assert el.nmse(t, t) == 0.0


def test_admissibility():
    C = isotropic()
    assert el.is_admissible(C)
    bad = C.copy()
    bad[0, 1] += 0.1
    with pytest.raises(ValidationError, match="target: is not symmetric"):
        el.check_admissible(bad, "target")
    neg = C.copy()
    neg[3, 3] = -0.1
    with pytest.raises(ValidationError, match="not positive definite"):
        el.check_admissible(neg, "target")
    with pytest.raises(ValidationError, match="target: has shape"):
        el.check_admissible(np.eye(5), "target")


def test_as_rotation_rejects_non_rotations():
    with pytest.raises(ValidationError, match="R1: is not a rotation"):
        el.as_rotation("R1", np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValidationError, match="R2: axis components"):
        el.as_rotation("R2", [0.3, 0.9, 0.9])
    np.testing.assert_allclose(el.as_rotation("R", [0.0, 0.0, 0.0]), np.eye(3))
