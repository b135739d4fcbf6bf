"""Whole-part simulation: load cases, lattice vs continuum, outputs and the CLI (graded.simulate)."""

import json

import meshio
import numpy as np
import pytest
from click.testing import CliRunner

from graded import ValidationError
from graded.cli.main import cli
from graded.simulate import periodic_share, simulate, write_simulation
from graded.simulate.loads import TRIBUTARY_SAMPLES_PER_CELL, tributary_weights
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
#: layer (error ~ +0.47 / n), the BCC block's error falls like -1.2 / n^2 (benchmark: to 10^3 cells).
RATES = {"1x2": (0.8, 1.3), "1x3": (1.7, 2.4)}
#: The limit n -> oo of a three-term fit E_app / E_hom - 1 = e_oo + a / n^p + b / n^(p+1)
#: (p the order above) on three small blocks: the next term of the boundary-layer expansion
#: leaves |e_oo| = 0.5 % (octet, n = 2, 3, 4) and 0.4 % (BCC, n = 2, 4, 6); larger blocks
#: give < 0.1 % (benchmarks/results/simulate.json). 1 % says the limit is the periodic
#: cell's 1 / S_33 (uniaxial stress: lateral faces free), not its C_33 (octet: 2x larger).
EXTRAPOLATED_TOL = 0.01


@pytest.mark.parametrize("topology, sizes", [("1x2", (2, 3, 4)), ("1x3", (2, 4, 6))])
def test_uniform_block_apparent_modulus_tends_to_the_homogenized_one(topology, sizes):
    """E_app of n^3 blocks (uniaxial, rollers) converges to E_hom = 1 / S_33 of the periodic cell."""
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
    p = round(rate)
    n = np.asarray(sizes, dtype=np.float64)
    e_inf, a, _ = np.linalg.solve(np.stack([np.ones(3), n**-p, n ** -(p + 1)], axis=1), errors)
    assert abs(e_inf) < EXTRAPOLATED_TOL, (e_inf, errors)
    assert np.sign(a) == {"1x2": 1, "1x3": -1}[topology], a  # octet surface stiffer, BCC softer
    C = UnitCell(topology, rho=0.05).stiffness() * E_TI
    assert abs(E_hom * (1 + e_inf) / C[2, 2] - 1) > 5 * EXTRAPOLATED_TOL  # C_33 is not the limit


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


def test_tributary_weights_of_a_node_grid_are_its_voronoi_areas():
    """Nodes 0.4 cells apart on a 2 x 2 cell face: Voronoi cells of 4 x 4, 2 x 4 (rim), 2 x 2 (corner) samples."""
    assert TRIBUTARY_SAMPLES_PER_CELL == 10  # the exact counts below assume 0.1-cell samples
    spec = parse_spec(block(1, cases=[{"name": "a", "fixed": [{"face": "z-"}],
                                       "loaded": [{"face": "z+", "force": [0, 0, -1]}]}]))
    face = spec.loads.cases[0].loaded[0]
    g = np.arange(6) * 0.8  # cell edge 2 mm, face [0, 4] mm
    X, Y = np.meshgrid(g, g, indexing="ij")
    pts = np.stack([X.ravel(), Y.ravel(), np.full(X.size, 4.0)], axis=1)
    w = tributary_weights(face, pts, np.zeros(3), np.full(3, 4.0), cell_edge=2.0)
    rim = (np.isin(X.ravel(), [0, 4.0]).astype(int) + np.isin(Y.ravel(), [0, 4.0]).astype(int))
    expect = np.array([16, 8, 4])[rim] / 400.0
    np.testing.assert_allclose(w, expect, rtol=1e-12)
    # a lone node carries the disc of TRIBUTARY_RADIUS_CELLS (1 mm) around it, not the empty
    # area next to it; a pair 0.4 mm apart shares the union of its two discs (pi - lens each)
    pts = np.array([[1.2, 1.2, 4.0], [2.8, 2.6, 4.0], [2.8, 3.0, 4.0]])
    w = tributary_weights(face, pts, np.zeros(3), np.full(3, 4.0), cell_edge=2.0)
    lens = 2 * np.arccos(0.2) - 0.2 * np.sqrt(3.84)
    areas = np.array([np.pi, np.pi - lens / 2, np.pi - lens / 2])
    # 0.2 mm samples resolve a disc of 1 mm to ~1 %
    np.testing.assert_allclose(w, areas / areas.sum(), rtol=0.02)


