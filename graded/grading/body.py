"""The body to fill: an axis-aligned box or a closed triangle mesh (STL / 3MF, mm)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..validation import ValidationError

__all__ = ["Body", "box_body", "mesh_body", "ray_parity", "INSIDE_TOL"]

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

    def excursion(self, points) -> float:
        """Largest distance (mm) of ``points`` (N, 3) outside the body; 0 if all lie inside.

        Exact for a box; for a mesh body, the unsigned distance to the surface of the points
        its inside test puts outside.
        """
        x = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        if len(x) == 0:
            return 0.0
        if self.mesh is None:
            return float(np.max(np.maximum(np.maximum(self.lo - x, x - self.hi), 0.0).max(axis=1)))
        import trimesh

        outside = x[~self.contains(x, tol=0.0)]
        if len(outside) == 0:
            return 0.0
        _, dist, _ = trimesh.proximity.closest_point(self.mesh, outside)
        return float(dist.max())

    def surface(self, margin: float = 0.0):
        """The closed surface of the body as a ``trimesh.Trimesh``.

        A box is meshed from its bounds, grown by ``margin`` mm on every side (see
        :data:`graded.build.CLIP_MARGIN`); a mesh body is returned as it is.
        """
        if self.mesh is not None:
            return self.mesh
        import trimesh

        return trimesh.creation.box(bounds=np.stack([self.lo - margin, self.hi + margin]))

    def contains(self, x: np.ndarray, *, tol: float | None = None) -> np.ndarray:
        """Inside test for points (N, 3) -> (N,) bool, with a tolerance in mm.

        Boxes: exact comparison with the bounds. Meshes: ray parity (:func:`ray_parity`);
        a point also counts as inside if one of its eight neighbours ``(+-tol, +-tol, +-tol)``
        is, so nodes lying on the surface (faces, edges, corners) are kept.
        """
        x = np.asarray(x, dtype=np.float64).reshape(-1, 3)
        tol = INSIDE_TOL * self.diagonal if tol is None else tol
        inside = np.all((x >= self.lo - tol) & (x <= self.hi + tol), axis=1)
        if self.mesh is None or not inside.any():
            return inside
        idx = np.flatnonzero(inside)
        tri = np.asarray(self.mesh.triangles, dtype=np.float64)
        res = ray_parity(tri, x[idx])
        if tol > 0:
            octants = np.array([[a, b, c] for a in (-1, 1) for b in (-1, 1) for c in (-1, 1)], dtype=np.float64)
            for shift in octants * tol:
                todo = ~res
                if not todo.any():
                    break
                res[todo] = ray_parity(tri, x[idx[todo]] + shift)
        inside[idx] = res
        return inside


#: A fixed generic rotation applied before casting rays along +z, so rays do not run
#: through the edges and vertices of meshes aligned with the axes (boxes, extrusions).
_RAY_FRAME = np.linalg.qr(np.array([[0.8914, 0.2113, -0.4012], [0.3271, -0.9127, 0.2448], [0.3139, 0.3496, 0.8827]]))[0]


def ray_parity(triangles: np.ndarray, x: np.ndarray, *, chunk: int = 2_000_000) -> np.ndarray:
    """Inside test of a closed triangle mesh by the parity of ray crossings.

    Rays run along +z of a fixed generic frame; triangles are binned on a 2D grid of
    their projected bounds, so each point tests only the few triangles above it.

    Parameters
    ----------
    triangles : ndarray, shape (F, 3, 3)
    x : ndarray, shape (N, 3)

    Returns
    -------
    ndarray, shape (N,), bool
    """
    tri = np.asarray(triangles, dtype=np.float64) @ _RAY_FRAME
    p = np.asarray(x, dtype=np.float64).reshape(-1, 3) @ _RAY_FRAME
    F, N = len(tri), len(p)
    if N == 0 or F == 0:
        return np.zeros(N, dtype=bool)
    lo = tri[:, :, :2].min(axis=(0, 1))
    hi = tri[:, :, :2].max(axis=(0, 1))
    G = int(np.clip(np.sqrt(F), 1, 512))
    size = np.maximum((hi - lo) / G, 1e-300)
    tlo = np.clip(((tri[:, :, :2].min(axis=1) - lo) / size).astype(np.int64), 0, G - 1)
    thi = np.clip(((tri[:, :, :2].max(axis=1) - lo) / size).astype(np.int64), 0, G - 1)
    # (bin, triangle) pairs
    nx, ny = thi[:, 0] - tlo[:, 0] + 1, thi[:, 1] - tlo[:, 1] + 1
    cnt = nx * ny
    t_of = np.repeat(np.arange(F), cnt)
    k = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
    bi = tlo[t_of, 0] + k // ny[t_of]
    bj = tlo[t_of, 1] + k % ny[t_of]
    bins = bi * G + bj
    order = np.argsort(bins, kind="stable")
    bins, t_of = bins[order], t_of[order]
    start = np.searchsorted(bins, np.arange(G * G))
    stop = np.searchsorted(bins, np.arange(G * G), side="right")
    pb = ((p[:, :2] - lo) / size).astype(np.int64)
    valid = np.all((pb >= 0) & (pb < G), axis=1) & np.all(p[:, :2] <= hi, axis=1)
    pbin = np.where(valid, np.clip(pb[:, 0], 0, G - 1) * G + np.clip(pb[:, 1], 0, G - 1), 0)
    n_cand = np.where(valid, stop[pbin] - start[pbin], 0)
    crossings = np.zeros(N, dtype=np.int64)
    # process points in blocks so the (point, triangle) pairs stay bounded
    csum = np.cumsum(n_cand)
    s = 0
    while s < N:
        e = int(np.searchsorted(csum, (csum[s - 1] if s else 0) + chunk, side="right"))
        e = max(e, s + 1)
        pc = n_cand[s:e]
        pi = np.repeat(np.arange(s, e), pc)
        off = np.arange(pc.sum()) - np.repeat(np.cumsum(pc) - pc, pc)
        ti = t_of[start[pbin[pi]] + off]
        a, b, c = tri[ti, 0], tri[ti, 1], tri[ti, 2]
        q = p[pi]
        # barycentric coordinates of q in the projected triangle
        v0, v1, v2 = b[:, :2] - a[:, :2], c[:, :2] - a[:, :2], q[:, :2] - a[:, :2]
        den = v0[:, 0] * v1[:, 1] - v1[:, 0] * v0[:, 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = (v2[:, 0] * v1[:, 1] - v1[:, 0] * v2[:, 1]) / den
            v = (v0[:, 0] * v2[:, 1] - v2[:, 0] * v0[:, 1]) / den
        hit = (den != 0) & (u >= 0) & (v >= 0) & (u + v <= 1)
        z = a[:, 2] + u * (b[:, 2] - a[:, 2]) + v * (c[:, 2] - a[:, 2])
        hit &= z > q[:, 2]
        crossings += np.bincount(pi[hit], minlength=N)
        s = e
    return crossings % 2 == 1


def box_body(size, origin=(0.0, 0.0, 0.0)) -> Body:
    """The box ``[origin, origin + size]`` (mm)."""
    lo = np.asarray(origin, dtype=np.float64).reshape(3)
    return Body(lo=lo, hi=lo + np.asarray(size, dtype=np.float64).reshape(3), mesh=None, name="box")


def _load_3mf(path: Path):
    """All triangle objects of a 3MF (lib3mf reader of graded.io), as one trimesh."""
    import trimesh

    from ..io import read_3mf

    _, objects, _ = read_3mf(path)
    parts = [trimesh.Trimesh(o.vertices, o.triangles, process=False) for o in objects if len(o.triangles)]
    if not parts:
        return trimesh.Trimesh()
    return trimesh.util.concatenate(parts) if len(parts) > 1 else parts[0]


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
        raise ValidationError(
            field, f"{path} does not exist", "give the path of an .stl or .3mf file, relative to the spec"
        )
    try:
        if path.suffix.lower() == ".3mf":
            loaded = _load_3mf(path)
        else:
            loaded = trimesh.load(str(path), force="mesh")
    except ValidationError:
        raise
    except Exception as exc:  # readers raise many kinds for unreadable files
        raise ValidationError(
            field, f"cannot read {path.name}: {exc}", "give a binary/ASCII STL or a 3MF file"
        ) from None
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
