"""What a printable mesh is, in numbers: volume, density, size, closure, bodies, thinnest strut."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import trimesh

__all__ = ["MeshFacts", "mesh_facts"]


@dataclass(frozen=True)
class MeshFacts:
    """Facts of a triangle mesh in millimetres.

    Attributes
    ----------
    volume : float
        Enclosed volume, mm^3.
    reference_volume : float
        Volume the density refers to: the body (when the lattice was clipped to one) or the
        axis-aligned bounding box of the mesh, mm^3.
    relative_density : float
        ``volume / reference_volume``.
    triangles, vertices : int
    watertight : bool
        Every edge is shared by exactly two triangles.
    is_volume : bool
        Watertight, consistently wound outward, positive volume (trimesh's ``is_volume``).
    bodies : int
        Connected solids: closed shells enclosing positive volume.
    voids : int
        Enclosed cavities: shells with negative (inward) volume, inside a body. They are valid
        solids but trap powder in powder-bed printing, so they are reported.
    min_strut_diameter : float
        Thinnest strut diameter that was meshed (design value), mm; NaN if unknown.
    bounds : tuple
        ``((xmin, ymin, zmin), (xmax, ymax, zmax))`` in mm.
    """

    volume: float
    reference_volume: float
    relative_density: float
    triangles: int
    vertices: int
    watertight: bool
    is_volume: bool
    bodies: int
    voids: int
    min_strut_diameter: float
    bounds: tuple

    @property
    def printable(self) -> bool:
        """Watertight, a volume, one body."""
        return self.watertight and self.is_volume and self.bodies == 1

    def to_dict(self) -> dict:
        """JSON-ready dict (plain floats, ints, bools, lists)."""
        out = asdict(self)
        out["bounds"] = [list(map(float, c)) for c in self.bounds]
        out["printable"] = self.printable
        return out


def _shells(mesh: trimesh.Trimesh) -> tuple[int, int]:
    """(shells with positive volume, shells with negative volume), shells = vertex-connected."""
    faces = np.asarray(mesh.faces, dtype=np.int64)
    if len(faces) == 0:
        return 0, 0
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(mesh.vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    adj = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    count, labels = connected_components(adj, directed=False)
    flab = labels[faces[:, 0]]
    tri = np.asarray(mesh.vertices, dtype=np.float64)[faces]
    vol6 = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2]))
    vols = np.bincount(flab, weights=vol6, minlength=count)
    has_faces = np.bincount(flab, minlength=count) > 0
    return int(np.sum(has_faces & (vols > 0))), int(np.sum(has_faces & (vols < 0)))


def mesh_facts(
    mesh: trimesh.Trimesh,
    *,
    min_strut_diameter: float = float("nan"),
    reference_volume: float | None = None,
) -> MeshFacts:
    """Measure ``mesh``.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Triangle mesh in mm.
    min_strut_diameter : float, optional
        Thinnest meshed strut (mm), recorded as given.
    reference_volume : float, optional
        Volume for the relative density (mm^3); default the mesh's bounding-box volume.
    """
    bounds = np.asarray(mesh.bounds, dtype=np.float64) if len(mesh.vertices) else np.zeros((2, 3))
    if reference_volume is None:
        reference_volume = float(np.prod(bounds[1] - bounds[0]))
    volume = float(mesh.volume) if len(mesh.faces) else 0.0
    density = volume / reference_volume if reference_volume > 0 else float("nan")
    bodies, voids = _shells(mesh)
    return MeshFacts(
        volume=volume,
        reference_volume=float(reference_volume),
        relative_density=float(density),
        triangles=int(len(mesh.faces)),
        vertices=int(len(mesh.vertices)),
        watertight=bool(mesh.is_watertight),
        is_volume=bool(mesh.is_volume),
        bodies=bodies,
        voids=voids,
        min_strut_diameter=float(min_strut_diameter),
        bounds=(tuple(map(float, bounds[0])), tuple(map(float, bounds[1]))),
    )
