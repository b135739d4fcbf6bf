"""The linear cell code of the voxel family: signed distance, weights, PCA, faces, cubic tensors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graded.validation import ValidationError
from graded.voxelcell import (
    cell_fields,
    cubic_level_set,
    cubic_projection,
    cubic_stiffness,
    expand_octant,
    fit_cell_code,
    fundamental_indices,
    fundamental_size,
    fundamental_weights,
    pack_fundamental,
    signed_distance,
    symmetrise,
    symmetrise_octant,
)


def _random_cells(m: int, n: int, seed: int) -> np.ndarray:
    """Cubic-symmetric cells: symmetrised noise cut at random volume fractions."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(m):
        field = symmetrise(rng.standard_normal((n, n, n)))
        out.append(cubic_level_set(field, rng.uniform(0.3, 0.6))[0])
    return np.array(out)


def test_signed_distance_of_a_slab_is_the_distance_to_its_faces():
    n = 16
    solid = np.zeros((n, n, n), dtype=bool)
    solid[4:9] = True  # voxels 4..8 along axis 0
    d = signed_distance(solid)[:, 0, 0]
    i = np.arange(n)
    inside = -np.minimum(i - 3, 9 - i)  # to the void voxels 3 and 9
    outside = np.minimum(np.abs(i - 4), np.abs(i - 8))
    outside = np.minimum(outside, np.minimum(i + n - 8, 4 + n - i))  # periodic images
    expected = np.where(solid[:, 0, 0], inside, outside).astype(float)
    expected = np.clip(expected, -4, 4)  # DISTANCE_PAD * n
    np.testing.assert_array_equal(d, expected)
    assert np.all(signed_distance(solid) != 0)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(0, 7), st.integers(0, 7), st.integers(0, 7))
def test_signed_distance_sign_and_periodicity(seed, a, b, c):
    solid = _random_cells(1, 8, seed)[0]
    d = signed_distance(solid)
    np.testing.assert_array_equal(d < 0, solid)
    rolled = signed_distance(np.roll(solid, (a, b, c), axis=(0, 1, 2)))
    np.testing.assert_array_equal(rolled, np.roll(d, (a, b, c), axis=(0, 1, 2)))


def test_fundamental_weights_give_the_octant_norm():
    h = 6
    octant = symmetrise_octant(np.random.default_rng(0).standard_normal((h, h, h)))
    v = pack_fundamental(octant)
    w = fundamental_weights(h)
    assert w.shape == (fundamental_size(h),)
    assert np.sum((w * v) ** 2) == pytest.approx(np.sum(octant**2), rel=1e-12)


def test_a_full_code_reproduces_every_cell_exactly():
    cells = _random_cells(40, 8, 1)
    X = cell_fields(cells)
    code = fit_cell_code(X, 4, fundamental_size(4))
    fields = code.decode(code.encode(cells))
    for cell, octant in zip(cells, fields):
        field = expand_octant(symmetrise_octant(octant))
        np.testing.assert_allclose(field, signed_distance(cell), atol=1e-9)
        solid, _ = cubic_level_set(field, cell.mean())
        np.testing.assert_array_equal(solid, cell)
    # codes have unit variance per component over the fitted cells
    np.testing.assert_allclose(code.encode(cells).std(axis=0, ddof=1), 1.0, rtol=1e-9)


def test_truncated_code_is_the_least_squares_projection():
    cells = _random_cells(60, 8, 2)
    X = cell_fields(cells)
    code = fit_cell_code(X, 4, 5)
    z = code.project(X)
    residual = X - (code.mean + (z * code.scale) @ code.basis)
    # the residual is orthogonal to the kept directions
    np.testing.assert_allclose(residual @ code.basis.T, 0.0, atol=1e-9)


def test_face_map_gives_the_decoded_face():
    cells = _random_cells(30, 12, 3)
    code = fit_cell_code(cell_fields(cells), 6, 12)
    z = np.random.default_rng(4).standard_normal((3, 12))
    M, off = code.face_map()
    a, b, c = fundamental_indices(6)
    face = a == 0
    octants = code.decode(z)
    np.testing.assert_allclose(z @ M + off, octants[:, 0, b[face], c[face]], atol=1e-12)


def test_code_refuses_bad_input():
    with pytest.raises(ValidationError, match="more cells than components"):
        fit_cell_code(np.zeros((3, fundamental_size(4))), 4, 5)
    with pytest.raises(ValidationError, match="span only"):
        fit_cell_code(np.zeros((30, fundamental_size(4))), 4, 5)
    with pytest.raises(ValidationError, match="no surface"):
        signed_distance(np.ones((8, 8, 8), dtype=bool))
    cells = _random_cells(30, 8, 5)
    code = fit_cell_code(cell_fields(cells), 4, 4)
    with pytest.raises(ValidationError, match="give 4 per code"):
        code.decode(np.zeros((1, 3)))


def test_cubic_projection():
    C = cubic_stiffness([3.0, 1.2, 0.7])
    C3, residual = cubic_projection(C)
    np.testing.assert_allclose(C3, [3.0, 1.2, 0.7])
    assert residual == pytest.approx(0.0, abs=1e-15)
    D = C.copy()
    D[0, 0], D[1, 1] = 3.3, 2.7  # tetragonal-like disturbance, same mean
    D[0, 5] = D[5, 0] = 0.1
    C3, residual = cubic_projection(D)
    np.testing.assert_allclose(C3, [3.0, 1.2, 0.7])
    M = np.diag([1, 1, 1, 2, 2, 2]) ** 0.5  # Mandel weights sqrt(2) on shear rows/columns
    expected = np.linalg.norm(M @ (D - C) @ M) / np.linalg.norm(M @ D @ M)
    assert residual == pytest.approx(expected, rel=1e-12)
