"""Design library: nearest neighbours by stiffness shape, exact frames, safe file format."""

import numpy as np
import pytest

from graded.elastic import from_21, rotate_voigt
from graded.inverse.dataset import shipped_test_set
from graded.inverse.library import (
    DesignLibrary,
    build_library,
    load_library,
    save_library,
    shipped_library,
)
from graded.inverse.sampling import random_rotations
from graded.validation import ValidationError


@pytest.fixture(scope="module")
def lib():
    return build_library(shipped_test_set(), 400)


def test_a_rotated_stored_cell_is_found_and_turned_into_the_target_frame(lib):
    """Target = a stored cell rotated by Q: the first neighbour is that cell, its FE
    stiffness in the returned frame equals the target (float32 storage: 1e-6)."""
    from graded.inverse.oracle import fe_stiffness

    rng = np.random.default_rng(1)
    ids = np.array([3, 117, 250])
    Q = random_rotations(len(ids), rng)
    T = rotate_voigt(from_21(lib.C[ids].astype(np.float64)), Q)
    nb = lib.nearest(T, k=3)
    assert nb["rho"].shape == (3, 3) and nb["R2"].shape == (3, 3, 3, 3)
    assert np.allclose(nb["distance"][:, 0], 0.0, atol=1e-6)
    assert np.array_equal(nb["topology"][:, 0], lib.topology[ids])
    assert np.allclose(nb["rho"][:, 0], lib.rho[ids], rtol=1e-5)  # same size: no rescaling
    assert np.allclose(nb["C_lib"][:, 0], T, atol=1e-6 * np.abs(T).max())
    first = {k: nb[k][:, 0] for k in ("topology", "rho", "U", "V", "R1", "R2")}
    C = fe_stiffness(*first.values())
    assert np.abs(C - T).max() / np.abs(T).max() < 1e-5
    assert np.all(np.diff(nb["distance"], axis=1) >= 0)


def test_neighbours_are_rescaled_to_the_target_size(lib):
    T = 0.5 * from_21(lib.C[[10]].astype(np.float64))
    nb = lib.nearest(T, k=1)
    # rho * (1/2)^(1/1.5), clipped to Table S1
    assert nb["rho"][0, 0] == pytest.approx(max(0.002, lib.rho[10] * 0.5 ** (1 / 1.5)), rel=1e-5)


def test_round_trip_and_refusals(lib, tmp_path):
    p = save_library(lib, tmp_path / "lib.npz")
    back = load_library(p)
    for k in ("topology", "rho", "U", "V", "R1", "R2", "C"):
        assert np.array_equal(getattr(back, k), getattr(lib, k))
    with pytest.raises(ValidationError, match="path: .*does not end in .npz"):
        save_library(lib, tmp_path / "lib.bin")
    with pytest.raises(ValidationError, match="library: .*does not exist"):
        load_library(tmp_path / "missing.npz")
    arrays = {k: np.asarray(getattr(lib, k)) for k in ("topology", "rho", "U", "V", "R1", "R2", "C")}
    np.savez(tmp_path / "v9.npz", header=np.array([9, len(lib)]), **arrays)
    with pytest.raises(ValidationError, match="format version 9"):
        load_library(tmp_path / "v9.npz")
    arrays["C"] = arrays["C"][:, :20]
    np.savez(tmp_path / "bad.npz", header=np.array([1, len(lib)]), **arrays)
    with pytest.raises(ValidationError, match="array 'C' is damaged"):
        load_library(tmp_path / "bad.npz")
    with pytest.raises(ValidationError, match="k: "):
        lib.nearest(np.eye(6)[None], k=0)


def test_shipped_library_is_the_training_slice():
    lib = shipped_library()
    assert isinstance(lib, DesignLibrary) and len(lib) == 50_000
    assert np.all((lib.rho >= 0.002) & (lib.rho <= 0.1))
