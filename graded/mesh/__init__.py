"""Printable solids from lattice graphs: meshing (manifold3d), mesh facts, demo lattices."""

from .facts import MeshFacts, mesh_facts
from .lattices import bcc_graph, graded_diameters, octet_graph, superpose, tile_cell
from .solid import SolidMesh, mesh_graph, to_manifold, to_trimesh
from .tessellation import CHORD_TOL, area_scale, segments_for_radius
from .tiles import TILED_ABOVE, TiledSolid, mesh_graph_tiled

__all__ = [
    "MeshFacts",
    "mesh_facts",
    "SolidMesh",
    "mesh_graph",
    "mesh_graph_tiled",
    "TiledSolid",
    "TILED_ABOVE",
    "to_manifold",
    "to_trimesh",
    "bcc_graph",
    "octet_graph",
    "graded_diameters",
    "superpose",
    "tile_cell",
    "CHORD_TOL",
    "area_scale",
    "segments_for_radius",
]
