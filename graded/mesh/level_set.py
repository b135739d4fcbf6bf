"""One watertight solid from a level function on a voxel grid, clipped to the body.

The part meshers of the voxel-based families (spinodoids, free-form voxel cells) sample a level
function ``g`` (solid where ``g <= 0``) at the voxel centres of the body's box and hand it here:
a box body clips in the level function (maximum with its signed distance, so its faces are
exact and no boolean is needed); islands of the thresholded grid (face connectivity) are moved
to the void side; marching cubes (scikit-image, outward normals) extracts the surface;
manifold3d intersects it with a mesh body; a clip that splits off shells keeps the largest.
The result is a closed, oriented 2-manifold in millimetres.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import manifold3d as mf
import numpy as np
import trimesh
from scipy import ndimage
from skimage.measure import marching_cubes

from ..grading.body import Body
from ..validation import fail
from .facts import MeshFacts, mesh_facts
from .solid import to_manifold, to_trimesh

__all__ = ["LevelSetPart", "mesh_level_set", "shell_count"]

log = logging.getLogger("graded.mesh")

#: Level value given to the padding around the grid: far on the void side, so marching cubes
#: closes the solid half a voxel outside the body, where the clip then cuts it.
_VOID_PAD = 1e3
#: Level value given to islands mirrored to the void side (exact zeros would stay on the surface).
_MIRROR_MIN = 1e-9


@dataclass(frozen=True)
class LevelSetPart:
    """A meshed level set.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        One closed, oriented solid (mm).
    facts : MeshFacts
        Volume, relative density (against the body's volume), watertightness, shell count.
    removed_shells : int
        Islands removed (on the grid, and shells split off by the clip).
    removed_volume : float
        Their volume (mm^3).
    voxel_size : float
        Sampling step of the level function (mm).
    """

    mesh: trimesh.Trimesh
    facts: MeshFacts
    removed_shells: int
    removed_volume: float
    voxel_size: float


def mesh_level_set(g: np.ndarray, origin: np.ndarray, h: float, body: Body, *,
                   progress: Callable[[int, int, str], None] | None = None, label: str = "part") -> LevelSetPart:
    """Mesh ``g <= 0`` clipped to ``body`` (module docstring).

    Parameters
    ----------
    g : ndarray, shape (n1, n2, n3), float64
        Level function at voxel centres, solid where <= 0; overwritten.
    origin : ndarray, shape (3,)
        Centre of voxel (0, 0, 0), mm.
    h : float
        Voxel size, mm.
    body : Body
    progress : callable, optional
        ``progress(done, 3, message)`` after the surface, the clip and the shells.
    label : str
        Family name in messages.

    Returns
    -------
    LevelSetPart

    Raises
    ------
    ValidationError
        ``level``: no solid inside the body.
    """
    if body.mesh is None:
        axes = [origin[d] + h * np.arange(g.shape[d]) for d in range(3)]
        box = [np.maximum(body.lo[d] - axes[d], axes[d] - body.hi[d]) for d in range(3)]
        np.maximum(g, box[0][:, None, None], out=g)
        np.maximum(g, box[1][None, :, None], out=g)
        np.maximum(g, box[2][None, None, :], out=g)
    labels, count = ndimage.label(g <= 0, structure=ndimage.generate_binary_structure(3, 1))
    if count == 0:
        fail("level", f"the {label} level set has no solid inside the body", None)
    sizes = np.bincount(labels.reshape(-1))[1:]
    main = int(np.argmax(sizes)) + 1
    others = (labels > 0) & (labels != main)
    g[others] = np.maximum(-g[others], _MIRROR_MIN)
    del labels, others
    padded = np.pad(-g, 1, constant_values=-_VOID_PAD)  # solid where the padded volume is > 0
    verts, faces, _, _ = marching_cubes(padded, level=0.0, spacing=(h, h, h), allow_degenerate=False)
    del padded
    verts = verts + (origin - h)
    faces = faces[:, ::-1]  # scikit-image winds its triangles inward for this sign convention
    raw = mf.Manifold(mf.Mesh64(vert_properties=np.ascontiguousarray(verts, dtype=np.float64),
                                tri_verts=np.ascontiguousarray(faces, dtype=np.uint32)))
    del verts, faces
    if raw.status() != mf.Error.NoError or raw.is_empty():
        raise RuntimeError(f"mesh: marching cubes gave no closed manifold (manifold3d status {raw.status().name})")
    if raw.volume() < 0:
        raise RuntimeError("mesh: marching cubes surface is inside out")
    if progress:
        progress(1, 3, f"{label} surface extracted")
    solid = raw if body.mesh is None else raw ^ to_manifold(body.mesh, "body")
    if progress:
        progress(2, 3, "clipped to the body")
    mesh = to_trimesh(solid)
    removed, n_removed = float(sizes.sum() - sizes[main - 1]) * h**3, int(count - 1)
    if shell_count(mesh) > 1:  # the clip by a mesh body (or a corner contact) split it
        shells = solid.decompose()
        vols = np.array([sh.volume() for sh in shells])
        keep = int(np.argmax(vols))
        removed += float(vols.sum() - vols[keep])
        n_removed += len(shells) - 1
        mesh = to_trimesh(shells[keep])
    if n_removed:
        log.info("%s part: removed %d islands (%.3g mm^3)", label, n_removed, removed)
    body_volume = float(np.prod(body.hi - body.lo)) if body.mesh is None else float(body.mesh.volume)
    facts = mesh_facts(mesh, reference_volume=body_volume)
    if progress:
        progress(3, 3, f"{label} part meshed")
    return LevelSetPart(mesh=mesh, facts=facts, removed_shells=n_removed, removed_volume=removed, voxel_size=h)


def shell_count(mesh: trimesh.Trimesh) -> int:
    """Vertex-connected shells of a triangle mesh."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(mesh.faces, dtype=np.int64)
    n = len(mesh.vertices)
    adj = coo_matrix((np.ones(2 * len(f), dtype=np.int8), (np.r_[f[:, 0], f[:, 1]], np.r_[f[:, 1], f[:, 2]])),
                     shape=(n, n))
    return int(connected_components(adj, directed=False)[0])
