"""Spinodoid cells (Kumar et al., npj Comput. Mater. 2020): anisotropic Gaussian random fields
thresholded into bicontinuous solids, periodic on the unit cell."""

from .cell import SpinodoidCell, generate_cell, threshold
from .connectivity import ConnectivityReport, keep_percolating, periodic_components
from .field import (
    RHO_RANGE,
    THETA_MIN_DEG,
    SpinodoidDesign,
    WaveSet,
    field_at,
    field_on_grid,
    in_cones,
    sample_waves,
)

__all__ = [
    "SpinodoidDesign",
    "SpinodoidCell",
    "WaveSet",
    "ConnectivityReport",
    "generate_cell",
    "threshold",
    "sample_waves",
    "field_on_grid",
    "field_at",
    "in_cones",
    "keep_percolating",
    "periodic_components",
    "RHO_RANGE",
    "THETA_MIN_DEG",
]
