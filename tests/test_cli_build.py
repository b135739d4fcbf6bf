"""``graded build``: files written atomically, clear errors, nothing written on failure."""

import json
import textwrap

import meshio
import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

import graded.report
from graded.build import build
from graded.cli.main import cli
from graded.io import read_graph_csv, read_graph_json

SPEC = textwrap.dedent(
    """\
    body:
      box: {size: [8, 6, 6]}
    cell_size: 2.0
    control_points:
      - position: [0, 3, 3]
        cell: {topology: "2x1+1x3+2x5", rho: 0.03}
      - position: [8, 3, 3]
        cell: {topology: "1x1+2x4+1x6", rho: 0.06}
    zeta: 0.5
    min_strut_diameter: 0.02
    outputs: {directory: result}
    """
)


@pytest.fixture
def spec_file(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC)
    return p


def test_build_reports_every_file_it_writes(spec_file, tmp_path):
    """Progress names each output file and each figure of the report before writing it (none
    is a silent wait), on a bar that never goes back."""
    calls = []
    res = build(spec_file, progress=lambda d, t, m: calls.append((d, t, m)), output_dir=tmp_path / "out")
    messages = [m for _, _, m in calls]
    for name in [p.name for p in res.files.values()]:
        assert f"writing {name}" in messages, name
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and all(t == calls[0][1] for _, t, _ in calls)


def test_build_writes_every_output_file(spec_file, tmp_path):
    res = CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress", "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    out = tmp_path / "result"
    names = sorted(p.name for p in out.iterdir())
    for want in ("graph.csv", "graph.json", "graph.png", "graph.vtu", "part.stl", "part.3mf",
                 "part_beams.3mf", "report.json", "render.png", "summary.png"):
        assert want in names, names
    solid = trimesh.load(out / "part.stl")
    assert solid.is_watertight and solid.is_volume and solid.volume > 0
    g = read_graph_json(out / "graph.json")
    assert g.n_struts == summary["struts"] and g.n_nodes == summary["nodes"]
    vtu = meshio.read(out / "graph.vtu")
    assert np.allclose(vtu.cell_data["diameter"][0], g.diameters)
    assert np.allclose(read_graph_csv(out / "graph.csv").diameters, g.diameters)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]  # staging removed
    # the Python entry returns the same graph
    again = build(spec_file).graph
    assert again.n_struts == g.n_struts and np.allclose(again.nodes, g.nodes)


def test_outdir_option_and_plain_output(spec_file, tmp_path):
    res = CliRunner().invoke(cli, ["build", str(spec_file), "-o", str(tmp_path / "elsewhere")])  # with progress
    assert res.exit_code == 0, res.output
    assert "struts" in res.output and (tmp_path / "elsewhere" / "graph.vtu").is_file()
    (tmp_path / "afile").write_text("x")
    spec_file.write_text(SPEC.replace("directory: result", "directory: afile"))
    res = CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress"])
    assert res.exit_code == 2 and "outputs.directory" in res.output and "is a file, not a folder" in res.output
    assert "Usage:" not in res.output and len(res.output.strip().splitlines()) == 1  # one line, no banner
    res = CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress", "-o", str(tmp_path / "afile")])
    assert res.exit_code == 2 and res.output.startswith("Error: --outdir:")


def test_failure_halfway_writes_nothing(spec_file, tmp_path, monkeypatch):
    out = tmp_path / "result"
    assert CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*args, **kwargs):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(graded.report, "render_graph", broken)  # the last file written
    res = CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress"])
    assert res.exit_code == 1 and "renderer crashed" in res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous build, byte for byte
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_bad_spec_exits_2_naming_the_field(spec_file):
    spec_file.write_text(SPEC.replace("zeta: 0.5", "zeta: 0.5\nzetta: 1"))
    res = CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress"])
    assert res.exit_code == 2
    assert "zetta: unknown field (line 10)" in res.output


def test_missing_spec_file(tmp_path):
    res = CliRunner().invoke(cli, ["build", str(tmp_path / "nope.yaml")])
    assert res.exit_code == 2 and "does not exist" in res.output


def test_target_control_point_goes_through_the_inverse_design_hook(spec_file, monkeypatch):
    # the hook imports graded.inverse.design lazily; replace it by a stub that returns a
    # known cell so this test does not depend on the networks
    import graded.inverse.design as inv
    from graded.unitcell import UnitCell

    calls = {}

    class Result:
        nmse = 0.01
        rank = 0
        refined = False
        source = "model"
        C_fe = None
        cell = UnitCell("1x1+2x4+1x6", rho=0.06)

    def fake_design(target, **kw):
        calls.update(kw, target=target)
        return [Result()]

    monkeypatch.setattr(inv, "design", fake_design)
    C = (np.eye(6) * 5.0).tolist()
    spec_file.write_text(SPEC.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                                      f"target: {{stiffness: {C}, units: GPa}}"))
    g = build(spec_file).graph
    assert calls["E"] == 114.0 and calls["units"] == "GPa" and np.shape(calls["target"]) == (6, 6)
    assert g.meta["control_points"][1]["cell"]["topology"] == "1x1+2x4+1x6"


@pytest.mark.parametrize("field, exit_code, text", [
    ("target", 2, "control_points[1].target: is not positive definite"),
    ("weights inverse.json", 1, "control_points[1].target: inverse design is not available"),
])
def test_inverse_design_errors_are_attributed(spec_file, monkeypatch, field, exit_code, text):
    import graded.inverse.design as inv
    from graded.validation import ValidationError

    def failing_design(target, **kw):
        raise ValidationError(field, "is not positive definite" if field == "target" else "not found")

    monkeypatch.setattr(inv, "design", failing_design)
    spec_file.write_text(SPEC.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                                      "target: {stiffness: " + str((np.eye(6)).tolist()) + ", units: normalized}"))
    res = CliRunner().invoke(cli, ["build", str(spec_file), "--no-progress"])
    assert res.exit_code == exit_code, res.output
    assert text in res.output
