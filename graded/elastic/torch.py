"""Differentiable torch versions of what the networks need: Bond rotation, 6D rotations, packing.

Import explicitly (``from graded.elastic import torch as et``); ``graded`` itself never
imports torch. The index tables are shared with the numpy implementation, so the two
cannot drift apart.
"""

from __future__ import annotations

import torch

from ._index import BOND_COL_K, BOND_COL_L, BOND_ROW_I, BOND_ROW_J, BOND_SHEAR, FROM_9, FROM_21, TRIU

__all__ = ["bond_matrix", "rotate_voigt", "rotation_from_6d", "to_21", "from_21", "from_9"]

_RI, _RJ, _CK, _CL = (torch.as_tensor(a) for a in (BOND_ROW_I, BOND_ROW_J, BOND_COL_K, BOND_COL_L))
_SHEAR = torch.as_tensor(BOND_SHEAR)
_TRIU0, _TRIU1 = torch.as_tensor(TRIU[0]), torch.as_tensor(TRIU[1])
_FROM21 = torch.as_tensor(FROM_21)
_FROM9 = torch.as_tensor(FROM_9)


def bond_matrix(R: torch.Tensor) -> torch.Tensor:
    """Bond matrix (SI Eqs. 8-9) of rotations (..., 3, 3) -> (..., 6, 6)."""
    a = R[..., _RI, _CK] * R[..., _RJ, _CL]
    b = R[..., _RI, _CL] * R[..., _RJ, _CK]
    return a + _SHEAR.to(R.dtype) * b


def rotate_voigt(C: torch.Tensor, R: torch.Tensor) -> torch.Tensor:
    """``K(R) C K(R)^T`` for C (..., 6, 6), R (..., 3, 3)."""
    K = bond_matrix(R)
    return K @ C @ K.transpose(-1, -2)


def rotation_from_6d(a: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Gram-Schmidt rotation (SI Eq. 6) from (..., 6) -> (..., 3, 3), columns b1, b2, b3."""
    a1, a2 = a[..., :3], a[..., 3:]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(eps)
    u = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = u / u.norm(dim=-1, keepdim=True).clamp_min(eps)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def to_21(C: torch.Tensor) -> torch.Tensor:
    """(..., 6, 6) -> (..., 21) upper triangle, row by row."""
    return C[..., _TRIU0, _TRIU1]


def from_21(c: torch.Tensor) -> torch.Tensor:
    """(..., 21) -> symmetric (..., 6, 6)."""
    return c[..., _FROM21]


def from_9(c: torch.Tensor) -> torch.Tensor:
    """(..., 9) orthotropic constants -> (..., 6, 6) with zeros elsewhere."""
    pad = torch.cat([c, torch.zeros(c.shape[:-1] + (1,), dtype=c.dtype, device=c.device)], dim=-1)
    return pad[..., _FROM9]
