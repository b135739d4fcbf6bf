"""The as-built map over the part (graded.grading.asbuilt_map)."""

from __future__ import annotations

import numpy as np
import pytest

from graded.build import build
from graded.fem.voxel import isotropic_stiffness
from graded.grading.asbuilt_map import directional_moduli, map_points
from graded.spec import parse_spec

#: Round-off of one periodic beam FE solve relative to the stiffness (direct solver).
FE_ROUNDOFF = 1e-9


def _spec(points, **extra):
    return parse_spec({"body": {"box": {"size": [12, 8, 8]}}, "cell_size": 2.0, "control_points": points,
                       "outputs": {"files": ["report"]}, **extra})


def test_directional_moduli_of_isotropic_and_empty_stiffness():
    C = np.stack([isotropic_stiffness(2.5, 0.3), np.zeros((6, 6))])
    np.testing.assert_allclose(directional_moduli(C), [[2.5, 2.5, 2.5], [0, 0, 0]], rtol=1e-12)


def test_uniform_lattice_maps_to_its_own_cell_everywhere(tmp_path):
    cell = {"topology": "1x2+1x3+1x6", "rho": 0.05, "U": [1.2, 1, 0.9], "R1": [0.4, 0.3, 0.5]}
    result = build(_spec([{"position": [6, 4, 4], "cell": cell}]), output_dir=tmp_path / "out")
    m = result.as_built_map
    assert len(m.points) == 6 * 4 * 4 and not m.empty.any()  # every built cell centre of the box
    assert m.error.max() < FE_ROUNDOFF
    own = result.cells[0].C_cell
    np.testing.assert_allclose(m.moduli, np.broadcast_to(directional_moduli(own), m.moduli.shape), rtol=1e-8)
    doc = (tmp_path / "out" / "report.json").read_text()
    assert '"as_built_map"' in doc and (tmp_path / "out" / "as_built_map.png").stat().st_size > 10_000


def test_two_points_match_their_cells_at_the_ends_and_are_counted_between(tmp_path):
    a = {"topology": "1x1+1x3+1x3", "rho": 0.06}
    b = {"topology": "1x2+1x2+1x2", "rho": 0.05}
    result = build(_spec([{"position": [1, 4, 4], "cell": a}, {"position": [11, 4, 4], "cell": b}]))
    m = result.as_built_map
    ends = np.isclose(m.points[:, 0], 1) | np.isclose(m.points[:, 0], 11)
    assert m.error[ends].max() < 1e-6  # the interpolating blend gives each point its own cell
    summary = m.summary()
    assert summary["samples"] == len(m.points) and summary["samples_empty"] == int(m.empty.sum())
    assert summary["error_median"] <= summary["error_p90"] <= summary["error_max"]


def test_map_points_coarsen_to_the_sample_cap():
    result = build(_spec([{"position": [6, 4, 4], "cell": {"topology": "1x2+1x3+1x6", "rho": 0.05}}]))
    x, h = map_points(result.grading, max_samples=20)
    assert h == pytest.approx(4.0) and len(x) == 3 * 2 * 2  # 96 cells > 20: spacing doubled once


def test_thin_struts_between_points_are_located_and_empty_cells_warned(tmp_path):
    import json
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "graded_bar.yaml"
    with pytest.warns(UserWarning, match=r"4 of 32 cells of the part hold no printable strut \(between \[22.5, 2.5"):
        result = build(example, output_dir=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    thin = doc["counts"]["struts_thin"]
    assert thin["value"] == result.lattice.stats.struts_thin > 0
    lo, hi = np.array(thin["where"]["bounds_mm"])
    assert 5 < lo[0] and hi[0] < 35  # in the blend between x = 2.5 and x = 37.5, not at the points
    assert thin["where"]["nearest_control_point_cells"] > 1.0  # never at a point's own cell
    assert result.as_built_map.empty.sum() == doc["as_built_map"]["samples_empty"] == 4
