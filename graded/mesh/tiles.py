"""Partitioned meshing: a big lattice meshed tile by tile into one watertight body on disk.

Why
---
One :func:`~graded.mesh.solid.mesh_graph` call holds several full copies of the solid (the
stitched surface, the manifold, the union, the float32 weld): about 32 KB per strut, so a
40 mm box of 2 mm cells (603k struts) needs over 20 GB. Here the space around the lattice is
cut into a grid of axis-aligned tiles; each tile is meshed on its own and only its triangles
travel on, straight into a binary STL on disk.

How a tile is meshed
--------------------
A tile owns the half-open box ``[lo, hi)`` (the outer tiles are open towards the outside).
It meshes every strut whose bounding box comes within :func:`halo_width` of its box, with the
per-strut and per-node polygons of the whole graph (:class:`~graded.mesh.solid.StrutGeometry`,
copied, not recomputed, and the fallback cylinders turned by their index in the whole graph),
runs the same joints + union as the one-piece path, clips to the body (manifold3d), and keeps
the part of the surface inside its box (:func:`~graded.mesh.clip.clip_soup`, no caps).

Why the seams are exact
-----------------------
Near a plane two neighbouring tiles mesh the same struts with the same polygons, so they
have the same triangles there; the clipper cuts every edge crossing the plane at a point that
depends only on the edge, so both sides share the seam vertex for vertex. Nothing is assumed:
every tile reports the half-edges its piece leaves open (they must lie on its own planes, else
the tile fails), and the assembly checks that each open half-edge of one tile is closed by the
reverse half-edge of another, in float32 as an STL reader sees them. The written file is then
one closed, oriented 2-manifold surface; a failed check raises instead of writing a part with
cracks.

What differs from the one-piece path
------------------------------------
* Islands are removed on the graph (largest connected set of struts) before meshing, not on
  the solid: pieces that only the body clip separates stay in.
* No float32 weld of the solid by manifold3d (it would move seams). Instead each tile collapses
  the clusters of sub-float32 sliver edges (shorter than the one-piece path's weld tolerance)
  that lie clear of its planes (:func:`collapse_short_edges`): triangles that cross a plane,
  and so the seams, are left exactly as they are. Triangles that float32 storage still reduces
  to two coincident corners are dropped (their two edges cancel), and the closure check above
  is made on the float32 mesh.
* The volume is the sum of the tiles' pieces (divergence theorem, exact for the closed surface).

Memory: a worker holds one tile (about 30 KB per meshed strut, halo included, at the peak of
its union and clip: 1.25 GB for 43k struts, 1.7 GB for ~50k, measured); the assembling process
holds the graph, one finished tile at a time and the seam triangles (a few per cent of all).
Tiles run as Dask tasks: on a ``distributed.LocalCluster`` of the local cores by default, or
on a running cluster (``scheduler="tcp://host:8786"``).
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..graph import LatticeGraph
from ..validation import check_choice, check_positive, fail
from ..workers import SINGLE_THREADED_BLAS, local_cluster
from .clip import canonical_faces, clip_soup, soup_volume
from .solid import (
    StrutGeometry,
    select_struts,
    solid_core,
    strut_geometry,
    to_manifold,
    unique_float32_rows,
    weld_tolerance,
)
from .tessellation import CHORD_TOL

__all__ = [
    "TILED_ABOVE",
    "TILE_STRUTS",
    "TilePlan",
    "TiledSolid",
    "collapse_short_edges",
    "halo_width",
    "largest_component",
    "mesh_graph_tiled",
    "plan_tiles",
    "reversed_pairs",
]

#: Graphs with more struts than this are meshed in tiles by the build. Below it the one-piece
#: path (identical output to earlier releases) peaks at about 1.6 GB (32 KB per strut
#: measured), well inside a laptop; above it that path grows past 4 GB within a factor 2-3.
TILED_ABOVE = 50_000
#: Struts per tile the grid aims at (counted by strut midpoint): with its halo a tile meshes
#: about 1.5 times that (a 40 mm box of 2 mm cells: 601k struts, 18 tiles, 906k meshed), 1.7 GB
#: per worker at the peak (measured), and a 600k-strut part keeps up to 18 workers busy.
TILE_STRUTS = 50_000
#: Extra halo, in largest polygon radii, beyond the longest strut: a node's joint reaches
#: ``sqrt(stub^2 + R^2)`` from it, 2.7 R at the 45-degree angle below which struts go to the
#: fallback, so every strut at a node whose joint or tube can reach into the box is meshed.
HALO_RADII = 4.0

Progress = Callable[[int, int, str], None]

#: manifold3d's default merge tolerance relative to a solid's extent (its kPrecision); tiles use
#: the value of the whole part instead of that of their own smaller extent.
MANIFOLD_RELATIVE_TOL = 1e-12
#: Seconds the Dask client waits for a remote scheduler before giving up.
CONNECT_TIMEOUT_S = 20
#: Times a failed tile task is retried on the cluster before the build fails.
TILE_RETRIES = 2
#: Seconds between the progress lines that say tiles are still being meshed (a tile of a big
#: part takes minutes; the build's progress bar must move at least every few seconds).
TILE_HEARTBEAT_S = 2.0


@dataclass(frozen=True)
class TilePlan:
    """A grid of tiles over the lattice.

    Attributes
    ----------
    planes : tuple of three ndarrays
        Interior cut positions along x, y, z (mm), increasing.
    halo : float
        Halo width (mm): struts within it of a tile's box are meshed with the tile.
    """

    planes: tuple
    halo: float

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(len(p) + 1 for p in self.planes)

    def boxes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """``(lo, hi)`` of every tile, x fastest; outer sides are ``-inf`` / ``inf``."""
        edges = [np.concatenate([[-np.inf], p, [np.inf]]) for p in self.planes]
        out = []
        for k in range(len(edges[2]) - 1):
            for j in range(len(edges[1]) - 1):
                for i in range(len(edges[0]) - 1):
                    out.append((np.array([edges[0][i], edges[1][j], edges[2][k]]),
                                np.array([edges[0][i + 1], edges[1][j + 1], edges[2][k + 1]])))
        return out


def halo_width(geo: StrutGeometry) -> float:
    """Halo (mm): the longest strut plus :data:`HALO_RADII` of the largest polygon radius."""
    p, q = geo.nodes[geo.struts[:, 0]], geo.nodes[geo.struts[:, 1]]
    return float(np.linalg.norm(q - p, axis=1).max() + HALO_RADII * geo.vradius.max())


def plan_tiles(geo: StrutGeometry, tile_struts: int = TILE_STRUTS) -> TilePlan:
    """Cut the lattice's bounding box into about ``n_struts / tile_struts`` tiles.

    Tiles are near-cubes: the count per axis follows the box's extents. Cuts sit at quantiles
    of the strut midpoints, so tiles own about equal numbers of struts on graded lattices too,
    and are moved, within a strut length, into the widest gap between node coordinates (a plane
    through nodes is handled but puts many vertices on it; a plane 1e-12 mm from a row of nodes
    meets the slivers the body clip leaves there).
    """
    check_positive("tile_struts", tile_struts)
    mid = 0.5 * (geo.nodes[geo.struts[:, 0]] + geo.nodes[geo.struts[:, 1]])
    lo, hi = mid.min(axis=0), mid.max(axis=0)
    ext = np.maximum(hi - lo, 1e-12)
    n_tiles = max(1, int(np.ceil(len(mid) / tile_struts)))
    scale = (n_tiles / np.prod(ext)) ** (1.0 / 3.0)
    counts = np.maximum(1, np.round(ext * scale)).astype(int)
    while np.prod(counts) < n_tiles:
        counts[np.argmax(ext / counts)] += 1
    planes = []
    reach = float(np.median(np.linalg.norm(geo.nodes[geo.struts[:, 1]] - geo.nodes[geo.struts[:, 0]], axis=1)))
    for axis in range(3):
        cuts = np.quantile(mid[:, axis], np.arange(1, counts[axis]) / counts[axis]) if counts[axis] > 1 else []
        coords = np.unique(geo.nodes[:, axis])
        moved = []
        for c in np.asarray(cuts, dtype=np.float64):
            # into the middle of the widest gap between node coordinates within a strut length
            k0, k1 = np.searchsorted(coords, [c - reach, c + reach])
            k0, k1 = max(k0 - 1, 0), min(k1 + 1, len(coords))
            near = coords[k0:k1]
            if len(near) > 1:
                j = int(np.argmax(np.diff(near)))
                c = 0.5 * (near[j] + near[j + 1])
            moved.append(c)
        planes.append(np.unique(np.asarray(moved, dtype=np.float64)))
    return TilePlan(tuple(planes), halo_width(geo))


def largest_component(graph: LatticeGraph, struts: np.ndarray) -> tuple[np.ndarray, int]:
    """The struts (subset of ``struts``) of the largest connected set; and how many sets were left out."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    s = graph.struts[struts]
    n = graph.n_nodes
    adj = coo_matrix((np.ones(len(s), dtype=np.int8), (s[:, 0], s[:, 1])), shape=(n, n))
    count, labels = connected_components(adj, directed=False)
    lab = labels[s[:, 0]]
    sizes = np.bincount(lab, minlength=count)
    present = int(np.count_nonzero(sizes))
    best = int(np.argmax(sizes))
    return struts[lab == best], present - 1


