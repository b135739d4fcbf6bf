"""Numerical solvers: periodic beam homogenization, least-squares phase fields, voxel homogenization,
whole-part frame and continuum FE.

Depends on nothing else of ``graded``: plain arrays and its own dataclasses.
"""

from .homogenize import homogenize
from .periodic_graph import PeriodicGraph
from .phase import PhaseField, PhaseFit, solve_phase_fields
from .voxel import VoxelHomogenization, homogenize_voxels

__all__ = [
    "PeriodicGraph",
    "homogenize",
    "PhaseField",
    "PhaseFit",
    "solve_phase_fields",
    "VoxelHomogenization",
    "homogenize_voxels",
]
