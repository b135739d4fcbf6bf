"""graded: functionally graded truss lattices, from target stiffness to printable parts.

::

    import graded
    cell = graded.UnitCell("1x2", rho=0.01)                # octet, 1 % dense
    graph = graded.build("spec.yaml")                      # graded lattice graph
    designs = graded.design(C_target, E=114, units="GPa")  # ranked, FE-verified cells

``graded.design`` loads torch and the shipped networks on first use only.
"""

from __future__ import annotations

from typing import Any

from .build import build
from .graph import LatticeGraph
from .unitcell import UnitCell
from .validation import ValidationError

__all__ = ["LatticeGraph", "UnitCell", "ValidationError", "build", "design"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "design":
        from .inverse.design import design

        return design
    raise AttributeError(f"module 'graded' has no attribute {name!r}")
