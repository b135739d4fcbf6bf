"""Elastic-tensor algebra (numpy). Torch versions: ``graded.elastic.torch``.

Conventions: Voigt order 11, 22, 33, 23, 13, 12 with engineering shear strain;
stiffness normalised by the base material's Young's modulus unless stated.
"""

from .metrics import check_admissible, is_admissible, nmse, r2_score
from .rotation import (
    as_rotation,
    axis_angle_to_matrix,
    bond_matrix,
    matrix_to_axis_angle,
    rotate_voigt,
    rotation_from_6d,
    rotation_to_6d,
)
from .surface import directional_modulus, sphere_directions
from .voigt import NAMES_9, NAMES_21, from_9, from_21, tensor_to_voigt, to_9, to_21, voigt_to_tensor

__all__ = [
    "voigt_to_tensor",
    "tensor_to_voigt",
    "to_21",
    "from_21",
    "to_9",
    "from_9",
    "NAMES_21",
    "NAMES_9",
    "bond_matrix",
    "rotate_voigt",
    "axis_angle_to_matrix",
    "matrix_to_axis_angle",
    "rotation_from_6d",
    "rotation_to_6d",
    "as_rotation",
    "directional_modulus",
    "sphere_directions",
    "nmse",
    "r2_score",
    "is_admissible",
    "check_admissible",
]
