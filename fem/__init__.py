"""Numerical solvers: periodic beam homogenization, least-squares phase fields, voxel homogenization,
whole-part frame and continuum FE.

Depends on nothing else of ``graded``: plain arrays and its own dataclasses.
"""

from typing import Any

from .homogenize import homogenize
from .periodic_graph import PeriodicGraph
from .phase import PhaseField, PhaseFit, solve_phase_fields

__all__ = [
    "PeriodicGraph",
    "homogenize",
    "PhaseField",
    "PhaseFit",
    "solve_phase_fields",
    "VoxelHomogenization",
    "homogenize_voxels",
]


def __getattr__(name: str) -> Any:
    # the voxel solver needs torch (about a second to import): loaded on first use only
    if name in ("VoxelHomogenization", "homogenize_voxels"):
        from . import voxel

        return getattr(voxel, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
