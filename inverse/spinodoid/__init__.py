"""Machine-learned design of spinodoid cells: FE dataset, forward model, tandem inverse model.

Kumar et al. (npj Comput. Mater. 2020): design parameters ``(rho, theta_1, theta_2, theta_3)``
-> the nine orthotropic constants of the cell in its principal frame (forward), and a target
stiffness -> designs (inverse), with the rotation ``R`` of the principal axes taken from the
target's orthotropic frame.
"""

from .dataset import (
    SPINODOID,
    SPINODOID_BOUNDS,
    SpinodoidDataset,
    generate_spinodoid_dataset,
    label_spinodoids,
    load_spinodoid_dataset,
    sample_spinodoid_designs,
)

__all__ = [
    "SPINODOID",
    "SPINODOID_BOUNDS",
    "SpinodoidDataset",
    "generate_spinodoid_dataset",
    "label_spinodoids",
    "load_spinodoid_dataset",
    "sample_spinodoid_designs",
]
