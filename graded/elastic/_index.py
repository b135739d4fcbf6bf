"""Index tables shared by the numpy and torch implementations (no array library needed)."""

from __future__ import annotations

import numpy as np

#: Voigt index I -> tensor index pair (i, j), order 11, 22, 33, 23, 13, 12.
VOIGT_PAIRS = ((0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1))

#: (3, 3) tensor pair -> Voigt index.
TENSOR_TO_VOIGT = np.array([[0, 5, 4], [5, 1, 3], [4, 3, 2]], dtype=np.int64)

_I = np.array([p[0] for p in VOIGT_PAIRS])
_J = np.array([p[1] for p in VOIGT_PAIRS])
#: Bond matrix M[I, J] = R[i_I, k_J] R[j_I, l_J] + SHEAR[J] * R[i_I, l_J] R[j_I, k_J]
BOND_ROW_I = np.repeat(_I[:, None], 6, axis=1)  # i_I
BOND_ROW_J = np.repeat(_J[:, None], 6, axis=1)  # j_I
BOND_COL_K = np.repeat(_I[None, :], 6, axis=0)  # k_J
BOND_COL_L = np.repeat(_J[None, :], 6, axis=0)  # l_J
BOND_SHEAR = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])[None, :].repeat(6, axis=0)

#: Upper triangle (row by row) of a 6x6 matrix: the 21 independent constants.
TRIU = np.triu_indices(6)
#: (6, 6) -> position in the 21-vector (symmetric).
FROM_21 = np.zeros((6, 6), dtype=np.int64)
FROM_21[TRIU] = np.arange(21)
FROM_21[(TRIU[1], TRIU[0])] = np.arange(21)

#: The 9 orthotropic constants C11, C12, C13, C22, C23, C33, C44, C55, C66 as (row, col).
ORTHO_ROWS = np.array([0, 0, 0, 1, 1, 2, 3, 4, 5])
ORTHO_COLS = np.array([0, 1, 2, 1, 2, 2, 3, 4, 5])
#: (6, 6) -> position in a 10-vector (9 constants + a zero slot at index 9).
FROM_9 = np.full((6, 6), 9, dtype=np.int64)
FROM_9[ORTHO_ROWS, ORTHO_COLS] = np.arange(9)
FROM_9[ORTHO_COLS, ORTHO_ROWS] = np.arange(9)

#: Names of the 21 constants, e.g. "C11", "C12", ..., "C66".
NAMES_21 = tuple(f"C{i + 1}{j + 1}" for i, j in zip(*TRIU))
NAMES_9 = tuple(f"C{i + 1}{j + 1}" for i, j in zip(ORTHO_ROWS, ORTHO_COLS))
