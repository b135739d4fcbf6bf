"""spec.yaml validation: field paths, YAML lines, bodies and control points."""

import textwrap

import numpy as np
import pytest
import trimesh

from graded.build import build_graph
from graded.grading.body import mesh_body
from graded.grading.pipeline import prepare
from graded.io import write_3mf
from graded.spec import load_spec, parse_spec
from graded.validation import ValidationError

GOOD = textwrap.dedent(
    """\
    units: mm
    body:
      box: {size: [8, 8, 8], origin: [0, 0, 0]}
    cell_size: 2.0
    material: {E: 114, nu: 0.3}
    control_points:
      - position: [1, 4, 4]
        cell: {topology: "2x1+1x3+2x5", rho: 0.05}
      - position: [7, 4, 4]
        cell: {topology: "1x1+2x4+1x6", rho: 0.05, U: [1.1, 1, 1], R1: [0.2, 0, 0]}
    zeta: 0.5
    mu: 1
    min_strut_diameter: 0.05
    seed: 0
    outputs: {directory: out, files: [vtu, json]}
    """
)


def test_good_spec_parses_with_defaults(tmp_path):
    p = tmp_path / "spec.yaml"
    p.write_text(GOOD)
    s = load_spec(p)
    assert s.cell_size == 2.0 and s.material.E == 114 and s.phase.order == 2
    assert s.resolve(s.outputs.directory) == tmp_path / "out"
    assert s.line_of(("control_points", 1, "cell", "rho")) == 10
    minimal = parse_spec({"body": {"box": {"size": [4, 4, 4]}}, "cell_size": 1,
                          "control_points": [{"position": [1, 1, 1],
                                              "cell": {"topology": "1x1+1x2+1x3", "rho": 0.01}}]})
    assert minimal.zeta == 0.5 and minimal.mu == 1
    assert minimal.outputs.files == ["stl", "3mf", "beams", "report", "vtu", "json", "csv", "png"]


@pytest.mark.parametrize(
    "old, new, field, line",
    [
        ("zeta: 0.5", "zeta: 0", r"zeta: .*\(line 11\)", 11),
        ("zeta: 0.5", "zeta: -2", r"zeta: .*\(line 11\)", 11),
        ("cell_size: 2.0", "cell_size: 0", r"cell_size: .*\(line 4\)", 4),
        ("cell_size: 2.0", "cell_size: -1", r"cell_size: .*\(line 4\)", 4),
        ("seed: 0", "seed: 0\ncolour: red", r"colour: unknown field \(line 15\)", 15),
        ("rho: 0.05}\n  - position: [7", "rho: 0.05, shape: x}\n  - position: [7",
         r"control_points\[0\]\.cell\.shape: unknown field \(line 8\)", 8),
        ("box: {size: [8, 8, 8], origin: [0, 0, 0]}", "box: {size: [8, 0, 8]}", r"body\.box\.size: .*> 0", 3),
        ("units: mm", "units: inch", r"units: .*\(line 1\)", 1),
        ("files: [vtu, json]", "files: [vtu, obj]", r"outputs\.files\[1\]", 16),
    ],
)
def test_bad_fields_are_named_with_their_line(old, new, field, line):
    text = GOOD.replace(old, new)
    assert text != GOOD
    with pytest.raises(ValidationError, match=field):
        parse_spec(text)


def test_control_point_needs_exactly_one_of_cell_or_target():
    text = GOOD.replace('    cell: {topology: "2x1+1x3+2x5", rho: 0.05}\n', "")
    with pytest.raises(ValidationError, match=r"control_points\[0\]: .*exactly one of cell .*, target .* or spinodoid"):
        parse_spec(text)
    both = GOOD.replace('rho: 0.05}\n  - position: [7', 'rho: 0.05}\n    target: {stiffness: [1, 2]}\n  - position: [7')
    with pytest.raises(ValidationError, match=r"control_points\[0\]"):
        parse_spec(both)


def test_target_stiffness_shape_is_checked():
    text = GOOD.replace('cell: {topology: "2x1+1x3+2x5", rho: 0.05}', "target: {stiffness: [1, 2, 3, 4], units: GPa}")
    with pytest.raises(ValidationError, match=r"control_points\[0\]\.target\.stiffness: has shape \(4,\)"):
        parse_spec(text)


def test_missing_required_field():
    with pytest.raises(ValidationError, match="cell_size: is required"):
        parse_spec(GOOD.replace("cell_size: 2.0\n", ""))


def test_not_yaml_and_not_a_mapping():
    with pytest.raises(ValidationError, match=r"spec: is not valid YAML \(line"):
        parse_spec("body: [unclosed\n")
    with pytest.raises(ValidationError, match="spec: must be a mapping"):
        parse_spec("- 1\n- 2\n")


def test_cell_parameters_are_checked_with_their_path():
    text = GOOD.replace("rho: 0.05, U: [1.1", "rho: 0.5, U: [1.1")
    with pytest.raises(ValidationError, match=r"control_points\[1\]\.cell\.rho: .*outside .*\(line 10\)"):
        prepare(parse_spec(text))


def test_control_point_outside_the_body_is_refused():
    text = GOOD.replace("position: [7, 4, 4]", "position: [9, 4, 4]")
    msg = r"control_points\[1\]\.position: \(9, 4, 4\) mm is outside the body \(line 9\)"
    with pytest.raises(ValidationError, match=msg):
        build_graph(parse_spec(text))


