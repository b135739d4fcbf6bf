"""Every class of bad input is refused before any work: exit 2, one line naming the field and the fix.

Each case edits a valid spec and checks the exact start of the message, that it is one
line with no traceback and no usage banner, and that nothing was written.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import trimesh
from click.testing import CliRunner

from graded.cli.main import cli

GOOD = textwrap.dedent("""\
    body:
      box: {size: [8, 6, 6]}
    cell_size: 2.0
    control_points:
      - position: [1, 3, 3]
        cell: {topology: "2x1+1x3+2x5", rho: 0.03}
      - position: [7, 3, 3]
        cell: {topology: "1x1+2x4+1x6", rho: 0.06}
    min_strut_diameter: 0.02
    outputs: {directory: result}
    """)

BOMB = "".join(f"{c}: &{c} [" + ",".join([f"*{p}"] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi"))
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + BOMB

EYE = str(np.eye(6).tolist())
ASYM = str((np.eye(6) + np.triu(np.ones((6, 6)), 1) * 0.3).tolist())
NOT_PD = str((np.eye(6) * np.array([1, 1, 1, 1, 1, -1])).tolist())

CASES = {
    "bad YAML": (GOOD.replace("cell_size: 2.0", "cell_size: [2.0"), "Error: spec: is not valid YAML"),
    "alias bomb": (BOMB, "Error: spec: expands to"),
    "duplicate key": (GOOD + "cell_size: 3\n", "Error: spec: is not valid YAML (line 11): duplicate key 'cell_size'"),
    "not a mapping": ("- 1\n- 2\n", "Error: spec: must be a mapping of fields"),
    "unknown field": (GOOD + "zetta: 1\n", "Error: zetta: unknown field (line 11)"),
    "wrong type": (GOOD.replace("cell_size: 2.0", "cell_size: big"),
                   "Error: cell_size: Input should be a valid number"),
    "box as a list": (GOOD.replace("box: {size: [8, 6, 6]}", "box: [8, 6, 6]"),
                      "Error: body.box: must be a mapping of fields, got list (line 2); write box: {size: [x, y, z]"),
    "missing field": (GOOD.replace("cell_size: 2.0\n", ""), "Error: cell_size: is required"),
    "zero cell size": (GOOD.replace("cell_size: 2.0", "cell_size: 0"),
                       "Error: cell_size: Input should be greater than 0"),
    "infinite cell size": (GOOD.replace("cell_size: 2.0", "cell_size: .inf"),
                           "Error: cell_size: Input should be a finite"),
    "body-sized cell": (GOOD.replace("cell_size: 2.0", "cell_size: 7"),
                        "Error: cell_size: 7 mm (built cell edge 7 mm) is not smaller than the body's smallest extent"),
    "too large for the machine": (GOOD.replace("size: [8, 6, 6]", "size: [200, 200, 200]")
                                  .replace("cell_size: 2.0", "cell_size: 0.2"), "Error: cell_size: 0.2 mm gives about"),
    "point outside": (GOOD.replace("position: [7, 3, 3]", "position: [9, 3, 3]"),
                      "Error: control_points[1].position: (9, 3, 3) mm is outside the body"),
    "coincident points": (GOOD.replace("position: [7, 3, 3]", "position: [1, 3, 3]"),
                          "Error: control_points[1].position: is the position of control_points[0]"),
    "unknown topology": (GOOD.replace("1x1+2x4+1x6", "1x1+2x9+1x6"), "Error: control_points[1].cell.topology"),
    "rho out of range": (GOOD.replace("rho: 0.06", "rho: 0.5"),
                         "Error: control_points[1].cell.rho: 0.5 is outside the allowed range [0.002, 0.1]"),
    "NaN stiffness": (GOOD.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                                   "target: {stiffness: " + EYE.replace("1.0", ".nan", 1) + ", units: GPa}"),
                      "Error: control_points[1].target.stiffness: contains NaN or infinity"),
    "non-symmetric stiffness": (GOOD.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                                             "target: {stiffness: " + ASYM + ", units: GPa}"),
                                "Error: control_points[1].target.stiffness: is not symmetric"),
    "non-PD stiffness": (GOOD.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                                      "target: {stiffness: " + NOT_PD + ", units: GPa}"),
                         "Error: control_points[1].target.stiffness: is not positive definite"),
    "wrong number of constants": (GOOD.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                                               "target: {stiffness: [1, 2, 3, 4], units: GPa}"),
                                  "Error: control_points[1].target.stiffness: has shape (4,)"),
    "bad units": (GOOD.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}',
                               "target: {stiffness: " + EYE + ", units: MPa}"),
                  "Error: control_points[1].target.units"),
    "negative printer minimum": (GOOD.replace("min_strut_diameter: 0.02", "min_strut_diameter: -1"),
                                 "Error: min_strut_diameter: Input should be greater than or equal to 0"),
    "skin thinner than the printer minimum": (GOOD + "skin: {thickness: 0.01}\n",
                                              "Error: skin.thickness: 0.01 mm is thinner than min_strut_diameter"),
    "skin filling the body": (GOOD + "skin: {thickness: 3}\n",
                              "Error: skin.thickness: 3 mm on both sides fills the body's smallest extent"),
    "missing body file": (GOOD.replace("box: {size: [8, 6, 6]}", "file: nothere.stl"), "Error: body.file:"),
    "open STL": (GOOD.replace("box: {size: [8, 6, 6]}", "file: open.stl"), "Error: body.file: open.stl"),
    "corrupt 3MF": (GOOD.replace("box: {size: [8, 6, 6]}", "file: broken.3mf"),
                    "Error: body.file: cannot read broken.3mf"),
}


@pytest.fixture
def folder(tmp_path):
    box = trimesh.creation.box(bounds=[[0, 0, 0], [8, 6, 6]])
    opened = trimesh.Trimesh(box.vertices, box.faces[:-2])
    opened.export(tmp_path / "open.stl")
    (tmp_path / "broken.3mf").write_bytes(b"PK\x03\x04 not really a zip")
    return tmp_path


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_spec_is_refused_in_one_line(folder, case):
    text, start = CASES[case]
    spec = folder / "spec.yaml"
    spec.write_text(text)
    res = CliRunner().invoke(cli, ["build", str(spec), "--no-progress"])
    assert res.exit_code == 2, res.output
    out = res.output.strip()
    assert out.startswith(start), out
    assert len(out.splitlines()) == 1 and "Traceback" not in out and "Usage:" not in out
    assert ";" in out  # the fix follows the problem
    assert not (folder / "result").exists()  # nothing written
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp-")]


def test_output_path_refusals(folder):
    spec = folder / "spec.yaml"
    spec.write_text(GOOD)
    (folder / "afile").write_text("x")
    res = CliRunner().invoke(cli, ["build", str(spec), "-o", str(folder / "afile")])
    assert res.exit_code == 2 and res.output.startswith("Error: --outdir:") and "is a file" in res.output
    res = CliRunner().invoke(cli, ["build", str(spec), "-o", str(folder)])  # would swallow the spec
    assert res.exit_code == 2 and "contains the input spec.yaml" in res.output
    assert spec.read_text() == GOOD


def test_homogenize_refuses_bad_poisson_ratio_in_cli_words():
    for nu in ("nan", "0.5", "-2"):
        res = CliRunner().invoke(cli, ["homogenize", "1x2", "--rho", "0.01", "--nu", nu])
        assert res.exit_code == 2 and res.output.startswith("Error: --nu:"), res.output
    res = CliRunner().invoke(cli, ["homogenize", "1x2", "--rho", "0.5"])
    assert res.exit_code == 2 and "--no-strict" in res.output and "strict=False" not in res.output


def test_homogenize_prints_roundoff_as_zero():
    res = CliRunner().invoke(cli, ["homogenize", "1x2", "--rho", "0.01", "--json"])
    import json

    C = np.array(json.loads(res.output)["C"])
    assert np.count_nonzero(C[:3, 3:]) == 0 and np.count_nonzero(C[3:, 3:] - np.diag(np.diag(C[3:, 3:]))) == 0


def test_unset_printer_minimum_with_unprintable_struts_is_warned(folder):
    spec = folder / "spec.yaml"
    spec.write_text(GOOD.replace("min_strut_diameter: 0.02\n", "").replace("rho: 0.03", "rho: 0.002"))
    res = CliRunner().invoke(cli, ["build", str(spec), "--outdir", str(folder / "out")])
    assert res.exit_code == 0, res.output
    warned = [line for line in res.output.splitlines() if line.startswith("Warning: the thinnest strut")]
    assert len(warned) == 1 and "min_strut_diameter is not set" in warned[0]


def test_target_whose_designs_are_all_unprintable_is_refused_with_the_cell_size_that_prints(folder):
    soft = ("[0.163, 0.075, 0.068, -0.008, -0.016, 0.01, 0.35, 0.126, -0.018, -0.005, 0.018, 0.606, 0.029, "
            "-0.004, -0.032, 0.148, -0.023, 0.043, 0.093, -0.014, 0.11]")  # bovine specimen B, GPa
    text = GOOD.replace('cell: {topology: "1x1+2x4+1x6", rho: 0.06}', f"target: {{stiffness: {soft}, units: GPa}}")
    text = text.replace("min_strut_diameter: 0.02", "min_strut_diameter: 0.3")
    text += "material: {E: 114, nu: 0.3}\ndesign: {n_draws: 500, top_k: 4, refine: false, library: 0}\n"
    spec = folder / "spec.yaml"
    spec.write_text(text.replace('cell: {topology: "2x1+1x3+2x5", rho: 0.03}', 'cell: {topology: "2x1", rho: 0.1}'))
    res = CliRunner().invoke(cli, ["build", str(spec), "--outdir", str(folder / "out")])
    assert res.exit_code == 2, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("Error: control_points[1].target: none of the 4 designs for it prints: their struts are "
                           "thinner than min_strut_diameter = 0.3 mm at cell_size 2 mm"), last
    assert "use cell_size >= " in last and not (folder / "out").exists()
