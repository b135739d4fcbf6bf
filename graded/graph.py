"""The graded lattice as a beam graph: what the grading engine makes and the mesher eats."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["LatticeGraph"]


@dataclass
class LatticeGraph:
    """A (non-periodic) truss: nodes joined by circular struts.

    Attributes
    ----------
    nodes : ndarray, shape (N, 3), float64
        Node positions in millimetres.
    struts : ndarray, shape (M, 2), int64
        Node indices of each strut, ``struts[:, 0] != struts[:, 1]``.
    diameters : ndarray, shape (M,), float64
        Strut diameters in millimetres (uniform along each strut).
    meta : dict
        Free-form provenance (spec name, control points, ...), JSON-serialisable.
    """

    nodes: np.ndarray
    struts: np.ndarray
    diameters: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.nodes = np.ascontiguousarray(self.nodes, dtype=np.float64).reshape(-1, 3)
        self.struts = np.ascontiguousarray(self.struts, dtype=np.int64).reshape(-1, 2)
        self.diameters = np.ascontiguousarray(self.diameters, dtype=np.float64).reshape(-1)
        if len(self.diameters) != len(self.struts):
            raise ValueError(
                f"diameters: {len(self.diameters)} values for {len(self.struts)} struts; give one per strut"
            )
        if len(self.struts) and (self.struts.min() < 0 or self.struts.max() >= len(self.nodes)):
            raise ValueError("struts: node index out of range; indices must be in [0, len(nodes))")

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_struts(self) -> int:
        return len(self.struts)

    @property
    def lengths(self) -> np.ndarray:
        """Strut lengths in mm, shape (M,)."""
        return np.linalg.norm(self.nodes[self.struts[:, 1]] - self.nodes[self.struts[:, 0]], axis=1)

    @property
    def strut_volume(self) -> float:
        """Sum of strut cylinder volumes (node to node, no overlap correction), mm^3."""
        return float(np.sum(np.pi * self.diameters**2 / 4.0 * self.lengths))

    def bounds(self) -> np.ndarray:
        """Axis-aligned bounds of the nodes, shape (2, 3): min and max corner (mm)."""
        return np.stack([self.nodes.min(axis=0), self.nodes.max(axis=0)])
