"""Printability of spinodoid cells: the opening by a ball of the printer's minimum feature."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graded.spinodoid.printability import thin_fraction
from graded.validation import ValidationError


def _plate(n: int, t: int, start: int = 3) -> np.ndarray:
    s = np.zeros((n, 6, 6), dtype=bool)
    s[start:start + t] = True
    return s


@pytest.mark.parametrize("t", [4, 6, 9])
def test_a_plate_is_printable_below_its_thickness_and_not_above(t):
    h = 0.05
    s = _plate(24, t)
    assert thin_fraction(s, h, (t - 1.5) * h) == 0.0
    assert thin_fraction(s, h, (t + 0.5) * h) == 1.0


def test_a_rod_is_thin_only_for_a_larger_ball_and_the_cell_is_periodic():
    n, h = 20, 0.1
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    # a rod of radius 4 voxels along z, centred on a corner of the cell (it wraps around)
    d2 = np.minimum(i, n - i) ** 2 + np.minimum(j, n - j) ** 2
    rod = np.broadcast_to((d2 <= 16)[:, :, None], (n, n, n)).copy()
    assert thin_fraction(rod, h, 0.5) == 0.0  # 0.5 mm ball in a 0.8-0.9 mm rod
    assert thin_fraction(rod, h, 1.0) == 1.0
    # a thin plate joined to a thick block: only the plate is thin
    s = np.zeros((n, n, n), dtype=bool)
    s[:10] = True  # block 1 mm thick
    s[10:, :2] = True  # fin 0.2 mm thick
    f = thin_fraction(s, h, 0.4)
    fin = s[10:, :2].sum() / s.sum()
    assert 0.5 * fin < f <= fin + 1e-12


@settings(max_examples=25, deadline=None)
@given(t=st.integers(2, 8), shift=st.integers(0, 15), d=st.floats(0.05, 1.0))
def test_the_thin_fraction_is_monotone_in_the_minimum_and_shift_invariant(t, shift, d):
    s = _plate(16, t)
    f = thin_fraction(s, 0.1, d)
    assert 0.0 <= f <= 1.0
    assert thin_fraction(s, 0.1, d * 1.5) >= f
    assert thin_fraction(np.roll(s, shift, axis=0), 0.1, d) == pytest.approx(f, abs=1e-12)


def test_no_minimum_or_no_solid_is_zero_and_bad_voxel_size_is_refused():
    s = _plate(16, 4)
    assert thin_fraction(s, 0.1, 0.0) == 0.0
    assert thin_fraction(np.zeros((8, 8, 8), dtype=bool), 0.1, 0.3) == 0.0
    with pytest.raises(ValidationError, match="voxel_size"):
        thin_fraction(s, 0.0, 0.3)
