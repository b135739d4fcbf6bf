"""Spinodoid generator: the random field of Eqs. 1-3, periodicity, threshold and connectivity."""

from __future__ import annotations

import numpy as np
import pytest

from graded.fem.voxel import homogenize_voxels
from graded.spinodoid import (
    SpinodoidDesign,
    field_at,
    field_on_grid,
    generate_cell,
    in_cones,
    keep_percolating,
    periodic_components,
    sample_waves,
)
from graded.validation import ValidationError

#: Exact identities of the field (Parseval, FFT vs direct sum) hold to round-off.
ROUNDOFF = 1e-12


def rz90_to_x() -> np.ndarray:
    """Rotation taking the principal e3 axis to the cell's e1 axis (columns: images of e1, e2, e3)."""
    return np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def test_same_seed_same_cell_other_seed_other_cell():
    d = SpinodoidDesign(rho=0.5, theta=(90, 90, 90))
    a = generate_cell(d, 16, np.random.default_rng(3))
    b = generate_cell(d, 16, np.random.default_rng(3))
    c = generate_cell(d, 16, np.random.default_rng(4))
    assert np.array_equal(a.solid, b.solid) and np.array_equal(a.waves.m, b.waves.m)
    assert not np.array_equal(a.solid, c.solid)


@pytest.mark.parametrize("theta", [(90, 90, 90), (0, 0, 30), (15, 15, 15), (0, 40, 20)])
def test_waves_lie_in_the_cones_at_the_wavelength(theta):
    d = SpinodoidDesign(rho=0.5, theta=theta, wavelength=0.125)
    w = sample_waves(d, np.random.default_rng(0))
    norm = np.linalg.norm(w.m, axis=1)
    assert np.all(in_cones(w.m / norm[:, None], theta))
    # snapping to the reciprocal lattice moves a wave vector by at most half a lattice diagonal
    assert np.all(np.abs(norm - 1 / d.wavelength) <= np.sqrt(3) / 2 + 1e-12)
    # no two waves equal or opposite (they were merged)
    key = {tuple(m) for m in w.m} | {tuple(-m) for m in w.m}
    assert len(key) == 2 * len(w.m)


def test_rotation_turns_the_cones():
    d = SpinodoidDesign(rho=0.5, theta=(0, 0, 20), R=rz90_to_x())
    w = sample_waves(d, np.random.default_rng(1))
    u = w.m / np.linalg.norm(w.m, axis=1, keepdims=True)
    assert np.all(np.abs(u[:, 0]) > np.cos(np.radians(20)))  # now about the cell's x1 axis
    assert np.all(np.abs(u[:, 2]) < np.sin(np.radians(20)) + 1e-12)


def test_field_is_periodic_unit_variance_and_grid_matches_direct_sum():
    d = SpinodoidDesign(rho=0.5, theta=(0, 40, 20), wavelength=0.25)
    w = sample_waves(d, np.random.default_rng(2))
    n = 12
    phi = field_on_grid(w, n)
    assert abs(phi.mean()) < ROUNDOFF
    assert abs((phi**2).mean() - 1.0) < ROUNDOFF
    x = (np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), axis=-1) + 0.5) / n
    assert np.abs(field_at(w, x) - phi).max() < 1e-10
    pts = np.random.default_rng(0).random((50, 3))
    for e in np.eye(3):
        assert np.abs(field_at(w, pts + e) - field_at(w, pts)).max() < 1e-10


def test_threshold_gives_the_density_and_solid_is_below_it():
    d = SpinodoidDesign(rho=0.35, theta=(90, 90, 90))
    cell = generate_cell(d, 20, np.random.default_rng(5))
    phi = field_on_grid(cell.waves, 20)
    assert np.all(phi[cell.solid] <= cell.phi0)
    assert abs((phi <= cell.phi0).mean() - 0.35) <= 1.0 / 20**3
    assert cell.density == pytest.approx(0.35 - cell.connectivity.removed_fraction, abs=1.0 / 20**3)


def test_connectivity_of_constructed_solids():
    n = 8
    s = np.zeros((n, n, n), bool)
    s[:, 2, 2] = True  # a rod through the whole cell along x1: winds once
    s[1:n - 1, 5, 5] = True  # a rod that stops short of its image: an island
    s[n - 2 :, 5, 1] = True  # a short rod cut by the cell boundary: one island, not two
    s[:2, 5, 1] = True
    s[3:5, 3:5, 6] = True  # a small block: island
    labels, ranks = periodic_components(s)
    assert sorted(ranks) == [0, 0, 0, 1]
    kept, rep = keep_percolating(s)
    assert rep.n_components == 4 and rep.n_removed == 3 and rep.n_kept == 1
    assert rep.winding_rank == 1 and not rep.fully_connected
    assert np.array_equal(kept, np.pad(np.ones((n, 1, 1), bool), ((0, 0), (2, n - 3), (2, n - 3))))
    assert rep.removed_fraction == pytest.approx(((n - 2) + 4 + 4) / n**3)
    slab = np.zeros((n, n, n), bool)
    slab[:, :, 3] = True
    assert periodic_components(slab)[1] == [2]
    # corner- or edge-sharing voxels are not connected (a hinge carries no load)
    diag = np.zeros((n, n, n), bool)
    diag[np.arange(n), np.arange(n), 0] = True
    assert periodic_components(diag)[1] == [0] * n


def test_isotropic_cell_percolates_in_three_directions():
    cell = generate_cell(SpinodoidDesign(rho=0.4, theta=(90, 90, 90)), 24, np.random.default_rng(0))
    assert cell.connectivity.fully_connected
    assert cell.connectivity.removed_fraction < 0.01


def test_lamellar_cell_is_soft_across_its_layers():
    # waves within 20 degrees of e3: interfaces normal to e3, plates in the x1-x2 plane
    cell = generate_cell(SpinodoidDesign(rho=0.5, theta=(0, 0, 20)), 20, np.random.default_rng(0))
    C = homogenize_voxels(cell.solid).C[0]
    assert C[0, 0] > 2 * C[2, 2] and C[1, 1] > 2 * C[2, 2]
    assert C[5, 5] > C[3, 3] and C[5, 5] > C[4, 4]


def test_bad_designs_are_refused_with_the_field_named():
    with pytest.raises(ValidationError, match="^theta:"):
        SpinodoidDesign(rho=0.5, theta=(10, 0, 0))
    with pytest.raises(ValidationError, match="^theta:"):
        SpinodoidDesign(rho=0.5, theta=(0, 0, 0))
    with pytest.raises(ValidationError, match="^theta:"):
        SpinodoidDesign(rho=0.5, theta=(90, 90))
    with pytest.raises(ValidationError, match="^rho:"):
        SpinodoidDesign(rho=1.5, theta=(90, 90, 90))
    with pytest.raises(ValidationError, match="^R:"):
        SpinodoidDesign(rho=0.5, theta=(90, 90, 90), R=np.diag([1.0, 1.0, -1.0]))
    with pytest.raises(ValidationError, match="^resolution:"):
        generate_cell(SpinodoidDesign(rho=0.5, theta=(90, 90, 90), wavelength=0.1), 12, np.random.default_rng(0))