@dataclass
class TiledSolid:
    """A meshed lattice written tile by tile to a binary STL on disk.

    Attributes
    ----------
    path : Path
        The binary STL (closed, oriented, one 2-manifold surface in float32).
    facts : MeshFacts
        Volume (sum of the tiles' pieces), triangles, closure from the seam check; ``vertices``
        counts distinct float32 positions per tile (seam vertices once per tile they touch).
    kept_struts, dropped_struts : ndarray (k,) int64
        As :class:`~graded.mesh.solid.SolidMesh`.
    blocks : list of (int, int, lo, hi)
        First record and record count of each tile in the file, and the tile's box.
    stats : dict
        ``method``, ``seconds``, ``tiles``, ``tile_grid``, ``halo_mm``, ``meshed_struts``
        (halos included), ``fallback_nodes``, ``fallback_struts`` (summed over tiles, halos
        included), ``islands_dropped`` (on the graph), ``seam_half_edges``,
        ``worker_peak_rss_gb`` (largest peak of a worker process), ``excursion_sample`` (a few
        vertices per tile, for the build's excursion check).
    mesh : None
        The mesh is not held in memory (see ``path``).
    """

    path: Path
    facts: object
    kept_struts: np.ndarray
    dropped_struts: np.ndarray
    blocks: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    mesh: object | None = None

    def move_to(self, path) -> Path:
        """Move the STL to ``path`` (same file system: a rename); returns the new path."""
        path = Path(path)
        os.replace(self.path, path)
        self.path = path
        return path

    def welded(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole mesh as shared vertices: ``(vertices (V, 3) float32, triangles (T, 3) uint32)``.

        Vertices are merged where their float32 coordinates are equal, as an STL reader does.
        This holds the whole mesh in memory (about 30 bytes per triangle at the peak, for the
        3MF writer, which needs indexed vertices).
        """
        uniq_blocks = []
        inv_blocks = []
        for tri in self.triangle_blocks():
            u, inv = unique_float32_rows(tri.reshape(-1, 3))
            uniq_blocks.append(u)
            inv_blocks.append(inv.reshape(-1).astype(np.uint32))
        allv = np.concatenate(uniq_blocks)
        del uniq_blocks
        verts, ginv = unique_float32_rows(allv)
        del allv
        ginv = ginv.reshape(-1).astype(np.uint32)
        out = np.empty(sum(len(i) for i in inv_blocks), dtype=np.uint32)
        pos = base = 0
        for inv in inv_blocks:
            n_local = int(inv.max()) + 1 if len(inv) else 0
            out[pos:pos + len(inv)] = ginv[base + inv.astype(np.int64)]
            pos += len(inv)
            base += n_local
        return verts, out.reshape(-1, 3)

    def triangle_blocks(self):
        """Yield the triangles of each tile, ``(T, 3, 3)`` float32 mm, read back from the file."""
        from ..io.stl import STL_DTYPE

        with open(self.path, "rb") as fh:
            for start, count, _lo, _hi in self.blocks:
                fh.seek(84 + start * STL_DTYPE.itemsize)
                rec = np.fromfile(fh, dtype=STL_DTYPE, count=count)
                yield rec["vertices"]


@dataclass
class _Tile:
    index: int
    lo: np.ndarray
    hi: np.ndarray
    geo: StrutGeometry
    body: tuple | None
    tolerance: float
    band: float
    weld: float
    wall: tuple | None = None


def _peak_rss_gb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1e9 if sys.platform == "darwin" else rss * 1024 / 1e9


def reversed_pairs(t: np.ndarray) -> np.ndarray:
    """Which triangles cancel against a reversed copy of themselves.

    Parameters
    ----------
    t : (T, 3) int array
        Triangles as vertex indices.

    Returns
    -------
    (T,) bool
        For every set of triangles on the same three corners, ``min(n+, n-)`` of each orientation
        (the pairs glued back to back, whose half-edges cancel); the rest stay.

    Examples
    --------
    >>> import numpy as np
    >>> reversed_pairs(np.array([[0, 1, 2], [1, 2, 0], [2, 1, 0], [0, 1, 3]])).tolist()
    [True, False, True, False]
    """
    t = np.asarray(t, dtype=np.int64)
    if not len(t):
        return np.zeros(0, dtype=bool)
    first = np.argmin(t, axis=1)
    rows = np.arange(len(t))
    r = np.stack([t[rows, (first + j) % 3] for j in range(3)], axis=1)  # smallest corner first
    plus = r[:, 1] < r[:, 2]
    key = np.where(plus[:, None], r, r[:, [0, 2, 1]])
    _, group = np.unique(key, axis=0, return_inverse=True)
    group = group.reshape(-1)
    n = int(group.max()) + 1
    cancel = np.minimum(np.bincount(group[plus], minlength=n), np.bincount(group[~plus], minlength=n))
    order = np.lexsort((rows, plus, group))  # by group, then orientation, then position
    g, p = group[order], plus[order]
    start = np.r_[0, np.flatnonzero((np.diff(g) != 0) | (np.diff(p.astype(np.int8)) != 0)) + 1]
    rank = np.arange(len(t)) - np.repeat(start, np.diff(np.r_[start, len(t)]))
    out = np.zeros(len(t), dtype=bool)
    out[order] = rank < cancel[g]
    return out


def _open_edges(t: np.ndarray) -> tuple[np.ndarray, bool]:
    """Which half-edges ``t[:, j] -> t[:, j+1]`` of a triangle index array (T, 3) have no reverse
    (T, 3) bool; and whether no half-edge is used twice (an edge of more than two triangles)."""
    a = t.astype(np.int64)
    b = np.roll(a, -1, axis=1)
    n = np.int64(max(int(t.max()) + 1, 1)) if len(t) else np.int64(1)
    fwd = (a * n + b).reshape(-1)
    uniq = len(np.unique(fwd)) == len(fwd)
    miss = ~np.isin((b * n + a).reshape(-1), fwd)
    return miss.reshape(-1, 3), uniq


#: Mesh readers merge vertices equal to this many decimals of a mm (trimesh: ``tol.merge`` =
#: 1e-8). float32 resolves finer than that near a zero coordinate (0.1 mm from the origin
#: planes, 7e-9), so a boolean's sliver there can keep two float32 vertices that such a reader
#: fuses; the tiles collapse those clusters too.
READER_MERGE_DIGITS = 8
#: Clusters of short edges wider than this many weld tolerances are not collapsed (a run of
#: short edges along a feature, not a sliver), nor is anything within that distance of a plane.
WELD_CAP = 4.0


def collapse_short_edges(v: np.ndarray, tris: np.ndarray, tol: float, pinned: np.ndarray | None = None) -> np.ndarray:
    """Collapse the clusters of short edges that float32 storage would fuse only in part.

    The booleans leave slivers whose corners lie under a float32 step apart (0.2-1 um at
    5-10 mm, where float32 resolves 0.5-1 um). Rounding to float32 fuses some of a sliver's
    corners and not others; where two fused corners are not the ends of an edge whose collapse
    is valid (they share a third neighbour through the unfused corner), the triangles around
    them then use one edge twice in the same direction (four sheets meet at an edge). Collapsing
    the whole cluster of vertices joined by edges shorter than ``tol`` into one vertex, in
    float64 and before rounding, removes the sliver instead: triangles with two corners in the
    cluster are dropped and their neighbours close up across them.

    Only clusters holding two vertices with equal float32 coordinates, or equal to
    :data:`READER_MERGE_DIGITS` decimals, are collapsed (the others survive float32 storage and
    mesh readers as they are). A cluster moves to its vertex in ``pinned`` (V,) bool
    when it holds exactly one, else to its lexicographically smallest vertex, so the result
    depends on the geometry only; clusters holding two or more pinned vertices, or wider than
    :data:`WELD_CAP` ``* tol``, are left as they are. Returns the triangles (T', 3) on the same
    vertices, degenerate ones removed.
    """
    tris = np.asarray(tris, dtype=np.int64)
    if not len(tris) or not tol > 0:
        return tris
    short = []
    for j in range(3):
        a, b = tris[:, j], tris[:, (j + 1) % 3]
        d = v[b] - v[a]
        hit = np.einsum("ij,ij->i", d, d) < tol * tol
        short.append(np.stack([a[hit], b[hit]], axis=1))
    short = np.concatenate(short)
    if not len(short):
        return tris
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    used, inv = np.unique(short, return_inverse=True)
    inv = inv.reshape(-1, 2)
    n = len(used)
    _, lab = connected_components(coo_matrix((np.ones(len(inv), dtype=np.int8), (inv[:, 0], inv[:, 1])),
                                             shape=(n, n)), directed=False)
    # clusters in which float32 storage fuses two vertices, or in which a mesh reader merging
    # to READER_MERGE_DIGITS decimals would (float32 steps near a zero coordinate are finer)
    _, key, count = unique_float32_rows(v[used], return_counts=True)
    hot = np.zeros(n, dtype=bool)
    hot[lab[count[key.reshape(-1)] > 1]] = True
    rounded = np.round(v[used].astype(np.float32).astype(np.float64), READER_MERGE_DIGITS)
    _, key, count = np.unique(rounded, axis=0, return_inverse=True, return_counts=True)
    hot[lab[count[key.reshape(-1)] > 1]] = True
    sel = np.flatnonzero(hot[lab])
    if not len(sel):
        return tris
    members_all, lab_sel = used[sel], lab[sel]
    order = np.lexsort(np.concatenate([v[members_all].T[::-1], lab_sel[None]]))  # by cluster, then x, y, z
    members_all, lab_sel = members_all[order], lab_sel[order]
    rep = np.arange(len(v), dtype=np.int64)
    changed = False
    for members in np.split(members_all, np.flatnonzero(np.diff(lab_sel)) + 1):
        p = v[members]
        if np.linalg.norm(p.max(axis=0) - p.min(axis=0)) > WELD_CAP * tol:
            continue
        target = members[0]
        if pinned is not None:
            fixed = members[pinned[members]]
            if len(fixed) > 1:
                continue
            if len(fixed) == 1:
                target = fixed[0]
        rep[members] = target
        changed = True
    if not changed:
        return tris
    t = rep[tris]
    keep = (t[:, 0] != t[:, 1]) & (t[:, 1] != t[:, 2]) & (t[:, 2] != t[:, 0])
    return t[keep]


def _at_planes(v: np.ndarray, tris: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float = 0.0) -> np.ndarray:
    """(T,) bool: the triangles that reach within ``margin`` of a finite plane of the box."""
    near = np.zeros(len(tris), dtype=bool)
    for axis in range(3):
        x = v[tris, axis]
        lo_t, hi_t = x.min(axis=1), x.max(axis=1)
        for c in (lo[axis], hi[axis]):
            if np.isfinite(c):
                near |= (lo_t <= c + margin) & (hi_t >= c - margin)
    return near


def _near_planes(v: np.ndarray, tris: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float) -> np.ndarray:
    """(V,) bool: the corners of triangles that reach within ``margin`` of a finite plane of the box."""
    out = np.zeros(len(v), dtype=bool)
    out[tris[_at_planes(v, tris, lo, hi, margin)].reshape(-1)] = True
    return out


def _mesh_tile(tile: _Tile, method: str) -> dict:
    """Mesh one tile: its STL records, volume, open seam half-edges (float32) and figures."""
    t0 = time.perf_counter()
    # nodes whose joint can reach a plane of the tile run qhull on their own points
    near = np.zeros(len(tile.geo.nodes), dtype=bool)
    for axis in range(3):
        for c in (tile.lo[axis], tile.hi[axis]):
            if np.isfinite(c):
                near |= np.abs(tile.geo.nodes[:, axis] - c) <= tile.band
    inputs: list = []
    solid, fb_nodes, fb_struts, _acc = solid_core(tile.geo, method, phase_ids=tile.geo.strut_ids,
                                                  tolerance=tile.tolerance, borrow=~near, inputs=inputs)
    if tile.body is not None:
        import manifold3d as mf

        body_m = mf.Manifold(mf.Mesh64(vert_properties=np.ascontiguousarray(tile.body[0], dtype=np.float64),
                                       tri_verts=np.ascontiguousarray(tile.body[1], dtype=np.uint64)))
        solid = solid ^ body_m
        inputs.append(np.asarray(tile.body[0], dtype=np.float64))
    if tile.wall is not None:  # a skin (one tile only: the wall is not cut at seams)
        import manifold3d as mf

        solid = solid + mf.Manifold(mf.Mesh64(vert_properties=np.ascontiguousarray(tile.wall[0], dtype=np.float64),
                                              tri_verts=np.ascontiguousarray(tile.wall[1], dtype=np.uint64)))
        inputs.append(np.asarray(tile.wall[0], dtype=np.float64))
    m = solid.to_mesh64()
    del solid
    v = np.asarray(m.vert_properties, dtype=np.float64)[:, :3]
    tris = np.asarray(m.tri_verts, dtype=np.int64)
    # pieces of faces the union or the body clip cut: triangulated from the piece alone
    run = np.repeat(np.arange(len(m.run_index) - 1), np.diff(np.asarray(m.run_index, dtype=np.int64)) // 3)
    origin = np.asarray(m.run_original_id, dtype=np.int64)[run]
    groups = origin * (np.int64(1) << 40) + np.asarray(m.face_id, dtype=np.int64)
    # only faces the booleans cut hold vertices that no input part has, and only those that a
    # plane of the tile crosses need the same split in both tiles
    row = np.dtype((np.void, 24))
    fresh = ~np.isin(np.ascontiguousarray(v).view(row).reshape(-1),
                     np.ascontiguousarray(np.concatenate(inputs)).view(row).reshape(-1))
    del inputs, m
    out = _tile_surface(tile.index, tile.lo, tile.hi, v, tris, groups, fresh, tile.weld)
    out.update({"fallback_nodes": int(len(fb_nodes)), "fallback_struts": int(len(fb_struts)),
                "struts": int(len(tile.geo.struts)), "seconds": time.perf_counter() - t0,
                "peak_rss_gb": _peak_rss_gb()})
    return out


def _tile_surface(index: int, lo: np.ndarray, hi: np.ndarray, v: np.ndarray, tris: np.ndarray, groups: np.ndarray,
                  fresh: np.ndarray, weld: float) -> dict:
    """A tile's closed solid (float64 ``v``, ``tris``) to its piece in float32: records, seam, figures.

    ``groups`` (T,) names the input face of every triangle, ``fresh`` (V,) the vertices the
    booleans made; ``weld`` is the part's weld tolerance (:func:`collapse_short_edges`).
    """
    from ..io.stl import stl_records

    crossed = _at_planes(v, tris, lo, hi)
    touched = fresh[tris].any(axis=1)
    groups_crossed = np.unique(groups[crossed])
    touched &= np.isin(groups, groups_crossed)
    tris = canonical_faces(v, tris, groups, touched=touched)
    tris = collapse_short_edges(v, tris, weld, pinned=_near_planes(v, tris, lo, hi, WELD_CAP * weld))
    soup = v[tris]
    del v, tris
    soup = clip_soup(soup, lo, hi)
    volume = soup_volume(soup)
    rec = stl_records(soup)
    del soup
    v32 = rec["vertices"].reshape(-1, 3)
    uniq, inv = unique_float32_rows(v32)
    t = inv.reshape(-1, 3)
    # float32 storage can fuse two corners of a sliver triangle: its two remaining edges are
    # the same edge both ways and cancel, so the triangle is dropped
    flat = (t[:, 0] == t[:, 1]) | (t[:, 1] == t[:, 2]) | (t[:, 2] == t[:, 0])
    if flat.any():
        rec, t = rec[~flat], t[~flat]
    open_mask, manifold = _open_edges(t)
    if not manifold:
        # float32 can also flatten a needle sliver onto a line, leaving it and its reverse (the
        # same corners, opposite orientation) glued back to back: such pairs cancel
        pair = reversed_pairs(t)
        if pair.any():
            rec, t = rec[~pair], t[~pair]
            open_mask, manifold = _open_edges(t)
    if not manifold:
        raise RuntimeError(f"mesh: tile {index} has an edge shared by more than two triangles in float32")
    tv = uniq[t]  # (T, 3, 3) float32
    ends = np.stack([tv, np.roll(tv, -1, axis=1)], axis=2)[open_mask]  # (K, 2, 3)
    on_plane = np.zeros(len(ends), dtype=bool)
    for axis in range(3):
        for c in (lo[axis], hi[axis]):
            if np.isfinite(c):
                on_plane |= np.all(ends[:, :, axis] == np.float32(c), axis=1)
    if not on_plane.all():
        raise RuntimeError(f"mesh: tile {index} is open away from its planes ({int((~on_plane).sum())} "
                           "half-edges); its surface is not closed")
    at_seam = open_mask.any(axis=1)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    nv = len(uniq)
    rows = np.concatenate([t[:, 0], t[:, 1]])
    cols = np.concatenate([t[:, 1], t[:, 2]])
    n_comp, vlab = connected_components(coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)),
                                                   shape=(nv, nv)), directed=False)
    comp = vlab[t[:, 0]]
    take = min(len(uniq), 2000)
    sample = uniq[np.linspace(0, len(uniq) - 1, take).astype(np.int64)] if take else uniq[:0]
    return {"index": index, "records": rec[~at_seam], "seam": tv[at_seam], "seam_open": open_mask[at_seam],
            "seam_comp": comp[at_seam], "components": int(n_comp),
            "volume": volume, "vertices": int(len(uniq)), "sample": sample.astype(np.float64)}


def _tiles(geo: StrutGeometry, plan: TilePlan, body, tolerance: float, band: float, weld: float) -> list[_Tile]:
    p, q = geo.nodes[geo.struts[:, 0]], geo.nodes[geo.struts[:, 1]]
    bmin, bmax = np.minimum(p, q), np.maximum(p, q)
    out = []
    for index, (lo, hi) in enumerate(plan.boxes()):
        near = np.all((bmax >= lo - plan.halo) & (bmin <= hi + plan.halo), axis=1)
        sel = np.flatnonzero(near)
        if not len(sel):
            continue
        out.append(_Tile(index, lo, hi, geo.subset(sel), body, tolerance, band, weld))
    return out


@contextlib.contextmanager
def _client(scheduler, workers: int | None):
    """A ``distributed.Client``: a LocalCluster of single-threaded worker processes, or a remote one."""
    from distributed import Client

    if scheduler is not None and not isinstance(scheduler, str):
        yield scheduler  # a Client made by the caller
        return
    if scheduler is None or scheduler == "local":
        n = workers or os.cpu_count() or 1
        with local_cluster(n, SINGLE_THREADED_BLAS, memory_limit=0) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        fail("scheduler", f"cannot connect to the Dask scheduler at {scheduler!r} ({type(exc).__name__}: {exc})",
             "start it with `dask scheduler` and pass its address (tcp://HOST:8786), or use --scheduler local")
    with client:
        yield client


def _results(tiles: list[_Tile], method: str, scheduler, workers: int | None, on_cluster, heartbeat=None):
    """Yield tile results as they finish: in this process (``scheduler="serial"``) or on Dask.

    On Dask, ``heartbeat(done)`` is called every :data:`TILE_HEARTBEAT_S` while no tile
    finishes (a tile takes minutes on a big part; the tiles run in worker processes, so this
    process is free to say it is alive).
    """
    if scheduler == "serial":
        for tile in tiles:
            yield _mesh_tile(tile, method)
        return
    from distributed import TimeoutError as DaskTimeout
    from distributed import wait

    with _client(scheduler, workers) as client:
        if on_cluster is not None:
            on_cluster({"scheduler": client.scheduler.address, "dashboard": client.dashboard_link,
                        "workers": len(client.scheduler_info().get("workers", {}))})
        futures = [client.submit(_mesh_tile, tile, method, key=f"graded-tile-{tile.index:04d}-{id(tiles):x}",
                                 pure=False, retries=TILE_RETRIES) for tile in tiles]
        pending, done = list(futures), 0
        try:
            while pending:
                try:
                    finished, rest = wait(pending, timeout=TILE_HEARTBEAT_S, return_when="FIRST_COMPLETED")
                except (TimeoutError, DaskTimeout):
                    if heartbeat is not None:
                        heartbeat(done)
                    continue
                pending = list(rest)
                for fut in finished:
                    res = fut.result()
                    fut.release()
                    done += 1
                    yield res
        except BaseException:
            client.cancel(futures)
            raise


def _edge_keys(tri: np.ndarray, mask: np.ndarray):
    """Byte keys of the half-edges ``tri[:, j] -> tri[:, j+1]`` selected by ``mask`` (T, 3), and their reverses."""
    a = tri
    b = np.roll(tri, -1, axis=1)
    row = np.dtype((np.void, 24))
    fwd = np.ascontiguousarray(np.concatenate([a, b], axis=2)[mask]).view(row).reshape(-1)
    bwd = np.ascontiguousarray(np.concatenate([b, a], axis=2)[mask]).view(row).reshape(-1)
    return fwd, bwd


#: Seam vertices closer than this (relative to the part's extent) to another tile's seam edge
#: split it: the boolean body clip triangulates a cap on the body's face from the whole cap,
#: which a tile sees only in part, so neighbours can place different vertices along the line
#: where the tile plane meets the face. Both sides then take the union of those vertices. The
#: vertices lie on that line to float32 round-off (6e-8 relative); 1e-6 relative is far below
#: any feature.
SEAM_SPLIT_REL = 1e-6


def _split_at(tri, mask, lab, test, points, tol):
    """Split triangles whose edges marked in ``test`` have seam points inside (fans from the opposite corner).

    ``mask`` (T, 3) marks every open edge, ``lab`` (T,) the body each triangle belongs to; returns
    the new triangles, their open-edge marks and labels, and how many triangles were split.
    """
    from scipy.spatial import cKDTree

    ti, ej = np.nonzero(test)
    a = tri[ti, ej].astype(np.float64)
    b = tri[ti, (ej + 1) % 3].astype(np.float64)
    tree = cKDTree(points)
    mid = 0.5 * (a + b)
    half = 0.5 * np.linalg.norm(b - a, axis=1)
    hits = tree.query_ball_point(mid, half + tol)
    splits: dict = {}
    for k, h in enumerate(hits):
        if len(h) <= 2:
            continue
        p = points[h]
        d = b[k] - a[k]
        dd = float(d @ d)
        t = (p - a[k]) @ d / dd
        off = np.linalg.norm(a[k] + t[:, None] * d - p, axis=1)
        inside = (t > 0) & (t < 1) & (off <= tol) & np.any(p != a[k], axis=1) & np.any(p != b[k], axis=1)
        if inside.any():
            order = np.argsort(t[inside])
            splits.setdefault(int(ti[k]), []).append((int(ej[k]), p[inside][order]))
    if not splits:
        return tri, mask, lab, 0
    keep = np.ones(len(tri), dtype=bool)
    new_t, new_m, new_l = [], [], []
    for i, edges in splits.items():
        if len(edges) > 1:
            continue  # two split edges in one triangle: left for the check to report
        j, pts = edges[0]
        keep[i] = False
        A, B, C = tri[i, j], tri[i, (j + 1) % 3], tri[i, (j + 2) % 3]
        chain = np.concatenate([A[None], pts.astype(tri.dtype), B[None]])
        for u, w in zip(chain[:-1], chain[1:]):
            new_t.append(np.stack([u, w, C]))
            new_l.append(lab[i])
            # the piece of the split edge stays open; the other two edges keep the old flags
            # (the first piece has the old edge C->A, the last B->C)
            new_m.append([True, bool(np.all(w == B) and mask[i, (j + 1) % 3]),
                          bool(np.all(u == A) and mask[i, (j + 2) % 3])])
    if not new_t:
        return tri, mask, lab, 0
    return (np.concatenate([tri[keep], np.asarray(new_t, dtype=tri.dtype)]),
            np.concatenate([mask[keep], np.asarray(new_m, dtype=bool)]),
            np.concatenate([lab[keep], np.asarray(new_l, dtype=lab.dtype)]), len(splits))


def _close_seams(seam: list[np.ndarray], seam_open: list[np.ndarray], seam_lab: list[np.ndarray], n_labels: int,
                 scale: float):
    """Check (and, along the body's faces, complete) the seams between tiles; count the bodies.

    Every open half-edge a->b of a tile must meet exactly one b->a of another. Open edges
    without a partner are split at the other tiles' seam vertices lying on them
    (:data:`SEAM_SPLIT_REL`), then checked again. ``seam_lab`` numbers the connected pieces of
    the tiles (``n_labels`` in all); pieces joined across seams are one body.

    Returns ``(triangles (S, 3, 3) float32, open half-edges, triangles split, bodies)``; raises
    RuntimeError when a seam stays open.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not seam or not sum(len(x) for x in seam):
        return np.zeros((0, 3, 3), dtype=np.float32), 0, 0, n_labels
    tri = np.concatenate(seam)
    mask = np.concatenate(seam_open)
    lab = np.concatenate(seam_lab)
    tol = SEAM_SPLIT_REL * max(scale, 1.0)
    split_total = 0
    for _ in range(4):
        fwd, bwd = _edge_keys(tri, mask)
        uf, first, cf = np.unique(fwd, return_index=True, return_counts=True)
        if np.any(cf > 1):
            raise RuntimeError(f"mesh: {int((cf > 1).sum())} seam edges are used twice in one direction across tiles")
        pos = np.minimum(np.searchsorted(uf, bwd), len(uf) - 1)
        missing = uf[pos] != bwd
        if not missing.any():
            ti, _ = np.nonzero(mask)
            partner = ti[first[pos]]
            adj = coo_matrix((np.ones(len(ti), dtype=np.int8), (lab[ti], lab[partner])), shape=(n_labels, n_labels))
            bodies, _ = connected_components(adj, directed=False)
            return tri, int(len(fwd)), split_total, int(bodies)
        ti, ej = np.nonzero(mask)
        ends = np.concatenate([tri[ti[missing], ej[missing]], tri[ti[missing], (ej[missing] + 1) % 3]])
        points = np.unique(ends.astype(np.float64), axis=0)
        test = np.zeros_like(mask)
        test[ti[missing], ej[missing]] = True
        tri, mask, lab, n_split = _split_at(tri, mask, lab, test, points, tol)
        if n_split == 0:
            break
        split_total += n_split
    fwd, bwd = _edge_keys(tri, mask)
    missing = ~np.isin(bwd, np.unique(fwd))
    raise RuntimeError(f"mesh: {int(missing.sum())} of {len(fwd)} seam half-edges have no partner in the "
                       "neighbouring tile; the tiles' surfaces differ at a seam (try a larger halo)")


def mesh_graph_tiled(
    graph: LatticeGraph,
    path,
    *,
    min_diameter: float | None = None,
    thin: str = "raise",
    body=None,
    drop_islands: bool = False,
    chord_tol: float = CHORD_TOL,
    method: str = "joints",
    end_diameters: np.ndarray | None = None,
    tile_struts: int = TILE_STRUTS,
    scheduler=None,
    workers: int | None = None,
    on_cluster: Callable[[dict], None] | None = None,
    progress: Progress | None = None,
    skin=None,
) -> TiledSolid:
    """Mesh a lattice graph in tiles into one closed solid, streamed to a binary STL.

    Parameters
    ----------
    graph, min_diameter, thin, body, chord_tol, method, end_diameters
        As :func:`~graded.mesh.solid.mesh_graph`.
    path : str or Path, ending in ``.stl``
        The file to write (atomically).
    drop_islands : bool
        Keep only the largest connected set of struts (on the graph, see the module docstring).
    tile_struts : int
        Struts a tile owns, about (see :data:`TILE_STRUTS`).
    scheduler : None, "local", "serial", an address or a distributed.Client
        Where tiles run: ``None`` / ``"local"`` a LocalCluster of ``workers`` processes (default
        all cores), ``"serial"`` one after the other in this process, ``"tcp://host:8786"`` a
        running cluster.
    workers : int, optional
        Worker processes of the LocalCluster.
    skin : graded.mesh.skin.Skin, optional
        A closing wall, as :func:`~graded.mesh.solid.mesh_graph`; only where the plan has one
        tile (the wall cannot be cut at seams).
    on_cluster : callable(dict), optional
        Called with ``{"scheduler", "dashboard", "workers"}`` once connected.
    progress : callable(done, total, message), optional

    Returns
    -------
    TiledSolid

    Raises
    ------
    ValidationError
        As :func:`mesh_graph`; a scheduler that cannot be reached.
    RuntimeError
        A tile that is not closed away from its planes, or seams that do not match.
    """
    from ..io.stl import StlStream
    from .facts import MeshFacts

    t_start = time.perf_counter()
    check_choice("thin", thin, ["raise", "drop"])
    check_choice("method", method, ["joints", "union"])
    check_positive("chord_tol", chord_tol)
    report = progress or (lambda done, total, message: None)
    dia, kept, dropped, thinnest = select_struts(graph, min_diameter, thin, end_diameters)
    islands = 0
    if drop_islands:
        kept, islands = largest_component(graph, kept)
    geo = strut_geometry(graph, dia, kept, chord_tol, min_diameter)
    plan = plan_tiles(geo, tile_struts)
    body_arrays = wall_arrays = None
    reference = None

    def arrays(solid):
        m = solid.to_mesh64()
        return (np.asarray(m.vert_properties, dtype=np.float64)[:, :3].copy(),
                np.asarray(m.tri_verts, dtype=np.int64).copy())

    if body is not None:
        body_m = to_manifold(body, "body")
        reference = float(body_m.volume())
        body_arrays = arrays(body_m)
    if skin is not None:
        if any(len(p) for p in plan.planes):
            raise ValueError("a skin can be meshed in one tile only (its wall would be cut at the seams)")
        body_arrays, wall_arrays = arrays(skin.clip), arrays(skin.wall)
    # manifold3d's tolerance of the whole part (its default, 1e-12 of the largest extent), the
    # same in every tile: edges it collapses are then collapsed on both sides of a seam
    extent = float(np.abs(geo.nodes).max() + np.abs(geo.vradius).max())
    tolerance = MANIFOLD_RELATIVE_TOL * extent
    # joints within this of a plane take qhull's hull of their own points, not their kind's
    band = float(geo.ball_r.max() + HALO_RADII * geo.vradius.max())
    # sub-float32 sliver edges collapse at the one-piece path's weld tolerance of the whole part
    weld = weld_tolerance(extent)
    tiles = _tiles(geo, plan, body_arrays, tolerance, band, weld)
    for tile in tiles:
        tile.wall = wall_arrays
    total = len(tiles)
    report(0, total, f"meshing {len(kept)} struts in {total} tiles")
    blocks: list = []
    seam, seam_open, seam_lab = [], [], []
    n_labels = 0
    volume = 0.0
    n_tri = n_vert = meshed = fb_nodes = fb_struts = 0
    worker_peak = 0.0
    samples = []
    lo_all = np.full(3, np.inf)
    hi_all = np.full(3, -np.inf)
    boxes = {t.index: (t.lo, t.hi) for t in tiles}
    scale = float(np.abs(geo.nodes).max())
    with StlStream(path) as stl:
        t_tiles = time.perf_counter()

        def alive(done):
            report(done, total, f"meshing tiles: {done} of {total} done ({time.perf_counter() - t_tiles:.0f} s)")

        for done, res in enumerate(_results(tiles, method, scheduler, workers, on_cluster, alive), start=1):
            rec = res.pop("records")
            blocks.append((stl.count, len(rec), *boxes[res["index"]]))
            stl.write_records(rec)
            n_tri += len(rec)
            if len(rec):
                v = rec["vertices"].reshape(-1, 3)
                lo_all = np.minimum(lo_all, v.min(axis=0))
                hi_all = np.maximum(hi_all, v.max(axis=0))
            del rec
            seam.append(res["seam"])
            seam_open.append(res["seam_open"])
            seam_lab.append(res["seam_comp"] + n_labels)
            n_labels += res["components"]
            volume += res["volume"]
            n_vert += res["vertices"]
            meshed += res["struts"]
            fb_nodes += res["fallback_nodes"]
            fb_struts += res["fallback_struts"]
            worker_peak = max(worker_peak, res["peak_rss_gb"])
            samples.append(res["sample"])
            report(done, total, f"tile {done} of {total} meshed")
        report(total, total, "closing the seams")
        seam_tri, seam_edges, n_split, bodies = _close_seams(seam, seam_open, seam_lab, n_labels, scale)
        del seam, seam_open, seam_lab
        # the seam triangles go last, as one block of no tile
        blocks.append((stl.count, len(seam_tri), np.full(3, -np.inf), np.full(3, np.inf)))
        stl.write_triangles(seam_tri)
        n_tri += len(seam_tri)
        if len(seam_tri):
            v = seam_tri.reshape(-1, 3)
            lo_all = np.minimum(lo_all, v.min(axis=0))
            hi_all = np.maximum(hi_all, v.max(axis=0))
        if n_tri == 0 or volume <= 0:
            raise RuntimeError(f"mesh: the tiles hold no closed solid ({n_tri} triangles, volume {volume:.6g} mm^3)")
    facts = MeshFacts(
        volume=volume,
        reference_volume=reference if reference is not None else float(np.prod(hi_all - lo_all)),
        relative_density=volume / (reference if reference is not None else float(np.prod(hi_all - lo_all))),
        triangles=n_tri, vertices=n_vert, watertight=True, is_volume=True, bodies=bodies, voids=0,
        min_strut_diameter=float(thinnest[kept].min()),
        bounds=(tuple(map(float, lo_all)), tuple(map(float, hi_all))),
    )
    stats = {
        "method": f"{method}, tiled",
        "seconds": time.perf_counter() - t_start,
        "tiles": total,
        "tile_grid": list(plan.shape),
        "halo_mm": plan.halo,
        "meshed_struts": meshed,
        "fallback_nodes": fb_nodes,
        "fallback_struts": fb_struts,
        "islands_dropped": islands,
        "seam_half_edges": seam_edges,
        "seam_triangles_split": n_split,
        "worker_peak_rss_gb": worker_peak,
        "chord_tol_mm": float(chord_tol),
        "min_polygon_width_mm": geo.min_width,
        "excursion_sample": np.concatenate(samples) if samples else np.zeros((0, 3)),
    }
    return TiledSolid(path=Path(path), facts=facts, kept_struts=kept, dropped_struts=dropped, blocks=blocks,
                      stats=stats)
