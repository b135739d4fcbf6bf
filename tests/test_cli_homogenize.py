"""``graded homogenize`` in-process."""

import json

import numpy as np
from click.testing import CliRunner

from graded.cli.main import cli


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_octet_json_matches_oracle():
    r = run("homogenize", "1x2", "--rho", "0.002", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    C = np.array(out["C"])
    np.testing.assert_allclose(C[0, 0] / 0.002, 1 / 6, rtol=0.02)
    assert out["diameter_mm"] > 0 and out["unit"] == "normalised by E_s"


def test_table_output_gpa_and_plot(tmp_path):
    png = tmp_path / "surface.png"
    r = run("homogenize", "2x1+1x3+2x5", "--rho", "0.05", "--U", "1.2,0.8,1", "--R1", "0.5,0.3,0.2",
            "--E", "114", "--cell-size", "2", "--plot", str(png))
    assert r.exit_code == 0, r.output
    assert "C (GPa)" in r.output and "diameter" in r.output
    assert png.stat().st_size > 10_000


def test_cell_file_with_override(tmp_path):
    f = tmp_path / "cell.yaml"
    f.write_text("topology: 1x3\nrho: 0.01\nU: [1, 1, 1]\nR1: [0, 0, 0]\n")
    r = run("homogenize", str(f), "--rho", "0.02", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rho"] == 0.02


def test_bad_input_gives_clean_messages():
    cases = [
        (["1x2", "--rho", "0.5"], "rho: 0.5 is outside the allowed range [0.002, 0.1]"),
        (["1x9", "--rho", "0.01"], "topology: unknown topology id 9"),
        (["2x1+", "--rho", "0.01"], "topology: cannot read"),
        (["1x2", "--rho", "0.01", "--U", "1,-1,1"], "U: "),
        (["1x2"], "rho: missing"),
        (["1x2", "--rho", "0.01", "--U", "1,2"], "expected 3 numbers"),
    ]
    for args, msg in cases:
        r = CliRunner().invoke(cli, ["homogenize", *args])
        assert r.exit_code == 2, (args, r.output)
        assert msg in r.output, (args, r.output)
        assert "Traceback" not in r.output
