"""Graded spinodoid parts through the spec and `graded build` (graded.spinodoid.part)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from graded.cli.main import cli
from graded.grading.pipeline import make_body
from graded.mesh.facts import mesh_facts
from graded.spec import parse_spec
from graded.spinodoid.part import build_spinodoid

POINTS = [{"position": [2, 4, 4], "name": "iso", "spinodoid": {"rho": 0.5, "theta": [90, 90, 90]}},
          {"position": [10, 4, 4], "name": "columnar", "spinodoid": {"rho": 0.4, "theta": [0, 30, 30]}}]
#: As-built vs own cell at a control point: the RBF blend (zeta 2 per squared cell) leaves the
#: other point's field a weight of e^-8 there; measured 1.0 % and 0.8 % at 32^3.
AS_BUILT_TOL = 0.03


def _spec(**extra):
    return parse_spec({"body": {"box": {"size": [12, 8, 8]}}, "cell_size": 4.0, "control_points": POINTS,
                       "zeta": 2.0, "voxel_size": 0.2, **extra})


def test_spinodoid_spec_builds_one_watertight_body_inside_its_box_with_as_built_figures(tmp_path):
    import yaml

    spec = _spec()
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec.model_dump(exclude_none=True)))
    res = CliRunner().invoke(cli, ["build", str(tmp_path / "spec.yaml"), "-o", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    assert "spinodoid part:" in res.output and "as built vs own cell" in res.output
    out = tmp_path / "out"
    part = trimesh.load(out / "part.stl")
    assert part.is_watertight and mesh_facts(part).bodies == 1
    assert make_body(spec).excursion(part.vertices) <= 1e-5  # the box clips in the level function, exactly
    doc = json.loads((out / "report.json").read_text())
    assert doc["family"] == "spinodoid" and doc["units"]["stiffness"] == "GPa"
    for entry in doc["control_points"]:
        assert entry["errors"]["as_built_vs_cell"]["rel_error"] < AS_BUILT_TOL
        assert 0 < entry["stiffness"]["designed"][0] < 114  # GPa: below the solid's C11 (E_s = 114 GPa)
    # the strut-graph files do not exist for a spinodoid part; the printable ones do
    names = {p.name for p in out.iterdir()}
    assert {"part.stl", "part.3mf", "report.json", "surfaces_iso.png"} <= names
    assert not names & {"graph.json", "graph.vtu", "graph.csv", "part_beams.3mf"}


def test_same_spec_same_cells_and_the_columnar_cell_is_anisotropic():
    spec = _spec()
    body = make_body(spec)
    a = build_spinodoid(spec, body, mesh=False, resolution=16)
    b = build_spinodoid(spec, body, mesh=False, resolution=16)
    for p, q in zip(a.points, b.points):
        np.testing.assert_array_equal(p.C_cell, q.C_cell)  # waves seeded by (seed, point)
    # waves in cones about axes 2 and 3 only: the field hardly varies along axis 1, so the solid
    # forms columns along it, far stiffer along axis 1 than across
    C = a.points[1].C_cell
    assert C[0, 0] > 3 * C[1, 1] and C[0, 0] > 3 * C[2, 2]


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["control_points"][1].update(spinodoid=None, cell={"topology": "1x1", "rho": 0.05}),
     "Error: spec: control_points[1] is a truss cell but control_points[0] a spinodoid cell; one part is one family"),
    (lambda d: d["control_points"][0]["spinodoid"].update(rho=0.2),
     "Error: control_points[0].spinodoid.rho: 0.2 is outside the spinodoid design space [0.3, 1]"),
    (lambda d: d["control_points"][0]["spinodoid"].update(theta=[10, 0, 0]),
     "Error: control_points[0].spinodoid.theta: [10.0, 0.0, 0.0] has an angle in (0, 15) degrees"),
])
def test_bad_spinodoid_specs_are_refused_in_one_line(tmp_path, edit, message):
    import copy

    import yaml

    data = {"body": {"box": {"size": [12, 8, 8]}}, "cell_size": 4.0, "control_points": copy.deepcopy(POINTS)}
    edit(data)
    data["control_points"] = [{k: v for k, v in cp.items() if v is not None} for cp in data["control_points"]]
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(data))
    res = CliRunner().invoke(cli, ["build", str(tmp_path / "spec.yaml"), "--outdir", str(tmp_path / "out")])
    assert res.exit_code == 2, res.output
    assert res.output.strip().splitlines()[-1].startswith(message), res.output


@pytest.mark.parametrize("family, point, message", [
    ("truss", {"spinodoid": {"rho": 0.5, "theta": [90, 90, 90]}},
     "control_points[0] is a spinodoid cell but the spec says family: truss"),
    ("spinodoid", {"cell": {"topology": "1x1", "rho": 0.05}},
     "control_points[0] is a truss cell but the spec says family: spinodoid"),
])
def test_family_field_must_match_the_explicit_cells(family, point, message):
    from graded.validation import ValidationError

    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_spec({"family": family, "body": {"box": {"size": [12, 8, 8]}}, "cell_size": 4.0,
                    "control_points": [{"position": [4, 4, 4], **point}]})


def test_a_target_at_a_spinodoid_point_is_designed_and_reported():
    from graded.elastic import from_9, to_21
    from graded.inverse.spinodoid.dataset import shipped_spinodoid_test_set
    from graded.spinodoid.report import build_spinodoid_report

    held_out = to_21(from_9(shipped_spinodoid_test_set().C9[20]))
    spec = parse_spec({"family": "spinodoid", "body": {"box": {"size": [12, 8, 8]}}, "cell_size": 4.0, "zeta": 2.0,
                       "control_points": [POINTS[0], {"position": [10, 4, 4], "name": "designed",
                                                      "target": {"stiffness": held_out.tolist(),
                                                                 "units": "normalized"}}]})
    assert spec.family == "spinodoid"
    res = build_spinodoid(spec, make_body(spec), mesh=False)
    p = res.points[1]
    assert p.C_target is not None and p.wave_seed is not None
    # a held-out FE cell, designed and rebuilt at nu = 0.3: model error plus realisation scatter
    assert p.design_error < 0.15
    doc = build_spinodoid_report(res)
    entry = doc["control_points"][1]
    assert entry["source"] == "designed"
    assert entry["errors"]["design_vs_target"]["rel_error"] == pytest.approx(p.design_error)
    # the design's expected stiffness (mean of its verified cells) and the cell scatter are reported
    assert 0 < p.scatter < 0.3 and p.design_error_expected < 0.15
    assert entry["errors"]["design_mean_vs_target"]["rel_error"] == pytest.approx(p.design_error_expected)
    assert entry["errors"]["cell_scatter"] == pytest.approx(p.scatter)
    assert doc["control_points"][0]["source"] == "explicit"


def test_features_thinner_than_the_printer_minimum_are_measured_and_warned():
    from graded.spinodoid.report import build_spinodoid_report

    # cells of 4 mm, wavelength 0.8 mm: ligaments of about 0.3-0.5 mm at rho 0.4-0.5
    fine = build_spinodoid(_spec(min_strut_diameter=0.1), make_body(_spec()), mesh=False)
    assert all(p.thin_fraction is not None and p.thin_fraction < 0.01 for p in fine.points)
    with pytest.warns(UserWarning, match=r"iso: \d+ % of the spinodoid's solid is thinner than "
                                         r"min_strut_diameter 0.9 mm"):
        coarse = build_spinodoid(_spec(min_strut_diameter=0.9), make_body(_spec()), mesh=False)
    assert all(p.thin_fraction > 0.3 for p in coarse.points)
    doc = build_spinodoid_report(coarse)
    assert doc["control_points"][0]["cell"]["thinner_than_printer_minimum"] == pytest.approx(
        coarse.points[0].thin_fraction)
    # measured because the spec sets a minimum (None without one)
    assert build_spinodoid_report(fine)["control_points"][0]["cell"]["thinner_than_printer_minimum"] is not None
