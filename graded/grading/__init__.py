"""Spatial grading of truss lattices (SI section 5): from control points to a strut graph.

``field`` blends the lattice basis (interpolating or SI Eq. 14 weights; polar or SI Eq. 15
basis blend), ``graded.fem.phase`` solves the phase fields (SI Eq. 13) and ``compatible``
weights and constrains them at the control points, ``placement`` finds the cells and their
nodes, ``assemble`` blends the diameters (SI Eq. 16) and cleans the graph, ``body`` is the
region to fill, ``pipeline`` runs it all from a spec, ``local`` gives the as-built local
cell at a point, ``correction`` corrects the control points' cells in a closed loop,
``window`` checks the built graph around a point by beam FE, ``outputs`` writes the beam
graph.
"""

from .body import Body, box_body, mesh_body
from .correction import ClosedLoopReport, PointCorrection, correct_cells
from .field import GradingField, interpolating_weights, rbf_weights
from .local import local_cell, local_stiffness
from .outputs import write_graph_outputs
from .pipeline import build_graph, prepare, resolve_cell
from .window import WindowCheck, check_point, window_stiffness

__all__ = [
    "Body",
    "box_body",
    "mesh_body",
    "GradingField",
    "rbf_weights",
    "interpolating_weights",
    "build_graph",
    "prepare",
    "resolve_cell",
    "local_cell",
    "local_stiffness",
    "correct_cells",
    "ClosedLoopReport",
    "PointCorrection",
    "WindowCheck",
    "check_point",
    "window_stiffness",
    "write_graph_outputs",
]
