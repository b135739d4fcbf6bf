"""graded: functionally graded truss lattices, from target stiffness to printable parts."""

from .graph import LatticeGraph
from .validation import ValidationError

__all__ = ["LatticeGraph", "ValidationError"]
__version__ = "0.1.0"
