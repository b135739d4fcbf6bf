"""Machine-learned design of free-form cubic voxel cells (guided diffusion, Yang et al.).

* :mod:`.dataset`: the FE dataset of generated cells (:mod:`graded.voxelcell`, cubic-symmetric
  level sets stored as octants, labelled by C11, C12, C44 and the volume fraction);
* :mod:`.model`: the cell code, the regressor and the conditional denoiser in one weights file;
* :mod:`.train`, :mod:`.design`, :mod:`.evaluate`: fitting them, generating cells for a target,
  and measuring both against FE.

Only the dataset is imported here; the others load torch.
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
