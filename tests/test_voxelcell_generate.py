"""Generated cubic voxel cells (graded.voxelcell.generate): volume fraction, symmetry, percolation,
minimum feature, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from graded.spinodoid.connectivity import keep_percolating
from graded.validation import ValidationError
from graded.voxelcell.fields import NoiseParams, TrigParams, noise_field, trig_field
from graded.voxelcell.generate import (
    MAX_THIN_FRACTION,
    GeneratorSettings,
    cubic_level_set,
    generate_cell,
    generate_cells,
    thin_fraction,
)
from graded.voxelcell.symmetry import expand_octant, is_cubic_symmetric

N = 24
#: Thresholds move whole symmetry orbits (at most 48 voxels): the volume fraction is hit to half of one.
VF_TOL = 24 / N**3


@pytest.fixture(scope="module")
def cells():
    return generate_cells(6, N, np.random.default_rng(11))


def test_cells_are_cubic_connected_and_hit_the_volume_fraction(cells):
    assert {c.family for c in cells} == {"trig", "noise"}
    for c in cells:
        assert c.solid.shape == (N, N, N) and c.solid.dtype == bool
        assert c.octant.shape == (N // 2,) * 3
        assert np.array_equal(expand_octant(c.octant), c.solid)
        assert is_cubic_symmetric(c.solid)
        assert c.volume_fraction == c.solid.mean()
        assert abs(c.volume_fraction - c.target_volume_fraction) <= VF_TOL
        assert 0.15 <= c.target_volume_fraction <= 0.6
        # percolates along all three axes as one face-connected component, no islands left
        kept, report = keep_percolating(c.solid)
        assert report.fully_connected and report.n_removed == 0 and np.array_equal(kept, c.solid)
        assert c.connectivity.fully_connected
        assert c.thin_fraction == thin_fraction(c.solid) <= MAX_THIN_FRACTION
        assert set(c.rejected) <= {"islands", "percolation", "thin"}


def test_cell_is_its_field_below_the_threshold_on_the_kept_voxels(cells):
    for c in cells:
        field = trig_field(c.params, N) if c.family == "trig" else noise_field(c.params, N)
        assert field[c.solid].max() == c.threshold
        assert np.all(field[c.solid] <= c.threshold)


def test_same_generator_state_same_cell_other_seed_other_cell():
    a = generate_cell(N, np.random.default_rng(5))
    b = generate_cell(N, np.random.default_rng(5))
    c = generate_cell(N, np.random.default_rng(6))
    assert np.array_equal(a.solid, b.solid) and a.rejected == b.rejected and a.threshold == b.threshold
    assert not np.array_equal(a.solid, c.solid)


def test_level_set_hits_the_quantile_to_orbit_granularity():
    params = TrigParams(wave_numbers=np.array([[1, 1, 0], [2, 0, 1]]), sine=np.array([[False, True, False],
                        [False, False, True]]), amplitudes=np.array([1.0, 0.5]))
    field = trig_field(params, N)
    for rho in (0.15, 0.3333, 0.6):
        solid, t = cubic_level_set(field, rho)
        assert abs(solid.mean() - rho) <= VF_TOL
        assert is_cubic_symmetric(solid)
        assert np.array_equal(solid, field <= t)


def test_fields_are_cubic_and_periodic():
    tp = TrigParams(wave_numbers=np.array([[3, 1, 2]]), sine=np.array([[True, False, True]]), amplitudes=np.ones(1))
    for f in (trig_field(tp, N), noise_field(NoiseParams(length_scale=0.08, noise_seed=3), N)):
        assert is_cubic_symmetric(f)
        assert np.std(f) > 0


def test_thin_fraction_of_plates():
    solid = np.zeros((N, N, N), dtype=bool)
    solid[:, :, 4:5] = True  # a plate one voxel thick: all thin
    assert thin_fraction(solid) == 1.0
    solid[:, :, 5:6] = True  # two voxels thick: no thin voxel
    assert thin_fraction(solid) == 0.0
    solid[0, 0, 10] = True  # one extra voxel out of 2 N^2 + 1
    assert thin_fraction(solid) == pytest.approx(1 / (2 * N**2 + 1), abs=1e-15)


def test_bad_input_is_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValidationError, match="n: 25 voxels per edge is odd"):
        generate_cell(25, rng)
    with pytest.raises(ValidationError, match="rng: is a int, not a numpy.random.Generator"):
        generate_cell(N, 0)
    with pytest.raises(ValidationError, match=r"rho_range: .* is outside the allowed range \(0, 1\)"):
        GeneratorSettings(rho_range=(0.0, 0.5))
    with pytest.raises(ValidationError, match=r"families: 'gyroid' is not one of \['trig', 'noise'\]"):
        GeneratorSettings(families=("gyroid",))
    with pytest.raises(ValidationError, match="field: is not cubic-symmetric"):
        cubic_level_set(rng.random((N, N, N)), 0.3)
    with pytest.raises(ValidationError, match="settings: no accepted cell in 2 draws at n=8"):
        generate_cell(8, rng, GeneratorSettings(rho_range=(0.15, 0.16), max_attempts=2, max_thin_fraction=0.0))
