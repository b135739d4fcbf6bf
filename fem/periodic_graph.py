"""Periodic beam graphs: nodes inside one cell and bonds with integer lattice offsets."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

__all__ = ["PeriodicGraph"]


@dataclass(frozen=True, eq=False)
class PeriodicGraph:
    """A periodic truss in reference (cell) coordinates.

    Bond ``k`` joins node ``bonds[k, 0]`` to the image of node ``bonds[k, 1]`` shifted by
    the integer lattice vector ``offsets[k]``: in a cell with basis ``F`` (columns =
    translation vectors) it runs from ``F @ nodes[i]`` to ``F @ (nodes[j] + offsets[k])``.

    Attributes
    ----------
    nodes : ndarray, shape (N, 3), float64
        Reference positions, normally in [0, 1)^3.
    bonds : ndarray, shape (M, 2), int64
    offsets : ndarray, shape (M, 3), int64
    membership : ndarray, shape (M, P), bool
        Optional: which of P constituent topologies each bond belongs to.
    """

    nodes: np.ndarray
    bonds: np.ndarray
    offsets: np.ndarray
    membership: np.ndarray | None = field(default=None)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", np.ascontiguousarray(self.nodes, dtype=np.float64).reshape(-1, 3))
        object.__setattr__(self, "bonds", np.ascontiguousarray(self.bonds, dtype=np.int64).reshape(-1, 2))
        object.__setattr__(self, "offsets", np.ascontiguousarray(self.offsets, dtype=np.int64).reshape(-1, 3))
        if len(self.bonds) != len(self.offsets):
            raise ValueError("offsets: need one integer offset per bond")
        if len(self.bonds) == 0:
            raise ValueError("bonds: a periodic graph needs at least one bond")

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_bonds(self) -> int:
        return len(self.bonds)

    def bond_vectors(self, basis: np.ndarray) -> np.ndarray:
        """Bond vectors ``F (X_j + n - X_i)`` for bases of shape (..., 3, 3) -> (..., M, 3)."""
        ref = self.nodes[self.bonds[:, 1]] + self.offsets - self.nodes[self.bonds[:, 0]]
        return np.einsum("...ab,mb->...ma", np.asarray(basis, dtype=np.float64), ref)

    def components(self) -> np.ndarray:
        """Connected-component label of every node (periodic images joined), shape (N,)."""
        n = self.n_nodes
        a = coo_matrix((np.ones(self.n_bonds), (self.bonds[:, 0], self.bonds[:, 1])), shape=(n, n))
        return connected_components(a, directed=False)[1]
