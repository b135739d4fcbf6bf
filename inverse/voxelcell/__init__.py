"""Machine-learned design of free-form cubic voxel cells: the FE dataset of generated cells.

Cells come from :mod:`graded.voxelcell` (cubic-symmetric level sets stored as octants) and are
labelled by their three cubic constants and volume fraction (:func:`graded.voxelcell.cubic_labels`).
"""

from .dataset import (
    RESOLUTION,
    VOXEL_BOUNDS,
    VoxelDataset,
    generate_voxel_dataset,
    load_voxel_dataset,
    regenerate_cell,
    voxel_bounds,
)

__all__ = [
    "RESOLUTION",
    "VOXEL_BOUNDS",
    "VoxelDataset",
    "generate_voxel_dataset",
    "load_voxel_dataset",
    "regenerate_cell",
    "voxel_bounds",
]