def rotated_block(L=10.0, tolerance=None):
    """A graded block whose second cell is stretched and rotated: the box cuts cells at every face."""
    face = {} if tolerance is None else {"tolerance": tolerance}
    return {"body": {"box": {"size": [L, L, L]}}, "cell_size": 2.5, "zeta": 0.5, "min_strut_diameter": 0.05,
            "control_points": [
                {"position": [L / 8] * 3, "cell": {"topology": "2x1+1x3+2x5", "rho": 0.04}},
                {"position": [7 * L / 8] * 3, "cell": {"topology": "1x1+2x4+1x6", "rho": 0.08, "U": [1.2, 1.0, 0.9],
                                                        "R1": [0.3, 0.0, 0.0]}}],
            "loads": {"yield_strength": 880, "cases": [{
                "name": "compression z",
                "fixed": [{"face": "z-", "components": ["z"], **face}, {"face": "x-", "components": ["x"], **face},
                          {"face": "y-", "components": ["y"], **face}],
                "loaded": [{"face": "z+", "displacement": [None, None, -0.05], **face}]}]}}


#: Lattice vs continuum apparent stiffness of the 4-cell rotated block held by its surface
#: layers: 1.3 % measured; the cut lateral faces (softer) and the held slabs' depth (stiffer)
#: are each O(1/n), a few percent here (benchmarks/results/simulate.json: against cells across).
CUT_FACE_AGREEMENT = 0.10


def test_cut_cell_faces_are_held_by_their_surface_layer():
    """Where the body cuts cells, a face region holds the nodes of the surface layer, not the few on the face."""
    from graded.build import build

    built = build(rotated_block())
    edge = 2.5
    sim = simulate(rotated_block(), built=built)
    c = sim.cases[0]
    tol = c.lattice["region_tolerance_mm"]
    # z- meets whole cells of the first point (a tenth of a cell holds them), z+ the rotated cut ones
    assert tol["fixed"][0] == pytest.approx(0.1 * edge) and 0.1 * edge < tol["loaded"][0] <= 0.45 * edge, tol
    assert c.comparison["stiffness_difference"] < CUT_FACE_AGREEMENT, c.comparison
    # a tenth of a cell catches a node or two of each face: the load bends their struts
    thin = simulate(rotated_block(tolerance=0.1 * edge), built=built, continuum=False).cases[0]
    assert thin.lattice["apparent_stiffness_N_per_mm"] < 0.2 * c.lattice["apparent_stiffness_N_per_mm"]


def shared(built, L):
    """The built block with every face strut at the periodic cell's share of its area."""
    g = built.graph
    g.diameters[:] = g.diameters * np.sqrt(periodic_share(g.nodes, g.struts, np.zeros(3), np.full(3, L)))
    return built


#: |E_app / E_hom - 1| of octet blocks whose face struts have the periodic share of their
#: area: 0.15 % (n = 3), 0.11 % (n = 4) measured, against 15 % and 12 % as built (what is
#: left: their bending stiffness is a quarter, not a half).
SHARED_TOL = 0.005


def test_octet_surface_layer_is_its_unshared_face_struts():
    """The whole O(1/n) excess of an octet block is the half of each face strut a periodic cell does not count."""
    from graded.build import build

    E_hom = homogenized_E33("1x2")
    for n in (3, 4):
        spec = block(n)
        built = build(spec)
        as_built = simulate(spec, built=built, continuum=False).cases[0].lattice["apparent_modulus_MPa"] / E_hom - 1
        assert as_built > 0.1, as_built
        e = simulate(spec, built=shared(built, 2.0 * n), continuum=False).cases[0].lattice["apparent_modulus_MPa"]
        assert abs(e / E_hom - 1) < SHARED_TOL, (n, e / E_hom - 1)


