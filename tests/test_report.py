"""Build report: JSON numbers (NMSE, facts), figures written, graph render for big meshes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from graded.elastic import from_21, to_21
from graded.mesh import bcc_graph, mesh_graph
from graded.report import write_report
from graded.validation import ValidationError

PNG = b"\x89PNG\r\n\x1a\n"


def _ortho(scale=1.0):
    C = np.diag([3.0, 2.0, 1.5, 0.5, 0.6, 0.7]) * 1e-2
    C[0, 1] = C[1, 0] = 1.0e-2
    C[0, 2] = C[2, 0] = 0.8e-2
    C[1, 2] = C[2, 1] = 0.7e-2
    return C * scale


@pytest.fixture(scope="module")
def part():
    g = bcc_graph((1, 1, 2))
    return g, mesh_graph(g)


def _fake_plot(calls):
    def plot(stiffnesses, path, title=None):
        calls.append((sorted(stiffnesses), title))
        path.write_bytes(PNG + b"fake")
        return path

    return plot


def test_report_json_numbers(tmp_path, part):
    g, res = part
    calls = []
    stl = tmp_path / "part.stl"
    stl.write_bytes(b"x" * 123)
    rep = write_report(
        tmp_path / "report",
        g,
        mesh=res.mesh,
        facts=res.facts,
        targets={"proximal": _ortho(), "distal": to_21(_ortho(2.0))},
        as_built={"proximal": _ortho(1.05), "distal": _ortho(1.8)},
        positions={"proximal": [0, 0, 0], "distal": [2, 2, 4]},
        outputs={"stl": stl},
        info={"material": "Ti-6Al-4V"},
        surface_plot=_fake_plot(calls),
    )
    doc = json.loads(rep.json_path.read_text())
    assert doc["format"] == "graded-build-report"
    pts = {p["name"]: p for p in doc["control_points"]}
    nonzero = np.count_nonzero(_ortho())  # 12 non-zero Voigt entries
    # NMSE (main Eq. 8) of a uniformly scaled tensor: (number of non-zero entries) * (1 - s)^2
    assert pts["proximal"]["nmse"] == pytest.approx(nonzero * 0.05**2, rel=1e-12)
    assert pts["proximal"]["rel_error"] == pytest.approx(0.05, rel=1e-12)
    assert pts["distal"]["nmse"] == pytest.approx(nonzero * 0.1**2, rel=1e-12)
    np.testing.assert_allclose(from_21(pts["distal"]["C_target_21"]), _ortho(2.0))
    assert pts["distal"]["position_mm"] == [2.0, 2.0, 4.0]
    assert doc["mesh"]["volume"] == pytest.approx(res.facts.volume)
    assert doc["mesh"]["watertight"] is True and doc["mesh"]["bodies"] == 1
    assert doc["mesh"]["volume_over_strut_volume"] == pytest.approx(res.facts.volume / g.strut_volume)
    assert doc["graph"]["struts"] == g.n_struts
    assert doc["graph"]["diameter_mm"]["min"] == pytest.approx(g.diameters.min())
    assert doc["outputs"]["stl"]["bytes"] == 123
    assert doc["info"]["material"] == "Ti-6Al-4V"
    assert len(calls) == 2 and calls[0][0] == ["as built", "target"]
    for key in ("render", "summary", "surfaces_proximal", "surfaces_distal"):
        assert rep.files[key].read_bytes().startswith(PNG)
    assert doc["figures"]["render"] == "render.png"


def test_report_uses_graph_render_for_big_meshes_and_default_surface_plot(tmp_path, part):
    g, res = part
    rep = write_report(
        tmp_path,
        g,
        mesh=res.mesh,
        targets={"p": _ortho()},
        as_built={"p": _ortho(0.9)},
        max_render_triangles=10,
    )
    assert rep.files["render"].read_bytes().startswith(PNG)
    assert rep.files["surfaces_p"].read_bytes().startswith(PNG)
    assert rep.data["mesh"]["triangles"] == len(res.mesh.faces)  # facts computed from the mesh


def test_report_without_mesh_or_points_json_only(tmp_path, part):
    g, _ = part
    rep = write_report(tmp_path, g, figures=False)
    assert rep.data["mesh"] is None and rep.data["control_points"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_report_rejects_bad_stiffness(tmp_path, part):
    g, _ = part
    bad = _ortho()
    bad[0, 0] = -1.0
    with pytest.raises(ValidationError, match="targets"):
        write_report(tmp_path, g, targets={"p": bad}, as_built={"p": _ortho()}, figures=False)
    with pytest.raises(ValidationError, match="as_built"):
        write_report(tmp_path, g, targets={"p": _ortho()}, as_built={"p": np.ones(5)}, figures=False)


def test_report_with_designed_cells(tmp_path, part):
    g, res = part
    calls = []
    rep = write_report(
        tmp_path,
        g,
        facts=res.facts,
        targets={"t": _ortho()},
        cells={"t": _ortho(1.1), "c": _ortho(2.0)},
        as_built={"t": _ortho(1.2), "c": _ortho(1.9)},
        surface_plot=_fake_plot(calls),
    )
    pts = {p["name"]: p for p in rep.data["control_points"]}
    n = np.count_nonzero(_ortho())
    assert pts["t"]["nmse"] == pytest.approx(n * 0.2**2)
    assert pts["t"]["nmse_cell"] == pytest.approx(n * (0.1 / 1.1) ** 2)
    assert pts["t"]["nmse_cell_vs_target"] == pytest.approx(n * 0.1**2)
    # a point with only a cell compares the as-built stiffness with that cell
    assert pts["c"]["target_is_cell"] is True and pts["c"]["nmse"] == pytest.approx(n * 0.05**2)
    assert sorted(calls[0][0]) == ["as built", "designed cell", "target"]
    assert sorted(calls[1][0]) == ["as built", "cell"]
