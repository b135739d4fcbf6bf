"""Free-form cubic-symmetric voxel unit cells: symmetry, generation and FE labels.

A cell is an ``n^3`` bool grid (``n`` even) invariant under the 48 operations of the cube,
stored as its ``(n/2)^3`` octant. :func:`generate_cell` draws connected, printable cells from
random trigonometric and smoothed-noise level sets (no topology optimisation), and
:func:`cubic_labels` labels them by voxel FE with (C11, C12, C44, volume fraction).
"""

from .code import CellCode, cell_fields, fit_cell_code, fundamental_weights, signed_distance
from .fields import NoiseParams, TrigParams, noise_field, sample_noise, sample_trig, trig_field
from .generate import (
    FAMILIES,
    ISLAND_ROUNDS,
    MAX_ISLAND_FRACTION,
    MAX_THIN_FRACTION,
    RHO_RANGE,
    GeneratorSettings,
    VoxelCell,
    cubic_level_set,
    generate_cell,
    generate_cells,
    level_set_cell,
    thin_fraction,
)
from .label import (
    LABEL_LOAD_CASES,
    LABEL_NAMES,
    LABEL_RTOL,
    CubicLabels,
    cubic_labels,
    cubic_projection,
    cubic_stiffness,
)
from .symmetry import (
    CUBIC_OPERATIONS,
    CubicOperation,
    apply_operation,
    expand_octant,
    fundamental_indices,
    fundamental_size,
    is_cubic_symmetric,
    octant_of,
    orbit_index,
    pack_fundamental,
    symmetrise,
    symmetrise_octant,
    unpack_fundamental,
)

__all__ = [
    "CubicOperation",
    "CUBIC_OPERATIONS",
    "apply_operation",
    "orbit_index",
    "symmetrise",
    "symmetrise_octant",
    "is_cubic_symmetric",
    "octant_of",
    "expand_octant",
    "fundamental_size",
    "fundamental_indices",
    "pack_fundamental",
    "unpack_fundamental",
    "TrigParams",
    "NoiseParams",
    "trig_field",
    "noise_field",
    "sample_trig",
    "sample_noise",
    "FAMILIES",
    "RHO_RANGE",
    "MAX_THIN_FRACTION",
    "MAX_ISLAND_FRACTION",
    "ISLAND_ROUNDS",
    "GeneratorSettings",
    "VoxelCell",
    "cubic_level_set",
    "level_set_cell",
    "CellCode",
    "cell_fields",
    "fit_cell_code",
    "fundamental_weights",
    "signed_distance",
    "thin_fraction",
    "generate_cell",
    "generate_cells",
    "LABEL_NAMES",
    "LABEL_LOAD_CASES",
    "LABEL_RTOL",
    "CubicLabels",
    "cubic_labels",
    "cubic_stiffness",
    "cubic_projection",
]
