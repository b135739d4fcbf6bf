"""Reading a unit cell from a YAML or JSON file (the ``cell:`` block of a spec, standalone)."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from .unitcell import UnitCell
from .validation import fail

__all__ = ["load_cell"]


def load_cell(path: str | Path, *, strict: bool = True) -> UnitCell:
    """Load a :class:`UnitCell` from a YAML/JSON mapping with keys topology, rho, U, V, R1, R2.

    Rotations are 3x3 matrices or axis-angle triples (theta, e1, e2) as in the SI tables.
    A top-level ``cell:`` key is accepted too, so a control point block can be reused.
    """
    path = Path(path)
    if not path.is_file():
        fail("cell", f"file {str(path)!r} does not exist",
             "give a topology string like '2x1+1x3+2x5' or a YAML/JSON cell file")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        fail("cell", f"{path.name} is not valid {kind} ({exc})".replace("\n", " "), "fix the syntax")
    if isinstance(data, dict) and set(data) == {"cell"}:
        data = data["cell"]
    return UnitCell.from_dict(data, strict=strict)