def test_degenerate_blend_is_refused():
    # the same cell turned by 180 degrees about z: A(x) is flat half-way between
    text = GOOD.replace('{topology: "1x1+2x4+1x6", rho: 0.05, U: [1.1, 1, 1], R1: [0.2, 0, 0]}',
                        '{topology: "2x1+1x3+2x5", rho: 0.05, R2: [3.141592653589793, 0, 0]}')
    text += "blend: {kind: gaussian, basis: linear}\n"  # the SI's real-space blend (the polar one does not collapse)
    with pytest.raises(ValidationError, match=r"control_points: .*degenerates at x = \("):
        build_graph(parse_spec(text))


def _write(mesh, path):
    mesh.export(path)
    return path


def test_open_stl_is_refused(tmp_path):
    box = trimesh.creation.box(extents=[8, 8, 8])
    open_box = trimesh.Trimesh(box.vertices, box.faces[:-2], process=False)  # one face missing
    path = _write(open_box, tmp_path / "open.stl")
    with pytest.raises(ValidationError, match=r"body\.file: open\.stl is not a closed surface \(\d+ boundary edges\)"):
        mesh_body(path)
    text = GOOD.replace("box: {size: [8, 8, 8], origin: [0, 0, 0]}", "file: open.stl")
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(ValidationError, match=r"body\.file: .*not a closed surface.*\(line 3\)"):
        build_graph(tmp_path / "spec.yaml")


def test_closed_stl_body_clips_the_lattice(tmp_path):
    # a sphere of radius 5 mm centred in the box: every node inside it, struts kept only
    # when both ends are inside, and it is filled (not just a shell)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=5.0)
    sphere.apply_translation([5, 5, 5])
    _write(sphere, tmp_path / "ball.stl")
    spec = parse_spec({"body": {"file": "ball.stl"}, "cell_size": 2.0,
                       "control_points": [{"position": [5, 5, 5], "cell": {"topology": "2x1+1x3+2x5", "rho": 0.05}}]},
                      base_dir=tmp_path)
    g = build_graph(spec)
    r = np.linalg.norm(g.nodes - 5.0, axis=1)
    assert r.max() <= 5.0 + 1e-6
    assert r.min() < 1.0 and g.n_struts > 500


@pytest.mark.parametrize("suffix", [".stl", ".3mf"])
def test_box_file_gives_the_same_lattice_as_the_box(tmp_path, suffix):
    # nodes on the faces of an axis-aligned STL box are kept (inside within tolerance),
    # so the lattice equals that of the analytic box body
    box = trimesh.creation.box(extents=[8, 6, 6])
    box.apply_translation([4, 3, 3])
    if suffix == ".stl":
        _write(box, tmp_path / "box.stl")
    else:
        write_3mf(tmp_path / "box.3mf", box.vertices, box.faces)
    cp = [{"position": [4, 3, 3], "cell": {"topology": "2x1+1x3+2x5", "rho": 0.05}}]
    a = build_graph(parse_spec({"body": {"file": "box" + suffix}, "cell_size": 2.0, "control_points": cp},
                               base_dir=tmp_path))
    b = build_graph(parse_spec({"body": {"box": {"size": [8, 6, 6]}}, "cell_size": 2.0, "control_points": cp}))
    assert a.n_struts == b.n_struts and a.n_nodes == b.n_nodes
    assert np.allclose(np.sort(a.nodes, axis=0), np.sort(b.nodes, axis=0), atol=1e-9)


def test_printable_minimum_above_every_strut_is_refused():
    text = GOOD.replace("min_strut_diameter: 0.05", "min_strut_diameter: 5")
    # the first control point's own cell is thinner than that: refused before any grading
    with pytest.raises(ValidationError, match=r"control_points\[0\]: the cell of point 0 .* thinner than "
                       r"min_strut_diameter = 5 mm \(line 7\); use cell_size >= 125 mm"):
        build_graph(parse_spec(text))


def test_cell_larger_than_the_body_is_refused():
    spec = parse_spec({"body": {"box": {"size": [1, 1, 1]}}, "cell_size": 5.0,
                       "control_points": [{"position": [0.5, 0.5, 0.5],
                                           "cell": {"topology": "1x1+1x2+1x3", "rho": 0.05}}]})
    with pytest.raises(ValidationError, match="cell_size: 5 mm .* is not smaller than the body's smallest extent"):
        build_graph(spec)


def _voxel_doc(**target):
    return {"family": "voxel", "body": {"box": {"size": [16, 16, 16]}}, "cell_size": 8,
            "control_points": [{"position": [8, 8, 8], "target": {"stiffness": [37.5, 9.6, 10.2], **target}}]}


def test_voxel_spec_takes_cubic_targets_and_a_volume_fraction():
    s = parse_spec(_voxel_doc(volume_fraction=0.4))
    assert s.family == "voxel"
    t = s.control_points[0].target
    assert t.volume_fraction == 0.4
    C = np.asarray(t.stiffness)
    assert C.shape == (6, 6) and C[0, 0] == C[2, 2] == 37.5 and C[0, 1] == 9.6 and C[5, 5] == 10.2 and C[0, 3] == 0


def test_voxel_spec_refusals():
    with pytest.raises(ValidationError, match="volume_fraction"):
        parse_spec(_voxel_doc(volume_fraction=1.2))
    doc = _voxel_doc(volume_fraction=0.4)
    doc["family"] = "truss"
    with pytest.raises(ValidationError, match="applies to family: voxel only"):
        parse_spec(doc)
    doc = _voxel_doc()
    doc["control_points"].append({"position": [8, 8, 2], "cell": {"topology": "1x1+1x2+1x3", "rho": 0.05}})
    with pytest.raises(ValidationError, match="cells of a voxel part are generated"):
        parse_spec(doc)
    doc = _voxel_doc()
    doc["control_points"][0]["target"]["stiffness"] = [1.0, 2.0, 0.5]  # C12 > C11: not positive definite
    with pytest.raises(ValidationError, match="stiffness"):
        parse_spec(doc)
