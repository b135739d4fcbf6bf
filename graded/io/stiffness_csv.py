"""Tables of stiffness tensors (CSV): one target per row, as clinical or test data come.

Format: ``#`` comment lines; an optional header row; rows of 21 constants (C11, C12, ...,
C66, upper triangle row by row) or 36 (a 6x6 matrix row by row), optionally preceded by a
name. ``graded design TABLE --row A`` and a spec's ``target: {csv: TABLE, row: A}`` read it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import fail

__all__ = ["StiffnessRow", "read_stiffness_csv", "select_row"]


@dataclass(frozen=True)
class StiffnessRow:
    """One row: its name (None if the row has none), index and values (21 or 36 floats)."""

    name: str | None
    index: int
    values: np.ndarray


def read_stiffness_csv(path, *, field: str = "TARGET") -> list[StiffnessRow]:
    """Every numeric row of a stiffness table.

    Raises
    ------
    ValidationError
        The file is missing or holds no row of 21 or 36 numbers.
    """
    path = Path(path)
    if not path.is_file():
        fail(field, f"{path} does not exist", "give the path of a CSV table of stiffness tensors")
    with open(path, newline="", encoding="utf-8") as f:
        raw = list(csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#")))
    rows: list[StiffnessRow] = []
    for cells in raw:
        cells = [c.strip() for c in cells if c.strip() != ""]
        try:
            float(cells[-1])
        except (ValueError, IndexError):
            continue  # a header
        try:
            vals, name = [float(c) for c in cells], None
        except ValueError:
            try:
                vals, name = [float(c) for c in cells[1:]], cells[0]
            except ValueError:
                fail(field, f"row {len(rows)} of {path.name} holds text among its numbers", "one name, then numbers")
        if len(vals) not in (21, 36):
            fail(field, f"row {name or len(rows)} of {path.name} has {len(vals)} numbers",
                 "give 21 constants (C11, C12, ..., C66) or 36 (a 6x6 matrix) per row")
        rows.append(StiffnessRow(name, len(rows), np.array(vals, dtype=np.float64)))
    if not rows:
        fail(field, f"{path} has no numeric rows", "give a CSV with one target per row")
    return rows


def select_row(rows: list[StiffnessRow], row, *, field: str = "--row", where: str = "the table") -> StiffnessRow:
    """The row named ``row`` (or with that 0-based index); the only row when ``row`` is None."""
    names = [r.name if r.name is not None else str(r.index) for r in rows]
    if row is None:
        if len(rows) > 1:
            fail(field, f"{where} has {len(rows)} targets", f"choose one (index or name: {names})")
        return rows[0]
    row = str(row)
    if row in names:
        return rows[names.index(row)]
    try:
        idx = int(row)
    except ValueError:
        fail(field, f"{row!r} is neither a row index nor a name in {where}", f"names: {names}")
    if not 0 <= idx < len(rows):
        fail(field, f"index {idx} is outside 0..{len(rows) - 1}", f"names: {names}")
    return rows[idx]
