"""Lattice graph -> one watertight, manifold, printable solid (manifold3d), in millimetres.

Shape
-----
Every strut is a (possibly tapered) cylinder drawn as a polygon prism, every node a ball of
its largest incident radius. Segment counts follow the chord tolerance
(:data:`~graded.mesh.tessellation.CHORD_TOL`, 10 um), and polygons are scaled to the circle's
area, so strut volumes equal ``pi r^2 L`` exactly (see :mod:`graded.mesh.tessellation`).

Speed: how the union is made
----------------------------
Measured on this project's 2-core machine, shared with other jobs (load average 3-7), whole
``mesh_graph`` call including facts; BCC / octet lattices, cell 2 mm, struts 0.3-0.5 mm
(``benchmarks/mesh.py``, figures in ``benchmarks/results/mesh.json``):

* ``method="union"``: one manifold3d ``batch_boolean`` of all balls and cylinders:
  200-270 struts/s under that load (about 450-500 on a quiet machine), flat in size.
* Threads do not help here: two threads running four 400-ball batch unions took 4.1 s
  against 3.9 s serially, and qhull calls in two threads took as long as in one (the GIL
  and two busy cores). Spatial tiling only reorders the same boolean work.
* ``method="joints"`` (default): per-node convex hulls of ball + strut stubs, stitched by
  tubes that share the hulls' cap rings (:mod:`graded.mesh.joints`); no boolean at all where
  the geometry is provably free of contacts, one batch union of the few parts that are not.
  One qhull call (~0.15 ms) per node plus vectorised array work: 2,700-3,400 struts/s
  for 2k-20k-strut BCC and octet lattices (8-10x the union, 250-360 struts/s in the same run). Superposed topologies
  (BCC + octet, with struts passing closer than their radii) send the overlapping struts to
  the union, which meshes them as a second stitched layer where it can
  (:data:`MAX_JOINT_LAYERS`); 1,100-1,350 struts/s there (4-5x the union).
* The stitched layers and the fallback parts are joined one boolean at a time, so progress is
  told between the steps; that also measured faster than one batch on the main job (2.9 s
  against 3.5 s for four parts). Tiles of a partitioned build (:mod:`graded.mesh.tiles`) keep
  the one batch: one tile of fuzz seed 212 lost its float32-closed seam joined step by step.

The joints are convex hulls, so concave webs between struts at a node are filled (a small
fillet). That adds a little volume over "balls + cylinders" and makes nodes slightly stiffer;
``method="union"`` gives the literal balls-and-cylinders solid when that matters.

Checks
------
The result is checked: manifold3d status must be ``NoError``, the solid non-empty with
positive volume, otherwise :class:`RuntimeError` names the status. Struts thinner than the
printer minimum raise :class:`~graded.validation.ValidationError` (``thin="raise"``, the
default) or are removed before meshing (``thin="drop"``, recorded in ``dropped_struts``;
dropping can leave islands, which the facts count in ``bodies``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import manifold3d as mf
import numpy as np
import trimesh

from ..graph import LatticeGraph
from ..validation import ValidationError, check_choice, check_positive, fail
from .facts import MeshFacts, mesh_facts
from .joints import build_joint_surface, strut_frames
from .tessellation import CHORD_TOL, area_scale, segments_for_radius, unit_ball_points

__all__ = [
    "Float32ClosureError",
    "ONE_PIECE_BYTES_PER_STRUT",
    "SolidMesh",
    "StrutGeometry",
    "keep_largest_body",
    "mesh_graph",
    "select_struts",
    "solid_core",
    "strut_geometry",
    "to_manifold",
    "to_trimesh",
    "unique_float32_rows",
]

Progress = Callable[[int, int, str], None]


@dataclass
class SolidMesh:
    """A meshed lattice.

    Attributes
    ----------
    mesh : trimesh.Trimesh
        Closed manifold triangle mesh, mm.
    facts : MeshFacts
    kept_struts : ndarray (k,) int64
        Indices (into the input graph) of the struts that were meshed.
    dropped_struts : ndarray (j,) int64
        Struts removed as thinner than the printer minimum (``thin="drop"``).
    stats : dict
        ``method``, ``seconds``, ``fallback_nodes``, ``fallback_struts``, ``islands_dropped``,
        ``chord_tol_mm``, ``min_polygon_width_mm`` (narrowest strut polygon across its flats;
        not below ``min_diameter`` when one is given); for ``method="joints"`` also ``joint_volume_mm3`` and
        ``tube_volume_mm3``: without fallback parts and clipping, the solid's volume is their
        sum, and ``strut volume - tube volume`` is what the joints replace (the stubs), so
        ``joint volume - that`` is the node material beyond the node-to-node struts.
    """

    mesh: trimesh.Trimesh
    facts: MeshFacts
    kept_struts: np.ndarray
    dropped_struts: np.ndarray
    stats: dict = field(default_factory=dict)


def to_manifold(mesh: trimesh.Trimesh, field_name: str = "body") -> mf.Manifold:
    """trimesh -> manifold3d, raising ValidationError if it is not a closed 2-manifold."""
    # plain C-ordered copies: trimesh's tracked array views are not accepted by manifold3d
    verts = np.array(np.asarray(mesh.vertices), dtype=np.float64, order="C")
    faces = np.array(np.asarray(mesh.faces), dtype=np.uint64, order="C")
    out = mf.Manifold(mf.Mesh64(vert_properties=verts, tri_verts=faces))
    if out.status() != mf.Error.NoError or out.is_empty():
        fail(
            field_name,
            f"is not a closed oriented 2-manifold (manifold3d status {out.status().name})",
            "repair the surface (close holes, fix normals, merge duplicate vertices) first",
        )
    return out


def to_trimesh(solid: mf.Manifold) -> trimesh.Trimesh:
    """manifold3d -> trimesh (float64 vertices, no re-processing)."""
    m = solid.to_mesh64()
    verts = np.asarray(m.vert_properties, dtype=np.float64)[:, :3]
    faces = np.asarray(m.tri_verts, dtype=np.int64)
    return trimesh.Trimesh(vertices=verts, faces=faces, process=False)


def _check_solid(solid: mf.Manifold, what: str) -> None:
    status = solid.status()
    if status != mf.Error.NoError:
        raise RuntimeError(f"mesh: manifold3d {what} failed with status {status.name}")
    if solid.is_empty() or solid.num_tri() == 0 or solid.volume() <= 0.0:
        raise RuntimeError(f"mesh: manifold3d {what} produced an empty solid (status {status.name})")


#: Smallest edge the exported mesh may keep, relative to float32 resolution: STL stores
#: float32 coordinates (ulp 4e-6 mm at 40 mm), and booleans leave sliver edges down to
#: 1e-10 mm whose ends would fuse on export and break watertightness. Welding collapses
#: such edges (at least 1e-5 mm: 10 nm, thousands of times below any printer's resolution).
WELD_ULPS = 4.0
WELD_MIN = 1e-5
#: Welding rounds, the tolerance growing tenfold each time (at most 1e-3 mm by default).
WELD_TRIES = 3


def unique_float32_rows(points: np.ndarray, return_counts: bool = False):
    """Distinct points of a float32 point set, as an STL reader merges vertices.

    Equality is exact on the float32 values (``-0.0`` equals ``0.0``), the same partition as
    ``np.unique(points, axis=0)``, found by two 1D sorts of 64-bit keys (x and y bits, then the
    group of (x, y) and the z bits): about 3x faster than the row-wise sort, which dominates the
    weld of a tiled part of tens of millions of triangles.

    Parameters
    ----------
    points : (N, 3) array_like, cast to float32
    return_counts : bool
        Also return how often each distinct point occurs.

    Returns
    -------
    unique : (U, 3) float32
        The distinct points, in no particular order.
    inverse : (N,) int64
        ``unique[inverse]`` equals the points.
    counts : (U,) int64, if ``return_counts``

    Examples
    --------
    >>> u, inv = unique_float32_rows([[0.0, 1.0, 2.0], [-0.0, 1.0, 2.0], [1.0, 1.0, 2.0]])
    >>> len(u), bool(inv[0] == inv[1]), bool(inv[0] != inv[2])
    (2, True, True)
    """
    a = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 3) + np.float32(0.0)  # -0.0 -> 0.0
    bits = a.view(np.uint32)
    xy = (bits[:, 0].astype(np.uint64) << np.uint64(32)) | bits[:, 1]
    _, group = np.unique(xy, return_inverse=True)
    del xy
    key = (group.reshape(-1).astype(np.uint64) << np.uint64(32)) | bits[:, 2]
    del group
    out = np.unique(key, return_index=True, return_inverse=True, return_counts=return_counts)
    uniq, inverse = a[out[1]], out[2].reshape(-1)
    return (uniq, inverse, out[3]) if return_counts else (uniq, inverse)


def weld_tolerance(scale: float) -> float:
    """Weld tolerance in mm of a solid whose coordinates reach ``scale`` mm (:data:`WELD_ULPS`)."""
    return max(WELD_MIN, WELD_ULPS * float(np.spacing(np.float32(scale))))


def _closed_in_float32(v: np.ndarray, tris: np.ndarray) -> bool:
    """Is the mesh still closed and 2-manifold (edge-wise) once vertices are stored as float32
    and coincident ones merged, as an STL reader does?"""
    v32 = np.ascontiguousarray(v, dtype=np.float32)
    _, inv = unique_float32_rows(v32)
    if len(_) == len(v32):
        return True
    t = inv.reshape(-1)[np.asarray(tris, dtype=np.int64)]
    if np.any((t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 2] == t[:, 0])):
        return False
    n = np.int64(len(_))
    a = np.concatenate([t[:, 0], t[:, 1], t[:, 2]])
    b = np.concatenate([t[:, 1], t[:, 2], t[:, 0]])
    fwd = a * n + b
    if len(np.unique(fwd)) != len(fwd):
        return False  # an edge used twice in the same direction: four sheets meet
    return bool(np.all(np.isin(b * n + a, fwd)))


class Float32ClosureError(RuntimeError):
    """The solid is closed in float64 but not once stored in float32 (STL/3MF), even after welding."""


def _weld_for_export(solid: mf.Manifold) -> tuple[mf.Manifold, bool]:
    """Make the solid survive float32 storage (STL/3MF) closed; returns (solid, welded?)."""
    m = solid.to_mesh64()
    v = np.asarray(m.vert_properties, dtype=np.float64)[:, :3]
    tris = np.array(m.tri_verts, dtype=np.uint64, order="C")
    if _closed_in_float32(v, tris):
        return solid, False
    scale = float(np.abs(v).max()) if len(v) else 1.0
    tol = weld_tolerance(scale)
    for _ in range(WELD_TRIES):
        welded = mf.Manifold(
            mf.Mesh64(
                vert_properties=np.array(v.astype(np.float32), dtype=np.float64, order="C"),
                tri_verts=tris,
                tolerance=tol,
            )
        ).simplify(tol)
        _check_solid(welded, "welding for float32 export")
        m = welded.to_mesh64()
        v = np.asarray(m.vert_properties, dtype=np.float64)[:, :3]
        tris = np.array(m.tri_verts, dtype=np.uint64, order="C")
        if _closed_in_float32(v, tris):
            return welded, True
        tol *= 10.0
    raise Float32ClosureError(
        f"mesh: the solid does not stay closed in float32 (STL/3MF precision) even after welding "
        f"edges up to {tol / 10:.1e} mm; it has near-touching features"
    )


def keep_largest_body(solid: mf.Manifold) -> tuple[mf.Manifold, int]:
    """Keep the body of the largest outer shell; return it and the number of bodies dropped.

    ``decompose`` splits by connected surfaces: a hollow part (a skin around a lattice) is an
    outer shell of positive volume and an inner shell of negative volume, which belong to one
    body. Without inner shells the largest shell is the body; with them, the other positive
    shells (islands, inside a cavity or not) are subtracted from the whole, which keeps the
    cavities of the body.
    """
    comps = solid.decompose()
    if len(comps) <= 1:
        return solid, 0
    vols = np.array([c.volume() for c in comps])
    main = int(np.argmax(vols))
    islands = [c for k, c in enumerate(comps) if k != main and vols[k] > 0]
    if not np.any(vols < 0):
        return comps[main], len(islands)
    if islands:
        solid = solid - mf.Manifold.batch_boolean(islands, mf.OpType.Add)
        _check_solid(solid, "dropping islands")
    return solid, len(islands)


def _ball(centre, radius, n) -> mf.Manifold:
    return mf.Manifold.hull_points(unit_ball_points(int(n)) * radius + centre)


def _cylinders(p, q, radii, segments, inset=None, phase_ids=None) -> list[mf.Manifold]:
    """Node-to-node (tapered) prisms: manifold3d cylinders mapped onto the strut frames.

    The local x, y, z axes go to the strut frame ``e1, e2, d`` turned about ``d`` by a
    per-strut fraction of a segment.
    ``inset`` (k, 2) moves the end caps this far from the node centres into the strut (mm),
    which keeps the caps of collinear struts from coinciding.
    """
    vec = q - p
    length = np.linalg.norm(vec, axis=1)
    d = vec / length[:, None]
    if inset is not None:
        p = p + d * inset[:, :1]
        length = length - inset[:, 0] - inset[:, 1]
    e1, e2 = strut_frames(d)
    # turn each polygon by its own fraction of a segment (golden-ratio sequence): equal
    # struts meeting at a node (e.g. two perpendicular edges of a cubic cell) then never
    # have exactly coincident polygon edges where their surfaces touch
    ids = np.arange(len(p)) if phase_ids is None else np.asarray(phase_ids)
    phase = (2.0 * np.pi / segments) * ((ids * 0.6180339887498949) % 1.0)
    c, s_ = np.cos(phase)[:, None], np.sin(phase)[:, None]
    e1, e2 = c * e1 + s_ * e2, c * e2 - s_ * e1
    frames = np.stack([e1, e2, d, p], axis=2)  # (k, 3, 4) affine maps
    return [
        mf.Manifold.cylinder(float(length[i]), float(radii[i, 0]), float(radii[i, 1]), int(segments[i])).transform(
            frames[i]
        )
        for i in range(len(p))
    ]


#: Peak memory of the one-piece path per strut, an upper estimate for planning: whole builds of
#: fuzz seeds 51 (49k struts, 2.3 GB) and 15 (34.5k struts, 3.3 GB) peaked at 47-97 KB per strut.
ONE_PIECE_BYTES_PER_STRUT = 100_000
#: Balls are drawn this much (relative, at most half the chord tolerance) larger than the
#: largest strut at the node, so strut surfaces cross the ball instead of touching it
#: tangentially (tangent surfaces make booleans leave sliver triangles).
BALL_MARGIN = 0.02
#: Joint layers: the struts a layer leaves to the fallback (sharp pairs, contacts) are meshed
#: again as a lattice of their own, up to this many layers; what is left after the last
#: becomes plain cylinders. Unioning a few stitched layers is cheaper than unioning thousands
#: of cylinders (measured 1.5-2x on superposed topologies).
MAX_JOINT_LAYERS = 3
#: Balls of the joints in layers after the first are drawn this much smaller, so they never
#: coincide with the first layer's balls (coincident faces make booleans slow).
LAYER_BALL_SHRINK = 0.99


def _joint_layers(nodes, struts, vradius, segments, ball_seg, ball_r, tolerance=0.0, vectorise=True):
    """Stitched joint surfaces, layer by layer; returns (manifolds, ball nodes, cylinder struts, stats)."""
    parts: list[mf.Manifold] = []
    ball_nodes: list[np.ndarray] = []
    sel = np.arange(len(struts))
    layers = []
    for layer in range(MAX_JOINT_LAYERS):
        used, inv = np.unique(struts[sel], return_inverse=True)
        shrink = 1.0 if layer == 0 else LAYER_BALL_SHRINK
        surf = build_joint_surface(
            nodes[used], inv.reshape(-1, 2), vradius[sel], segments[sel], ball_seg[used], ball_r[used] * shrink,
            vectorise=vectorise if isinstance(vectorise, bool) else vectorise[used],
        )
        progress_made = len(surf.fallback_struts) < len(sel)
        if layer > 0 and not progress_made:
            break  # nothing stitched: the cylinders below are all this layer would add
        if len(surf.triangles):
            core = mf.Manifold(
                mf.Mesh64(
                    vert_properties=np.ascontiguousarray(surf.vertices),
                    tri_verts=np.ascontiguousarray(surf.triangles, dtype=np.uint64),
                    tolerance=tolerance,
                )
            )
            _check_solid(core, "joint surface")
            parts.append(core)
        ball_nodes.append(used[surf.fallback_nodes])
        layers.append(
            {
                "struts": int(len(sel)),
                "stitched_struts": int(len(sel) - len(surf.fallback_struts)),
                "joint_volume_mm3": surf.joint_volume,
                "tube_volume_mm3": surf.tube_volume,
                "reasons": surf.reasons,
            }
        )
        sel = sel[surf.fallback_struts]
        if len(sel) == 0 or not progress_made:
            break
    fb_nodes = np.unique(np.concatenate(ball_nodes)) if ball_nodes else np.zeros(0, dtype=np.int64)
    return parts, fb_nodes, sel, layers


@dataclass
class StrutGeometry:
    """The polygon geometry of the struts to mesh, in the graph's own numbering of what is kept.

    Attributes
    ----------
    nodes : ndarray (N, 3) float64, mm
        Nodes used by the kept struts.
    struts : ndarray (M, 2) int64
        Kept struts, indices into ``nodes``.
    strut_ids : ndarray (M,) int64
        Index of each kept strut in the input graph (numbers the polygon turn of fallback cylinders).
    vradius : ndarray (M, 2) float64, mm
        Polygon vertex radius at each end (equal-area scaled, floored at the printer minimum).
    segments : ndarray (M,) int64
        Polygon segments per strut.
    ball_seg : ndarray (N,) int64
        Ball segments per node.
    ball_r : ndarray (N,) float64, mm
        Ball vertex radius per node.
    min_width : float
        Narrowest polygon width across the flats, mm.
    """

    nodes: np.ndarray
    struts: np.ndarray
    strut_ids: np.ndarray
    vradius: np.ndarray
    segments: np.ndarray
    ball_seg: np.ndarray
    ball_r: np.ndarray
    min_width: float

    def subset(self, struts: np.ndarray) -> StrutGeometry:
        """The geometry of some of the struts (indices into ``struts``), nodes renumbered.

        Every per-strut and per-node value is copied, not recomputed, so a subset meshes each
        of its struts and nodes with exactly the polygons of the whole.
        """
        sel = np.asarray(struts, dtype=np.int64)
        used, inv = np.unique(self.struts[sel], return_inverse=True)
        return StrutGeometry(self.nodes[used], inv.reshape(-1, 2), self.strut_ids[sel], self.vradius[sel],
                             self.segments[sel], self.ball_seg[used], self.ball_r[used], self.min_width)


def strut_geometry(graph: LatticeGraph, dia: np.ndarray, kept: np.ndarray, chord_tol: float,
                   min_diameter: float | None) -> StrutGeometry:
    """Polygon radii and segment counts of the kept struts and of their node balls.

    ``dia`` (M, 2) are the diameters at both ends of every strut of ``graph`` (mm), ``kept``
    the struts to mesh.
    """
    used_nodes, struts = np.unique(graph.struts[kept], return_inverse=True)
    struts = struts.reshape(-1, 2)
    nodes = graph.nodes[used_nodes]
    radius = dia[kept] / 2.0
    segments = segments_for_radius(radius.max(axis=1), chord_tol)
    vradius = radius * area_scale(segments)[:, None]
    if min_diameter is not None:
        # the equal-area polygon's flats sit slightly inside the circle; keep every polygon's
        # inscribed diameter at or above the printer minimum (at most +1.7 % radius, n >= 10)
        floor = (min_diameter / 2.0) / np.cos(np.pi / segments)
        vradius = np.maximum(vradius, floor[:, None])
    min_width = float(np.min(2.0 * vradius.min(axis=1) * np.cos(np.pi / segments)))
    node_r = np.zeros(len(nodes))
    np.maximum.at(node_r, struts[:, 0], radius[:, 0])
    np.maximum.at(node_r, struts[:, 1], radius[:, 1])
    ball_seg = segments_for_radius(node_r, chord_tol)
    ball_r = node_r * area_scale(ball_seg) + np.minimum(BALL_MARGIN * node_r, chord_tol / 2.0)
    return StrutGeometry(nodes, struts, np.asarray(kept, dtype=np.int64), vradius, segments, ball_seg, ball_r,
                         min_width)


def solid_core(geo: StrutGeometry, method: str = "joints", *, phase_ids: np.ndarray | None = None,
               tolerance: float = 0.0, borrow: np.ndarray | None = None,
               progress: Callable[[str], None] | None = None, inputs: list | None = None):
    """The union of joints, tubes and fallback parts (not clipped, not welded).

    Returns ``(solid, fallback nodes, fallback struts, accounting)``. ``phase_ids`` numbers
    the fallback cylinders' polygon turn (default: their position in ``geo``). ``tolerance``
    (mm) is manifold3d's merge tolerance of the stitched surface; 0 lets manifold3d derive it
    from the surface's extent (a tile of a partitioned build passes one value for all tiles).
    ``borrow`` (N,) bool marks the nodes that may borrow their kind's hull (default all; see
    :func:`~graded.mesh.joints.build_joint_surface`). A list passed as ``inputs`` receives the
    vertices (V, 3) of every part before the union. ``progress(step)`` is told of each boolean step.
    """
    nodes, struts, vradius, segments, ball_seg, ball_r = (geo.nodes, geo.struts, geo.vradius, geo.segments,
                                                           geo.ball_seg, geo.ball_r)
    if method == "joints":
        parts, fb_nodes, fb_struts, layers = _joint_layers(nodes, struts, vradius, segments, ball_seg, ball_r,
                                                           tolerance, True if borrow is None else borrow)
        accounting = {
            "joint_volume_mm3": layers[0]["joint_volume_mm3"],
            "tube_volume_mm3": layers[0]["tube_volume_mm3"],
            "fallback_reasons": layers[0]["reasons"],
            "layers": layers,
        }
    else:
        fb_nodes, fb_struts = np.arange(len(nodes)), np.arange(len(struts))
        parts = []
        accounting = {}
    extra = [_ball(nodes[i], ball_r[i], ball_seg[i]) for i in fb_nodes]
    # cylinder caps end inside the balls, halfway between centre and sphere, never at the
    # centre plane where the caps of collinear struts would coincide
    fs = struts[fb_struts]
    inset = 0.5 * np.sqrt(np.maximum(ball_r[fs] ** 2 - vradius[fb_struts] ** 2, 0.0))
    extra += _cylinders(nodes[fs[:, 0]], nodes[fs[:, 1]], vradius[fb_struts], segments[fb_struts], inset,
                        None if phase_ids is None else np.asarray(phase_ids)[fb_struts])
    if progress is not None:
        progress("union")
    # the small fallback parts are unioned among themselves first and then with the big
    # stitched surface in one boolean (measured 30 % faster than one batch of everything)
    if len(extra) > 1:
        extra = [mf.Manifold.batch_boolean(extra, mf.OpType.Add)]
    parts += extra
    if inputs is not None:
        inputs.extend(np.asarray(part.to_mesh64().vert_properties, dtype=np.float64)[:, :3] for part in parts)
    if progress is None:  # a tile of a partitioned build: one batch, as its seams were measured with
        solid = parts[0] if len(parts) == 1 else mf.Manifold.batch_boolean(parts, mf.OpType.Add)
    else:
        # the stitched layers and the fallback parts one at a time, each boolean evaluated before
        # the next (manifold3d is lazy), so that progress is told between them: 2.9 s against 3.5 s
        # for one batch of the main job's four parts, whose longest step is then 1.1 s
        solid = parts[0]
        for k, part in enumerate(parts[1:], 2):
            solid = solid + part
            solid.num_tri()
            progress(f"union: {k} of {len(parts)} parts")
    _check_solid(solid, "union")
    return solid, fb_nodes, fb_struts, accounting


def select_struts(graph: LatticeGraph, min_diameter: float | None, thin: str, end_diameters: np.ndarray | None):
    """Checks of a graph before meshing; the struts to mesh.

    Returns ``(dia (M, 2) mm, kept (k,) int64, dropped (j,) int64, thinnest (M,) mm)``; raises
    :class:`ValidationError` as :func:`mesh_graph` documents.
    """
    if graph.n_struts == 0:
        fail("graph", "has no struts", "check the grading and clipping steps; nothing to mesh")
    if end_diameters is None:
        dia = np.stack([graph.diameters, graph.diameters], axis=1)
    else:
        dia = np.asarray(end_diameters, dtype=np.float64)
        if dia.shape != (graph.n_struts, 2):
            fail("end_diameters", f"has shape {dia.shape}, expected ({graph.n_struts}, 2)")
    check_positive("diameters", dia, hint="every strut needs a positive diameter; drop zero-diameter struts first")
    lengths = graph.lengths
    if np.any(lengths <= 0):
        fail("struts", f"{int(np.sum(lengths <= 0))} struts have zero length", "merge coincident nodes first")
    thinnest = dia.min(axis=1)
    keep = np.ones(graph.n_struts, dtype=bool)
    if min_diameter is not None:
        check_positive("min_diameter", min_diameter)
        thin_mask = thinnest < min_diameter
        if thin_mask.any() and thin == "raise":
            raise ValidationError(
                "diameters",
                f"{int(thin_mask.sum())} of {graph.n_struts} struts are thinner than the printer minimum "
                f"{min_diameter:g} mm (thinnest {thinnest.min():.4g} mm)",
                "raise the relative density or cell size, lower min_diameter, or pass thin='drop'",
            )
        keep = ~thin_mask
        if not keep.any():
            fail("diameters", f"every strut is thinner than the printer minimum {min_diameter:g} mm",
                 "raise the relative density or cell size, or lower min_diameter")
    kept = np.flatnonzero(keep)
    dropped = np.flatnonzero(~keep)
    return dia, kept, dropped, thinnest


def mesh_graph(
    graph: LatticeGraph,
    *,
    min_diameter: float | None = None,
    thin: str = "raise",
    body: trimesh.Trimesh | None = None,
    skin=None,
    drop_islands: bool = False,
    chord_tol: float = CHORD_TOL,
    method: str = "joints",
    end_diameters: np.ndarray | None = None,
    progress: Progress | None = None,
) -> SolidMesh:
    """Mesh a lattice graph into one closed manifold solid.

    Parameters
    ----------
    graph : LatticeGraph
        Nodes (N, 3) mm, struts (M, 2), diameters (M,) mm.
    min_diameter : float, optional
        Printer minimum strut diameter, mm. Struts at or above it are drawn with polygons
        whose width across the flats is at least ``min_diameter`` too.
    thin : {"raise", "drop"}
        What to do with struts thinner than ``min_diameter``: raise ValidationError
        (field ``diameters``) or leave them out.
    body : trimesh.Trimesh, optional
        Closed surface (mm) to clip the lattice to (boolean intersection). Its volume is
        then the reference volume of the relative density.
    skin : graded.mesh.skin.Skin, optional
        A closing wall (:func:`graded.mesh.skin.skin_shell`): the lattice is clipped to
        ``skin.clip`` (inside the wall) instead of ``body`` and united with ``skin.wall``
        before islands are dropped (struts that reach the wall are held by it).
    drop_islands : bool
        Keep only the largest connected component (use after clipping or dropping).
    chord_tol : float
        Largest surface deviation from the true cylinders/balls, mm.
    method : {"joints", "union"}
        Hull joints with stitched tubes (fast) or one batch boolean of balls and cylinders.
    end_diameters : ndarray (M, 2), optional
        Diameters at the first and second node of each strut (tapered struts); overrides
        ``graph.diameters`` for the shape (the minimum check uses the smaller end).
    progress : callable(done, total, message), optional

    Returns
    -------
    SolidMesh

    Raises
    ------
    ValidationError
        Empty graph, non-positive diameters, zero-length struts, thin struts (``thin="raise"``),
        a body that is not closed.
    RuntimeError
        manifold3d reports an error or the result is empty.
    """
    t_start = time.perf_counter()
    check_choice("thin", thin, ["raise", "drop"])
    check_choice("method", method, ["joints", "union"])
    check_positive("chord_tol", chord_tol)
    report = progress or (lambda done, total, message: None)
    dia, kept, dropped, thinnest = select_struts(graph, min_diameter, thin, end_diameters)
    geo = strut_geometry(graph, dia, kept, chord_tol, min_diameter)
    report(0, 3, "meshing struts")
    solid, fb_nodes, fb_struts, accounting = solid_core(geo, method, progress=lambda what: report(1, 3, what))
    min_width = geo.min_width

    reference = None
    if body is not None:
        report(1, 3, "clipping to the body")
        body_m = to_manifold(body, "body")
        reference = float(body_m.volume())
        solid = solid ^ (body_m if skin is None else skin.clip)
        _check_solid(solid, "clipping to the body")
    if skin is not None:
        report(1, 3, "adding the skin")
        solid = solid + skin.wall
        _check_solid(solid, "adding the skin")
    islands = 0
    if drop_islands:
        report(2, 3, "dropping islands")
        solid, islands = keep_largest_body(solid)
    report(2, 3, "facts")
    solid, welded = _weld_for_export(solid)
    mesh = to_trimesh(solid)
    facts = mesh_facts(mesh, min_strut_diameter=float(thinnest[kept].min()), reference_volume=reference)
    if not facts.watertight or facts.volume <= 0:
        raise RuntimeError(
            f"mesh: result is not a closed solid (watertight={facts.watertight}, volume={facts.volume:.6g} mm^3)"
        )
    report(3, 3, "done")
    stats = {
        "method": method,
        "seconds": time.perf_counter() - t_start,
        "fallback_nodes": int(len(fb_nodes)),
        "fallback_struts": int(len(fb_struts)),
        "islands_dropped": islands,
        "welded_for_float32": welded,
        "chord_tol_mm": float(chord_tol),
        "min_polygon_width_mm": min_width,
        **accounting,
    }
    return SolidMesh(mesh=mesh, facts=facts, kept_struts=kept, dropped_struts=dropped, stats=stats)