#: Lattice vs as-built continuum stiffness of the 4-cell graded block of whole cells with its
#: face struts at their periodic share: -1.0 % (compression), -4.1 % (force on a face)
#: measured, against +25 % and +16 % as built; the remainder falls with cells across
#: (-0.45 %, -2.0 % at 8 cells, benchmarks/results/simulate.json).
GRADED_SHARED_TOL = 0.06


def test_graded_block_of_whole_cells_matches_the_continuum_but_for_its_face_struts():
    """The as-built stiffness field of the grading is the lattice's, in the bulk: the difference is the surface."""
    from graded.build import build

    spec = rotated_block()
    second = spec["control_points"][1]["cell"]
    del second["U"], second["R1"]  # whole cells fill the box
    spec["loads"]["cases"].append({"name": "load z", "fixed": [{"face": "z-"}],
                                   "loaded": [{"face": "z+", "force": [0.0, 0.0, -100.0]}]})
    built = build(spec)
    raw = simulate(spec, built=built)
    fair = simulate(spec, built=shared(built, 10.0))
    for a, b in zip(raw.cases, fair.cases):
        ra = a.lattice["apparent_stiffness_N_per_mm"] / a.continuum["apparent_stiffness_N_per_mm"] - 1
        rb = b.lattice["apparent_stiffness_N_per_mm"] / b.continuum["apparent_stiffness_N_per_mm"] - 1
        assert ra > 0.1 and abs(rb) < GRADED_SHARED_TOL, (a.name, ra, rb)


@pytest.mark.slow
def test_main_example_simulates():
    """examples/bone_implant_simulate.yaml builds and solves; 3.7 cells across: no scale separation."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "bone_implant_simulate.yaml"
    sim = simulate(path)
    assert sim.info["cells_across"] < 5
    assert [c.name for c in sim.cases] == ["axial", "bending", "compression"]
    for c in sim.cases:
        assert c.lattice["force_balance"] < BALANCE and c.continuum["force_balance"] < BALANCE, c.name
        assert c.lattice["apparent_stiffness_N_per_mm"] > 0 and c.lattice["min_safety_factor"] > 0


def test_cells_across_counts_built_cells_not_reference_cubes():
    """The designs stretch the reference cube: the count uses the built cell's volume, and a
    rotation of the cell does not change it."""
    from types import SimpleNamespace

    from scipy.spatial.transform import Rotation

    from graded.simulate.run import cells_across

    body = SimpleNamespace(lo=np.zeros(3), hi=np.array([24.0, 30.0, 60.0]))
    cube = SimpleNamespace(basis=np.eye(3))
    stretched = SimpleNamespace(basis=np.diag([2.0, 2.0, 2.0]))
    assert cells_across(SimpleNamespace(cell_edge=3.0, cells=[cube]), body) == pytest.approx(8.0, rel=1e-12)
    assert cells_across(SimpleNamespace(cell_edge=3.0, cells=[cube, stretched]), body) == pytest.approx(4.0,
                                                                                                       rel=1e-12)
    R = Rotation.from_rotvec([0.3, -1.1, 0.7]).as_matrix()
    turned = SimpleNamespace(basis=R @ np.diag([1.0, 2.0, 4.0]))
    assert cells_across(SimpleNamespace(cell_edge=3.0, cells=[turned]), body) == pytest.approx(4.0, rel=1e-12)


def test_progress_is_one_bar_that_never_runs_backwards():
    """Build, continuum and cases share one bar: the fraction done never falls, and it ends at 1."""
    told = []
    cases = [{"name": "press", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "force": [0, 0, -100]}]},
             {"name": "push", "fixed": [{"face": "z-"}], "loaded": [{"face": "z+", "displacement": [0, 0, -0.01]}]}]
    simulate(block(3, cases=cases), progress=lambda d, t, m="": told.append((d / t, m)), order=1)
    fractions = [f for f, _ in told]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    messages = [m for _, m in told]
    assert "part built" in messages and "continuum: meshing the body" in messages
    assert messages.index("case press: lattice") < messages.index("case push: lattice")
