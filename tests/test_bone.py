"""Bone-like targets (graded.inverse.bone) against the Zysset-Curnier relation's closed forms."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graded.elastic import to_21
from graded.elastic.metrics import MANDEL_W66
from graded.inverse.bone import (
    ANISOTROPY_RANGE,
    BV_TV_RANGE,
    REACH_MARGIN,
    SHIPPED_N,
    SHIPPED_SEED,
    ZyssetCurnier,
    bone_targets,
    fabric_stiffness,
    read_bone_csv,
    shipped_bone_targets,
    write_bone_csv,
)
from graded.inverse.design import REACH
from graded.inverse.scaling import stiffness_scale
from graded.validation import ValidationError

#: The stiffness is a 6x6 inverse and a Bond rotation of an exact compliance: relative
#: round-off ~1e-15; 1e-12 leaves room for the condition number of strongly anisotropic fabric.
EXACT = 1e-12
#: The shipped CSV stores each constant with repr (17 digits) in GPa: the round trip through
#: a multiplication and a division by E loses at most a few ulp.
CSV_ROUNDTRIP = 1e-14

_ORTHO = np.zeros((6, 6), dtype=bool)
_ORTHO[:3, :3] = True
_ORTHO[3, 3] = _ORTHO[4, 4] = _ORTHO[5, 5] = True


def _mandel_eigs(C):
    return np.linalg.eigvalsh(C * MANDEL_W66)


def test_isotropic_fabric_gives_the_isotropic_closed_form_in_any_orientation():
    zc = ZyssetCurnier()
    rho = 0.2
    E = zc.E0 * rho ** zc.k
    nu = zc.nu0
    lam = E * nu / ((1 + nu) * (1 - 2 * nu))
    mu = E / (2 * (1 + nu))
    expected = np.zeros((6, 6))
    expected[:3, :3] = lam
    expected[np.arange(3), np.arange(3)] = lam + 2 * mu
    expected[np.arange(3, 6), np.arange(3, 6)] = mu
    R = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    for frame in (None, R):
        C = fabric_stiffness(rho, [1.0, 1.0, 1.0], frame)
        assert np.abs(C - expected).max() <= EXACT * expected.max()


def test_fabric_frame_stiffness_is_orthotropic_with_the_zysset_curnier_moduli():
    zc = ZyssetCurnier(l=0.9, mu0=3000.0)
    rho, m = 0.15, np.array([0.7, 0.95, 1.35])
    R = Rotation.from_rotvec([1.2, 0.4, -0.5]).as_matrix()
    C = fabric_stiffness(rho, m, R, zc)
    C_frame = fabric_stiffness(rho, m, None, zc)
    from graded.elastic import rotate_voigt

    back = rotate_voigt(C, R.T)
    assert np.abs(back - C_frame).max() <= EXACT * C_frame.max()
    assert np.abs(back[~_ORTHO]).max() <= EXACT * C_frame.max()
    S = np.linalg.inv(C_frame)
    dens = rho ** zc.k
    for i in range(3):
        assert 1 / S[i, i] == pytest.approx(zc.E0 * dens * m[i] ** (2 * zc.l), rel=EXACT)
        j = (i + 1) % 3
        assert -S[i, j] == pytest.approx(zc.nu0 / (zc.E0 * dens * (m[i] * m[j]) ** zc.l), rel=EXACT)
    for a, (i, j) in zip((3, 4, 5), ((1, 2), (0, 2), (0, 1))):
        assert 1 / S[a, a] == pytest.approx(zc.mu0 * dens * (m[i] * m[j]) ** zc.l, rel=EXACT)
    # the stiffer direction of the fabric is the stiffer direction of the bone
    assert C_frame[0, 0] < C_frame[1, 1] < C_frame[2, 2]


def test_orientation_leaves_the_mandel_eigenvalues_unchanged_and_targets_are_spd():
    t = bone_targets(12, np.random.default_rng(3))
    C_frame = fabric_stiffness(t.bv_tv, t.fabric) / (1000 * t.E_base) * t.scale[:, None, None]
    ev, ev_frame = _mandel_eigs(t.C), _mandel_eigs(C_frame)
    assert np.abs(ev - ev_frame).max() <= EXACT * ev_frame.max()
    assert np.all(ev > 0)
    assert np.abs(t.C - np.swapaxes(t.C, -1, -2)).max() == 0.0


def test_targets_follow_the_stated_distribution_and_lie_in_reach():
    t = bone_targets(200, np.random.default_rng(5))
    m = t.fabric
    assert np.allclose(m.sum(1), 3.0, rtol=0, atol=1e-14)
    assert np.all(np.diff(m, axis=1) >= 0)
    da = m[:, 2] / m[:, 0]
    assert da.min() >= ANISOTROPY_RANGE[0] - 1e-12 and da.max() <= ANISOTROPY_RANGE[1] + 1e-12
    assert t.bv_tv.min() >= BV_TV_RANGE[0] and t.bv_tv.max() <= BV_TV_RANGE[1]
    s = stiffness_scale(to_21(t.C))
    assert s.min() >= REACH[0] * (1 + REACH_MARGIN) * (1 - 1e-12)
    assert s.max() <= REACH[1] * (1 - REACH_MARGIN) * (1 + 1e-12)
    assert np.allclose(np.einsum("nij,nkj->nik", t.R, t.R), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(t.R), 1.0, atol=1e-12)


def test_out_of_reach_magnitudes_are_scaled_onto_the_reach_shape_kept():
    t = bone_targets(5, np.random.default_rng(1), E_base=1.0)  # normalised by 1 GPa: far too stiff
    assert np.all(t.scale < 1)
    s = stiffness_scale(to_21(t.C))
    assert np.allclose(s, REACH[1] * (1 - REACH_MARGIN), rtol=1e-12)
    raw = fabric_stiffness(t.bv_tv, t.fabric, t.R) / 1000.0
    assert np.abs(raw * t.scale[:, None, None] - t.C).max() <= EXACT * np.abs(t.C).max()


def test_a_seed_gives_identical_targets_and_bad_input_is_refused():
    a = bone_targets(4, np.random.default_rng(9))
    b = bone_targets(4, np.random.default_rng(9))
    c = bone_targets(4, np.random.default_rng(10))
    assert np.array_equal(a.C, b.C) and not np.allclose(a.C, c.C)
    with pytest.raises(ValidationError, match="rng"):
        bone_targets(4, 9)
    with pytest.raises(ValidationError, match="bv_tv"):
        fabric_stiffness(1.5, [1, 1, 1])
    with pytest.raises(ValidationError, match="fabric"):
        fabric_stiffness(0.2, [1, -1, 3])


def test_shipped_set_is_the_seeded_generator_and_round_trips(tmp_path):
    shipped = shipped_bone_targets()
    fresh = bone_targets(SHIPPED_N, np.random.default_rng(SHIPPED_SEED))
    assert shipped.names == fresh.names and len(shipped) == SHIPPED_N
    assert np.abs(shipped.C - fresh.C).max() <= CSV_ROUNDTRIP * np.abs(fresh.C).max()
    assert np.abs(shipped.R - fresh.R).max() <= 1e-12
    # the generator's fabric agrees to round-off, not bit for bit, across numpy builds (1 ulp)
    assert np.abs(shipped.fabric - fresh.fabric).max() <= CSV_ROUNDTRIP * np.abs(fresh.fabric).max()
    assert np.abs(shipped.bv_tv - fresh.bv_tv).max() <= CSV_ROUNDTRIP * np.abs(fresh.bv_tv).max()
    path, params = write_bone_csv(fresh, tmp_path / "b.csv", header="test")
    back = read_bone_csv(path)
    assert params.name == "b_params.csv"
    assert np.abs(back.C - fresh.C).max() <= CSV_ROUNDTRIP * np.abs(fresh.C).max()


def test_graded_design_reads_a_row_of_the_shipped_csv():
    from graded.cli.design import read_target

    with resources.as_file(resources.files("graded.inverse") / "data" / "bone_targets.csv") as p:
        values, label = read_target((str(p),), "bone_007")
    assert label == "bone_targets.csv:bone_007"
    assert np.abs(values / 114.0 - to_21(shipped_bone_targets().C[7])).max() <= 1e-15
