"""Cubic labels (graded.voxelcell.label) from two load cases against the full six-load-case FE."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graded.fem.voxel import homogenize_voxels, isotropic_stiffness
from graded.validation import ValidationError
from graded.voxelcell.generate import GeneratorSettings, generate_cells
from graded.voxelcell.label import LABEL_NAMES, cubic_labels

N = 16
NU = 0.3
#: Two-load-case labels against the six-load-case C: C12 is read without the energy correction
#: at LABEL_RTOL (error ~1e-9 C11); the six-case C is accurate to ~1e-9 at its default tolerance.
SAME_LABEL = 1e-8
#: A cubic cell's C has the cubic pattern up to the CG tolerance (quadratic in 1e-5).
CUBIC = 1e-8


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Small grids solve fastest on one thread (more only contend on a shared machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def labelled():
    # 16^3 keeps the FE fast; volume fractions from 0.35 are accepted in a few draws there
    cells = generate_cells(3, N, np.random.default_rng(2), GeneratorSettings(rho_range=(0.35, 0.6)))
    solids = np.stack([c.solid for c in cells])
    return cells, cubic_labels(solids, nu=NU), homogenize_voxels(solids, nu=NU)


def test_labels_equal_the_six_load_case_stiffness(labelled):
    cells, labels, full = labelled
    assert labels.values.shape == (3, 4) and len(LABEL_NAMES) == 4
    assert labels.converged.all() and full.converged.all()
    C = full.C
    np.testing.assert_allclose(labels.C11, C[:, 0, 0], rtol=0, atol=SAME_LABEL)
    np.testing.assert_allclose(labels.C12, C[:, 0, 1], rtol=0, atol=SAME_LABEL)
    np.testing.assert_allclose(labels.C44, C[:, 3, 3], rtol=0, atol=SAME_LABEL)
    np.testing.assert_array_equal(labels.volume_fraction, [c.volume_fraction for c in cells])


def test_full_stiffness_of_a_cubic_cell_is_cubic(labelled):
    _, _, full = labelled
    for C in full.C:
        scale = C[0, 0]
        pattern = np.zeros((6, 6))
        pattern[:3, :3] = C[0, 1]
        pattern[np.arange(3), np.arange(3)] = C[0, 0]
        pattern[np.arange(3, 6), np.arange(3, 6)] = C[3, 3]
        assert np.abs(C - pattern).max() <= CUBIC * scale


def test_labels_lie_within_the_bounds(labelled):
    _, labels, _ = labelled
    Cs = isotropic_stiffness(1.0, NU)
    Ks, mus = 1.0 / (3 * (1 - 2 * NU)), 1.0 / (2 * (1 + NU))
    for C11, C12, C44, vf in labels.values:
        # positive definite cubic stiffness
        assert C44 > 0 and C11 > abs(C12) and C11 + 2 * C12 > 0
        # Voigt (rule of mixtures) upper bounds of the normal and shear stiffness
        assert C11 <= vf * Cs[0, 0] and C44 <= vf * mus
        # Hashin-Shtrikman upper bound of the bulk modulus of a porous solid (any microstructure)
        K = (C11 + 2 * C12) / 3
        K_hs = 4 * mus * Ks * vf / (4 * mus + 3 * Ks * (1 - vf))
        assert K <= K_hs


def test_bad_cells_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValidationError, match="cells: cell 0 is not cubic-symmetric"):
        cubic_labels(rng.random((8, 8, 8)) < 0.5)
    with pytest.raises(ValidationError, match="cells: has dtype float64, not bool"):
        cubic_labels(np.ones((8, 8, 8)))
    with pytest.raises(ValidationError, match="cells: cell 0 has no solid"):
        cubic_labels(np.zeros((8, 8, 8), dtype=bool))
    with pytest.raises(ValidationError, match=r"cells: has shape \(8, 8\), expected"):
        cubic_labels(np.ones((8, 8), dtype=bool))
