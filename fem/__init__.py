"""Numerical solvers: periodic beam homogenization, least-squares phase fields, voxel homogenization.

Depends on nothing else of ``graded``: plain arrays and its own dataclasses.
"""

from .homogenize import homogenize
from .periodic_graph import PeriodicGraph
from .phase import PhaseField, solve_phase_fields
from .voxel import VoxelHomogenization, homogenize_voxels

__all__ = [
    "PeriodicGraph",
    "homogenize",
    "PhaseField",
    "solve_phase_fields",
    "VoxelHomogenization",
    "homogenize_voxels",
]
