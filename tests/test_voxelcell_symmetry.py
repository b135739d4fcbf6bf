"""Cubic symmetry of voxel cells (graded.voxelcell.symmetry): the 48 operations, orbits, octants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from graded.validation import ValidationError
from graded.voxelcell.symmetry import (
    CUBIC_OPERATIONS,
    apply_operation,
    expand_octant,
    fundamental_size,
    is_cubic_symmetric,
    octant_of,
    orbit_index,
    pack_fundamental,
    symmetrise,
    symmetrise_octant,
    unpack_fundamental,
)

#: Averages of up to 48 values of magnitude <= 1 agree to this (float64 round-off of the sums).
ROUNDOFF = 1e-12

finite = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False)


def octants():
    return st.integers(1, 4).flatmap(lambda h: arrays(np.float64, (h, h, h), elements=finite))


def cells():
    return st.sampled_from([2, 3, 4, 6]).flatmap(lambda n: arrays(np.float64, (n, n, n), elements=finite))


def test_the_48_operations_are_the_signed_permutation_matrices():
    assert len(CUBIC_OPERATIONS) == 48
    field = np.arange(4**3, dtype=float).reshape(4, 4, 4)
    images = {apply_operation(field, op).tobytes() for op in CUBIC_OPERATIONS}
    assert len(images) == 48  # a generic field has 48 distinct images


def test_orbits_of_an_even_cell_have_8_24_or_48_voxels():
    ids, sizes = orbit_index(8)
    assert set(sizes.tolist()) == {8, 24, 48}
    assert sizes.sum() == 8**3 and sizes.size == fundamental_size(4) == 20


@settings(max_examples=40, deadline=None)
@given(octants())
def test_expanded_symmetrised_octant_is_invariant_under_each_operation(octant):
    full = expand_octant(symmetrise_octant(octant))
    assert full.shape == (2 * octant.shape[0],) * 3
    for op in CUBIC_OPERATIONS:
        assert np.array_equal(apply_operation(full, op), full), op
    assert is_cubic_symmetric(full)
    assert np.array_equal(octant_of(full), symmetrise_octant(octant))


@settings(max_examples=40, deadline=None)
@given(cells())
def test_symmetrise_is_the_group_average_invariant_and_idempotent(field):
    sym = symmetrise(field)
    average = sum(apply_operation(field, op) for op in CUBIC_OPERATIONS) / 48
    assert np.abs(sym - average).max() <= ROUNDOFF
    for op in CUBIC_OPERATIONS:
        assert np.array_equal(apply_operation(sym, op), sym)  # exactly: one value per orbit
    assert np.abs(symmetrise(sym) - sym).max() <= ROUNDOFF


@settings(max_examples=30, deadline=None)
@given(octants())
def test_fundamental_domain_round_trip(octant):
    o = symmetrise_octant(octant)
    h = o.shape[0]
    packed = pack_fundamental(o)
    assert packed.shape == (h * (h + 1) * (h + 2) // 6,)
    assert np.array_equal(unpack_fundamental(packed, h), o)


def test_bool_octant_expands_to_a_bool_cubic_cell():
    rng = np.random.default_rng(0)
    octant = symmetrise_octant(rng.random((5, 5, 5)) < 0.5) > 0.5
    full = expand_octant(octant)
    assert full.dtype == bool and full.shape == (10, 10, 10) and is_cubic_symmetric(full)
    # a mirror image about the centre plane: voxel i and n - 1 - i agree
    assert np.array_equal(full, full[::-1]) and np.array_equal(full, full[:, :, ::-1])


def test_is_cubic_symmetric_detects_one_changed_voxel():
    full = expand_octant(symmetrise_octant(np.random.default_rng(1).random((3, 3, 3))))
    broken = full.copy()
    broken[0, 1, 2] += 1e-9
    assert not is_cubic_symmetric(broken)
    assert is_cubic_symmetric(broken, atol=1e-8)
    solid = full > 0.5
    solid[0, 1, 2] = ~solid[0, 1, 2]
    assert is_cubic_symmetric(full > 0.5) and not is_cubic_symmetric(solid)


def test_bad_input_is_refused():
    with pytest.raises(ValidationError, match=r"field: has shape \(4, 4, 5\), expected \(n, n, n\)"):
        symmetrise(np.zeros((4, 4, 5)))
    with pytest.raises(ValidationError, match="field: has 5 voxels per edge, an odd number"):
        octant_of(np.zeros((5, 5, 5)))
    with pytest.raises(ValidationError, match="octant: is not invariant under the axis permutations"):
        expand_octant(np.arange(8.0).reshape(2, 2, 2))
    with pytest.raises(ValidationError, match=r"values: has shape \(3,\), expected \(4,\)"):
        unpack_fundamental(np.zeros(3), 2)
    with pytest.raises(ValidationError, match="n: 0 is not an integer >= 1"):
        orbit_index(0)
