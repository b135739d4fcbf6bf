"""Stage 2 of a build: one unit cell per control point, explicit or by inverse design.

:func:`resolve_cells` turns the spec's control points into :class:`CellDesign` records:
the cell, where it came from, its FE stiffness (computed once, here) and, for a target,
the design error. Every later stage reads these records; none homogenizes a control
point's cell again.
"""

from __future__ import annotations

from .resolve import CellDesign, DesignSettings, resolve_cells

__all__ = ["CellDesign", "DesignSettings", "resolve_cells"]
