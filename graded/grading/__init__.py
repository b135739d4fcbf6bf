"""Spatial grading of truss lattices (SI section 5): from control points to a strut graph.

``field`` blends the lattice basis (interpolating or SI Eq. 14 weights; polar or SI Eq. 15
basis blend), ``graded.fem.phase`` solves the phase fields (SI Eq. 13) and ``compatible``
weights and constrains them at the control points, ``placement`` finds the cells and their
nodes, ``assemble`` blends the diameters (SI Eq. 16) and cleans the graph, ``body`` is the
region to fill, ``local`` gives the as-built local cell at a point, ``correction`` corrects
the control points' cells in a closed loop, ``window`` checks the built graph around a point
by beam FE, ``estimate`` sizes a build before it runs, and ``pipeline`` holds the grading
stages of a build (see :mod:`graded.build`).
"""

from .body import Body, box_body, mesh_body
from .correction import ClosedLoopReport, PointCorrection, correct_cells
from .field import GradingField, interpolating_weights, rbf_weights
from .local import local_cell, local_stiffness
from .pipeline import AsBuilt, Lattice, Prepared, assemble, check_body, measure_as_built, prepare
from .window import WindowCheck, check_point, window_stiffness

__all__ = [
    "AsBuilt",
    "Body",
    "ClosedLoopReport",
    "GradingField",
    "Lattice",
    "PointCorrection",
    "Prepared",
    "WindowCheck",
    "assemble",
    "box_body",
    "check_body",
    "check_point",
    "correct_cells",
    "interpolating_weights",
    "local_cell",
    "local_stiffness",
    "measure_as_built",
    "mesh_body",
    "prepare",
    "rbf_weights",
    "window_stiffness",
]
