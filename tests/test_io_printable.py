"""write_printable: one call writes the part files, graph files and report; failures write nothing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh

from graded.io import read_3mf, write_printable
from graded.mesh import bcc_graph
from graded.validation import ValidationError


def _fake_plot(stiffnesses, path, title=None):
    path.write_bytes(b"\x89PNG\r\n\x1a\nfake")
    return path


def test_write_printable_all_outputs(tmp_path):
    g = bcc_graph((2, 1, 1), d_min=0.3, d_max=0.4)
    C = np.diag([2.0, 2.0, 2.0, 1.0, 1.0, 1.0]) * 1e-2
    out = write_printable(
        tmp_path / "build",
        g,
        min_diameter=0.3,
        targets={"p": C},
        as_built={"p": C * 1.02},
        info={"spec": "test"},
        surface_plot=_fake_plot,
    )
    names = sorted(p.name for p in (tmp_path / "build").iterdir())
    for want in ("part.stl", "part.3mf", "part_beams.3mf", "graph.vtu", "graph.json", "graph.csv",
                 "report.json", "render.png", "summary.png", "surfaces_p.png"):
        assert want in names
    assert not [n for n in names if n.startswith(".tmp-")]
    stl = trimesh.load(out.files["stl"], file_type="stl")
    assert stl.is_watertight and stl.is_volume and stl.body_count == 1
    assert stl.volume == pytest.approx(out.solid.facts.volume, rel=1e-6)
    _, objs, build = read_3mf(out.files["3mf_beams"])
    assert len(objs[1].beams) == g.n_struts
    doc = json.loads(out.files["report"].read_text())
    assert doc["mesh"]["min_strut_diameter"] >= 0.3
    assert doc["info"]["mesh_stats"]["method"] == "joints"
    assert doc["outputs"]["stl"]["bytes"] == out.files["stl"].stat().st_size


def test_failed_meshing_writes_nothing(tmp_path):
    g = bcc_graph((1, 1, 1), d_min=0.2, d_max=0.4)
    with pytest.raises(ValidationError, match="diameters"):
        write_printable(tmp_path / "build", g, min_diameter=0.3, report=False)
    assert not (tmp_path / "build").exists()


def test_dropped_struts_leave_the_beam_lattice_too(tmp_path):
    g = bcc_graph((2, 1, 1), d_min=0.2, d_max=0.4)
    out = write_printable(tmp_path, g, min_diameter=0.3, thin="drop", report=False, graph_files=False)
    _, objs, _ = read_3mf(out.files["3mf_beams"])
    assert len(objs[1].beams) == len(out.solid.kept_struts) < g.n_struts
    assert objs[1].beam_radii.min() >= 0.15 - 1e-6


def test_write_solid_outputs_reads_control_points_from_meta(tmp_path):
    from graded.elastic import to_21
    from graded.io import write_solid_outputs

    g = bcc_graph((2, 1, 1), d_min=0.3, d_max=0.4)
    C = np.diag([2.0, 2.0, 2.0, 1.0, 1.0, 1.0]) * 1e-2
    g.meta = {
        "min_strut_diameter_mm": 0.3,
        "control_points": [
            {"position": [0, 0, 0], "C_target_21": to_21(C).tolist(), "C_asbuilt_21": to_21(C * 1.1).tolist()},
            {"position": [4, 0, 0], "C_target_21": to_21(C).tolist()},
        ],
    }
    written = write_solid_outputs(tmp_path, g, ["stl", "report"])
    assert set(written) >= {"stl", "report", "render", "summary", "surfaces_point 0"}
    assert not (tmp_path / "part.3mf").exists() and not (tmp_path / "part_beams.3mf").exists()
    doc = json.loads(written["report"].read_text())
    pts = doc["control_points"]
    assert pts[0]["nmse"] == pytest.approx(6 * 0.1**2)
    assert "nmse" not in pts[1] and pts[1]["position_mm"] == [4.0, 0.0, 0.0]
    assert doc["info"]["build"]["min_strut_diameter_mm"] == 0.3
    with pytest.raises(ValidationError, match="outputs.files"):
        write_solid_outputs(tmp_path, g, ["obj"])
