"""Random valid specs build into one watertight body inside their body, or are refused clearly.

A bounded hypothesis run over spec seeds (``benchmarks/fuzz.py`` runs hundreds); seeds that
once failed are kept in ``REGRESSIONS`` and always run.
"""

from __future__ import annotations

import pytest
from fuzzspecs import EXCURSION_TOL, run_spec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

#: Seeds of ``random_spec`` that failed once (from benchmarks/results/fuzz.json), fixed since.
REGRESSIONS: list[int] = [
    4, 7,  # STL bodies: the excursion check needed rtree
    5, 12, 31, 84, 105,  # rotated cells the phase fields follow only in equivalent orientations (once refused)
    154,  # meshed in tiles: boolean slivers that float32 storage fused only in part (four triangles at an edge)
]
#: Seeds whose blends no phase map follows, even in equivalent orientations (once refused): they
#: must build, in grains, into one watertight body.
IN_GRAINS: list[int] = [50, 54]


def _check(seed, tmp):
    out = run_spec(seed, tmp)
    assert out.kind in ("built", "refused"), f"seed {seed}: {out.message}"
    if out.kind == "built":
        assert out.excursion_mm <= EXCURSION_TOL


@pytest.mark.slow
@settings(max_examples=6, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1))
def test_random_valid_specs_build_or_are_refused(tmp_path, seed):
    _check(seed, tmp_path)


@pytest.mark.parametrize("seed", REGRESSIONS)
def test_fuzz_regressions(tmp_path, seed):
    _check(seed, tmp_path)


@pytest.mark.parametrize("seed", IN_GRAINS)
def test_blends_no_phase_map_follows_build_in_grains(tmp_path, seed):
    out = run_spec(seed, tmp_path)
    assert out.kind == "built", f"seed {seed}: {out.message}"
    assert out.excursion_mm <= EXCURSION_TOL
