"""Whole-part simulation: load cases, lattice vs continuum, outputs and the CLI (graded.simulate)."""

import json

import meshio
import numpy as np
import pytest
from click.testing import CliRunner

from graded import ValidationError
from graded.cli.main import cli
from graded.simulate import simulate, write_simulation
from graded.spec import parse_spec
from graded.unitcell import UnitCell

E_TI = 114_000.0  # MPa
#: Force and moment balance of a solved case: round-off of the sparse solves.
BALANCE = 1e-8


def rollers():
    return [{"face": "z-", "components": ["z"]}, {"face": "x-", "components": ["x"]},
            {"face": "y-", "components": ["y"]}]


def block(n, topology="1x2", rho=0.05, cases=None, cell=2.0):
    L = cell * n
    return {"body": {"box": {"size": [L, L, L]}}, "cell_size": cell,
            "control_points": [{"position": [1.0, 1.0, 1.0], "cell": {"topology": topology, "rho": rho}}],
            "loads": {"yield_strength": 880, "cases": cases or [
                {"name": "uniaxial", "fixed": rollers(),
                 "loaded": [{"face": "z+", "displacement": [None, None, -0.01 * L]}]}]}}


def homogenized_E33(topology, rho=0.05):
    C = UnitCell(topology, rho=rho).stiffness() * E_TI
    return 1.0 / np.linalg.inv(C)[2, 2]


#: Observed order of E_app - E_hom in 1/n: the octet's face struts make a stiffer surface
#: layer (error ~ 1/n), the BCC block's error falls like 1/n^2; 10^3 cells are in the benchmark.
RATES = {"1x2": (0.8, 1.3), "1x3": (1.7, 2.4)}


@pytest.mark.parametrize("topology, sizes", [("1x2", (2, 3, 4)), ("1x3", (2, 4, 6))])
def test_uniform_block_apparent_modulus_tends_to_the_homogenized_one(topology, sizes):
    """E_app of n^3 blocks (uniaxial, rollers) converges to E_hom of the periodic cell."""
    E_hom = homogenized_E33(topology)
    errors = []
    for n in sizes:
        sim = simulate(block(n, topology), continuum=False)
        errors.append(sim.cases[0].lattice["apparent_modulus_MPa"] / E_hom - 1.0)
    mag = np.abs(errors)
    assert mag[0] > mag[1] > mag[2], errors
    rate = -np.polyfit(np.log(sizes), np.log(mag), 1)[0]
    lo, hi = RATES[topology]
    assert lo < rate < hi, (rate, errors)
    assert mag[-1] < {"1x2": 0.13, "1x3": 0.05}[topology], errors


def test_uniform_continuum_is_exactly_the_homogenized_modulus():
    sim = simulate(block(3), order=1)
    c = sim.cases[0]
    # a uniform field under rollers: the affine solution is in the FE space
    np.testing.assert_allclose(c.continuum["apparent_modulus_MPa"], homogenized_E33("1x2"), rtol=1e-8)
    assert c.comparison["nodes_compared"] == sim.graph.n_nodes
    assert 0.1 < c.comparison["stiffness_difference"] < 0.25  # the 3-cell lattice is 17 % stiffer


def test_reactions_balance_the_applied_loads_in_both_models():
    cases = [{"name": "press", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, -100]}]},
             {"name": "shear", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [20, -10, 0]}]},
             {"name": "pull", "fixed": [{"face": "x-"}],
              "loaded": [{"face": "x+", "displacement": [0.02, None, None]}]}]
    sim = simulate(block(3, cases=cases), order=1)
    for c in sim.cases:
        for model in (c.lattice, c.continuum):
            assert model["force_balance"] < BALANCE, (c.name, model)
        if c.name != "pull":
            np.testing.assert_allclose(c.lattice["reaction_force_N"], -np.array(c.lattice["applied_force_N"]),
                                       atol=1e-8 * 100)
            np.testing.assert_allclose(c.continuum["applied_force_N"], c.lattice["applied_force_N"], rtol=1e-10,
                                       atol=1e-10)
    press = sim.cases[0]
    assert press.lattice["apparent_stiffness_N_per_mm"] > 0
    assert press.lattice["min_safety_factor"] == pytest.approx(880 / press.lattice["max_von_mises_MPa"])


def test_linearity_doubling_the_load_doubles_displacements_and_halves_safety():
    one = [{"name": "a", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, -50]}]},
           {"name": "b", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, -100]}]}]
    sim = simulate(block(2, cases=one), continuum=False)
    a, b = sim.cases
    np.testing.assert_allclose(b.node_displacement, 2 * a.node_displacement, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(b.strut["safety_factor"], a.strut["safety_factor"] / 2, rtol=1e-9)


@pytest.mark.parametrize("loads, match", [
    ({"yield_strength": 880e6, "cases": []}, r"loads.yield_strength: .* \(this looks like Pa\)"),
    ({"yield_strength": 880, "cases": [{"name": "a",
                                         "fixed": [{"face": "z-", "box": {"lo": [0, 0, 0], "hi": [1, 1, 1]}}],
                                         "loaded": [{"face": "z+", "force": [0, 0, 1]}]}]},
     r"loads.cases\[0\].fixed\[0\]: give exactly one region"),
    ({"yield_strength": 880, "cases": [{"name": "a", "fixed": [{"face": "z-"}],
                                         "loaded": [{"face": "z+", "force": [0, 0, 1], "displacement": [0, 0, 1]}]}]},
     r"loads.cases\[0\].loaded\[0\]: give exactly one of force"),
    ({"yield_strength": 880, "cases": [{"name": "a", "fixed": [{"face": "z-", "components": ["w"]}],
                                         "loaded": [{"face": "z+", "force": [0, 0, 1]}]}]},
     r"loads.cases\[0\].fixed\[0\].components\[0\]"),
    ({"yield_strength": 880, "cases": [
        {"name": "a", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, 1]}]},
        {"name": "a", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, 1]}]}]},
     r"name 'a' is used twice"),
])
def test_bad_load_specs_are_refused_when_parsed(loads, match):
    spec = block(2)
    spec["loads"] = loads
    with pytest.raises(ValidationError, match=match):
        parse_spec(spec)


