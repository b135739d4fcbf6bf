"""Whole-part simulation (``graded simulate``): lattice beam FE against the homogenized continuum.

``loads`` turns the spec's load cases into boundary conditions, ``run`` solves both
models and compares them, ``outputs`` writes VTU, PNG and the report section.
"""

from .loads import BoundaryConditions, boundary_conditions, region_mask
from .outputs import write_simulation
from .run import CaseResult, Simulation, built_lattice, periodic_share, simulate, stiffness_field

__all__ = ["BoundaryConditions", "boundary_conditions", "region_mask", "simulate", "Simulation", "CaseResult",
           "built_lattice", "periodic_share", "stiffness_field", "write_simulation"]
