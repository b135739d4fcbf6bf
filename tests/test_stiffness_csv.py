"""Stiffness tables: read by `graded design` and by a spec's ``target: {csv, row}``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from graded.io.stiffness_csv import read_stiffness_csv, select_row
from graded.spec import parse_spec
from graded.validation import ValidationError

BONE = Path(__file__).resolve().parents[1] / "examples" / "data" / "trabecular_bone_stiffness.csv"

SPEC = textwrap.dedent("""\
    body: {box: {size: [8, 6, 6]}}
    cell_size: 2.0
    control_points:
      - position: [1, 3, 3]
        target: {csv: bone.csv, row: ROW}
    """)


def test_rows_by_name_and_index():
    rows = read_stiffness_csv(BONE)
    assert [r.name for r in rows] == ["A", "B"] and all(r.values.shape == (21,) for r in rows)
    assert select_row(rows, "B").values[0] == 0.163 and select_row(rows, 0).name == "A"
    with pytest.raises(ValidationError, match=r"--row: BONE has 2 targets; choose one"):
        select_row(rows, None, where="BONE")


def test_spec_target_from_a_table_row(tmp_path):
    (tmp_path / "bone.csv").write_text(BONE.read_text())
    spec = parse_spec(SPEC.replace("ROW", "A"), base_dir=tmp_path)
    t = spec.control_points[0].target
    np.testing.assert_array_equal(t.stiffness, read_stiffness_csv(BONE)[0].values)
    assert t.units == "GPa" and t.row == "A" and t.csv == "bone.csv"


@pytest.mark.parametrize("row, message", [
    ("Q", r"control_points\[0\]\.target\.row: 'Q' is neither a row index nor a name in bone.csv \(line 5\)"),
    ("7", r"control_points\[0\]\.target\.row: index 7 is outside 0\.\.1"),
])
def test_bad_rows_are_refused_with_the_field(tmp_path, row, message):
    (tmp_path / "bone.csv").write_text(BONE.read_text())
    with pytest.raises(ValidationError, match=message):
        parse_spec(SPEC.replace("ROW", row), base_dir=tmp_path)


def test_bad_tables_are_refused(tmp_path):
    with pytest.raises(ValidationError, match=r"control_points\[0\]\.target\.csv: .*bone.csv does not exist"):
        parse_spec(SPEC.replace("ROW", "A"), base_dir=tmp_path)
    (tmp_path / "bone.csv").write_text("A,1,2,3\n")
    with pytest.raises(ValidationError, match=r"target\.csv: row A of bone.csv has 3 numbers"):
        parse_spec(SPEC.replace("ROW", "A"), base_dir=tmp_path)
    asym = np.eye(6) + np.triu(np.ones((6, 6)), 1) * 0.3
    (tmp_path / "bone.csv").write_text("A," + ",".join(str(v) for v in asym.ravel()) + "\n")
    with pytest.raises(ValidationError, match=r"target\.csv: row A of bone.csv: is not symmetric"):
        parse_spec(SPEC.replace("ROW", "A"), base_dir=tmp_path)
    with pytest.raises(ValidationError, match="give exactly one of stiffness"):
        parse_spec(SPEC.replace("{csv: bone.csv, row: ROW}", "{units: GPa}"), base_dir=tmp_path)
