"""Design-space sampling (SI section 1, Table S1)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from graded.elastic import matrix_to_axis_angle
from graded.inverse.sampling import TABLE_S1, Bounds, Designs, random_rotations, sample_designs
from graded.validation import ValidationError


def test_same_generator_state_gives_same_designs():
    a = sample_designs(200, np.random.default_rng(7))
    b = sample_designs(200, np.random.default_rng(7))
    c = sample_designs(200, np.random.default_rng(8))
    for k in ("topology", "rho", "U", "V", "R1", "R2"):
        assert np.array_equal(getattr(a, k), getattr(b, k))
    assert not np.array_equal(a.rho, c.rho)


def test_shapes_dtypes_and_ranges_follow_table_s1():
    d = sample_designs(5000, np.random.default_rng(0))
    assert len(d) == 5000
    assert d.topology.shape == (5000, 3, 2) and d.topology.dtype == np.int8
    assert set(np.unique(d.topology[..., 0])) == {1, 2}
    assert set(np.unique(d.topology[..., 1])) == set(range(1, 8))
    assert d.rho.min() >= 0.002 and d.rho.max() <= 0.1
    for s in (d.U, d.V):
        assert s.shape == (5000, 3) and s.min() >= 0.5 and s.max() <= 2.0
    # uniform marginals: means within 5 standard errors of the interval midpoints
    for x, (lo, hi) in ((d.rho, TABLE_S1.rho), (d.U.ravel(), TABLE_S1.U), (d.V.ravel(), TABLE_S1.V)):
        se = (hi - lo) / np.sqrt(12 * x.size)
        assert abs(x.mean() - (lo + hi) / 2) < 5 * se


def test_parts_are_sorted_and_cover_all_560_multisets():
    d = sample_designs(30000, np.random.default_rng(1))
    key = 8 * d.topology[..., 0].astype(int) + d.topology[..., 1]
    assert np.all(np.diff(key, axis=1) >= 0)
    # 14 parts, 3 drawn with repetition, order irrelevant: C(16, 3) = 560 topologies
    assert len(np.unique(key, axis=0)) == 560


def test_rotations_are_proper_and_follow_the_paper_recipe_not_haar():
    R = random_rotations(20000, np.random.default_rng(2))
    assert np.abs(np.einsum("nij,nkj->nik", R, R) - np.eye(3)).max() < 1e-12
    assert np.abs(np.linalg.det(R) - 1).max() < 1e-12
    theta = np.abs(matrix_to_axis_angle(R)[:, 0])
    # angle ~ U(-pi, pi) => |angle| uniform on [0, pi] ...
    assert stats.kstest(theta, stats.uniform(0, np.pi).cdf).pvalue > 1e-3
    # ... which is not Haar: Haar has density (1 - cos t) / pi, cdf (t - sin t) / pi
    assert stats.kstest(theta, lambda t: (t - np.sin(t)) / np.pi).pvalue < 1e-20
    # the axis is uniform on S^2: the rotation moves the mean direction nowhere
    # (E[R] = c I with c = E[(1 + 2 cos t) / 3] = 1/3 for a uniform angle)
    assert np.abs(R.mean(axis=0) - np.eye(3) / 3).max() < 0.02


def test_basis_is_the_affine_map_of_eq_1():
    d = sample_designs(10, np.random.default_rng(3))
    i = 4
    F = d.R2[i] @ np.diag(d.V[i]) @ d.R1[i] @ np.diag(d.U[i])
    assert np.allclose(d.basis[i], F, rtol=0, atol=1e-14)
    assert np.allclose(d.basis_hat[i], np.diag(d.V[i]) @ d.R1[i] @ np.diag(d.U[i]), atol=1e-14)
    assert np.allclose(d.basis_stretched[i], np.diag(d.U[i]), atol=0)


def test_custom_bounds_restrict_the_draws():
    b = Bounds(rho=(0.01, 0.02), U=(1.0, 1.1), V=(0.9, 1.0), topology_ids=(3,), tessellations=(2,))
    d = sample_designs(300, np.random.default_rng(4), b)
    assert np.all(d.topology == np.array([2, 3], dtype=np.int8))
    assert d.rho.min() >= 0.01 and d.rho.max() <= 0.02
    assert d.U.min() >= 1.0 and d.V.max() <= 1.0
    assert Bounds.from_dict(b.to_dict()) == b
    assert Bounds.from_dict(TABLE_S1.to_dict()) == TABLE_S1


def test_subset_and_zero_samples():
    d = sample_designs(10, np.random.default_rng(5))
    s = d.subset(np.array([1, 3]))
    assert len(s) == 2 and np.array_equal(s.R1, d.R1[[1, 3]])
    assert len(sample_designs(0, np.random.default_rng(5))) == 0


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda: sample_designs(-1, np.random.default_rng(0)), "n"),
        (lambda: sample_designs(2.5, np.random.default_rng(0)), "n"),
        (lambda: sample_designs(3, np.random.RandomState(0)), "rng"),
        (lambda: sample_designs(3, np.random.default_rng(0), {"rho": (0, 1)}), "bounds"),
        (lambda: Bounds(rho=(0.1, 0.01)), "bounds.rho"),
        (lambda: Bounds(U=(0.0, 2.0)), "bounds.U"),
        (lambda: Bounds(topology_ids=(0, 8)), "bounds.topology_ids"),
        (lambda: Bounds(tessellations=(3,)), "bounds.tessellations"),
        (lambda: Bounds.from_dict({"rho": [0.01, 0.1], "W": [1, 2]}), "bounds"),
        (lambda: Designs(np.zeros((2, 3, 2)), np.zeros(3), np.ones((2, 3)), np.ones((2, 3)),
                         np.zeros((2, 3, 3)), np.zeros((2, 3, 3))), "rho"),
    ],
)
def test_bad_input_is_rejected(call, field):
    with pytest.raises(ValidationError, match=field):
        call()
