"""Spatial grading of truss lattices (SI section 5): from control points to a strut graph.

``field`` blends the lattice basis (SI Eqs. 14-15), ``graded.fem.phase`` solves the phase
fields (SI Eq. 13), ``placement`` finds the cells and their nodes, ``assemble`` blends the
diameters (SI Eq. 16) and cleans the graph, ``body`` is the region to fill, ``local`` is the
as-built local cell, ``pipeline`` holds the grading stages of a build (see :mod:`graded.build`).
"""

from .body import Body, box_body, mesh_body
from .field import GradingField, rbf_weights
from .local import local_cell, local_stiffness
from .pipeline import AsBuilt, Lattice, Prepared, assemble, build_graph, check_body, measure_as_built, prepare

__all__ = [
    "AsBuilt",
    "Body",
    "GradingField",
    "Lattice",
    "Prepared",
    "assemble",
    "box_body",
    "build_graph",
    "check_body",
    "local_cell",
    "local_stiffness",
    "measure_as_built",
    "mesh_body",
    "prepare",
    "rbf_weights",
]