@pytest.mark.parametrize("case, match", [
    ({"name": "a", "fixed": [{"face": "z-"}], "loaded": [{"box": {"lo": [20, 20, 20], "hi": [21, 21, 21]},
                                                          "force": [0, 0, 1]}]},
     r"loads.cases\[0\].loaded\[0\]: box .* catches no lattice node"),
    ({"name": "a", "fixed": [{"plane": {"point": [0, 0, -3], "normal": [0, 0, 1]}}],
      "loaded": [{"face": "z+", "force": [0, 0, 1]}]},
     r"loads.cases\[0\].fixed\[0\]: plane .* catches no lattice node"),
    ({"name": "a", "fixed": [{"face": "z-", "components": ["z"]}], "loaded": [{"face": "z+", "force": [0, 0, -1]}]},
     r"loads.cases\[0\].fixed: case 'a' is under-constrained: 3 rigid-body mode"),
    ({"name": "a", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "displacement": [0, 0, -100]}]},
     r"loads.cases\[0\].loaded\[0\].displacement: 100 mm is .* unit mistake"),
    ({"name": "a", "fixed": [{"face": "z-"}], "loaded": [{"face": "z-", "force": [0, 0, -1]}]},
     r"loads.cases\[0\].loaded\[0\]: the force acts in z on lattice nodes whose z displacement is also fixed"),
])
def test_bad_load_cases_are_refused_when_simulated(case, match):
    with pytest.raises(ValidationError, match=match):
        simulate(block(2, cases=[case]), continuum=False)


def test_spec_without_loads_is_refused():
    spec = block(2)
    del spec["loads"]
    with pytest.raises(ValidationError, match="loads: is missing"):
        simulate(spec)


def test_outputs_vtu_png_and_report_section(tmp_path):
    cases = [{"name": "press z", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, -100]}]}]
    sim = simulate(block(2, cases=cases), order=1)
    (tmp_path / "report.json").write_text(json.dumps({"struts": 1}))
    files = write_simulation(sim, tmp_path)
    lat = meshio.read(files["lattice_vtu"])
    assert lat.cells[0].type == "line" and len(lat.cells[0].data) == sim.graph.n_struts
    np.testing.assert_allclose(lat.cell_data["press_z_von_mises"][0], sim.cases[0].strut["von_mises"])
    np.testing.assert_allclose(lat.point_data["press_z_displacement"], sim.cases[0].node_displacement)
    cont = meshio.read(files["continuum_vtu"])
    assert cont.cells[0].type == "tetra" and "press_z_von_mises" in cont.cell_data
    assert files["png_press_z"].stat().st_size > 10_000
    report = json.loads(files["report"].read_text())
    assert report["struts"] == 1  # the build's report is kept
    case = report["simulation"]["cases"][0]
    assert case["name"] == "press z" and case["lattice"]["min_safety_factor"] > 0
    assert case["comparison"]["stiffness_ratio_continuum_to_lattice"] > 0


def spec_file(tmp_path, loads_yaml):
    text = f"""body: {{box: {{size: [4, 4, 4]}}}}
cell_size: 2
control_points: [{{position: [1, 1, 1], cell: {{topology: 1x2, rho: 0.05}}}}]
outputs: {{directory: out}}
{loads_yaml}
"""
    p = tmp_path / "spec.yaml"
    p.write_text(text)
    return p


def test_cli_simulate_writes_files_and_json(tmp_path):
    p = spec_file(tmp_path, """loads:
  yield_strength: 880
  cases:
    - {name: press, fixed: [{face: z-}], loaded: [{face: z+, force: [0, 0, -100]}]}
""")
    res = CliRunner().invoke(cli, ["simulate", str(p), "-o", str(tmp_path / "o"), "--json", "--order", "1",
                                   "--no-png"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["cases"][0]["lattice"]["force_balance"] < BALANCE
    assert (tmp_path / "o" / "lattice_fe.vtu").is_file() and (tmp_path / "o" / "report.json").is_file()


@pytest.mark.parametrize("loads_yaml, field", [
    ("loads:\n  yield_strength: 0.88\n  cases: [{name: a, fixed: [{face: z-}], "
     "loaded: [{face: z+, force: [0, 0, 1]}]}]",
     "loads.yield_strength"),
    ("loads:\n  yield_strength: 880\n  cases: [{name: a, fixed: [{face: q-}], "
     "loaded: [{face: z+, force: [0, 0, 1]}]}]",
     "loads.cases[0].fixed[0].face"),
    ("loads:\n  yield_strength: 880\n  cases: [{name: a, fixed: [{face: z-, components: [z]}], "
     "loaded: [{face: z+, force: [0, 0, 1]}]}]", "loads.cases[0].fixed"),
    ("", "loads"),
])
def test_cli_bad_load_spec_one_line_exit_2(tmp_path, loads_yaml, field):
    p = spec_file(tmp_path, loads_yaml)
    res = CliRunner().invoke(cli, ["simulate", str(p), "--no-progress"])
    assert res.exit_code == 2, res.output
    err = [ln for ln in res.output.splitlines() if ln.startswith("Error:")]
    assert len(err) == 1 and err[0].startswith(f"Error: {field}"), res.output
    assert "Traceback" not in res.output
