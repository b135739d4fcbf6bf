"""The body to fill: an axis-aligned box or a closed triangle mesh (STL / 3MF, mm)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import ValidationError

__all__ = ["Body", "box_body", "mesh_body", "INSIDE_TOL"]

#: Points this far outside the surface (relative to the body's bounding-box diagonal)
#: still count as inside: lattice nodes placed exactly on a face of a box must survive
#: the round-off of the phase-field inversion (~1e-12 relative).
INSIDE_TOL = 1e-9


@dataclass(frozen=True)
class Body:
    """A solid region.

    Attributes
    ----------
    lo, hi : ndarray, shape (3,)
        Axis-aligned bounds (mm).
    mesh : trimesh.Trimesh or None
        Closed surface; ``None`` for a box (then the body is exactly ``[lo, hi]``).
    name : str
        Short description for reports.
    """

    lo: np.ndarray
    hi: np.ndarray
    mesh: object | None = None
    name: str = "box"

    @property
    def diagonal(self) -> float:
        return float(np.linalg.norm(self.hi - self.lo))

    def contains(self, x: np.ndarray, *, tol: float | None = None) -> np.ndarray:
        """Inside test for points (N, 3) -> (N,) bool, with a tolerance in mm.

        Boxes: exact comparison with the bounds. Meshes: the winding-number / ray test of
        trimesh, and points within ``tol`` of the surface count as inside.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        tol = INSIDE_TOL * self.diagonal if tol is None else tol
        inside = np.all((x >= self.lo - tol) & (x <= self.hi + tol), axis=1)
        if self.mesh is None or not inside.any():
            return inside
        idx = np.flatnonzero(inside)
        res = np.asarray(self.mesh.contains(x[idx]), dtype=bool)
        if tol > 0 and not res.all():
            out = idx[~res]
            _, dist, _ = self.mesh.nearest.on_surface(x[out])
            res[~res] = dist <= tol
        inside[idx] = res
        return inside


def box_body(size, origin=(0.0, 0.0, 0.0)) -> Body:
    """The box ``[origin, origin + size]`` (mm)."""
    lo = np.asarray(origin, dtype=np.float64).reshape(3)
    return Body(lo=lo, hi=lo + np.asarray(size, dtype=np.float64).reshape(3), mesh=None, name="box")


def mesh_body(path, *, field: str = "body.file") -> Body:
    """Load a closed STL or 3MF surface (mm) as a body.

    Raises
    ------
    ValidationError
        If the file cannot be read, holds no triangles, or is not watertight (a body must
        enclose a volume for the inside test to mean anything).
    """
    import trimesh

    path = Path(path)
    if not path.is_file():
        raise ValidationError(field, f"{path} does not exist", "give the path of an .stl or .3mf file, relative to the spec")
    try:
        loaded = trimesh.load(str(path), force="mesh")
    except Exception as exc:  # trimesh raises many kinds for unreadable files
        raise ValidationError(field, f"cannot read {path.name}: {exc}", "give a binary/ASCII STL or a 3MF file") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise ValidationError(field, f"{path.name} holds no triangles", "give a closed triangle mesh")
    mesh = loaded
    mesh.merge_vertices()
    if not mesh.is_watertight:
        n_open = int(len(trimesh.grouping.group_rows(mesh.edges_sorted, require_count=1)))
        raise ValidationError(
            field,
            f"{path.name} is not a closed surface ({n_open} boundary edges); the body must enclose a volume",
            "repair the mesh (close holes, remove non-manifold edges) in your CAD tool or with trimesh.repair",
        )
    if mesh.volume < 0:
        mesh.invert()
    lo, hi = mesh.bounds
    return Body(lo=np.asarray(lo, dtype=np.float64), hi=np.asarray(hi, dtype=np.float64), mesh=mesh, name=path.name)
