"""Spatial grading of truss lattices (SI section 5): from control points to a strut graph.

``field`` blends the lattice basis (SI Eqs. 14-15), ``graded.fem.phase`` solves the phase
fields (SI Eq. 13), ``placement`` finds the cells and their nodes, ``assemble`` blends the
diameters (SI Eq. 16) and cleans the graph, ``body`` is the region to fill, ``pipeline``
runs it all from a spec, ``outputs`` writes the beam graph.
"""

from .body import Body, box_body, mesh_body
from .field import GradingField, rbf_weights
from .local import local_cell, local_stiffness
from .outputs import write_graph_outputs
from .pipeline import build_graph, prepare, resolve_cell

__all__ = [
    "Body",
    "box_body",
    "mesh_body",
    "GradingField",
    "rbf_weights",
    "build_graph",
    "prepare",
    "resolve_cell",
    "local_cell",
    "local_stiffness",
    "write_graph_outputs",
]
