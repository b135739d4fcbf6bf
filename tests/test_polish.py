"""FE polish (Levenberg-Marquardt on the FE misfit): manufactured solutions."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from graded.elastic import from_21
from graded.elastic.metrics import relative_error
from graded.inverse.dataset import shipped_test_set
from graded.inverse.polish import polish_designs

KEYS = ("topology", "rho", "U", "V", "R1", "R2")


@pytest.fixture(scope="module")
def samples():
    return shipped_test_set().subset(slice(0, 4))


def _perturbed(ds, rng, size):
    n = len(ds)
    return {
        "topology": np.asarray(ds.topology),
        "rho": np.clip(ds.rho * (1 + size * rng.standard_normal(n)), 0.002, 0.1),
        "U": np.clip(ds.U * (1 + 0.5 * size * rng.standard_normal((n, 3))), 0.5, 2.0),
        "V": np.clip(ds.V * (1 + 0.5 * size * rng.standard_normal((n, 3))), 0.5, 2.0),
        "R1": Rotation.from_rotvec(size * rng.standard_normal((n, 3))).as_matrix() @ ds.R1,
        "R2": Rotation.from_rotvec(size * rng.standard_normal((n, 3))).as_matrix() @ ds.R2,
    }


def test_relative_error_is_per_target():
    """Each target is divided by its own norm (a batch of targets of different size)."""
    a = np.eye(6)
    T = np.stack([a, 100 * a])
    C = np.stack([1.1 * a, 110 * a])
    assert relative_error(T, C) == pytest.approx([0.1, 0.1], rel=1e-12)


def test_polish_recovers_the_design_that_made_the_target(samples):
    """Manufactured solution: start near the design that produced an FE target; the
    polish must drive the FE misfit to round-off (measured < 1e-8)."""
    T = from_21(samples.C)
    start = _perturbed(samples, np.random.default_rng(0), 0.08)
    out = polish_designs(T, start, iterations=15)
    assert np.all(out["error_start"] > 0.03)
    assert np.all(out["error"] < 1e-6)
    assert np.allclose(out["C_fe"], T, atol=1e-6 * np.abs(T).max())
    # bounds of Table S1 hold and rotations stay rotations
    assert np.all((out["rho"] >= 0.002) & (out["rho"] <= 0.1))
    assert np.all((out["U"] >= 0.5) & (out["U"] <= 2.0) & (out["V"] >= 0.5) & (out["V"] <= 2.0))
    for R in ("R1", "R2"):
        assert np.allclose(out[R] @ np.swapaxes(out[R], -1, -2), np.eye(3), atol=1e-12)


def test_polish_never_worsens_and_reports_the_fe_of_its_designs(samples):
    from graded.inverse.oracle import fe_stiffness

    T = from_21(samples.C)[::-1].copy()  # targets of *other* designs: not reachable exactly
    start = {k: np.asarray(getattr(samples, k)) for k in KEYS}
    out = polish_designs(T, start, iterations=3)
    assert np.all(out["error"] <= out["error_start"] + 1e-15)
    C = fe_stiffness(*(out[k] for k in KEYS))
    assert np.allclose(out["C_fe"], C, rtol=0, atol=1e-12 * np.abs(C).max())
    assert np.allclose(out["error"], relative_error(T, C), rtol=1e-9)
