"""The build pipeline: typed stages, FE computed once, a report a designer can read."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

import graded.grading.local as local_mod
import graded.unitcell as unitcell_mod
from graded.build import STAGES, BuildResult, build
from graded.io.writers import WRITERS
from graded.spec import OUTPUT_FILES, parse_spec

SPEC = textwrap.dedent("""\
    body:
      box: {size: [8, 6, 6]}
    cell_size: 2.0
    material: {E: 110, nu: 0.3}
    control_points:
      - position: [1, 3, 3]
        name: left
        cell: {topology: "2x1+1x3+2x5", rho: 0.03}
      - position: [7, 3, 3]
        cell: {topology: "1x1+2x4+1x6", rho: 0.06}
    min_strut_diameter: 0.02
    """)


def test_writers_table_is_the_one_list_of_outputs():
    assert sorted(WRITERS) == sorted(OUTPUT_FILES) and list(WRITERS)[-1] == "report"  # the report lists the rest
    assert parse_spec(SPEC).outputs.files == list(OUTPUT_FILES)  # every output on by default
    assert {w.filename for w in WRITERS.values()} >= {"part.stl", "part.3mf", "part_beams.3mf", "report.json"}


def test_fe_runs_once_per_cell_and_once_per_as_built_point(tmp_path, monkeypatch):
    calls = {"cell": 0, "local": 0}
    cell_fe, local_fe = unitcell_mod.homogenize, local_mod.homogenize

    def count(kind, fn):
        def wrapped(*a, **k):
            calls[kind] += 1
            return fn(*a, **k)
        return wrapped

    monkeypatch.setattr(unitcell_mod, "homogenize", count("cell", cell_fe))
    monkeypatch.setattr(local_mod, "homogenize", count("local", local_fe))
    result = build(parse_spec(SPEC), output_dir=tmp_path / "out")
    # two explicit cells homogenized once each (stage 2), two as-built local cells (measured once in the
    # closed loop, reused by the report and the window check), one local cell per sample of the as-built
    # map; writing the files re-runs none of them
    samples = len(result.as_built_map.points)
    assert samples > 0 and calls == {"cell": 2, "local": 2 + samples}
    assert isinstance(result, BuildResult) and result.solid is not None
    assert set(result.timings) == set(STAGES) | {"total"}


def test_report_gives_each_point_its_cell_stiffness_and_errors_in_the_spec_units(tmp_path):
    spec = parse_spec(SPEC)
    result = build(spec, output_dir=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    assert doc["format_version"] == 2 and doc["units"]["stiffness"] == "E_s" and doc["units"]["E_GPa"] == 110
    left, right = doc["control_points"]
    assert left["name"] == "left" and right["name"] == "point 1" and left["source"] == "explicit"
    assert left["cell"]["topology"] == "2x1+1x3+2x5" and left["cell"]["rho"] == pytest.approx(0.03)
    assert left["cell"]["strut_diameter_mm"] == pytest.approx(result.cells[0].cell.diameter(2.0))
    st = left["stiffness"]
    assert st["constants"][:3] == ["C11", "C12", "C13"] and len(st["designed"]) == len(st["as_built"]) == 21
    assert st["target"] is None
    # the points sit 3 cells apart at zeta 0.5: the lattice there is (almost) the point's own cell
    assert left["errors"]["as_built_vs_cell"]["rel_error"] < 0.02
    assert set(doc["counts"]) >= {"cells", "struts_thin", "newton_failures", "struts_not_meshed"}
    assert all(c["meaning"] for c in doc["counts"].values())
    for key, entry in doc["outputs"].items():  # final paths, not the staging folder
        assert ".tmp-" not in entry["path"] and (tmp_path / "out").as_posix() in entry["path"], key
    assert (tmp_path / "out" / doc["figures"]["summary"]).is_file()
    assert left["surface_png"] in doc["figures"].values()


def test_report_in_gpa_where_the_spec_gave_gpa(tmp_path, monkeypatch):
    import graded.inverse.design as inv
    from graded.unitcell import UnitCell

    cell = UnitCell("1x1+2x4+1x6", rho=0.06)
    C_cell = cell.stiffness()

    class Result:
        rank, refined, source, C_fe = 0, True, "model", C_cell
        nmse = 0.0

    Result.cell = cell
    monkeypatch.setattr(inv, "design", lambda target, **kw: [Result()])
    C_t = 110 * C_cell * 1.05  # GPa, 5 % stiffer than the cell
    text = SPEC.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                        "target: {stiffness: " + str(C_t.tolist()) + ", units: GPa}")
    result = build(parse_spec(text), output_dir=tmp_path / "out")
    doc = json.loads((tmp_path / "out" / "report.json").read_text())
    p = doc["control_points"][1]
    assert doc["units"]["stiffness"] == "GPa" and p["stiffness"]["unit"] == "GPa" and p["source"] == "design"
    np.testing.assert_allclose(p["stiffness"]["target"][0], C_t[0, 0], rtol=1e-5)
    np.testing.assert_allclose(p["stiffness"]["designed"][0], 110 * C_cell[0, 0], rtol=1e-5)
    assert p["errors"]["design_vs_target"]["rel_error"] == pytest.approx(0.05 / 1.05, rel=1e-4)
    assert result.cells[1].design_error == pytest.approx(0.05 / 1.05, rel=1e-4)
